"""The one meshing function: a grid (occupancy, probability or logits) to a world-space mesh.

Every mesh occcodec writes or measures from a grid comes from :func:`grid_surface`: the
decoder's outputs (``decode -o x.ply``, ``eval``, ``bench``, ``render``), the surface of a
voxel-grid reference in ``eval`` and ``bench``, and the preview of a voxel file in
``render``. There used to be two copies, and they drifted: one wound its faces the other way
and made inside-out meshes (a 20^3 ball had volume -1.46 instead of +1.46).

The steps are those of the spec's informative section 10.4 (``formats/occ-v1.md``):

1. pad the field with one layer of "outside" on every side, so that shapes touching the
   grid's border still close;
2. marching cubes at probability 0.5 with scikit-image's ``gradient_direction="ascent"``
   (the inside is where the field is high): faces are wound counter-clockwise seen from
   outside, so normals point out and a solid's signed volume is positive. The default,
   ``"descent"``, is what made the inside-out meshes;
3. subtract the padding from the vertex indices and map them, fractional, through
   :mod:`occcodec.shapes.frame` to world coordinates.

Needs numpy and scikit-image (imported on first use).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from occcodec.shapes import frame

__all__ = ["LEVEL", "grid_surface"]

#: The surface: probability one half, i.e. logit 0 (the decoder's occupancy threshold).
LEVEL = 0.5


def _empty() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    return np.zeros((0, 3), dtype=np.float64), np.zeros((0, 3), dtype=np.int64)


def grid_surface(values: ArrayLike, center: ArrayLike, scale: float, *,
                 logits: bool = False) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Mesh the 0.5 level of a grid, outward-facing, in world coordinates.

    Parameters
    ----------
    values
        A ``(nx, ny, nz)`` grid indexed x, y, z: a bool occupancy grid, a probability field
        in ``[0, 1]``, or, with ``logits=True``, pre-sigmoid network outputs.
    center, scale
        The grid's frame (``world = center + scale * p``, :mod:`occcodec.shapes.frame`).
    logits
        ``values`` are logits: the surface is meshed on ``P = sigmoid(z)`` (float32), so
        vertices are interpolated on the probability as the spec describes.

    Returns
    -------
    vertices, faces
        ``(V, 3)`` float64 world coordinates and ``(F, 3)`` int64 vertex indices whose
        right-hand normals point out of the shape (a solid has positive signed volume).
        Both are empty when no value is above the level.

    Raises
    ------
    ValueError
        If ``values`` is not a 3-D grid.

    Notes
    -----
    Memory: logits are padded into a float32 copy and turned into probabilities in place,
    and this function drops its own reference to ``values`` after padding. Called as
    ``grid_surface(network.logit_grid(...), ...)`` the logit grid is then freed before
    marching cubes (at a 1024^3 decode that is 4.3 GB not held twice).
    """
    from skimage import measure  # a decoder dependency, imported only when meshing

    field = np.asarray(values)
    del values  # see Notes: the caller's temporary can go once padded
    if field.ndim != 3:
        raise ValueError(f"a grid to mesh must be 3-D, got shape {field.shape}")
    shape = field.shape
    if logits:
        field = field.astype(np.float32, copy=False)
        if not (field > 0.0).any():
            return _empty()
        padded = np.pad(field, 1, constant_values=-np.inf)
        del field
        # sigmoid in place: at 1024^3 a float64 copy alone would be 8 GB
        with np.errstate(over="ignore"):  # exp(-z) = inf for z << 0 gives the limit, 0
            np.negative(padded, out=padded)
            np.exp(padded, out=padded)
            padded += 1.0
            np.reciprocal(padded, out=padded)
    else:
        field = field.astype(np.float32, copy=False)  # bool -> 0/1; probabilities as given
        if not (field > LEVEL).any():
            return _empty()
        padded = np.pad(field, 1, constant_values=0.0)
        del field
    verts, faces, _, _ = measure.marching_cubes(padded, level=LEVEL,
                                                gradient_direction="ascent")
    del padded
    # padded index -> voxel index (in the vertices' float32, as the decoder always did:
    # its mesh bytes stay the same) -> normalised -> world
    world = frame.index_to_world(verts - 1.0, shape, center, scale)
    return world, faces.astype(np.int64)
