"""Training samples for one shape (METHOD.md section 2, the paper's sampling).

Boundary voxels (occupied voxels with an empty 6-neighbour, and empty voxels with an occupied
6-neighbour) decide fidelity: all are kept. A random quarter of the other voxels is kept.
The boundary set is tiled until it is about as large as the kept rest, so that both weigh
the same in the loss. Validation uses every boundary voxel once plus the kept rest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from occcodec.shapes.frame import axis_coords

_SIX = ndimage.generate_binary_structure(3, 1)


@dataclass
class Samples:
    """Normalised coordinates (N, 3) float32 and labels (N,) float32 in {0, 1}."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    boundary: int
    interior_kept: int


#: Points added to a training set (:func:`with_points`) are repeated to at least this share
#: of it, at most :data:`ADDED_REPEAT` copies of each.
ADDED_SHARE = 0.005
ADDED_REPEAT = 8


def with_points(samples: Samples, x: np.ndarray, y: np.ndarray) -> Samples:
    """``samples`` with ``x``/``y`` added to the training set, repeated so that they are at
    least :data:`ADDED_SHARE` of it (at most :data:`ADDED_REPEAT` copies)."""
    want = ADDED_SHARE * len(samples.train_x)
    reps = int(min(ADDED_REPEAT, max(1, np.ceil(want / max(len(x), 1)))))
    return replace(samples, train_x=np.concatenate([samples.train_x, *[x] * reps]),
                   train_y=np.concatenate([samples.train_y, *[y] * reps]))


def boundary_mask(grid: np.ndarray) -> np.ndarray:
    """Inner and outer boundary voxels of a bool grid (outside the grid counts as empty)."""
    inner = grid & ~ndimage.binary_erosion(grid, _SIX, border_value=0)
    outer = ~grid & ndimage.binary_dilation(grid, _SIX, border_value=0)
    return inner | outer


def coords_of(shape: tuple[int, ...], flat_index: np.ndarray) -> np.ndarray:
    """Normalised coordinates (N, 3) float32 of voxels given by C-order flat indices."""
    ijk = np.unravel_index(flat_index, shape)
    axes = axis_coords(shape)
    return np.stack([axes[a][ijk[a]] for a in range(3)], axis=1)


def make_samples(grid: np.ndarray, rng: np.random.Generator, rest_fraction: float = 0.25,
                 balance: bool = True) -> Samples:
    """Build the training and validation sets of one shape.

    ``rest_fraction`` is the kept share of the non-boundary voxels (the paper: 1/4).
    """
    grid = np.asarray(grid, dtype=bool)
    flat = grid.ravel()
    bmask = boundary_mask(grid).ravel()
    b_idx = np.flatnonzero(bmask)
    rest = np.flatnonzero(~bmask)
    keep = rng.random(rest.size) < rest_fraction
    r_idx = rest[keep]
    reps = max(1, round(r_idx.size / max(b_idx.size, 1))) if balance else 1
    val_idx = np.concatenate([b_idx, r_idx])
    train_idx = np.concatenate([np.tile(b_idx, reps), r_idx])
    return Samples(
        train_x=coords_of(grid.shape, train_idx),
        train_y=flat[train_idx].astype(np.float32),
        val_x=coords_of(grid.shape, val_idx),
        val_y=flat[val_idx].astype(np.float32),
        boundary=int(b_idx.size),
        interior_kept=int(r_idx.size),
    )
