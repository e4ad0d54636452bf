"""Connected components of decoded meshes against their originals (issue 11, clean surfaces).

    python tests/benchmarks/components.py REPORT_DIR MESH_DIR

For every ``REPORT_DIR/occ/NAME.occ`` of an ``occcodec bench`` run and its input
``MESH_DIR/NAME.*``: the components of the input mesh (vertices merged by position) and of
the decoder's mesh at the file's own resolution, counted by
:func:`occcodec.sparse.count_components` (components at least 1e-3 of the largest of their
kind, those ``occcodec decode`` keeps by default), and all components of the decoded mesh
before that (the specks ``decode`` drops). Prints a Markdown table and how many shapes have
no more components than their original.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec import decoder, sparse
from occcodec.shapes.inputs import load_mesh


def _all(verts: np.ndarray, faces: np.ndarray) -> int:
    return sparse.count_components(verts, faces, 0.0)


def main(report: str, meshes: str) -> int:
    print("| shape | original | decoded | decoded before dropping specks |")
    print("|---|---:|---:|---:|")
    ok = total = 0
    for occ in sorted(Path(report, "occ").glob("*.occ")):
        src = next((p for p in Path(meshes).glob(occ.stem + ".*")), None)
        if src is None:
            continue
        mesh = load_mesh(src)
        mesh.merge_vertices()
        orig = sparse.count_components(np.asarray(mesh.vertices),
                                       np.asarray(mesh.faces, dtype=np.int64))
        verts, faces = decoder.mesh_arrays(decoder.read(occ))
        dec = sparse.count_components(verts, faces)
        total += 1
        ok += dec <= orig
        print(f"| {src.name} | {orig} | {dec} | {_all(verts, faces)} |", flush=True)
    print(f"\n{ok} of {total} decoded meshes have no more components than their original "
          "(components of at least 1e-3 of the largest)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:3]))
