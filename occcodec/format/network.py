"""The decoder's network: numpy evaluation of an occupancy MLP on points and grids.

This module is the reference for the arithmetic the file format specifies
(``formats/occ-v1.md`` section "Evaluation"). It needs numpy only: decoding never imports
TensorFlow. The encoder measures its recorded metrics with these same functions, after
quantization, so what a file claims is what a decoder gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np

from occcodec.errors import FormatError
from occcodec.format.arch import Arch

Weights = list[tuple[np.ndarray, np.ndarray]]
#: A grid as its three per-axis normalised coordinate vectors (x, y, z), float32: the
#: evaluation points are their outer product in C order. The caller computes them with the
#: spec's 10.1 (``occcodec.shapes.frame.axis_coords``); this package stays free of the
#: shapes layer, and the same code evaluates any axis-aligned grid of points.
Axes = Sequence[np.ndarray]

#: Points evaluated per chunk (at least one x-slice): small enough to stay in cache.
CHUNK_POINTS = 1 << 14


# Extreme weights (a damaged or hostile file) overflow float32 to inf, and inf - inf gives
# NaN: both are intended IEEE results (NaN > 0 is False, an empty voxel), so numpy's
# multi-line RuntimeWarnings would only bury the caller's one-line message.
# (One errstate object per function: a decorator's object must not be entered twice at once.)


def _as_axes(axes: Axes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three per-axis coordinate vectors as float32 (a no-op for the frame's own)."""
    if len(axes) != 3:
        raise ValueError(f"a grid has 3 coordinate axes, got {len(axes)}")
    x, y, z = (np.asarray(a, dtype=np.float32).reshape(-1) for a in axes)
    return x, y, z


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


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0, out=x)


def _elu(x: np.ndarray) -> np.ndarray:
    """x for x > 0, exp(x) - 1 otherwise: max(x, 0) + expm1(min(x, 0))."""
    neg = np.minimum(x, 0.0)
    np.expm1(neg, out=neg)
    np.maximum(x, 0.0, out=x)
    x += neg
    return x


def _swish(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x) = x / (1 + exp(-x))."""
    den = np.negative(x)
    with np.errstate(over="ignore"):  # exp(-x) = inf for x << 0 gives the limit, 0
        np.exp(den, out=den)
    den += 1.0
    np.divide(x, den, out=x)
    return x


#: The hidden activations by the ids written in the file (``arch.ACTIVATIONS``). Each works
#: in place on a fresh float32 temporary. The encoder's TensorFlow table
#: (``occcodec.encoder.train.TF_ACTIVATIONS``) must have the same keys and the same values
#: (``tests/test_tables.py``).
ACTIVATION_FNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": _relu,
    "elu": _elu,
    "swish": _swish,
}


def activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The numpy function of the activation id ``name``.

    Raises
    ------
    FormatError
        On an unknown id (a file naming one is malformed; never a fallback).
    """
    try:
        return ACTIVATION_FNS[name]
    except KeyError:
        raise FormatError(f"unknown activation {name!r}: a file may use "
                          f"{', '.join(ACTIVATION_FNS)}") from None


def _activate(x: np.ndarray, name: str) -> np.ndarray:
    """Apply an activation in place where possible (``x`` is a fresh temporary)."""
    return activation(name)(x)


@np.errstate(over="ignore", invalid="ignore")
def logits(arch: Arch, weights: Weights, points: np.ndarray) -> np.ndarray:
    """Pre-sigmoid outputs for ``points`` (N, 3) in normalised coordinates; float32 (N,)."""
    h = positional_encoding(np.asarray(points, dtype=np.float32), arch.pe_levels)
    for layer, (kernel, bias) in zip(arch.layers, weights[:-1], strict=True):
        h = _activate(h @ kernel + bias, layer.activation)
    kernel, bias = weights[-1]
    return (h @ kernel + bias)[:, 0]


