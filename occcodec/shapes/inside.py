"""The shape a mesh encloses, in continuous space: inside tests, reference grids, training points.

Truth. A point is *inside* a mesh when the absolute value of the mesh's generalized winding
number there exceeds 1/2 (Jacobson et al. 2013, computed by libigl's fast winding number).
For a closed, consistently oriented mesh this is the ordinary inside; a small hole only
lowers the winding number near the hole, so the hole is closed along a natural cap; the
absolute value makes an inverted mesh (or an inverted part of an assembly) fill instead of
vanishing, as today's voxelizer does. In ``shell`` mode a point is occupied when it lies
within ``thickness`` of the surface (default: half a voxel of the target grid, the widest
band whose voxel-centre sampling is still one voxel thick: a ball of radius 1/2 voxel fits
inside the voxel, and a slab of width one voxel holds at least one centre on every grid line
along its dominant normal axis, so a surface never breaks up into gaps).

Frames follow the spec (``formats/occ-v1.md`` 10.1): on a grid of shape ``(n0, n1, n2)``
with ``m = max(n)``, voxel ``i`` has the normalised coordinate ``p = (i - (n-1)/2) / (m/2)``
and the world coordinate ``center + scale * p``. Internally :func:`centre_grid` works in grid
units ``g = (world - center) / h + n / 2`` (``h = 2 scale / m``), where the centre of voxel
``i`` is ``g = i + 0.5``.

Speed. libigl's winding number (``FastWindingNumberBVH`` at its default accuracy 2, the same
numbers as ``igl.fast_winding_number``: max difference 0.0 on 100k points) costs 25-38 us per
point on 76277.obj (30k faces) on this 2-core machine under load, 2-3 us on nut.ply (1k faces)
and chair_holey (8k faces); its tree builds in 0.03 s. Lowering the accuracy parameter is no
way out: at 1.0 it is 1.5-2x faster but flips up to 182 of 160k labels near holes, at 0.5 the
far field is wrong (max error 1.7, 25-36 % of labels flipped; libigl 2.6.3, measured on nut,
sphereWithHole, chair_holey). So :func:`centre_grid` settles the bulk by exact ray winding
along the voxel-centre columns of all three axes and asks the winding number only about the
centres that rays cannot settle, and :func:`label_points` labels the points of a closed mesh
by one vertical ray each (:func:`occcodec.shapes.rays.ray_winding`, see there).

Measured for :func:`centre_grid` at 512^3 in CPU seconds (the machine was loaded 4-16 on 2
cores, so wall-clock said little), same grids before and after the slab layout, one-axis and
tolerance changes: 2CylinderEngine.glb (121k faces, open) 6.85 -> 3.51 s, 76277.obj (30k,
closed) 4.63 -> 1.25 s; at 256^3 all shared meshes but boeing.off gave identical grids, never
slower. What remains for an open assembly is mostly the winding number of the ~8k centres on
columns through its holes. A badly oriented mesh (boeing.off: 1.07 M unsettled centres at
128^3) is no longer one: loading turns its faces consistent
(:func:`occcodec.shapes.inputs.orient_consistently`), and it is closed. A mesh with large
holes leaves whole columns unsettled (mech-holes-shark.off: 83 M centres at 512^3); above
``_BLOCK_ABOVE`` of them, blocks away from the surface are settled from a few probes
(:func:`_block_inside`): 174 s -> 47 s there, the same grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from occcodec.errors import InputError, UsageError
from occcodec.shapes.frame import voxel_size
from occcodec.shapes.rays import ray_winding
from occcodec.shapes.voxelize import (
    _RAY_NUDGE,
    _column_bounds,
    _column_hits,
    _prefix_sum,
    shell_voxels,
)

if TYPE_CHECKING:
    import trimesh

__all__ = [
    "DEFAULT_MIX",
    "FINE_MIX",
    "TrainingMix",
    "TruthFill",
    "centre_grid",
    "inside",
    "label_points",
    "mix_for",
    "shell",
    "squared_distances",
    "training_points",
    "winding",
]

TruthFill = Literal["solid", "shell"]

#: Query points per libigl call: bounds the temporary arrays (about 100 MB per chunk).
_QUERY_CHUNK = 1 << 20
#: Relative slack of the shell rule's distance test (:func:`shell`): rounding of the squared
#: distance is ~1e-15 relative, a shell's width is judged to 1e-7 of its own size.
SHELL_SLACK = 1e-7
#: Voxels (rows x columns x depth) per ray-casting slab: bounds peak memory at R=1024.
_SLAB_VOXELS = 1 << 23
#: A centre closer than ``_NEAR_FLOOR + _NEAR_FACTOR * shift`` (voxels, along a ray) to a
#: crossing is left to the winding number, ``shift`` being how far the crossing triangle's
#: plane moves along the ray between the ray (nudged 1e-5 voxel off the centre) and the
#: centre's own line: there the ray's answer could differ from the centre's. The factor
#: leaves room for a neighbouring triangle when an edge passes between the two lines; the
#: floor covers rounding (depths are below 1024 voxels: float64 rounding is near 1e-13).
#: A fixed 1e-3 voxel marked 8,553 centres of 2CylinderEngine.glb at 512^3 (each costing
#: libigl about 0.4 ms); this rule marks a few hundred.
_NEAR_FLOOR = 1e-6
_NEAR_FACTOR = 4.0
#: Score given to centres that the rays may not settle; far above the vote range 0..3.
_UNSETTLED = 64
#: Above this many unsettled centres :func:`centre_grid` asks the winding number by blocks
#: (:func:`_block_inside`): mech-holes-shark.off left 60 M at 512^3, 192 s and 6.7 GB when
#: each was asked. Below it every centre is asked (the grids stay as they were).
_BLOCK_ABOVE = 2_000_000
#: Those blocks: (edge in voxels, probes per axis), largest first; and how far from 1/2
#: every probe of a block must be for its centres to take their side without being asked.
_BLOCKS = ((16, 3), (8, 3), (4, 2))
_BLOCK_MARGIN = 0.2
#: Largest grid edge for :func:`centre_grid` (a 1024^3 bool grid is 1 GiB).
_MAX_EDGE = 1024


def _arrays(mesh: trimesh.Trimesh) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) float64 and faces (F, 3) int64, checked.

    Raises
    ------
    InputError
        If the mesh has no faces, faces that index missing vertices or non-finite vertices.
    """
    v = np.ascontiguousarray(np.asarray(mesh.vertices, dtype=np.float64))
    f = np.ascontiguousarray(np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3))
    if len(f) == 0:
        raise InputError("mesh has no faces: give a surface mesh, not a point cloud")
    if f.min() < 0 or f.max() >= len(v):
        raise InputError("mesh has faces that index missing vertices: repair the mesh")
    if not np.isfinite(v).all():
        raise InputError("mesh has NaN or infinite vertex coordinates: repair the mesh")
    return v, f


