"""Could the sparse decoder prove its skips? Interval bounds of a file's network over cells.

    python tests/benchmarks/interval_bounds.py FILE.occ [-r 512] [--x0 200] [--width 64]

A skipped cell is safe when the logit keeps one sign at every lattice point in it. The
``"margin"`` rule (``occcodec.sparse``) guesses that from the corners and a slope; a proof
needs a bound of the field over the cell. This measures the tightest cheap one: interval
bound propagation, starting from the exact range of the first layer's input over the
cell's points (its per-axis tables are separable: the range of a sum of three tables is the
sum of their ranges), then interval arithmetic through every layer (center-radius form,
``|W|`` for the radius; each activation's exact range over an interval, swish's minimum
included). For the cells of edge 2, 4, 8 and 16 whose lower corner lies in a slab of
``--width`` lattice planes from ``--x0`` (all y, z), it prints the share of the cells whose
points share one sign (from the dense logits of the slab), the share of those the bound
proves, the same among cells near the surface (a corner within 4 logits of 0), and the
median width of the bound against the field's true range over the cell.

Measured on nut.ply's 512^3 file (``pe6,20:elu,56:swish,16:swish,56:swish``, 2026-12-04,
``tests/benchmarks/results/sparse-decode/interval-bounds-2026-12-04.md``): median bound
11x (edge 2) to 38x (edge 16) wider than the median true range, and none of the
near-surface cells proved at any edge, so a proof-based skip rule would refine everything
near the surface.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from occcodec import decoder, sparse
from occcodec.format import network

SWISH_MIN_AT = -1.2784645427610738  # argmin of x * sigmoid(x)
CHUNK = 1 << 16  # cells bounded at a time


def _swish(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return x / (1.0 + np.exp(-x))


def activation_range(lo: np.ndarray, hi: np.ndarray, name: str
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The exact range of the activation over each interval [lo, hi]."""
    if name == "relu":
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if name == "elu":  # increasing
        def elu(x: np.ndarray) -> np.ndarray:
            return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
        return elu(lo), elu(hi)
    if name == "swish":  # decreasing, then increasing
        flo, fhi = _swish(lo), _swish(hi)
        mn = np.where(hi < SWISH_MIN_AT, fhi,
                      np.where(lo > SWISH_MIN_AT, flo, _swish(np.float64(SWISH_MIN_AT))))
        return mn, np.maximum(flo, fhi)
    raise ValueError(f"no interval rule for {name!r}")


def bounds(tables: list[np.ndarray], arch, weights, u0: np.ndarray, s: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the logit over the lattice points ``u0 .. u0 + s``."""
    lo = np.zeros((len(u0), tables[0].shape[1]))
    hi = np.zeros_like(lo)
    for axis in range(3):
        rows = tables[axis][u0[:, axis, None] + np.arange(s + 1)]  # (N, s + 1, width)
        lo += rows.min(axis=1)
        hi += rows.max(axis=1)
    bias0 = weights[0][1].astype(np.float64)
    lo, hi = activation_range(lo + bias0, hi + bias0, arch.layers[0].activation)
    for i, (kernel, bias) in enumerate(weights[1:], start=1):
        k = kernel.astype(np.float64)
        mid, rad = (lo + hi) / 2, (hi - lo) / 2
        m2, r2 = mid @ k + bias, rad @ np.abs(k)
        lo, hi = m2 - r2, m2 + r2
        if i < len(arch.layers):
            lo, hi = activation_range(lo, hi, arch.layers[i].activation)
    return lo[:, 0], hi[:, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("-r", "--resolution", type=int, default=512)
    ap.add_argument("--x0", type=int, default=200, help="first lattice plane of the slab")
    ap.add_argument("--width", type=int, default=64, help="lattice planes (a multiple of 16)")
    a = ap.parse_args()
    coded = decoder.read(a.file)
    arch, weights = coded.header.arch, coded.weights
    shape = network.scaled_shape(coded.header.grid, a.resolution)
    ev = sparse._Evaluator(arch, weights, shape, [d + 1 for d in shape])
    tables = [t.astype(np.float64) for t in ev.tables]  # row u: lattice point u
    _, ny, nz = shape
    x0, w = a.x0, a.width
    ux, uy, uz = np.meshgrid(np.arange(x0, x0 + w + 1), np.arange(1, ny + 1),
                             np.arange(1, nz + 1), indexing="ij")
    field = ev(ux.ravel(), uy.ravel(), uz.ravel()).reshape(w + 1, ny, nz).astype(np.float64)
    print(f"{a.file} at {'x'.join(map(str, shape))}, {arch}, slab x in [{x0}, {x0 + w}]")
    print("| edge | cells | one sign | proved of those | near surface | proved of those "
          "| bound width | true range | seconds |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in (2, 4, 8, 16):
        g = np.stack(np.meshgrid(np.arange(0, w, s), np.arange(0, ny - s, s),
                                 np.arange(0, nz - s, s), indexing="ij"), -1).reshape(-1, 3)
        tmin = np.full(len(g), np.inf)
        tmax = np.full(len(g), -np.inf)
        for dx in range(s + 1):
            for dy in range(s + 1):
                for dz in range(s + 1):
                    col = field[g[:, 0] + dx, g[:, 1] + dy, g[:, 2] + dz]
                    np.minimum(tmin, col, out=tmin)
                    np.maximum(tmax, col, out=tmax)
        corner = np.min([np.abs(field[g[:, 0] + dx * s, g[:, 1] + dy * s, g[:, 2] + dz * s])
                         for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)], axis=0)
        t0 = time.perf_counter()
        u0 = g + np.array([x0, 1, 1])
        parts = [bounds(tables, arch, weights, u0[i : i + CHUNK], s)
                 for i in range(0, len(u0), CHUNK)]
        lo = np.concatenate([p[0] for p in parts])
        hi = np.concatenate([p[1] for p in parts])
        secs = time.perf_counter() - t0
        assert (lo <= tmin + 1e-3).all() and (hi >= tmax - 1e-3).all(), "bound unsound"
        one = (tmin > 0) | (tmax < 0)
        proved = (lo > 0) | (hi < 0)
        near = corner < 4.0
        print(f"| {s} | {len(g):,} | {one.mean():.3f} | {proved.sum() / max(1, one.sum()):.3f} "
              f"| {near.sum():,} | {proved[near].sum() / max(1, one[near].sum()):.3f} "
              f"| {np.median(hi - lo):.1f} | {np.median(tmax - tmin):.1f} | {secs:.1f} |")


if __name__ == "__main__":
    main()
