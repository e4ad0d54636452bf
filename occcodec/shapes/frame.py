"""The one frame of occcodec: grid index <-> normalised <-> world, and the grid limits.

Every module that places voxels in space goes through here (the decoder, the encoder's
samples, the metrics, the meshes); the spec's section 10 (``formats/occ-v1.md``) is the rule:

* **index -> normalised.** On an axis of ``n`` voxels, in a grid whose longest axis has ``m``
  voxels, the centre of voxel ``i`` is at ``p = (i - (n - 1) / 2) / (m / 2)``. The longest
  axis spans ``[-1, 1]`` face to face; every axis is centred on 0; a voxel is ``2 / m`` wide.
  Fractional indices (marching-cubes vertices) follow the same affine map.
* **normalised -> world.** ``world = center + scale * p`` (one scale for all axes), with
  ``center`` and ``scale`` from the file's header; a voxel is ``2 * scale / m`` world units.

The arithmetic is float64 in the order written above; :func:`axis_coords` then rounds to
float32, the network's input precision. The encoder's recorded IoU depends on those float32
values, so this order is part of the file's bytes: do not "simplify" it (e.g. into a
multiplication by ``2 / m``, which rounds differently).

This module needs numpy and :mod:`occcodec.errors` only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from occcodec.errors import UsageError

__all__ = [
    "FILL_MODES",
    "MAX_DECODE_RESOLUTION",
    "MAX_DIM",
    "MAX_MESH_RESOLUTION",
    "MIN_DECODE_RESOLUTION",
    "MIN_DIM",
    "GridFrame",
    "axis_coords",
    "check_decode_resolution",
    "check_encode_resolution",
    "check_fill",
    "index_to_normalized",
    "index_to_world",
    "normalized_to_index",
    "normalized_to_world",
    "voxel_size",
    "voxel_space_frame",
    "world_to_index",
    "world_to_normalized",
]

#: Smallest and largest grid dimension (per axis) the encoder accepts for voxel inputs.
#: Below 16 a shape has too few voxels to be worth a network; at 512 a grid already holds
#: 134 M voxels to sample and score (voxel inputs train on every boundary voxel).
MIN_DIM = 16
MAX_DIM = 512

#: Largest ``--resolution`` for meshes: they train on a fixed number of points drawn in
#: continuous space, so the encoder's cost does not grow with R^3; R only sets where
#: fidelity is measured (sampled above ``MAX_DIM``) and the default decoding grid.
MAX_MESH_RESOLUTION = 1024

#: Decode resolutions (voxels on the longest axis). The network is a continuous function,
#: so decoding may go finer than the encode limit; at 1024 the float32 logit grid alone is
#: 4.3 GB, which is where we stop.
MIN_DECODE_RESOLUTION = 16
MAX_DECODE_RESOLUTION = 1024

#: How a mesh becomes voxels (``encode --fill``): ``auto`` picks ``solid`` or ``shell``.
FILL_MODES: tuple[str, ...] = ("auto", "solid", "shell")


def _check_range(resolution: object, lo: int, hi: int, what: str) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise UsageError(f"{what} {resolution!r} is not an integer: give a whole number")
    if not lo <= resolution <= hi:
        raise UsageError(f"{what} {resolution} is outside {lo}..{hi}")
    return int(resolution)


def check_encode_resolution(resolution: object) -> int:
    """Return ``resolution`` (``--resolution``, meshes) as an int after checking it is in
    ``MIN_DIM..MAX_MESH_RESOLUTION``.

    Raises
    ------
    UsageError
        If it is not an integer or is out of range.
    """
    return _check_range(resolution, MIN_DIM, MAX_MESH_RESOLUTION, "resolution")


def check_decode_resolution(resolution: object) -> int:
    """Return ``resolution`` as an int after checking it is a valid decode resolution.

    Raises
    ------
    UsageError
        If it is not an integer or is outside ``MIN_DECODE_RESOLUTION..MAX_DECODE_RESOLUTION``.
    """
    return _check_range(resolution, MIN_DECODE_RESOLUTION, MAX_DECODE_RESOLUTION,
                        "decode resolution")


def check_fill(fill: object) -> str:
    """Return ``fill`` after checking it is one of :data:`FILL_MODES`.

    Raises
    ------
    UsageError
        If it is not.
    """
    if fill not in FILL_MODES:
        raise UsageError(f"fill {fill!r} is not one of {', '.join(FILL_MODES)}")
    return str(fill)


def _dims(shape: Sequence[int]) -> NDArray[np.float64]:
    dims = np.asarray(shape, dtype=np.float64)
    if dims.shape != (3,) or not (dims >= 1).all():
        raise ValueError(f"a grid shape is 3 positive sizes, got {tuple(shape)}")
    return dims


def _normalize(i: NDArray[np.float64], n: NDArray[np.float64] | float,
               m: NDArray[np.float64] | float, out: NDArray[np.float64] | None = None
               ) -> NDArray[np.float64]:
    """The spec's rule, written once: ``(i - (n - 1) / 2) / (m / 2)``, elementwise (into
    ``out`` when given: the same two operations, the same values bit for bit)."""
    out = np.subtract(i, (n - 1.0) / 2.0, out=out)
    return np.divide(out, m / 2.0, out=out)


def index_to_normalized(index: ArrayLike, shape: Sequence[int],
                        out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Normalised coordinates of voxel indices ``(..., 3)`` (fractional allowed), float64
    (into ``out`` when given, which may be ``index`` itself).

    ``p = (i - (n - 1) / 2) / (m / 2)`` per axis, ``m = max(shape)``.

    Raises
    ------
    ValueError
        If ``shape`` is not three positive sizes.
    """
    dims = _dims(shape)
    return _normalize(np.asarray(index, dtype=np.float64), dims, dims.max(), out)


