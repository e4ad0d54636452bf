"""ctx-grid's models side by side: payload bytes of each mesh's truth grid (not a test).

    python tests/benchmarks/ctxgrid_models.py MESH_OR_DIR [...] [-r 128] [--models 1 2]

For every mesh (a directory means every mesh in it, sorted), the grid the encoder scores
against at ``-r`` (the centre rule in the encoder's frame, fill auto) is coded by each
ctx-grid model; each payload is decoded back and checked voxel for voxel. Prints one row a
shape (payload bytes per model, the last model's ratio to the first, encode seconds) and the
totals and medians. The payload is the words alone: a standalone ctx-grid stream adds 14
bytes, a grid-mode ``.occ`` file its header and META.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.coding import ctxgrid
from occcodec.shapes.inputs import MESH_EXTENSIONS, load_shape
from occcodec.shapes.inside import centre_grid


def _meshes(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in MESH_EXTENSIONS)
        else:
            out.append(p)
    return out


def truth(path: Path, resolution: int) -> np.ndarray:
    """The centre-rule grid of ``path`` at ``resolution``, in the encoder's frame."""
    shape = load_shape(path, resolution=resolution, fill="auto")
    gf = shape.grid_frame
    fill = "shell" if shape.fill == "shell" else "solid"
    return np.asarray(centre_grid(shape.mesh, gf.center, gf.scale, gf.shape, fill=fill), bool)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", type=Path)
    ap.add_argument("-r", "--resolution", type=int, default=128)
    ap.add_argument("--models", type=int, nargs="+", default=sorted(ctxgrid.MODELS))
    a = ap.parse_args(argv)
    sizes: dict[int, list[int]] = {m: [] for m in a.models}
    print(f"resolution {a.resolution}; payload bytes per ctx-grid model")
    print("| shape | " + " | ".join(f"model {m}" for m in a.models)
          + f" | {a.models[-1]} / {a.models[0]} | seconds |")
    print("|---|" + "---:|" * (len(a.models) + 2))
    for path in _meshes(a.paths):
        grid = truth(path, a.resolution)
        row, secs = [], []
        for m in a.models:
            t0 = time.perf_counter()
            words = ctxgrid.encode_words(grid, m)
            secs.append(time.perf_counter() - t0)
            back = ctxgrid.decode_words(words, grid.shape, m)
            if not np.array_equal(back, grid):
                raise SystemExit(f"{path.name}: model {m} did not decode to its grid")
            sizes[m].append(len(words))
            row.append(len(words))
        print(f"| {path.name} | " + " | ".join(f"{n:,}" for n in row)
              + f" | {row[-1] / row[0]:.3f} | " + " / ".join(f"{s:.1f}" for s in secs) + " |",
              flush=True)
    first, last = sizes[a.models[0]], sizes[a.models[-1]]
    if first:
        print("\ntotal: " + ", ".join(f"model {m} {sum(v):,} B" for m, v in sizes.items())
              + f"; ratio {sum(last) / sum(first):.3f}")
        print("median: " + ", ".join(f"model {m} {statistics.median(v):,.0f} B"
                                     for m, v in sizes.items())
              + f"; median per-shape ratio "
              f"{statistics.median(b / c for b, c in zip(last, first, strict=True)):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