def _points(points: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(np.asarray(points, dtype=np.float64))
    if q.ndim != 2 or q.shape[1] != 3:
        raise UsageError(f"points have shape {q.shape}: give an (N, 3) array")
    return q


def winding(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """Generalized winding number of ``mesh`` at world ``points`` (N, 3), float64 (N,).

    libigl's fast winding number (Barnes-Hut far field, exact near field; its tree is built
    once per call, 0.03 s for 30k faces), in chunks of ``_QUERY_CHUNK`` points.

    Raises
    ------
    InputError
        As for a mesh that cannot be used (see :func:`inside`).
    UsageError
        If ``points`` is not (N, 3).
    """
    import igl  # type: ignore[import-untyped]

    v, f = _arrays(mesh)
    q = _points(points)
    out = np.empty(len(q), dtype=np.float64)
    if len(q) == 0:
        return out
    tree = igl.FastWindingNumberBVH()
    tree.init(v, f, 2)
    for s in range(0, len(q), _QUERY_CHUNK):
        out[s : s + _QUERY_CHUNK] = tree.winding_number(q[s : s + _QUERY_CHUNK], 2.0)
    return out


def inside(mesh: trimesh.Trimesh, points: np.ndarray) -> np.ndarray:
    """True where ``|winding number| > 1/2`` at world ``points`` (N, 3).

    Raises
    ------
    InputError
        If the mesh has no faces, faces indexing missing vertices, or non-finite vertices.
    UsageError
        If ``points`` is not (N, 3).
    """
    return np.abs(winding(mesh, points)) > 0.5


def shell(mesh: trimesh.Trimesh, points: np.ndarray, thickness: float) -> np.ndarray:
    """True where world ``points`` (N, 3) lie within ``thickness`` (world units) of the surface.

    Distances come from libigl's AABB tree, built once per call. A distance within
    :data:`SHELL_SLACK` (relative) of ``thickness`` counts as within.

    Raises
    ------
    InputError
        As :func:`inside`.
    UsageError
        If ``points`` is not (N, 3) or ``thickness`` is not a positive finite number.
    """
    if not (np.isfinite(thickness) and thickness > 0):
        raise UsageError(f"shell thickness {thickness!r} is not a positive number")
    # Why: a sheet exactly halfway between two layers of centres (a flat mesh in its own
    # frame lies there) must keep both layers, not lose both to the distance's rounding.
    reach = thickness * (1.0 + SHELL_SLACK)
    sq, _ = squared_distances(mesh, points)
    return sq <= reach * reach


def squared_distances(mesh: trimesh.Trimesh, points: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance from world ``points`` (N, 3) to the closest point of ``mesh``'s
    triangles (float64), and the index of the triangle it lies on (int64).

    libigl's AABB tree, built once per call, asked in chunks of :data:`_QUERY_CHUNK`.

    Raises
    ------
    InputError
        As :func:`inside`.
    UsageError
        If ``points`` is not (N, 3).
    """
    import igl  # type: ignore[import-untyped]

    v, f = _arrays(mesh)
    q = _points(points)
    tree = igl.AABB()
    tree.init(v, f)
    sq = np.empty(len(q), dtype=np.float64)
    face = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), _QUERY_CHUNK):
        d, i, _ = tree.squared_distance(v, f, q[s : s + _QUERY_CHUNK])
        sq[s : s + _QUERY_CHUNK] = np.asarray(d).reshape(-1)
        face[s : s + _QUERY_CHUNK] = np.asarray(i).reshape(-1)
    return sq, face


# ------------------------------------------------------------------ reference grids


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    dims = tuple(int(n) for n in shape)
    if len(dims) != 3 or min(dims) < 1 or max(dims) > _MAX_EDGE:
        raise UsageError(f"grid shape {shape} is not 3 sizes in 1..{_MAX_EDGE}")
    return dims  # type: ignore[return-value]


def _grid_units(v: np.ndarray, center: np.ndarray, scale: float, dims: tuple[int, int, int]
                ) -> tuple[np.ndarray, float, np.ndarray]:
    """``(vertices in grid units, h, origin)`` for the frame (see the module docstring)."""
    h = voxel_size(scale, dims)
    origin = np.asarray(center, dtype=np.float64) - h * np.asarray(dims, dtype=np.float64) / 2
    return (v - origin) / h, h, origin


def centre_grid(mesh: trimesh.Trimesh, center: np.ndarray | tuple[float, float, float],
                scale: float, shape: tuple[int, int, int], fill: TruthFill = "solid",
                thickness: float | None = None) -> np.ndarray:
    """The truth at the voxel centres of a grid: a bool array of ``shape``.

    ``fill="solid"``: ``|winding number| > 1/2`` at every centre. Rays are cast through
    the centre columns along x, y and z (nudged 1e-5 voxel off the centres so they do not
    graze edges); along each column the signed crossings give the exact integer winding
    number at every centre, when the column's crossings cancel (a closed surface along that
    line). A centre is settled when all three axes have cancelling columns through it, all
    three agree, and no crossing lies within :func:`_near_tolerance` of it. A closed,
    consistently oriented mesh (:func:`_is_closed`) has an integer winding number that every
    ray gives exactly, so there the z axis alone decides. Every other centre (rays through a
    hole, inconsistent orientation, centres on the surface) gets libigl's winding number.

    ``fill="shell"``: centres within ``thickness`` (world units; default half a voxel) of
    the surface. A ball of radius at most half a voxel lies inside its voxel, so only
    voxels that the surface passes through (the voxelizer's sampled shell) are candidates;
    their centres get an exact distance from libigl's AABB tree.

    Raises
    ------
    UsageError
        If ``shape`` is not three sizes in 1..1024, ``scale`` is not positive, ``fill`` is
        unknown or ``thickness`` is not in (0, half a voxel].
    InputError
        As :func:`inside`.
    """
    dims = _check_shape(shape)
    if not (np.isfinite(scale) and scale > 0):
        raise UsageError(f"frame scale {scale!r} is not a positive number")
    if fill not in ("solid", "shell"):
        raise UsageError(f"fill {fill!r} is not one of solid, shell")
    v, f = _arrays(mesh)
    v_g, h, origin = _grid_units(v, np.asarray(center, dtype=np.float64), scale, dims)
    tri_g = v_g[f]
    if fill == "shell":
        t = 0.5 * h if thickness is None else float(thickness)
        if not (np.isfinite(t) and 0 < t <= 0.5 * h * (1 + 1e-9)):
            raise UsageError(f"shell thickness {thickness!r} is not in (0, half a voxel = {h / 2}]")
        m = max(dims)
        cand = shell_voxels(tri_g, m)[: dims[0], : dims[1], : dims[2]]
        idx = np.argwhere(cand)
        grid = np.zeros(dims, dtype=bool)
        near = shell(mesh, origin + h * (idx + 0.5), t)
        grid[tuple(idx[near].T)] = True
        return grid

    # A closed surface needs one ray axis (see _is_closed); z is the contiguous one.
    axes = (2,) if _is_closed(v, f) else (0, 1, 2)
    score = np.zeros(dims, dtype=np.uint8)
    for axis in axes:
        _axis_votes(tri_g, dims, axis, score)
    n = np.uint8(len(axes))
    grid = score == n
    # Scores are 0..n or _UNSETTLED + 0..n; in uint8 arithmetic s * (n - s) is zero exactly
    # for s in {0, n} (checked for every reachable s), one pass instead of three.
    unsettled = score * (n - score) != 0
    del score
    if np.count_nonzero(unsettled) > _BLOCK_ABOVE:
        _block_inside(mesh, tri_g, origin, h, grid, unsettled)  # settles most of them
    flat = np.flatnonzero(unsettled)
    del unsettled
    if len(flat):
        grid.reshape(-1)[flat] = _centres_inside(mesh, dims, origin, h, flat)
    return grid


def _centres_inside(mesh: trimesh.Trimesh, dims: tuple[int, int, int], origin: np.ndarray,
                    h: float, flat: np.ndarray) -> np.ndarray:
    """:func:`inside` at the centres of the voxels ``flat`` (flat indices into ``dims``), in
    chunks of :data:`_QUERY_CHUNK` so that the coordinates never exist all at once (60 M
    unsettled centres were 4 GB of float64 temporaries)."""
    out = np.empty(len(flat), dtype=bool)
    for s in range(0, len(flat), _QUERY_CHUNK):
        idx = np.stack(np.unravel_index(flat[s : s + _QUERY_CHUNK], dims), axis=1)
        out[s : s + _QUERY_CHUNK] = inside(mesh, origin + h * (idx + 0.5))
    return out


def _block_inside(mesh: trimesh.Trimesh, tri_g: np.ndarray, origin: np.ndarray, h: float,
                  grid: np.ndarray, unsettled: np.ndarray) -> None:
    """Settle most ``unsettled`` centres by blocks: write their truth into ``grid`` and clear
    them in ``unsettled`` (both in place); the rest are left to the caller to ask.

    For each ``(B, k)`` of :data:`_BLOCKS` in turn, the grid is cut into blocks of ``B``
    voxels a side. A block holding unsettled centres is a candidate when no voxel of the
    surface (the voxelizer's sampled shell) lies in it or in the sub-blocks of ``g = B / 2``
    voxels around it: the surface is then at least ``g`` voxels away (less the shell
    sampling's miss, under a voxel), so the winding number is harmonic in the block,
    without interior extrema, and its curvature is of order ``1 / (2 pi d^2)`` at a distance
    ``d``. Its ``k^3`` probes (``k`` centres evenly spread over each axis of the block,
    first and last included) are asked; between probes ``s = (B - 1) / (k - 1)`` apart the
    winding number can stray from them by about ``0.5 (s / 2)^2 / (2 pi g^2)``: 0.018,
    0.015 and 0.045 for the three levels, under a quarter of :data:`_BLOCK_MARGIN`. When
    every probe is at least that margin on one side of 1/2, the block's unsettled centres
    take that side unasked. Whole-grid masks throughout: per-centre index arithmetic on
    mech-holes-shark.off's 83 M unsettled centres at 512^3 cost more than the winding
    numbers it saved.
    """
    from scipy import ndimage

    dims = grid.shape
    shell = shell_voxels(tri_g, max(dims))[: dims[0], : dims[1], : dims[2]]
    for B, k in _BLOCKS:
        g = B // 2
        nb = tuple(-(-d // B) for d in dims)
        pad = [(0, b * B - d) for b, d in zip(nb, dims, strict=True)]
        sub = np.pad(shell, pad).reshape(2 * nb[0], g, 2 * nb[1], g, 2 * nb[2], g)
        near_sub = ndimage.binary_dilation(sub.any(axis=(1, 3, 5)), np.ones((3, 3, 3), bool))
        near = near_sub.reshape(nb[0], 2, nb[1], 2, nb[2], 2).any(axis=(1, 3, 5))
        held = np.pad(unsettled, pad).reshape(nb[0], B, nb[1], B, nb[2], B).any(axis=(1, 3, 5))
        cand = np.flatnonzero(held & ~near)
        del sub, near_sub, near, held
        if not len(cand):
            continue
        pick = np.stack(np.meshgrid(*(np.arange(k),) * 3, indexing="ij"), -1).reshape(-1, 3)
        side = np.full(nb, -1, dtype=np.int8)  # -1: undecided; 0/1: the side
        first = np.stack(np.unravel_index(cand, nb), axis=1) * B
        last = np.minimum(first + (B - 1), np.asarray(dims) - 1)
        frac = np.linspace(0.0, 1.0, k)
        probes = np.rint(first[:, :, None] + (last - first)[:, :, None] * frac).astype(np.int64)
        step = max(1, _QUERY_CHUNK // len(pick))
        for s in range(0, len(cand), step):
            pr = probes[s : s + step]  # (c, 3 axes, k)
            idx = np.stack([pr[:, a, pick[:, a]] for a in range(3)], axis=-1)
            w = np.abs(winding(mesh, origin + h * (idx.reshape(-1, 3) + 0.5)))
            w = w.reshape(len(pr), len(pick))
            side.reshape(-1)[cand[s : s + step]] = np.where(
                (w > 0.5 + _BLOCK_MARGIN).all(axis=1), 1,
                np.where((w < 0.5 - _BLOCK_MARGIN).all(axis=1), 0, -1))
        full = np.broadcast_to(side[:, None, :, None, :, None], (nb[0], B, nb[1], B, nb[2], B))
        full = full.reshape(nb[0] * B, nb[1] * B, nb[2] * B)[: dims[0], : dims[1], : dims[2]]
        settle = unsettled & (full >= 0)
        grid[settle] = full[settle] == 1
        unsettled &= ~settle
        del full, settle


def _is_closed(v: np.ndarray, f: np.ndarray) -> bool:
    """Whether the triangles form a closed, consistently oriented surface (a 2-cycle).

    Vertices at the same position are merged first (files often split them along seams);
    then every edge must be used as often from a to b as from b to a. Edges of degenerate
    triangles (a, a) are ignored: they bound nothing. Then the winding number is an integer
    everywhere off the surface, and it equals the signed count of crossings along any ray
    from the point (the rays of :func:`_axis_votes`), so a single ray axis decides.
    """
    _, inv = np.unique(v, axis=0, return_inverse=True)
    g = inv.reshape(-1)[f]
    a = np.concatenate([g[:, 0], g[:, 1], g[:, 2]])
    b = np.concatenate([g[:, 1], g[:, 2], g[:, 0]])
    keep = a != b
    a, b = a[keep], b[keep]
    key = np.minimum(a, b) * (int(g.max()) + 1) + np.maximum(a, b)
    uniq, idx = np.unique(key, return_inverse=True)
    net = np.bincount(idx, weights=np.where(a < b, 1.0, -1.0), minlength=len(uniq))
    return bool(np.all(net == 0))


def _axis_votes(tri_g: np.ndarray, dims: tuple[int, int, int], axis: int,
                score: np.ndarray) -> None:
    """Add one axis's inside votes (0 or 1) to ``score``; mark what the rays cannot settle.

    A centre is marked ``_UNSETTLED`` when its column's crossings do not cancel (the ray went
    through a hole, or missed an edge) or a crossing lies within :func:`_near_tolerance` of
    it. Works in slabs of rows across the rays (so memory stays bounded) laid out as
    ``score`` itself, so every write is contiguous: the winding along each column is a
    running sum, along the ray axis, of the signed crossings binned at the first centre at
    or after them. Laying the slab out like ``score`` (not ray axis last) and summing plane
    by plane took the x-axis pass from 3.4 s to below 1 s at 512^3 (2CylinderEngine.glb).
    """
    u, w = (a for a in range(3) if a != axis)
    n_u, n_w, n_d = dims[u], dims[w], dims[axis]
    proj = np.ascontiguousarray(tri_g[:, :, [u, w]])
    depth = np.ascontiguousarray(tri_g[:, :, axis])
    bounds = _column_bounds(proj, n_u, n_w)
    tol = _near_tolerance(proj, depth)
    rows_per_slab = max(1, _SLAB_VOXELS // (n_w * n_d))
    for r0 in range(0, n_u, rows_per_slab):
        r1 = min(n_u, r0 + rows_per_slab)
        near = (bounds[0] <= r1 - 1) & (bounds[1] >= r0) & (bounds[2] <= bounds[3])
        sl: list[slice] = [slice(None)] * 3
        sl[u] = slice(r0, r1)
        region = score[tuple(sl)]  # a view: writes go straight through to score
        shape = region.shape
        strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
        # int8 throughout: one byte per voxel, windings stay far below 127 in practice.
        diff = np.zeros(region.size, dtype=np.int8)
        total = np.zeros(shape[u] * n_w, dtype=np.int64)  # per column (row - r0, col)
        marks: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        tol_near = tol[near]
        for ii, jj, z, sign in _column_hits(proj[near], depth[near], bounds[:, near], (r0, r1),
                                            owners):
            col = (ii - r0) * n_w + jj
            base = (ii - r0) * strides[u] + jj * strides[w]
            np.add.at(total, col, sign.astype(np.int64))
            k = np.ceil(z - 0.5)
            keep = k < n_d  # crossings past the last centre only count in the total
            kk = np.maximum(k[keep], 0).astype(np.int64)
            np.add.at(diff, base[keep] + kk * strides[axis], sign[keep].astype(np.int8))
            c = np.rint(z - 0.5)
            close = (np.abs(z - 0.5 - c) < tol_near[owners[-1]]) & (c >= 0) & (c < n_d)
            marks.append(base[close] + c[close].astype(np.int64) * strides[axis])
        wind = diff.reshape(shape)
        _prefix_sum(wind, axis)
        region += (wind != 0).view(np.uint8)
        flat = region.reshape(-1) if region.flags.c_contiguous else None
        bad = np.flatnonzero(total)
        if len(bad):
            r, j = np.divmod(bad, n_w)
            idx: list[np.ndarray | slice] = [slice(None)] * 3
            idx[u], idx[w] = r, j
            # Advanced indices on two axes of three: the selected columns, whole.
            region[tuple(idx)] = _UNSETTLED
        if marks:
            m = np.concatenate(marks)
            if flat is not None:
                flat[m] = _UNSETTLED
            else:
                region[np.unravel_index(m, shape)] = _UNSETTLED


def _near_tolerance(proj: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(T,) per triangle: the depth band, in voxels, around a crossing left to the winding number.

    The triangle's plane has depth ``d(p) = d0 - (n_u p_u + n_w p_w) / n_d`` across the rays
    (``n`` its normal in (across, across, along) coordinates), so between the ray and the
    centre's line, ``_RAY_NUDGE`` apart, its depth moves by ``|n_u nu + n_w nw| / |n_d|``.
    Triangles seen edge-on (``n_d = 0``) are never crossed; they get an infinite band.
    """
    nu, nw = _RAY_NUDGE
    a, b, c = (np.concatenate([proj[:, k], depth[:, k, None]], axis=1) for k in range(3))
    n = np.cross(b - a, c - a)
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.abs(n[:, 0] * nu + n[:, 1] * nw) / np.abs(n[:, 2])
    shift = np.where(np.isfinite(shift), shift, np.inf)
    return _NEAR_FLOOR + _NEAR_FACTOR * shift


# ------------------------------------------------------------------ labelling points


def label_points(mesh: trimesh.Trimesh, world: np.ndarray, fill: TruthFill,
                 thickness: float | None = None) -> np.ndarray:
    """The truth at world ``points`` (N, 3): :func:`inside` or :func:`shell`, as bools.

    ``fill="shell"`` needs ``thickness`` (world units) and is :func:`shell` itself. For
    ``fill="solid"`` the answer is :func:`inside`'s, computed more cheaply for a closed mesh
    (a 2-cycle, :func:`_is_closed`): there the winding number is an integer, the signed
    count of crossings along a vertical ray from each point
    (:func:`occcodec.shapes.rays.ray_winding`); points whose ray touches an edge or that
    lie on the surface are asked the winding number. Open meshes (where the winding number
    varies continuously near holes) get it everywhere.

    Measured on the 24 shared meshes, 200,000 points each drawn as a 512^3 encode draws
    them (2026-12-05): the labels equal libigl's on every point of the 13 closed meshes but
    2 (nut, elephant), each within 1e-5 voxel of the surface; at nut's, an exact sum of
    solid angles (mpmath, 50 digits) gives 1.0 where libigl gives 0.499 (its near field
    loses the integer there), and sides with the rays. Time against
    the winding number everywhere: 76277.obj (30k faces) 2.56 -> 0.78 s, boeing 1.56 ->
    0.39 s, couplingdown 1.01 -> 0.40 s; small meshes take 0.2-0.6 s either way. The
    coarse-grid shortcut this replaces still asked the winding number of every point near
    the surface.

    Raises
    ------
    UsageError
        On a bad ``fill``, ``thickness`` or points.
    InputError
        As :func:`inside`.
    """
    q = _points(world)
    if fill == "shell":
        if thickness is None:
            raise UsageError("fill shell needs a thickness: give one in world units")
        return shell(mesh, q, thickness)
    if fill != "solid":
        raise UsageError(f"fill {fill!r} is not one of solid, shell")
    return _solid_labels(mesh, q)


def _solid_labels(mesh: trimesh.Trimesh, q: np.ndarray) -> np.ndarray:
    """:func:`inside` at ``q``, by rays where they settle the answer (see :func:`label_points`)."""
    v, f = _arrays(mesh)
    if len(q) == 0:
        return np.zeros(0, dtype=bool)
    if not _is_closed(v, f):
        return inside(mesh, q)
    w, settled = ray_winding(v[f], q)
    out = w != 0
    ask = np.flatnonzero(~settled)
    if len(ask):
        out[ask] = inside(mesh, q[ask])
    return out


# ------------------------------------------------------------------ training points


@dataclass(frozen=True)
class TrainingMix:
    """Where training points are drawn, as fractions of the total.

    Attributes
    ----------
    sigmas
        Standard deviations, in voxels of the target grid, of the Gaussian offsets added to
        surface samples: one scale per entry.
    surface
        Fraction of all points drawn at each scale in ``sigmas`` (same length).
    uniform
        Fraction drawn uniformly in the frame's box. ``sum(surface) + uniform`` must be 1.
    """

    sigmas: tuple[float, ...] = (0.5, 2.0, 8.0)
    surface: tuple[float, ...] = (0.35, 0.25, 0.15)
    uniform: float = 0.25

    def counts(self, n: int) -> list[int]:
        """Points per scale, then uniform, summing exactly to ``n`` (the rest goes uniform).

        Raises
        ------
        UsageError
            If the fractions are negative, do not sum to 1, or do not match the sigmas.
        """
        fr = [*self.surface, self.uniform]
        if len(self.sigmas) != len(self.surface) or min(fr) < 0 or abs(sum(fr) - 1) > 1e-9:
            raise UsageError(f"training mix {self} is invalid: fractions must be >= 0 and sum to 1")
        head = [round(n * f) for f in self.surface]
        return [*head, n - sum(head)]


#: The mix :func:`training_points` uses unless told otherwise.
DEFAULT_MIX = TrainingMix()
#: The mix above 128^3 (:func:`mix_for`): the scales are in voxels of the target grid, so at
#: 512^3 the default's widest band (8 voxels) is a quarter of its width at 128^3 and the
#: space 10-40 voxels from the surface is left to the uniform draw (one point per ~500
#: voxels). There networks grew floating sheets: nut.ply at 512^3 (pe4,32:relu,64:relu,
#: 16:elu, 40 epochs) decoded to 2 components (a 154 mm^2 sheet 2-3 mm outside the part)
#: with the default mix, 1 with this one, at the same 99.87 % IoU and surface Chamfer.
FINE_MIX = TrainingMix(sigmas=(0.5, 2.0, 8.0, 32.0), surface=(0.3, 0.2, 0.15, 0.1),
                       uniform=0.25)
#: Largest target grid edge that trains on :data:`DEFAULT_MIX`.
DEFAULT_MIX_EDGE = 128


def mix_for(resolution: int) -> TrainingMix:
    """The training mix for a target grid edge: :data:`DEFAULT_MIX` up to
    :data:`DEFAULT_MIX_EDGE` (files at 128^3 and below train as they always did),
    :data:`FINE_MIX` above."""
    return DEFAULT_MIX if resolution <= DEFAULT_MIX_EDGE else FINE_MIX


def _surface_samples(v: np.ndarray, f: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform by area on the triangles (world units), drawn from ``rng``."""
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    cdf = np.cumsum(area)
    if not cdf[-1] > 0:
        raise InputError("mesh has zero surface area: give a real surface")
    face = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(f) - 1)
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)  # uniform on the triangle: (1 - s, s (1 - r2), s r2)
    t = tri[face]
    return ((1 - s)[:, None] * t[:, 0] + (s * (1 - r2))[:, None] * t[:, 1]
            + (s * r2)[:, None] * t[:, 2])


def training_points(mesh: trimesh.Trimesh, center: np.ndarray | tuple[float, float, float],
                    scale: float, n: int, rng: np.random.Generator, fill: TruthFill = "solid",
                    resolution: int = 128, shape: tuple[int, int, int] | None = None,
                    mix: TrainingMix = DEFAULT_MIX) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` labelled points for training an occupancy network on ``mesh``.

    Points are drawn near the surface at several scales (area-uniform surface samples plus
    Gaussian offsets of ``mix.sigmas`` voxels at ``resolution``) and uniformly in the
    frame's box (normalised ``[-n_a/m, n_a/m]`` per axis for ``shape``, default cubic),
    then labelled by :func:`inside` (``fill="solid"``) or :func:`shell` with half a voxel
    at ``resolution`` (``fill="shell"``): the same truth as :func:`centre_grid`. Everything
    random comes from ``rng``, so the same generator state gives the same points; draw the
    validation set from another generator (``rng.spawn(2)``), the same way.

    Returns
    -------
    points, labels
        (n, 3) float32 normalised coordinates (``p = (world - center) / scale``, the frame
        of the spec's 10.1) and (n,) float32 labels in {0, 1}.

    Raises
    ------
    UsageError
        If ``n`` < 1, ``resolution`` < 2, ``scale`` is not positive, ``fill`` is unknown or
        the mix is invalid.
    InputError
        As :func:`inside`.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise UsageError(f"point count {n!r} is not a positive integer")
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise UsageError(f"resolution {resolution!r} is not an integer >= 2")
    if not (np.isfinite(scale) and scale > 0):
        raise UsageError(f"frame scale {scale!r} is not a positive number")
    if fill not in ("solid", "shell"):
        raise UsageError(f"fill {fill!r} is not one of solid, shell")
    dims = _check_shape(shape if shape is not None else (resolution,) * 3)
    v, f = _arrays(mesh)
    c = np.asarray(center, dtype=np.float64)
    voxel = 2.0 / resolution  # normalised units per voxel of the target grid
    counts = mix.counts(int(n))
    parts = []
    for sigma, k in zip(mix.sigmas, counts[:-1], strict=False):
        on = (_surface_samples(v, f, k, rng) - c) / scale
        parts.append(on + rng.normal(0.0, sigma * voxel, size=(k, 3)))
    half = np.asarray(dims, dtype=np.float64) / max(dims)
    parts.append(rng.uniform(-half, half, size=(counts[-1], 3)))
    points = np.concatenate(parts).astype(np.float32)
    world = c + scale * points.astype(np.float64)  # label the points exactly as returned
    labels = label_points(mesh, world, fill, 0.5 * voxel * scale)
    return points, labels.astype(np.float32)
