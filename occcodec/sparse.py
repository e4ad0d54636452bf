"""Sparse decoding: coarse-to-fine evaluation of the logit field, voxels and meshes from it.

Dense decoding evaluates the network at every voxel centre, n^3 points (134 M at 512^3).
Only the voxels next to the 0.5 level set decide anything beyond "inside" or "outside", so
this module evaluates an octree instead:

1. The field is sampled on a coarse lattice of stride ``S`` (a power of two) whose samples
   ARE voxel centres of the fine grid, and every value is computed with the arithmetic of
   :func:`occcodec.format.network.logit_grid` (the same separable first layer and order of
   additions, float32; see below for the last ulp).
2. A cell of edge ``s`` whose 8 corner logits agree in sign and all exceed a threshold
   ``t(s)`` in magnitude is *skipped*: all of its voxels take the corners' sign. Any other
   cell is split in 8; its 19 new lattice points (edge, face and centre midpoints) are
   evaluated once (each lattice point belongs to exactly one level, so no point is
   evaluated twice). At edge 1 every voxel of the remaining cells has been evaluated.
3. Voxels and meshes are assembled per top cell ("block", ``S^3`` voxels): skipped parts are
   filled with +-inf, evaluated points with their logits, and marching cubes runs on each
   block that holds a surface. Blocks own disjoint cells and share the points of their
   faces, so no triangle is made twice and a vertex on a block face is computed from the
   same two values in both blocks; those copies are merged by exact position.

The threshold ``t(s) = eps + g * (sqrt(3) / 2) * s * h`` (``h`` the voxel edge in normalised
units) says "no point of the cell is further than half its diagonal from a corner, and the
field cannot change by more than ``g`` per unit". Two rules choose ``g``:

``"lipschitz"`` (provably exact)
    ``g`` is an upper bound of the network's Lipschitz constant (:func:`lipschitz_bound`).
    Skipping is then safe for every network, thin parts included. The bound is the product
    of per-layer norms and is loose (see :func:`lipschitz_bound`), so it refines more.
``"margin"`` (default, empirical)
    ``g`` is ``safety`` times the steepest finite difference seen so far along the edges of
    the evaluated cells, and ``eps`` is raised to ``margin`` logits; on the top level a cell
    is also refined when any of its 26 neighbours is. This is not a proof: a feature thinner
    than the lattice whose logit rises steeper than anything sampled could be missed. It is
    exact (voxel for voxel) on every shape measured (``tests/test_sparse.py``,
    ``tests/benchmarks/sparse_decode.py``). Its slope is local: each top cell takes the
    largest corner spread of its 26 neighbours, and a child keeps its parent's slope.

The logits are those of the dense decoder up to about 1 ulp, not bit for bit: BLAS rounds
a row's dot product differently with the matrix's row count (measured: OpenBLAS sgemm
and sgemv disagree between 16 k-row slabs and smaller chunks), so a voxel whose logit is
within ~1e-6 of 0 could differ; mesh vertices agree to ~1e-4 voxel where the field is
flat along an edge, and volumes to ~1e-9 relative on real files.

Memory stays sparse: the evaluated points (a narrow band around the surface) and one batch
of blocks at a time; a dense grid exists only when :meth:`SparseField.voxels` is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from occcodec.errors import UsageError
from occcodec.format import network
from occcodec.format.arch import Arch
from occcodec.format.network import Weights
from occcodec.shapes import frame

#: Points per network call: large enough to amortise numpy's per-call cost, small enough
#: that a (chunk, 64) float32 activation stays in L2.
EVAL_CHUNK = 1 << 15
#: Absolute slack added to every threshold, above float32 rounding of the logits (the spec
#: puts decoder disagreement below ~1e-4).
EPS = 1e-3
#: Upper bounds of |f'| for the hidden activations (swish peaks at 1.0998 near x = 2.4).
ACTIVATION_LIPSCHITZ = {"relu": 1.0, "elu": 1.0, "swish": 1.1}
#: Blocks assembled per batch when meshing: 64 blocks of 33^3 float32 are 9 MB.
BLOCK_BATCH = 64
#: The 8 corners of a unit cell, x slowest (C order, as np.indices).
_CORNERS = np.indices((2, 2, 2)).reshape(3, -1).T.astype(np.int64)
#: The 19 points of a cell's 3^3 half-step lattice that are not its corners.
_NEW_POINTS = np.array([p for p in np.indices((3, 3, 3)).reshape(3, -1).T
                        if (p % 2).any()], dtype=np.int64)

RULES = ("margin", "lipschitz")


def default_stride(shape: Sequence[int]) -> int:
    """Top-cell edge for a grid: about ``max(shape) / 32``, a power of two in 4..32.

    Not tuned by measurement. The reasoning: the top lattice stays about 35^3 points at any
    resolution (2.2 M at 1024^3 with a stride of 8), and a 64^3 grid still gets three levels.
    """
    m = max(shape)
    return int(min(32, max(4, 1 << max(0, round(math.log2(m / 32))))))


def lipschitz_bound(arch: Arch, weights: Weights) -> float:
    """An upper bound of the network's Lipschitz constant (logit per normalised unit).

    The positional encoding maps each axis to ``[x, sin(2^k pi x), cos(2^k pi x)]``; its
    Jacobian has orthogonal columns of norm ``sqrt(1 + sum_k (2^k pi)^2)``. Each dense layer
    contributes its spectral norm and each activation its largest slope; the product bounds
    the whole network. It is loose: at 128^3 it is 43x the steepest voxel-to-voxel finite
    difference for spot.obj's network (pe6,20:relu,28:relu) and 700x for pinion.off's
    (pe6, five layers), so ``"lipschitz"`` refines almost everything on real files and
    ``"margin"`` is the default rule.
    """
    lip = math.sqrt(1.0 + sum((2.0**k * math.pi) ** 2 for k in range(arch.pe_levels)))
    for layer, (kernel, _) in zip(arch.layers, weights[:-1], strict=True):
        lip *= float(np.linalg.norm(kernel.astype(np.float64), 2))
        lip *= ACTIVATION_LIPSCHITZ[layer.activation]
    lip *= float(np.linalg.norm(weights[-1][0].astype(np.float64), 2))
    return lip


class _Evaluator:
    """Logits at lattice points ``u`` (padded index: voxel index + 1), as the dense path.

    The first layer is separable on a grid (see ``network._axis_terms``): its input is the sum
    of one table per axis. The in-grid rows of the tables come from the dense code itself;
    the padding rows (index -1 and n.., needed only to steer the refinement) are computed
    with the same formula at those coordinates.
    """

    def __init__(self, arch: Arch, weights: Weights, shape: tuple[int, int, int],
                 lattice: Sequence[int]) -> None:
        self.arch, self.weights = arch, weights
        kernel0, self.bias0 = weights[0]
        inside = network._axis_terms(arch, kernel0, frame.axis_coords(shape))
        self.tables = []
        for axis in range(3):
            n = shape[axis]
            i = np.arange(-1, lattice[axis], dtype=np.float64)
            c = frame.index_to_normalized(np.repeat(i[:, None], 3, axis=1),
                                          shape)[:, axis].astype(np.float32)[:, None]
            feats, rows = [c], [axis]
            for k in range(arch.pe_levels):
                arg = c * np.float32(np.pi * 2.0**k)
                feats += [np.sin(arg), np.cos(arg)]
                rows += [3 + 6 * k + axis, 3 + 6 * k + 3 + axis]
            table = np.concatenate(feats, axis=1).astype(np.float32) @ kernel0[rows]
            table[1 : n + 1] = inside[axis]  # the dense rows, bit for bit
            self.tables.append(np.ascontiguousarray(table, dtype=np.float32))
        self.count = 0

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Logits (float32) at the (K, 3) lattice points ``u``."""
        out = np.empty(len(u), dtype=np.float32)
        tx, ty, tz = self.tables
        act0 = self.arch.layers[0].activation
        for start in range(0, len(u), EVAL_CHUNK):
            c = u[start : start + EVAL_CHUNK]
            if len(c) == 1:  # a one-row product takes BLAS's gemv path: other rounding
                c = np.concatenate([c, c])
            # (ty + tz + bias) + tx: the dense code's order of additions
            h = tx[c[:, 0]] + ((ty[c[:, 1]] + tz[c[:, 2]]) + self.bias0)
            h = network._activate(h, act0)
            for layer, (kernel, bias) in zip(self.arch.layers[1:], self.weights[1:-1],
                                             strict=True):
                h = network._activate(h @ kernel + bias, layer.activation)
            kernel, bias = self.weights[-1]
            res = (h @ kernel + bias)[:, 0]
            out[start : start + EVAL_CHUNK] = res[: min(EVAL_CHUNK, len(u) - start)]
        self.count += len(u)
        return out


