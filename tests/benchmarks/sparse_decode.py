"""Sparse decoding speed and memory: the decoder's sparse mesh on real ``.occ`` files.

    python tests/benchmarks/sparse_decode.py FILE.occ [FILE.occ ...] [-r 256 512 1024]
        [--rule margin|lipschitz] [--safety 1.0] [--margin 0.5] [--fine-safety 0.6]
        [--fine-margin 0.25] [--check-dense 256] [--specks 1e-3]

Each (file, resolution) runs in a fresh subprocess, so its max RSS (``resource.getrusage``)
is that measurement's peak alone. The rule's knobs are :func:`occcodec.sparse.sparse_field`'s
(defaults: the decoder's). A row: seconds for the field and for field + mesh, the
vertices moved to the network's crossings included (``decoder.mesh_arrays`` does the same
steps; ``refine_s`` is that last one, since 2026-12-04), the CPU seconds of field + mesh
(``time.process_time``, summed over the decode's threads; on a shared machine the wall
time depends on the load), the threads (``--threads``, default one per core), network
evaluations against the dense
n^3, blocks holding the surface, faces, peak MB, the load average when it started, and the
components :func:`occcodec.sparse.drop_specks` would remove. ``--check-dense R`` also
decodes densely at resolutions <= R and reports voxel mismatches and the volume difference,
and where the mismatched voxels are: filled inside enclosed cavities of the dense decode,
missed in its specks (both gone from the mesh ``decode`` writes), or on the body.
Make the inputs with e.g. ``occcodec encode ../shared/meshes/spot.obj -o spot.occ``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
from occcodec import decoder, sparse
from occcodec.format import network
path, res, rule, check, specks, safety = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                                          int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
threads = int(sys.argv[7]) or None
knobs = dict(zip(("margin", "fine_safety", "fine_margin"), map(float, sys.argv[8:11])))
ctx = sparse.workers(threads)
ctx.__enter__()
coded = decoder.read(path)
h = coded.header
shape = network.scaled_shape(h.grid, res)
load = os.getloadavg()[0]
t0, c0 = time.perf_counter(), time.process_time()
f = sparse.sparse_field(h.arch, coded.weights, shape, rule=rule, safety=safety, **knobs)
t1 = time.perf_counter()
verts, faces = sparse.field_mesh(f)
t_mc = time.perf_counter()
verts -= 1.0  # as sparse.field_surface: the vertices moved to the network's crossings
sparse.refine_crossings(h.arch, coded.weights, verts, shape)
verts += 1.0
world = sparse.to_world(verts, shape, h.center, h.scale, inplace=True)
t2, c2 = time.perf_counter(), time.process_time()
row = {"file": path, "resolution": res, "rule": rule, "safety": safety, **knobs,
       "arch": str(h.arch),
       "field_s": round(t1 - t0, 2), "mesh_s": round(t2 - t0, 2), "cpu_s": round(c2 - c0, 2),
       "refine_s": round(t2 - t_mc, 2),
       "evaluated": f.evaluated, "dense": int(np.prod(shape)),
       "fraction": round(f.evaluated / float(np.prod(shape)), 4),
       "mixed_blocks": int(len(f.mixed)), "blocks": int(f.label.size), "faces": int(len(faces)),
       "levels": [[lv.edge, lv.cells, lv.refined, lv.evaluated] for lv in f.levels],
       "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
       "load": round(load, 1), "threads": sparse.worker_count()}
if specks > 0:
    row["specks_removed"] = sparse.drop_specks(world, faces, specks)[2]
if res <= check:
    dv = decoder.voxels(coded, res, sparse=False)
    sv = f.voxels()
    row["voxel_mismatch"] = int((dv != sv).sum())
    if row["voxel_mismatch"]:
        # where: voxels the sparse decode fills inside the dense decode's enclosed cavities
        # (6-connected empty parts not reaching the grid's border), voxels it misses in the
        # dense decode's specks (26-connected parts under --specks of the largest; decode
        # drops them), and the rest, on the body's surface
        from scipy import ndimage
        empty, _ = ndimage.label(np.pad(~dv, 1, constant_values=True))  # padding: outside
        outside = empty[0, 0, 0]
        filled = sv & ~dv
        row["filled_in_cavities"] = int(np.count_nonzero(
            empty[1:-1, 1:-1, 1:-1][filled] != outside))
        parts, _ = ndimage.label(dv, np.ones((3, 3, 3), bool))
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        missed = dv & ~sv
        row["missed_in_specks"] = int(np.count_nonzero(
            sizes[parts[missed]] < specks * sizes.max()))
        row["on_body"] = (row["voxel_mismatch"] - row["filled_in_cavities"]
                          - row["missed_in_specks"])
    dverts, dfaces = decoder.mesh_arrays(coded, res, sparse=False)
    def vol(v, fc):
        a, b, c = v[fc[:, 0]], v[fc[:, 1]], v[fc[:, 2]]
        return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6)
    row["volume_rel_diff"] = abs(vol(world, faces) - vol(dverts, dfaces)) / abs(vol(dverts, dfaces))
    row["same_counts"] = bool(len(dverts) == len(world) and len(dfaces) == len(faces))
print(json.dumps(row))
"""


def measure(path: str, res: int, rule: str, check: int, specks: float,
            safety: float, threads: int = 0, margin: float = 0.5, fine_safety: float = 0.6,
            fine_margin: float = 0.25) -> dict[str, object]:
    """One measurement in a fresh interpreter; returns its row."""
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    out = subprocess.run([sys.executable, "-c", _CHILD, path, str(res), rule, str(check),
                          str(specks), str(safety), str(threads), str(margin),
                          str(fine_safety), str(fine_margin)], capture_output=True,
                         text=True, env=env,
                         check=False)
    if out.returncode != 0:
        return {"file": path, "resolution": res, "error": out.stderr.strip().splitlines()[-1:]}
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("-r", "--resolutions", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--rule", default="margin", choices=["margin", "lipschitz"])
    ap.add_argument("--safety", type=float, default=1.0)
    ap.add_argument("--margin", type=float, default=0.5, help="sparse_field's margin")
    ap.add_argument("--fine-safety", type=float, default=0.6, help="sparse_field's fine_safety")
    ap.add_argument("--fine-margin", type=float, default=0.25, help="sparse_field's fine_margin")
    ap.add_argument("--check-dense", type=int, default=0, metavar="R")
    ap.add_argument("--specks", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=0,
                    help="decode threads (sparse.workers; default 0: one per core)")
    a = ap.parse_args()
    for f in a.files:
        for r in a.resolutions:
            print(json.dumps(measure(f, r, a.rule, a.check_dense, a.specks, a.safety,
                                     a.threads, a.margin, a.fine_safety, a.fine_margin)),
                  flush=True)