def iter_grid_points(axes: Axes) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (x-slab slice, points) covering a grid in C order, about CHUNK_POINTS at a time."""
    xs, ys, zs = _as_axes(axes)
    plane = len(ys) * len(zs)
    step = max(1, CHUNK_POINTS // plane)
    yy, zz = np.meshgrid(ys, zs, indexing="ij")
    yz = np.stack([yy.ravel(), zz.ravel()], axis=1)
    for start in range(0, len(xs), step):
        sl = slice(start, min(start + step, len(xs)))
        x = np.repeat(xs[sl], plane)
        yield sl, np.concatenate([x[:, None], np.tile(yz, (len(x) // plane, 1))], axis=1)


def _axis_terms(arch: Arch, kernel: np.ndarray, axes: Axes) -> list[np.ndarray]:
    """First-layer contributions of each axis alone: (n_a, units) per axis.

    Every input feature (a coordinate, or a sine or cosine of one coordinate) depends on a
    single axis, so on a grid the first layer's pre-activation is a sum of three per-axis
    tables: ``A[i] + B[j] + C[k] + bias``. This skips the encoding and the widest matmul for
    all but n_x + n_y + n_z points; only the summation order differs from :func:`logits`.
    """
    feats_per_axis = 1 + 2 * arch.pe_levels
    terms = []
    for axis, coords in enumerate(_as_axes(axes)):
        c = coords[:, None]
        rows = [axis]  # feature rows of this axis in the encoded input (see positional_encoding)
        feats = [c]
        for k in range(arch.pe_levels):
            arg = c * np.float32(np.pi * 2.0**k)
            rows += [3 + 6 * k + axis, 3 + 6 * k + 3 + axis]
            feats += [np.sin(arg), np.cos(arg)]
        f = np.concatenate(feats, axis=1).astype(np.float32)
        assert f.shape[1] == feats_per_axis
        terms.append(f @ kernel[rows])
    return terms


@np.errstate(over="ignore", invalid="ignore")
def logit_grid(arch: Arch, weights: Weights, axes: Axes) -> np.ndarray:
    """Logits at every point of the grid ``axes``, float32 ``(len(x), len(y), len(z))``.

    Evaluated in bounded-memory x-slabs. For a decoded grid, ``axes`` are its voxel
    centres (``occcodec.shapes.frame.axis_coords(shape)``).
    """
    axes = _as_axes(axes)
    shape = tuple(len(a) for a in axes)
    out = np.empty(shape, dtype=np.float32)
    kernel0, bias0 = weights[0]
    tx, ty, tz = _axis_terms(arch, kernel0, axes)
    yz = (ty[:, None, :] + tz[None, :, :] + bias0).reshape(-1, kernel0.shape[1])
    plane = shape[1] * shape[2]
    step = max(1, CHUNK_POINTS // plane)
    for start in range(0, shape[0], step):
        xs = tx[start : start + step]
        h = (xs[:, None, :] + yz[None, :, :]).reshape(-1, kernel0.shape[1])
        h = _activate(h, arch.layers[0].activation)
        for layer, (kernel, bias) in zip(arch.layers[1:], weights[1:-1], strict=True):
            h = _activate(h @ kernel + bias, layer.activation)
        kernel, bias = weights[-1]
        out[start : start + len(xs)] = (h @ kernel + bias).reshape(-1, shape[1], shape[2])
    return out


def occupancy_grid(arch: Arch, weights: Weights, axes: Axes) -> np.ndarray:
    """Decoded voxels: occupied where the logit is > 0 (P > 0.5). Bool grid over ``axes``."""
    return logit_grid(arch, weights, axes) > 0.0


def scaled_shape(shape: Sequence[int], resolution: int) -> tuple[int, int, int]:
    """Grid shape covering the same box as ``shape`` with ``resolution`` along its longest axis."""
    m = max(shape)
    return tuple(max(1, round(n * resolution / m)) for n in shape)  # type: ignore[return-value]