def normalized_to_index(p: ArrayLike, shape: Sequence[int]) -> NDArray[np.float64]:
    """Fractional voxel indices ``(..., 3)`` of normalised points: the inverse of
    :func:`index_to_normalized` (round it to get the voxel holding the point).

    Raises
    ------
    ValueError
        If ``shape`` is not three positive sizes.
    """
    dims = _dims(shape)
    return np.asarray(p, dtype=np.float64) * (dims.max() / 2.0) + (dims - 1.0) / 2.0


def normalized_to_world(p: ArrayLike, center: ArrayLike, scale: float,
                        out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """``center + scale * p`` for normalised points ``(..., 3)``, float64 (into ``out``
    when given, which may be ``p`` itself)."""
    c = np.asarray(center, dtype=np.float64).reshape(3)
    out = np.multiply(np.asarray(p, dtype=np.float64), float(scale), out=out)
    return np.add(out, c, out=out)


def world_to_normalized(world: ArrayLike, center: ArrayLike, scale: float) -> NDArray[np.float64]:
    """``(world - center) / scale``: the inverse of :func:`normalized_to_world`."""
    c = np.asarray(center, dtype=np.float64).reshape(3)
    return (np.asarray(world, dtype=np.float64) - c) / float(scale)


def index_to_world(index: ArrayLike, shape: Sequence[int], center: ArrayLike,
                   scale: float, out: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """World coordinates of voxel indices ``(..., 3)``: normalised, then world (into
    ``out`` when given, which may be ``index`` itself: no temporaries)."""
    return normalized_to_world(index_to_normalized(index, shape, out), center, scale, out)


def world_to_index(world: ArrayLike, shape: Sequence[int], center: ArrayLike,
                   scale: float) -> NDArray[np.float64]:
    """Fractional voxel indices of world points: the inverse of :func:`index_to_world`."""
    return normalized_to_index(world_to_normalized(world, center, scale), shape)


def axis_coords(shape: Sequence[int]) -> tuple[NDArray[np.float32], ...]:
    """The normalised voxel-centre coordinates along each axis, as three float32 vectors.

    The network is evaluated at the outer product of these (``x`` from the first index);
    they are the spec's 10.1 in double precision rounded to float32, bit for bit.

    Raises
    ------
    ValueError
        If ``shape`` is not three positive sizes.
    """
    dims = _dims(shape)
    m = float(dims.max())
    return tuple(_normalize(np.arange(int(n), dtype=np.float64), float(n), m).astype(np.float32)
                 for n in dims)


def voxel_size(scale: float, shape: Sequence[int]) -> float:
    """World length of one voxel edge: ``2 * scale / max(shape)``."""
    return 2.0 * float(scale) / float(max(shape))


@dataclass(frozen=True)
class GridFrame:
    """A grid's shape with the ``center`` and ``scale`` that place it in world coordinates.

    The same triple a ``.occ`` header holds (``grid``, ``center``, ``scale``).
    """

    shape: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float

    @property
    def voxel_size(self) -> float:
        """World length of one voxel edge."""
        return voxel_size(self.scale, self.shape)

    def axes(self) -> tuple[NDArray[np.float32], ...]:
        """Float32 normalised coordinates along each axis (:func:`axis_coords`)."""
        return axis_coords(self.shape)

    def index_to_world(self, index: ArrayLike) -> NDArray[np.float64]:
        """World coordinates of voxel indices ``(..., 3)``."""
        return index_to_world(index, self.shape, self.center, self.scale)

    def world_to_index(self, world: ArrayLike) -> NDArray[np.float64]:
        """Fractional voxel indices of world points ``(..., 3)``."""
        return world_to_index(world, self.shape, self.center, self.scale)


def voxel_space_frame(shape: Sequence[int]) -> GridFrame:
    """The frame of a grid given as voxels: voxel ``i`` spans ``[i, i + 1]`` in world units.

    ``center = shape / 2``, ``scale = max(shape) / 2``; the centre of voxel ``i`` is then at
    ``i + 0.5`` (the binvox convention with translate 0 and scale ``max(shape)``).

    Raises
    ------
    ValueError
        If ``shape`` is not three positive sizes.
    """
    nx, ny, nz = (int(n) for n in _dims(shape))
    return GridFrame((nx, ny, nz), (nx / 2.0, ny / 2.0, nz / 2.0), max(nx, ny, nz) / 2.0)
