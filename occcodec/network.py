"""The decoder's network: numpy evaluation of an occupancy MLP on points and grids.

This module is the reference for the arithmetic the file format specifies
(``formats/occ-v1.md`` section "Evaluation"). It needs numpy only: decoding never imports
TensorFlow. The encoder measures its recorded metrics with these same functions, after
quantization, so what a file claims is what a decoder gets.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from occcodec.arch import Arch

Weights = list[tuple[np.ndarray, np.ndarray]]

#: Points evaluated per chunk: bounds memory to a few tens of MB whatever the grid size.
CHUNK_POINTS = 1 << 17


def grid_coords(shape: Sequence[int], axis: int) -> np.ndarray:
    """Normalised centre coordinates of the voxels along ``axis`` of a grid of ``shape``.

    ``p = (i - (n - 1) / 2) / (m / 2)`` with ``m = max(shape)``, in float32.
    """
    n, m = shape[axis], max(shape)
    i = np.arange(n, dtype=np.float64)
    return ((i - (n - 1) / 2.0) / (m / 2.0)).astype(np.float32)


def positional_encoding(points: np.ndarray, levels: int) -> np.ndarray:
    """``[x, y, z, then per level k: sin(2^k pi x,y,z), cos(2^k pi x,y,z)]`` in float32."""
    if levels == 0:
        return points
    feats = [points]
    for k in range(levels):
        arg = points * np.float32(np.pi * 2.0**k)
        feats.append(np.sin(arg))
        feats.append(np.cos(arg))
    return np.concatenate(feats, axis=1).astype(np.float32, copy=False)


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    if name == "relu":
        return np.maximum(x, 0.0, out=x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "swish":
        return x / (1.0 + np.exp(-x))
    raise ValueError(f"unknown activation {name!r}")


def logits(arch: Arch, weights: Weights, points: np.ndarray) -> np.ndarray:
    """Pre-sigmoid outputs for ``points`` (N, 3) in normalised coordinates; float32 (N,)."""
    h = positional_encoding(np.asarray(points, dtype=np.float32), arch.pe_levels)
    for layer, (kernel, bias) in zip(arch.layers, weights[:-1], strict=True):
        h = _activate(h @ kernel + bias, layer.activation)
    kernel, bias = weights[-1]
    return (h @ kernel + bias)[:, 0]


def iter_grid_points(shape: Sequence[int]) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (x-slab slice, points) covering a grid in C order, about CHUNK_POINTS at a time."""
    xs, ys, zs = (grid_coords(shape, a) for a in range(3))
    plane = len(ys) * len(zs)
    step = max(1, CHUNK_POINTS // plane)
    yy, zz = np.meshgrid(ys, zs, indexing="ij")
    yz = np.stack([yy.ravel(), zz.ravel()], axis=1)
    for start in range(0, len(xs), step):
        sl = slice(start, min(start + step, len(xs)))
        x = np.repeat(xs[sl], plane)
        yield sl, np.concatenate([x[:, None], np.tile(yz, (len(x) // plane, 1))], axis=1)


def logit_grid(arch: Arch, weights: Weights, shape: Sequence[int]) -> np.ndarray:
    """Logits at every voxel centre of a grid of ``shape``, float32, evaluated in chunks."""
    shape = tuple(int(s) for s in shape)
    out = np.empty(shape, dtype=np.float32)
    for sl, pts in iter_grid_points(shape):
        out[sl] = logits(arch, weights, pts).reshape(-1, shape[1], shape[2])
    return out


def occupancy_grid(arch: Arch, weights: Weights, shape: Sequence[int]) -> np.ndarray:
    """Decoded voxels: occupied where the logit is > 0 (P > 0.5). Bool array of ``shape``."""
    return logit_grid(arch, weights, shape) > 0.0


def scaled_shape(shape: Sequence[int], resolution: int) -> tuple[int, int, int]:
    """Grid shape covering the same box as ``shape`` with ``resolution`` along its longest axis."""
    m = max(shape)
    return tuple(max(1, int(round(n * resolution / m))) for n in shape)  # type: ignore[return-value]