@dataclass
class LevelStats:
    """What one level of the refinement did (cells of edge ``edge`` voxels)."""

    edge: int
    cells: int
    skipped: int
    refined: int
    evaluated: int
    threshold: float  # median over the level's cells


@dataclass
class SparseField:
    """The decoded field, sparse: evaluated lattice points and labels of skipped cells.

    Lattice index ``u`` = voxel index + 1 on each axis (``u = 0`` and ``u > n`` are the
    padding, which is "outside"). ``points[s]`` holds the points first met on the lattice of
    step ``s`` (sorted linear keys over ``dims``, logits); ``skipped[s]`` the cells of edge
    ``s < stride`` that were not refined (cell coordinates in units of ``s``, sign);
    ``top`` the label of each top cell (+1 / -1 skipped, 0 refined = an active block).
    """

    shape: tuple[int, int, int]
    stride: int
    rule: str
    dims: tuple[int, int, int]
    top: np.ndarray
    points: dict[int, tuple[np.ndarray, np.ndarray]]
    skipped: dict[int, tuple[np.ndarray, np.ndarray]]
    levels: list[LevelStats] = field(default_factory=list)
    cache: tuple[_Entries, dict[int, _Entries]] | None = field(default=None, repr=False)

    @property
    def evaluated(self) -> int:
        """Network evaluations made (the dense path makes ``prod(shape)``)."""
        return sum(len(k) for k, _ in self.points.values())

    @property
    def active_blocks(self) -> np.ndarray:
        """(B, 3) top-cell coordinates of the refined blocks, in C order."""
        return np.argwhere(self.top == 0)

    def blocks(self, blocks: np.ndarray) -> np.ndarray:
        """Logits of active ``blocks`` as (B, S+1, S+1, S+1) float32; +-inf where skipped.

        The padding is -inf ("outside", as the dense decoder pads). Block ``b`` holds the
        lattice points ``b * S .. b * S + S`` on each axis.
        """
        return _assemble(self, blocks)

    def iter_slabs(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (x slice, occupancy (X, ny, nz) bool) covering the grid, one top row at a time."""
        yield from _slabs(self)

    def voxels(self) -> np.ndarray:
        """The dense occupancy grid (bool, 1 byte a voxel: 1 GiB at 1024^3)."""
        out = np.empty(self.shape, dtype=bool)
        for sl, slab in self.iter_slabs():
            out[sl] = slab
        return out

    def packed_voxels(self) -> np.ndarray:
        """Occupancy packed 8 voxels a byte along the last axis (``np.packbits``, big-endian
        bit order): ``(nx, ny, ceil(nz / 8))`` uint8, 128 MiB at 1024^3, never unpacked whole."""
        nx, ny, nz = self.shape
        out = np.empty((nx, ny, (nz + 7) // 8), dtype=np.uint8)
        for sl, slab in self.iter_slabs():
            out[sl] = np.packbits(slab, axis=-1)
        return out


def _keys(u: np.ndarray, dims: Sequence[int]) -> np.ndarray:
    return (u[:, 0] * dims[1] + u[:, 1]) * dims[2] + u[:, 2]


def _lookup(field_: dict[int, tuple[np.ndarray, np.ndarray]], u: np.ndarray,
            dims: Sequence[int], stride: int) -> np.ndarray:
    """Logits at evaluated lattice points ``u`` (K, 3): each lives in the store of its level."""
    bits = u[:, 0] | u[:, 1] | u[:, 2] | stride  # the level: lowest set bit, at most stride
    level = bits & -bits
    out = np.empty(len(u), dtype=np.float32)
    keys = _keys(u, dims)
    for s, (k, v) in field_.items():
        sel = level == s
        if sel.any():
            idx = np.searchsorted(k, keys[sel])
            out[sel] = v[idx]
    return out


def sparse_field(arch: Arch, weights: Weights, shape: Sequence[int], *,
                 stride: int | None = None, rule: str = "margin", safety: float = 2.0,
                 margin: float = 0.5) -> SparseField:
    """Evaluate the logit field coarse to fine; see the module docstring for the rules.

    Parameters
    ----------
    arch, weights
        The network (``Coded.header.arch``, ``Coded.weights``).
    shape
        The fine grid (e.g. ``network.scaled_shape(header.grid, 1024)``).
    stride
        Top-cell edge in voxels, a power of two >= 2; default :func:`default_stride`.
    rule
        ``"margin"`` (empirical gradient times ``safety``, plus ``margin`` logits, plus one
        top cell of dilation) or ``"lipschitz"`` (provable; ``safety`` and ``margin`` unused).
    safety, margin
        The margin rule's factor on the observed slope and its floor in logits. With 2.0 and
        0.5, sparse == dense voxel for voxel on the tests' shapes and on spot.obj and
        pinion.off at 256^3 (``tests/benchmarks/sparse_decode.py --check-dense 256``); on
        spot at 192^3, safety 1.0 and 0.5 were exact too, with 1.7x and 2.6x fewer
        evaluations (the margin rule refines about 7x more level-2 cells than hold a
        sign change).

    Raises
    ------
    UsageError
        For an unknown rule, a stride that is not a power of two >= 2, or a bad shape.
    """
    shape3 = tuple(int(n) for n in shape)
    if len(shape3) != 3 or min(shape3) < 1:
        raise UsageError(f"grid shape {shape3} must be three sizes >= 1")
    if rule not in RULES:
        raise UsageError(f"unknown sparse rule {rule!r}: use one of {', '.join(RULES)}")
    s_top = default_stride(shape3) if stride is None else int(stride)
    if s_top < 2 or s_top & (s_top - 1):
        raise UsageError(f"stride {s_top} must be a power of two >= 2")
    n = np.asarray(shape3, dtype=np.int64)
    ntop = -(-(n + 1) // s_top)  # top cells per axis: the lattice covers u = 0 .. n + 1
    d0, d1, d2 = (int(x) for x in ntop * s_top + 1)
    dims = (d0, d1, d2)
    h = 2.0 / max(shape3)
    evaluate = _Evaluator(arch, weights, shape3, [d - 1 for d in dims])
    lip = lipschitz_bound(arch, weights) if rule == "lipschitz" else 0.0

    axes = [np.arange(0, d, s_top, dtype=np.int64) for d in dims]
    u = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    points = {s_top: (_keys(u, dims), evaluate(u))}  # meshgrid "ij" order: keys ascending
    cells = np.argwhere(np.ones(tuple(ntop), dtype=bool))
    top = np.zeros(tuple(ntop), dtype=np.int8)
    skipped: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    levels: list[LevelStats] = []
    slope = np.zeros(0)
    s = s_top
    while True:
        corners = cells[:, None, :] + _CORNERS[None]
        z = _lookup(points, (corners * s).reshape(-1, 3), dims, s_top).reshape(-1, 8)
        lo, hi = cells * s, cells * s + s
        outside = ((hi < 1) | (lo > n)).any(axis=1)  # padding only
        straddle = ((lo < 1) | (hi > n)).any(axis=1) & ~outside
        if rule == "margin":
            # local slope (logit per voxel): the corners' spread over the edge, at least the
            # parent's, whose top-level value is the largest of its 26 neighbours'
            own = (z.max(axis=1) - z.min(axis=1)) / s
            if s == s_top:
                slope = _grow(own.reshape(top.shape), np.maximum).ravel()
            else:
                slope = np.maximum(np.repeat(slope, 8), own)
            thr = margin + safety * slope * (math.sqrt(3.0) / 2.0) * s
        else:
            thr = np.full(len(z), EPS + lip * (math.sqrt(3.0) / 2.0) * s * h)
        # never "inside" across the grid's border: the dense decoder pads with "outside"
        pos = np.asarray((z > thr[:, None]).all(axis=1) & ~straddle & ~outside)
        neg = np.asarray((z < -thr[:, None]).all(axis=1) | outside)
        refine: np.ndarray = ~(pos | neg)
        if s == s_top:
            if rule == "margin":
                refine = _grow(refine.reshape(top.shape), np.logical_or).ravel() & ~outside
            top[:] = np.where(refine, 0, np.where(pos, 1, -1)).reshape(top.shape)
        else:
            keep = ~refine
            skipped[s] = (cells[keep].astype(np.int32), np.where(pos[keep], 1, -1).astype(np.int8))
        ref = cells[refine]
        if rule == "margin":
            slope = slope[refine]
        new = (ref[:, None, :] * s + _NEW_POINTS[None] * (s // 2)).reshape(-1, 3)
        keys, first = np.unique(_keys(new, dims), return_index=True)
        points[s // 2] = (keys, evaluate(new[first]))
        levels.append(LevelStats(s, len(cells), int((~refine).sum()), len(ref), len(keys),
                                 float(np.median(thr)) if len(thr) else 0.0))
        if s == 2 or not len(ref):
            break
        cells = (ref[:, None, :] * 2 + _CORNERS[None]).reshape(-1, 3)
        s //= 2
    return SparseField(shape3, s_top, rule, dims, top, points, skipped, levels)


def _grow(a: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``a`` combined with its 26 neighbours by ``op`` (np.maximum: a max filter)."""
    out = a.copy()
    for axis in range(3):
        grown = out.copy()
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(1, None), slice(None, -1)
        op(grown[tuple(lo)], out[tuple(hi)], out=grown[tuple(lo)])
        op(grown[tuple(hi)], out[tuple(lo)], out=grown[tuple(hi)])
        out = grown
    return out


@dataclass
class _Entries:
    """Per-block data sorted by block (linear top-cell id): one row per (block, item)."""

    block: np.ndarray  # int64, ascending
    local: np.ndarray  # int64 flat index inside the block (points or cells)
    value: np.ndarray

    def take(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows of blocks ``ids``: (position in ``ids``, local index, value)."""
        start = np.searchsorted(self.block, ids, "left")
        lens = np.searchsorted(self.block, ids, "right") - start
        total = int(lens.sum())
        pos = np.repeat(np.arange(len(ids)), lens)
        rows = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(start, lens)
        return pos, self.local[rows], self.value[rows]


def _sorted(block: np.ndarray, local: np.ndarray, value: np.ndarray) -> _Entries:
    order = np.argsort(block, kind="stable")
    return _Entries(block[order], local[order], value[order])


def _index(f: SparseField) -> tuple[_Entries, dict[int, _Entries]]:
    """Evaluated points and skipped-cell labels of the active blocks, sorted by block."""
    if f.cache is not None:
        return f.cache
    s_top, side = f.stride, f.stride + 1
    n = np.asarray(f.shape, dtype=np.int64)
    top_shape = np.asarray(f.top.shape)
    blocks, locals_, values = [], [], []
    for keys, vals in f.points.values():
        u = np.stack(np.unravel_index(keys, f.dims), axis=1).astype(np.int64)
        # the padding (and beyond) is "outside", as the dense decoder pads with -inf
        v = np.where(((u >= 1) & (u <= n)).all(axis=1), vals, np.float32(-np.inf))
        on_face = u % s_top == 0
        for corner in _CORNERS:  # a point on a block face belongs to the blocks on both sides
            if corner.any():  # only points on the faces that this corner crosses
                sel = on_face[:, corner == 1].all(axis=1)
                uu, vv = u[sel], v[sel]
            else:
                uu, vv = u, v
            bc = uu // s_top - corner
            ok = ((bc >= 0) & (bc < top_shape)).all(axis=1)
            bc, uu, vv = bc[ok], uu[ok], vv[ok]
            live = f.top[tuple(bc.T)] == 0
            bc, uu, vv = bc[live], uu[live], vv[live]
            loc = uu - bc * s_top
            blocks.append(np.ravel_multi_index(tuple(bc.T), f.top.shape))
            locals_.append((loc[:, 0] * side + loc[:, 1]) * side + loc[:, 2])
            values.append(vv)
    points = _sorted(np.concatenate(blocks), np.concatenate(locals_), np.concatenate(values))
    labels = {}
    for s, (cells, sign) in f.skipped.items():
        per = s_top // s
        c = cells.astype(np.int64)
        b = np.ravel_multi_index(tuple((c // per).T), f.top.shape)
        loc = c % per
        labels[s] = _sorted(b, (loc[:, 0] * per + loc[:, 1]) * per + loc[:, 2], sign)
    f.cache = (points, labels)
    return f.cache


def _assemble(f: SparseField, blocks: np.ndarray) -> np.ndarray:
    """See :meth:`SparseField.blocks`."""
    s_top = f.stride
    side = s_top + 1
    nb = len(blocks)
    out = np.full((nb, side, side, side), np.nan, dtype=np.float32)
    if nb == 0:
        return out
    points, labels = _index(f)
    ids = np.ravel_multi_index(tuple(np.asarray(blocks).T), f.top.shape)
    # labels of skipped cells: point p of a block lies in cell p // s (clamped); it has a
    # label at level s only if all its coarser cells were refined, so the order is free
    for s, entries in labels.items():
        pos, loc, sign = entries.take(ids)
        if not len(pos):
            continue
        per = s_top // s
        flat = np.zeros((nb, per**3), dtype=np.int8)
        flat[pos, loc] = sign
        lab = flat.reshape(nb, per, per, per)
        ix = np.minimum(np.arange(side) // s, per - 1)
        pt = lab[:, ix][:, :, ix][:, :, :, ix]
        out[pt > 0] = np.inf
        out[pt < 0] = -np.inf
    pos, loc, vals = points.take(ids)
    out.reshape(nb, -1)[pos, loc] = vals
    if np.isnan(out).any():  # every point is labelled or evaluated: a bug otherwise
        raise AssertionError("sparse field: a block point has neither a label nor a value")
    return out


def _slabs(f: SparseField) -> Iterator[tuple[slice, np.ndarray]]:
    s_top = f.stride
    nx, ny, nz = f.shape
    active = f.active_blocks
    for bx in range(f.top.shape[0]):
        # this row of top cells owns lattice u = bx*S .. bx*S+S-1, voxels i = u - 1
        x0, x1 = max(bx * s_top - 1, 0), min(bx * s_top + s_top - 1, nx)
        if x1 <= x0:
            continue
        full = np.repeat(np.repeat(np.repeat(f.top[bx : bx + 1] > 0, s_top, 0), s_top, 1),
                         s_top, 2)  # (S, ty*S, tz*S), lattice-aligned
        rows = active[active[:, 0] == bx]
        for start in range(0, len(rows), BLOCK_BATCH):
            part = rows[start : start + BLOCK_BATCH]
            z = _assemble(f, part)[:, :s_top, :s_top, :s_top] > 0
            for blk, occ in zip(part, z, strict=True):
                full[:, blk[1] * s_top : blk[1] * s_top + s_top,
                     blk[2] * s_top : blk[2] * s_top + s_top] = occ
        # lattice u -> voxel i = u - 1
        lx = slice(x0 + 1 - bx * s_top, x1 + 1 - bx * s_top)
        yield slice(x0, x1), full[lx, 1 : ny + 1, 1 : nz + 1]


def sparse_voxels(arch: Arch, weights: Weights, shape: Sequence[int], **kwargs: object
                  ) -> np.ndarray:
    """The occupancy grid (bool), equal to ``network.occupancy_grid``; see :func:`sparse_field`.

    Raises
    ------
    UsageError
        As :func:`sparse_field`.
    """
    return sparse_field(arch, weights, shape, **kwargs).voxels()  # type: ignore[arg-type]


def _sigmoid_inplace(z: np.ndarray) -> np.ndarray:
    """P = 1 / (1 + exp(-z)) in float32, in the dense decoder's order of operations."""
    with np.errstate(over="ignore"):
        np.negative(z, out=z)
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)
    return z


def field_mesh(f: SparseField) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at P = 0.5 on the active blocks, stitched; vertices in lattice ``u``.

    Returns (vertices (V, 3) float64 in padded voxel index, faces (F, 3) int64).
    """
    from skimage import measure

    s_top = f.stride
    active = f.active_blocks
    verts: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    count = 0
    for start in range(0, len(active), BLOCK_BATCH):
        part = active[start : start + BLOCK_BATCH]
        probs = _sigmoid_inplace(_assemble(f, part))
        for blk, p in zip(part, probs, strict=True):
            # the block's S^3 cells are its own (a neighbour starts at its far face)
            if not ((p > 0.5).any() and (p <= 0.5).any()):
                continue
            v, fc, _, _ = measure.marching_cubes(p, level=0.5, gradient_direction="ascent")
            verts.append(v + blk * s_top)
            faces.append(fc.astype(np.int64) + count)
            count += len(v)
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    v_all = np.concatenate(verts)
    f_all = np.concatenate(faces)
    return _merge(v_all, f_all, s_top)


def _merge(verts: np.ndarray, faces: np.ndarray, s_top: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge the copies of vertices on block faces (equal positions: same two values)."""
    on_face = (verts % s_top == 0).any(axis=1)
    idx = np.flatnonzero(on_face)
    remap = np.arange(len(verts))
    if len(idx):
        _, first, inverse = np.unique(verts[idx], axis=0, return_index=True,
                                      return_inverse=True)
        remap[idx] = idx[first][inverse.ravel()]
    keep = remap == np.arange(len(verts))
    new_index = np.cumsum(keep) - 1
    return verts[keep], new_index[remap][faces]


def to_world(verts_u: np.ndarray, shape: Sequence[int], center: Sequence[float],
             scale: float) -> np.ndarray:
    """Padded lattice index -> voxel index -> normalised -> world (``formats/occ-v1.md`` 10)."""
    return frame.index_to_world(verts_u - 1.0, shape, center, scale)


def sparse_mesh(arch: Arch, weights: Weights, shape: Sequence[int], center: Sequence[float],
                scale: float, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's mesh (as ``decoder.mesh_arrays``) from the sparse field.

    Returns (vertices (V, 3) float64 in world coordinates, faces (F, 3) int64), both empty
    when nothing is occupied; faces wind outward (positive volume). ``kwargs`` go to
    :func:`sparse_field`.

    Raises
    ------
    UsageError
        As :func:`sparse_field`.
    """
    f = sparse_field(arch, weights, shape, **kwargs)  # type: ignore[arg-type]
    verts, faces = field_mesh(f)
    return to_world(verts, f.shape, center, scale), faces


def drop_specks(verts: np.ndarray, faces: np.ndarray, min_fraction: float = 1e-3
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove connected components much smaller than the largest; off unless asked for.

    A closed component (every edge shared by two faces) is measured by its enclosed volume,
    an open one by its area; it is dropped when that is below ``min_fraction`` of the
    largest closed volume (or open area). A decoded mesh is always closed (the field is
    padded with "outside"), so small floating blobs the network leaves in empty space go,
    and so do tiny inner cavities. Unused vertices are removed.

    Returns (vertices, faces, number of components removed).

    Raises
    ------
    UsageError
        If ``min_fraction`` is not in [0, 1).
    """
    from scipy.sparse import coo_matrix  # scikit-image's own dependency
    from scipy.sparse.csgraph import connected_components

    if not 0.0 <= min_fraction < 1.0:
        raise UsageError(f"speck fraction {min_fraction} must be in [0, 1)")
    if not len(faces):
        return verts, faces, 0
    nv = len(verts)
    a, b = faces[:, [0, 1, 2]].ravel(), faces[:, [1, 2, 0]].ravel()
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(nv, nv))
    ncomp, label = connected_components(graph, directed=False)
    comp = label[faces[:, 0]]
    p0, p1, p2 = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    vol = np.bincount(comp, np.einsum("ij,ij->i", p0, np.cross(p1, p2)) / 6.0, ncomp)
    area = np.bincount(comp, np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1) / 2.0, ncomp)
    edges = np.sort(np.stack([a, b], axis=1), axis=1)
    _, inv, counts = np.unique(edges, axis=0, return_inverse=True, return_counts=True)
    bad_edge = counts[inv.ravel()] != 2
    open_ = np.bincount(comp[np.repeat(np.arange(len(faces)), 3)], bad_edge, ncomp) > 0
    size = np.where(open_, area, np.abs(vol))
    big = np.zeros(ncomp, dtype=bool)
    for kind in (open_, ~open_):
        if kind.any():
            big |= kind & (size >= min_fraction * size[kind].max())
    keep_face = big[comp]
    faces = faces[keep_face]
    used = np.zeros(nv, dtype=bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used) - 1
    return verts[used], new_index[faces], int(ncomp - big.sum())
