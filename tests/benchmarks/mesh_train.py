"""Mesh-trained vs voxel-trained encoder: IoU against the centre rule, bytes, seconds.

    nice -n 10 python tests/benchmarks/mesh_train.py --meshes /work/shared/meshes \\
        --shapes nut.ply spot.obj 76277.obj --res 128 512 [--arch SPEC] [--preset default] \\
        [--points N] [--old-tree /work/main]

For every shape and R: this tree's encoder (mesh inputs train on points from the mesh) at
``--resolution R``; its IoU is the one recorded in the header (the centre rule at R^3, by
the decoder's code) and is checked here against :func:`centre_grid` when R <= 512. With
``--old-tree`` the encoder of that checkout (voxel-trained, today's main) runs in a child
process at 128 only (at 512 it would train on the 512^3 grid's ~16 M samples), and its file
is scored against the centre rule at 128 and at every R (decoded at R). Also printed: the
zstd-19 bit-packed truth grid at R (bench's ``zstd grid``), for the size checks of issue 11.
Encodes use ``--threads 1``. Results as a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parents[2]
if "--child" not in sys.argv:  # the child must import the old tree (its PYTHONPATH)
    sys.path.insert(0, str(ROOT))

ZSTD_LEVEL = 19


def _encode(path: Path, res: int, preset: str, arch: str | None) -> tuple[bytes, str]:
    """The file and "wall s / CPU s" (CPU: this process, all threads; the shared machine's
    load makes wall seconds several times the CPU seconds)."""
    import occcodec

    t0, c0 = time.perf_counter(), time.process_time()
    data = occcodec.encode(path, preset=preset, resolution=res, threads=1, arch=arch)
    return data, f"{time.perf_counter() - t0:.0f} / {time.process_time() - c0:.0f}"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / u if u else 1.0


def _child(args: argparse.Namespace) -> None:
    """Run in the old tree: encode at 128 and write the file (path in --out)."""
    data, secs = _encode(Path(args.child), 128, args.preset, args.arch)
    Path(args.out).write_bytes(data)
    print(json.dumps({"seconds": secs}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--meshes", type=Path, default=Path("/work/shared/meshes"))
    ap.add_argument("--shapes", nargs="+", default=["nut.ply", "spot.obj", "76277.obj"])
    ap.add_argument("--res", nargs="+", type=int, default=[128, 512])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--arch", default=None)
    ap.add_argument("--points", type=int, default=None, help="override meshfit.N_TRAIN")
    ap.add_argument("--old-tree", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args)
        return

    from occcodec import decoder
    from occcodec.encoder import meshfit
    from occcodec.shapes.gridio import pack_bits
    from occcodec.shapes.inputs import load_mesh, shape_from_mesh
    from occcodec.shapes.inside import centre_grid
    from occcodec.sparse import sparse_voxels

    if args.points:
        meshfit.N_TRAIN = args.points
        meshfit.N_VAL = max(1, args.points // 5)
    print(f"preset {args.preset}, arch {args.arch or 'searched'}, "
          f"points {meshfit.N_TRAIN} + {meshfit.N_VAL}, threads 1\n")
    print("| shape | encoder | trained at | R | IoU vs centre rule at R % | params | bytes "
          "| encode s (wall / CPU) | surface CD | zstd grid at R bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.shapes:
        path = args.meshes / name
        if not path.exists():
            print(f"| {name} | missing | | | | | | | | |")
            continue
        mesh = load_mesh(path)
        rows = []
        for R in args.res:
            shape = shape_from_mesh(mesh, R, "auto")
            gf = shape.grid_frame
            truth = (centre_grid(mesh, gf.center, gf.scale, gf.shape, shape.fill)
                     if R <= 512 else None)
            zst = (len(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pack_bits(truth)))
                   if truth is not None else "")
            rows.append((R, truth, zst))
            data, secs = _encode(path, R, args.preset, args.arch)
            dec = decoder.load(data)
            m = dec.header.metrics
            if truth is not None:  # the header's figure, checked independently
                check = _iou(sparse_voxels(dec.header.arch, dec.weights, truth.shape), truth)
                assert abs(check - m["iou"]) < 1e-9, (check, m["iou"])
            print(f"| {name} | mesh points | {R} | {R} | {m['iou'] * 100:.2f} | {m['params']} "
                  f"| {len(data)} | {secs} | {m['surface_chamfer']:.4g} | {zst} |",
                  flush=True)
        if args.old_tree:
            out = Path(f"/tmp/mesh_train_old_{os.getpid()}.occ")
            env = dict(os.environ, PYTHONPATH=str(args.old_tree))
            cmd = [sys.executable, __file__, "--child", str(path), "--out", str(out),
                   "--preset", args.preset] + (["--arch", args.arch] if args.arch else [])
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                                 cwd=str(args.old_tree))
            old = (out.read_bytes(), json.loads(res.stdout.strip().splitlines()[-1])["seconds"])
            out.unlink()
        else:
            old = None
        for R, truth, zst in rows:
            if old is not None and truth is not None:
                od = decoder.load(old[0])
                oi = _iou(sparse_voxels(od.header.arch, od.weights, truth.shape), truth)
                print(f"| {name} | voxels (old) | 128 | {R} | {oi * 100:.2f} "
                      f"| {od.header.arch.params} | {len(old[0])} | {old[1]} | | {zst} |",
                      flush=True)


if __name__ == "__main__":
    main()
