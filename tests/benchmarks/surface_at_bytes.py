"""Surface accuracy at equal bytes: occcodec's files against the best decimate+Draco file
that fits in as many bytes, on the exact point-to-surface Chamfer.

    python tests/benchmarks/surface_at_bytes.py MESH_DIR OCC_DIR [-r 512] [--points N]

For each ``OCC_DIR/NAME.occ`` with a mesh ``MESH_DIR/NAME.*``: the file is meshed at ``-r`` as
``occcodec decode`` writes it (specks dropped) and scored against the mesh as ``occcodec
eval`` does (:func:`occcodec.tools.metrics.surface_distances`, the mesh as occcodec loads
it). decimate+Draco goes through every setting ``occcodec bench`` searches at that
resolution (``baselines.search_settings``, Draco level ``baselines.DRACO_LEVEL``) and keeps,
among the files no larger than the ``.occ``, the one with the lowest surface Chamfer (the
bench's ``@bytes`` row picks the same way since 2026-12-04; before, it took the highest IoU).
Unlike the bench it scores files made elsewhere, so it needs no encode. One markdown row
per shape, then the count of shapes where occcodec's Chamfer is lower.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> None:
    import numpy as np
    import trimesh

    import occcodec
    from occcodec.shapes.inputs import MESH_EXTENSIONS, load_mesh
    from occcodec.tools.bench.baselines import _draco_encode, search_settings
    from occcodec.tools.evaluate import voxel_edge
    from occcodec.tools.metrics import surface_distances

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", type=Path)
    ap.add_argument("occ", type=Path)
    ap.add_argument("-r", "--resolution", type=int, default=512)
    ap.add_argument("--points", type=int, default=100_000)
    a = ap.parse_args()
    import DracoPy  # type: ignore[import-not-found]
    import fast_simplification  # type: ignore[import-untyped]

    wins = total = 0
    print("| shape | occcodec file | bytes | CD (vox) | normal cons. | decimate+Draco "
          "(reduction/bits) | bytes | CD (vox) | normal cons. | lower CD |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---|")
    for occ_path in sorted(a.occ.glob("*.occ")):
        found = [p for p in a.meshes.iterdir()
                 if p.stem == occ_path.stem and p.suffix.lower() in MESH_EXTENSIONS]
        if not found:
            print(f"{occ_path.name}: no mesh named {occ_path.stem} in {a.meshes}",
                  file=sys.stderr)
            continue
        ref = load_mesh(found[0])
        shape = occcodec.decode(occ_path.read_bytes())
        edge = voxel_edge(shape.header.scale, (a.resolution,) * 3)
        nbytes = occ_path.stat().st_size
        ours = surface_distances(ref, shape.mesh(a.resolution), a.points)
        kind = "grid" if shape.coded.grid_mode else "network"
        v0 = np.asarray(ref.vertices, np.float64)
        f0 = np.asarray(ref.faces, np.int64)
        best = None
        reductions, depths = search_settings(a.resolution)
        for reduction in reductions:
            v, f = (fast_simplification.simplify(v0, f0, target_reduction=reduction)
                    if reduction > 0 else (v0, f0))
            if len(f) == 0:
                continue
            for bits in depths:
                blob = _draco_encode(np.asarray(v, np.float64), np.asarray(f, np.int64), bits)
                if len(blob) > nbytes:
                    break
                d = DracoPy.decode(blob)
                mesh = trimesh.Trimesh(np.asarray(d.points, np.float64).reshape(-1, 3),
                                       np.asarray(d.faces, np.int64).reshape(-1, 3),
                                       process=False)
                theirs = surface_distances(ref, mesh, a.points)
                if best is None or theirs["chamfer"] < best[0]["chamfer"]:
                    best = (theirs, reduction, bits, len(blob))
        total += 1
        row = (f"| {occ_path.stem} | {kind} | {nbytes:,} | {ours['chamfer'] / edge:.3f} | "
               f"{ours['normal_consistency']:.4f} | ")
        if best is None:
            wins += 1
            row += "none fits | - | - | - | occcodec |"
        else:
            theirs, reduction, bits, size = best
            win = ours["chamfer"] < theirs["chamfer"]
            wins += win
            row += (f"{reduction:g} / {bits} | {size:,} | {theirs['chamfer'] / edge:.3f} | "
                    f"{theirs['normal_consistency']:.4f} | "
                    f"{'occcodec' if win else 'decimate+Draco'} |")
        print(row, flush=True)
    print(f"\nocccodec has the lower surface Chamfer on {wins} of {total} shapes.")


if __name__ == "__main__":
    main()
