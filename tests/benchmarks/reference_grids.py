"""Reference grids: seconds and peak memory of ``centre_grid`` (and the solid ``voxelize``).

    nice -n 10 python tests/benchmarks/reference_grids.py MESH [MESH ...] [-r 256 512]
        [--check 20000] [--voxelize]

Each (mesh, resolution) runs in a fresh subprocess, so its max RSS is that measurement's
peak alone. A row: faces, whether the mesh is closed (one ray axis) or not (three axes), the
wall-clock and CPU seconds of :func:`occcodec.shapes.inside.centre_grid` in the mesh's own
encoder frame (CPU seconds say more on a shared machine: wall-clock there follows the load), the
occupied count, and with ``--check N`` how many of N random voxel centres differ from
libigl's winding number asked directly (:func:`occcodec.shapes.inside.inside`): the truth
rule itself. ``--voxelize`` also times the conservative solid voxelizer at the same size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import json, resource, sys, time
import numpy as np, trimesh
from occcodec.shapes import inside as I
from occcodec.shapes.voxelize import mesh_frame, voxelize
path, R, check, vox = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
mesh = trimesh.load(path, force="mesh")
v, f = I._arrays(mesh)
center, h, scale = mesh_frame(v, R)
t0, c0 = time.perf_counter(), time.process_time()
grid = I.centre_grid(mesh, center, scale, (R, R, R))
secs, cpu = time.perf_counter() - t0, time.process_time() - c0
row = {"mesh": path.rsplit("/", 1)[-1], "R": R, "faces": len(f), "closed": I._is_closed(v, f),
       "centre_grid_s": round(secs, 2), "cpu_s": round(cpu, 2), "occupied": int(grid.sum())}
if check:
    idx = np.random.default_rng(0).integers(0, R, size=(check, 3))
    origin = np.asarray(center) - h * R / 2
    truth = I.inside(mesh, origin + h * (idx + 0.5))
    row["checked"] = check
    row["differ"] = int(np.count_nonzero(truth != grid[tuple(idx.T)]))
if vox:
    t0 = time.perf_counter()
    voxelize(mesh, R, "auto")
    row["voxelize_s"] = round(time.perf_counter() - t0, 2)
row["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(row))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", nargs="+", type=Path)
    ap.add_argument("-r", "--resolutions", nargs="+", type=int, default=[256, 512])
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="compare N random centres with the winding number itself")
    ap.add_argument("--voxelize", action="store_true", help="also time the solid voxelizer")
    args = ap.parse_args()
    env_path = str(ROOT)
    for mesh in args.meshes:
        for R in args.resolutions:
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(mesh), str(R), str(args.check),
                 "1" if args.voxelize else "0"],
                capture_output=True, text=True, env={"PYTHONPATH": env_path, "PATH": ""},
                check=False)
            line = out.stdout.strip().splitlines()[-1:] or [""]
            try:
                print(json.dumps(json.loads(line[0])), flush=True)
            except json.JSONDecodeError:
                print(json.dumps({"mesh": str(mesh), "R": R, "error": out.stderr.strip()[-300:]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
