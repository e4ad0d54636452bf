"""ctx-grid vs the zstd-19 bit-packed grid on the shared meshes: bytes and seconds.

    nice -n 10 python tests/benchmarks/ctxgrid_sizes.py [--meshes DIR] [--big N] [--big-res 256 512]

Every mesh is voxelized with ``load_shape(path, resolution=R, fill="auto")``; the zstd grid
is made as the bench makes it (``pack_bits`` + one zstd frame at level 19). Each ctx-grid
stream is decoded and checked equal to the grid. At 128 all meshes; at each ``--big-res``
the first ``--big`` meshes (sorted by name). Prints one row per shape and a summary per
resolution (mean, median, mean of per-shape ratios ctx-grid / zstd).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.coding import decode_grid, encode_grid
from occcodec.errors import OccError
from occcodec.shapes.gridio import pack_bits
from occcodec.shapes.inputs import load_shape

ZSTD_LEVEL = 19
# The shared folder sits beside the main checkout (../shared) or beside the worktrees.
MESHES = next((d for d in (ROOT.parent / "shared" / "meshes", ROOT.parents[1] / "shared" / "meshes")
               if d.is_dir()), ROOT.parent / "shared" / "meshes")


def measure(path: Path, res: int) -> dict[str, float] | None:
    """One shape at one resolution; None when it cannot be voxelized."""
    try:
        grid = np.asarray(load_shape(path, resolution=res, fill="auto").occupancy, dtype=bool)
    except OccError as exc:
        print(f"{path.name}: skipped ({exc})", file=sys.stderr)
        return None
    zst = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pack_bits(grid))
    t0 = time.perf_counter()
    data = encode_grid(grid)
    t1 = time.perf_counter()
    back = decode_grid(data)
    t2 = time.perf_counter()
    if not np.array_equal(back, grid):
        raise SystemExit(f"{path.name} at {res}: ctx-grid did not round-trip")
    return {"occupied": int(grid.sum()), "ctx": len(data), "zstd": len(zst),
            "enc_s": t1 - t0, "dec_s": t2 - t1}


def table(res: int, paths: list[Path]) -> None:
    rows = []
    print(f"\n## {res}^3\n\n| shape | occupied | ctx-grid B | zstd-19 B | ratio | enc s | dec s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p in paths:
        r = measure(p, res)
        if r is None:
            continue
        rows.append(r)
        print(f"| {p.stem} | {r['occupied']} | {r['ctx']} | {r['zstd']} | "
              f"{r['ctx'] / r['zstd']:.3f} | {r['enc_s']:.2f} | {r['dec_s']:.2f} |", flush=True)
    if not rows:
        return
    ctx = [r["ctx"] for r in rows]
    zst = [r["zstd"] for r in rows]
    print(f"| **mean of {len(rows)}** | | {statistics.mean(ctx):.0f} | {statistics.mean(zst):.0f} | "
          f"{statistics.mean(c / z for c, z in zip(ctx, zst, strict=False)):.3f} | "
          f"{statistics.mean(r['enc_s'] for r in rows):.2f} | "
          f"{statistics.mean(r['dec_s'] for r in rows):.2f} |")
    print(f"| **median** | | {statistics.median(ctx):.0f} | {statistics.median(zst):.0f} | "
          f"{statistics.median(c / z for c, z in zip(ctx, zst, strict=False)):.3f} | | |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meshes", type=Path, default=MESHES)
    ap.add_argument("--res", type=int, default=128, help="resolution for every mesh")
    ap.add_argument("--big", type=int, default=3, help="meshes measured at --big-res")
    ap.add_argument("--big-res", type=int, nargs="*", default=[256, 512])
    a = ap.parse_args()
    if not a.meshes.is_dir():
        raise SystemExit(f"no mesh folder {a.meshes}: pass --meshes DIR")
    paths = sorted(p for p in a.meshes.iterdir()
                   if p.is_file() and p.suffix.lower() not in (".tsv", ".md", ".txt"))
    table(a.res, paths)
    for res in a.big_res:
        table(res, paths[: a.big])


if __name__ == "__main__":
    main()
