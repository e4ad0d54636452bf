"""Sparse decoding: coarse-to-fine evaluation of the logit field, voxels and meshes from it.

Dense decoding evaluates the network at every voxel centre, n^3 points (1.07 G at 1024^3).
Only the voxels next to the 0.5 level set decide anything beyond "inside" or "outside", so
this module refines a hierarchy of lattices instead. Lattice index ``u`` = voxel index + 1
on each axis (``u = 0`` and ``u > n`` are the padding, "outside" as the dense decoder pads).

1. **Top.** The field is sampled on the whole lattice of stride ``T`` (a power of two,
   :func:`default_stride`); its points ARE voxel centres of the fine grid, and every value
   is computed with the arithmetic of :func:`occcodec.format.network.logit_grid` (the same
   separable first layer and order of additions, float32; see below for the last ulp).
2. **Refinement, one level at a time, on dense arrays.** A cell of edge ``s`` whose 8
   corner logits agree in sign and all exceed a threshold ``t(s)`` in magnitude is
   *skipped*: its voxels take the corners' sign. Any other (*active*) cell is split in 8
   and its 19 new lattice points are evaluated. Down to the block edge ``B`` (8 voxels) the
   levels are whole-grid arrays (129^3 at 1024^3, mostly sign fills); below it, each active
   *block* (``B^3`` voxels) is a small dense ``(B+1)^3`` array, and all active blocks go
   down one level at a time (evaluated in batches), so numpy works on contiguous arrays
   (no sorting, no searching, no point index). A point on a face between two active
   blocks may be evaluated by both; :func:`_share_faces` then gives the blocks that hold
   the surface one value per point.
3. **Meshes**: the blocks that hold a sign change are stacked along x, behind a 1024-layer
   masked prefix, and meshed by ONE marching-cubes call per 113 blocks (``mask`` keeps
   cells between stacked blocks out, and cells whose corners do not straddle 0.5). Every
   stacked x index then lies in [1024, 2048), where float32 has one spacing, so a vertex's
   position *inside its block* is rounded the same way whatever the block's place in the
   stack: the copies of a vertex on a face shared by two blocks are bit for bit equal and
   merged (by the lattice edge they lie on; no cracks, no duplicates), and positions are
   within 1.2e-4 voxel of the dense mesh's for equal logits.

The threshold ``t(s) = eps + g * (sqrt(3) / 2) * s * h`` (``h`` the voxel edge in normalised
units) says "no point of the cell is further than half its diagonal from a corner, and the
field cannot change by more than ``g`` per unit". Two rules choose ``g``:

``"lipschitz"`` (provably exact)
    ``g`` is an upper bound of the network's Lipschitz constant (:func:`lipschitz_bound`).
    Skipping is then safe for every network, thin parts included. The bound is the product
    of per-layer norms and is loose (see :func:`lipschitz_bound`), so it refines more.
``"margin"`` (default, empirical)
    ``g`` is ``safety`` times the steepest finite difference seen along the edges of the
    evaluated cells, and ``eps`` is raised to ``margin`` logits; on the top level a cell is
    also refined when any of its 26 neighbours is. Its slope is local: each top cell takes
    the largest corner spread of its 26 neighbours, and a child keeps the larger of its
    parent's slope and its own. Cells of edge <= ``B`` use ``fine_safety`` (0.6) and
    ``fine_margin`` (0.25 logits) instead of 1.0 and 0.5: a one-voxel plate whose logit is
    a kink ``c - k |x - x0|`` midway between two samples ``s`` apart is refined whenever
    ``fine_safety * (sqrt(3) / 2) * s >= s / 2``, i.e. ``fine_safety >= 1 / sqrt(3) =
    0.577`` at every level (the kink's slope ``k`` is seen by the neighbouring cells).
    Measured: plates at each of the 64 positions of a 64^3 grid, strides 8 and 16, slope 40
    and 160 per unit, peak 0.05 and 0.3 voxel-slopes: all exact with 0.6; with 0.5, 32 and
    96 of the 128 decodes at peak 0.05 had wrong voxels (``tests/test_sparse.py``).

    **The band (last level, cells of edge 2, ``"margin"`` only).** Most cells the slope
    rule refines at the last level lie next to the surface and hold no sign change (at
    512^3: 54 % for spot's network, 68 % for pinion's). There a cell is refined when

    * its corners change sign (padding counted "outside"), or
    * the slope rule says so and no cell among its 26 neighbours (in its block) changes
      sign: small parts away from the surface are still found as before, or
    * *flood*: a point of the cell already evaluated -- by a refined neighbour, in this
      block or the next (blocks copy each other's evaluated face points) -- has the other
      sign than its corners; repeated until no cell is added. This follows the surface
      where it bulges through a cell's face without changing the sign of its corners.
      Without it, spot's network had 4 wrong voxels at 512^3 and pinion's 1; it adds a
      few hundred cells there.

    What the band can miss: a part thinner than 2 voxels that touches none of the
    evaluated points, within one cell of the surface elsewhere (two walls 2 voxels apart,
    one of them 1 voxel thick). Suppressing the slope rule also at edge 4 lost a 4-voxel
    speck of pinion's network at 256^3 and 5 voxels of spot's at 512^3, so the band is
    only the last level. Like the slope factor, this is measured, not proved: exact voxel
    for voxel on the tests' shapes and on the files of spot, nut and pinion (fast preset)
    and spot (default preset) at 256^3 and 512^3 against the dense decoder. The last level
    then refines 1.2x (spot) to 1.8x (pinion) the cells that hold a sign change, against
    2.2x to 3.2x with the slope rule alone, and 512^3 evaluates 22 to 27 % fewer points.

    **Where it is not exact: a rippled network.** nut.ply's default 512^3 file of
    2026-12-03 (``pe6,20:elu,56:swish,16:swish,56:swish`` at 6+4 bits) differs from the
    dense decode on 1,990 of 134 M voxels (the file another host made, 1,645: 1,624 of them
    filled pockets, 8 on the body) (``tests/benchmarks/sparse_decode.py --check-dense``). Its
    field dips below 0.5 in hundreds of tiny pockets inside the body: the dense decode has
    516 enclosed empty components. 1,599 of the differing voxels are such pockets that the
    sparse decode fills over (no corner of their cells is negative); of the 391 it misses,
    220 are in specks that ``drop_specks`` removes from the written mesh anyway, and 171
    lie on the body's surface. Wider margins only shrink the count at a cost: fine factor
    1.0 and margin 0.5 leave 570 (60 M evaluations against 38 M); a one-off patch that
    dropped the band as well (not kept, so not a benchmark knob) left 210 at 64 M;
    ``safety`` 2 changes nothing. A proof instead of the slope rule does not pay either:
    interval bounds of this network over a cell (``tests/benchmarks/interval_bounds.py``)
    are 11-38 times wider (medians, edge 2 to 16) than the field's true range there and
    prove none of the near-surface cells at any edge, so such a rule would evaluate
    everything near the surface (``"lipschitz"`` is looser still).

The logits are those of the dense decoder up to about 1 ulp, not bit for bit: BLAS rounds
a row's dot product differently with the matrix's row count (measured: OpenBLAS sgemm
and sgemv disagree between 16 k-row slabs and smaller chunks; the evaluator's 4096-row
chunks equal the dense 15,360-row slabs of a 96x160x96 grid bit for bit but not the
25,600-row slabs of 160^3), so a voxel whose logit is within ~1e-6 of 0 could differ;
mesh vertices agree to ~1e-4 voxel, at worst measured 1.7e-3 voxel (an edge along which
P hardly changes).

**Threads** (:func:`workers`; one per usable core by default): the batches of blocks of a
level, and the points of a large whole-grid call, are split between threads at the same
boundaries as on one thread (whole batches, whole chunks of :data:`EVAL_CHUNK` points), so
the values are bit for bit those of one thread. Measured on the 2-core machine at 512^3:
rotor_small's field 5.4 s on one thread and 3.3-3.8 s on two.

Memory stays sparse: whole-grid arrays only down to stride ``B`` (a few MB at 1024^3), the
active blocks' arrays while they are refined (float32 ``(B+1)^3`` each at the last level,
except the blocks set aside there with one sign, see :func:`_refine_blocks`: 1.19 GB for
the 407 k kept of nut's 712 k at 1024^3), then only the blocks that hold a sign change, and
one label byte per block; a dense grid exists only when
:meth:`SparseField.voxels` is asked for. The work (parameters x
points evaluated) is checked against the ``work`` limit as it grows.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from occcodec.errors import UsageError
from occcodec.format import limits, network
from occcodec.format.arch import Arch
from occcodec.format.network import Weights
from occcodec.shapes import frame
from occcodec.shapes.meshing import edge_ends, lattice_edges, logit_levels_inplace

#: Points per network call: large enough to amortise numpy's per-call cost, small enough
#: that a (chunk, 64) float32 activation stays in L2.
EVAL_CHUNK = 1 << 12
#: Absolute slack added to every threshold, above float32 rounding of the logits (the spec
#: puts decoder disagreement below ~1e-4).
EPS = 1e-3
#: Upper bounds of |f'| for the hidden activations (swish peaks at 1.0998 near x = 2.4).
ACTIVATION_LIPSCHITZ = {"relu": 1.0, "elu": 1.0, "swish": 1.1}
#: Block edge in voxels: below it the refinement runs per block on (B+1)^3 arrays, and
#: marching cubes works on blocks.
BLOCK = 8
#: Active blocks refined together: 2048 blocks of 9^3 float32 are 6 MB per array (4096
#: took the same time and 90 MB more at the peak of nut's network at 1024^3, measured).
BLOCK_BATCH = 2048
#: Marching cubes: blocks are stacked along x from this index on (see the module docstring:
#: float32 has one spacing, 2^-13, on [1024, 2048)).
_MC_PREFIX = 1024
#: The 19 points of a cell's 3^3 half-step lattice that are not its corners.
_NEW_POINTS = [tuple(int(v) for v in p) for p in np.indices((3, 3, 3)).reshape(3, -1).T
               if (p % 2).any()]
_CORNERS = [tuple(int(v) for v in p) for p in np.indices((2, 2, 2)).reshape(3, -1).T]

RULES = ("margin", "lipschitz")

#: Most worker threads of one decode (see :func:`workers`).
MAX_WORKERS = 8
_WORKERS: list[int | None] = [None]  # None: one per usable core, up to MAX_WORKERS
_IN_WORKER = threading.local()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_count() -> int:
    """Threads a decode uses now: :func:`workers`' setting, else one per usable core (at
    most :data:`MAX_WORKERS`)."""
    n = _WORKERS[0]
    return min(MAX_WORKERS, usable_cores() if n is None else n)


@contextlib.contextmanager
def workers(n: int | None) -> Iterator[None]:
    """Decode with ``n`` threads inside the block (None: one per usable core).

    The threads split the work at the same boundaries as one thread would (whole batches of
    blocks, whole chunks of points), so the result is bit for bit the same for every ``n``
    (``tests/test_sparse.py``); the encoder passes its ``--threads`` so that two encodes
    side by side do not fight over the cores.
    """
    if n is not None and n < 1:
        raise UsageError(f"decode threads must be >= 1, got {n}")
    before = _WORKERS[0]
    _WORKERS[0] = n
    try:
        yield
    finally:
        _WORKERS[0] = before


def _parallel_map(fn: Any, items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]``, on :func:`worker_count` threads when there are several
    items and this is not already a worker thread. numpy releases the GIL in the products,
    the activations and most array operations, so the threads run side by side."""
    n = min(worker_count(), len(items))
    if n <= 1 or getattr(_IN_WORKER, "on", False):
        return [fn(x) for x in items]

    lib = _openblas()

    def run(x: Any) -> Any:
        _IN_WORKER.on = True
        if lib is not None:  # for an OpenBLAS whose setting is per thread (OpenMP builds)
            lib.openblas_set_num_threads_local(1)
        try:
            return fn(x)
        finally:
            _IN_WORKER.on = False

    with _one_blas_thread(), ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, items))


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


@functools.cache
def _openblas() -> ctypes.CDLL | None:
    """numpy's bundled OpenBLAS if it has ``openblas_set_num_threads_local``, else None."""
    libs = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libs.glob("*openblas*.so*")):
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by numpy: the same handle
            lib.openblas_set_num_threads_local.restype = ctypes.c_int
            lib.openblas_set_num_threads_local.argtypes = [ctypes.c_int]
            return lib
        except (OSError, AttributeError):
            continue
    return None


_BLAS_LOCK = threading.Lock()
_BLAS_STATE = [0, 0]  # [depth of _one_blas_thread blocks open, thread count to restore]


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run a block with single-threaded BLAS (no-op without OpenBLAS).

    The products here are small (16 k x 64 x 64 at most), and OpenBLAS's threads wait for
    each other at every call: on this 2-core machine at load 10, 1 M points of spot's
    network took 2.6 s with the default threads and 0.85 s with one.

    numpy's OpenBLAS (a pthreads build) applies ``openblas_set_num_threads_local`` to the
    whole process, not to the calling thread: a decode thread that restored the old count
    while another was mid-product made that one's last chunks round differently (1 ulp,
    at random; measured). So the count is set when the first block opens and restored when
    the last one closes, whichever threads they run on.
    """
    lib = _openblas()
    if lib is None:
        yield
        return
    with _BLAS_LOCK:
        if _BLAS_STATE[0] == 0:
            _BLAS_STATE[1] = lib.openblas_set_num_threads_local(1)
        _BLAS_STATE[0] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE[0] -= 1
            if _BLAS_STATE[0] == 0:
                lib.openblas_set_num_threads_local(_BLAS_STATE[1])


class _Evaluator:
    """Logits at lattice points ``u`` (padded index: voxel index + 1), as the dense path.

    The first layer is separable on a grid (see ``network._axis_terms``): its input is the sum
    of one table per axis. The in-grid rows of the tables come from the dense code itself;
    the padding rows (index -1 and n.., needed only to steer the refinement) are computed
    with the same formula at those coordinates. Every call adds ``parameters x points`` to
    the work done, checked against the ``work`` limit before evaluating.
    """

    def __init__(self, arch: Arch, weights: Weights, shape: tuple[int, int, int],
                 lattice: Sequence[int]) -> None:
        self.arch, self.weights = arch, weights
        self.label = f"decoding {'x'.join(map(str, shape))} voxels"
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
        self._lock = threading.Lock()

    def __call__(self, ux: np.ndarray, uy: np.ndarray, uz: np.ndarray) -> np.ndarray:
        """Logits (float32) at the lattice points ``(ux[i], uy[i], uz[i])``.

        Raises
        ------
        LimitError
            If the work done so far would exceed the ``work`` limit.
        """
        total = len(ux)
        with self._lock:
            limits.check("work", (self.count + total) * self.arch.params, self.label,
                         "or decode at a lower --resolution")
            self.count += total
        out = np.empty(total, dtype=np.float32)
        if not total:
            return out
        # whole chunks per thread: each row sees the same products as on one thread
        chunks = -(-total // EVAL_CHUNK)
        parts = max(1, min(worker_count(), chunks // 4))
        step = -(-chunks // parts) * EVAL_CHUNK
        spans = [(a, min(a + step, total)) for a in range(0, total, step)]

        def part(span: tuple[int, int]) -> None:
            a, b = span
            with _one_blas_thread():
                self._run(ux[a:b], uy[a:b], uz[a:b], out[a:b])

        _parallel_map(part, spans)
        return out

    def _run(self, ux: np.ndarray, uy: np.ndarray, uz: np.ndarray, out: np.ndarray) -> None:
        total = len(ux)
        tx, ty, tz = self.tables
        layers = self.arch.layers
        chunk = min(EVAL_CHUNK, max(total, 2))
        # preallocated buffers: fresh temporaries of this size are mmap'd and page-faulted
        # on every call, which cost as much as the arithmetic (measured)
        width = [tx.shape[1], *(k.shape[1] for k, _ in self.weights[1:-1])]
        h0 = np.empty((chunk, width[0]), dtype=np.float32)
        g1 = np.empty_like(h0)
        g2 = np.empty_like(h0)
        bufs = [np.empty((chunk, w), dtype=np.float32) for w in width[1:]]
        scratch = np.empty(chunk * max(width), dtype=np.float32)
        kernel_out, bias_out = self.weights[-1]
        res = np.empty((chunk, 1), dtype=np.float32)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            m = stop - start
            cx, cy, cz = ux[start:stop], uy[start:stop], uz[start:stop]
            if m == 1:  # a one-row product takes BLAS's gemv path: other rounding
                cx, cy, cz = (np.concatenate([a, a]) for a in (cx, cy, cz))
                m = 2
            h, a1, a2 = h0[:m], g1[:m], g2[:m]
            # tx + ((ty + tz) + bias): the dense code's order of additions
            np.take(ty, cy, axis=0, out=a1)
            np.take(tz, cz, axis=0, out=a2)
            a1 += a2
            a1 += self.bias0
            np.take(tx, cx, axis=0, out=h)
            h += a1
            _activate_inplace(h, layers[0].activation, scratch)
            for layer, (kernel, bias), buf in zip(layers[1:], self.weights[1:-1], bufs,
                                                  strict=True):
                nxt = buf[:m]
                np.matmul(h, kernel, out=nxt)
                nxt += bias
                h = _activate_inplace(nxt, layer.activation, scratch)
            r = res[:m]
            np.matmul(h, kernel_out, out=r)
            r += bias_out
            out[start:stop] = r[: stop - start, 0]


def _activate_inplace(x: np.ndarray, name: str, scratch: np.ndarray) -> np.ndarray:
    """``network.activation(name)(x)`` with ``scratch`` for its temporary: the same float32
    operations in the same order, so bit for bit the same values
    (``tests/test_sparse.py::test_inplace_activations_match_the_network``)."""
    if name == "relu":
        return np.maximum(x, np.float32(0.0), out=x)
    tmp = scratch[: x.size].reshape(x.shape)
    if name == "elu":  # max(x, 0) + expm1(min(x, 0))
        np.minimum(x, np.float32(0.0), out=tmp)
        np.expm1(tmp, out=tmp)
        np.maximum(x, np.float32(0.0), out=x)
        x += tmp
        return x
    if name == "swish":  # x / (1 + exp(-x))
        np.negative(x, out=tmp)
        with np.errstate(over="ignore"):
            np.exp(tmp, out=tmp)
        tmp += np.float32(1.0)
        np.divide(x, tmp, out=x)
        return x
    return network.activation(name)(x)  # raises FormatError for an unknown id


@dataclass
class LevelStats:
    """What one level of the refinement did (cells of edge ``edge`` voxels)."""

    edge: int
    cells: int
    skipped: int
    refined: int
    evaluated: int
    threshold: float  # median over the level's tested cells


@dataclass
class _Rule:
    """The skip rule of one decode (see the module docstring)."""

    name: str
    safety: float
    margin: float
    lip_h: float  # Lipschitz bound times the voxel edge (logit per voxel), "lipschitz" only
    fine_safety: float = 0.6  # "margin" on cells of edge <= BLOCK
    fine_margin: float = 0.25

    def threshold(self, slope: np.ndarray | None, s: int) -> np.ndarray | float:
        """The threshold of cells of edge ``s`` voxels (slope in logit per voxel)."""
        half_diag = (math.sqrt(3.0) / 2.0) * s
        if self.name == "margin":
            assert slope is not None
            if s <= BLOCK:
                return np.float32(self.fine_margin) + np.float32(
                    self.fine_safety * half_diag) * slope
            return np.float32(self.margin) + np.float32(self.safety * half_diag) * slope
        return EPS + self.lip_h * half_diag


def _up(a: np.ndarray) -> np.ndarray:
    """Each cell of ``a`` (N, a, b, c) repeated into its 8 children: (N, 2a, 2b, 2c).

    One broadcast write instead of three ``repeat`` passes (which were 6 % of a decode).
    """
    n, x, y, z = a.shape
    out = np.empty((n, x, 2, y, 2, z, 2), dtype=a.dtype)
    out[...] = a[:, :, None, :, None, :, None]
    return out.reshape(n, 2 * x, 2 * y, 2 * z)


def _corner_range(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the 8 corners of every cell of the point array ``z`` (N, a, b, c)."""
    _, a, b, c = z.shape
    mn = z[:, : a - 1, : b - 1, : c - 1].copy()
    mx = mn.copy()
    for dx, dy, dz in _CORNERS[1:]:
        v = z[:, dx : dx + a - 1, dy : dy + b - 1, dz : dz + c - 1]
        np.minimum(mn, v, out=mn)
        np.maximum(mx, v, out=mx)
    return mn, mx


def _border(origin: np.ndarray, step: int, cells: tuple[int, int, int],
            n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cells wholly in the padding (``outside``) and cells that cross the grid's border.

    ``origin`` (N, 3) is the lattice point of each array's first point; cell ``i`` spans
    ``origin + i * step .. + step``.
    """
    outside = np.zeros((len(origin), *cells), dtype=bool)
    straddle = outside.copy()
    for axis in range(3):
        lo = origin[:, axis, None] + np.arange(cells[axis]) * step  # (N, cells[axis])
        hi = lo + step
        out_a = (hi < 1) | (lo > n[axis])
        cross = (lo < 1) | (hi > n[axis])
        shape = [len(origin), 1, 1, 1]
        shape[axis + 1] = cells[axis]
        outside |= out_a.reshape(shape)
        straddle |= cross.reshape(shape)
    return outside, straddle & ~outside


def _test(z: np.ndarray, cand: np.ndarray, slope: np.ndarray | None, origin: np.ndarray,
          step: int, n: np.ndarray, rule: _Rule
          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Which candidate cells of ``z`` (edge ``step``) stay active; their slope; thresholds.

    A candidate's 8 corners are all evaluated (it lies in an active parent), so its values
    are finite; elsewhere the fills give inf - inf, hence the silenced warnings.
    """
    mn, mx = _corner_range(z)
    outside, straddle = _border(origin, step, mn.shape[1:], n)  # type: ignore[arg-type]
    with np.errstate(invalid="ignore", over="ignore"):
        if rule.name == "margin":
            own = (mx - mn) / np.float32(step)
            slope = own if slope is None else np.maximum(slope, own)
        thr = rule.threshold(slope, step)
        pos = (mn > thr) & ~straddle & ~outside
        neg = (mx < -thr) | outside
    active = cand & ~(pos | neg)
    tested = thr[cand] if isinstance(thr, np.ndarray) else np.full(1, thr)
    return active, slope, tested


def _refine(z: np.ndarray, active: np.ndarray, origin: np.ndarray, step: int,
            evaluate: _Evaluator) -> tuple[np.ndarray, int]:
    """Values on the half-step lattice: (N, 2a-1, 2b-1, 2c-1), and the points evaluated.

    The 19 new points of every active cell are evaluated (each once per array); every other
    new point takes the sign of its cell's lowest corner as +-inf. That corner lies in a
    skipped cell of this or a coarser level, all of whose points share one sign.
    """
    k, a, b, c = z.shape
    fill = np.where(z > 0, np.float32(np.inf), np.float32(-np.inf))
    z2 = np.empty((k, 2 * a - 1, 2 * b - 1, 2 * c - 1), dtype=np.float32)
    for dx, dy, dz in _CORNERS[1:]:  # point (p, q, r) takes fill[p // 2, q // 2, r // 2]
        z2[:, dx::2, dy::2, dz::2] = fill[:, : a - dx, : b - dy, : c - dz]
    z2[:, ::2, ::2, ::2] = z
    need = np.zeros(z2.shape, dtype=bool)
    ca, cb, cc = a - 1, b - 1, c - 1
    for dx, dy, dz in _NEW_POINTS:
        view = need[:, dx : dx + 2 * ca : 2, dy : dy + 2 * cb : 2, dz : dz + 2 * cc : 2]
        view |= active
    blk, i, j, k = np.nonzero(need)
    half = step // 2
    o = origin.astype(np.intp)
    vals = evaluate(o[blk, 0] + i * half, o[blk, 1] + j * half, o[blk, 2] + k * half)
    z2[need] = vals  # np.nonzero and boolean assignment share C order
    return z2, len(vals)
@dataclass
class SparseField:
    """The decoded field, sparse: block labels and the blocks that hold the surface.

    The lattice (``u`` = voxel index + 1) is cut into blocks of ``block`` cells per axis;
    block ``b`` owns the lattice points ``b * block .. b * block + block - 1`` for voxels
    and the cells between ``b * block`` and ``b * block + block`` for meshes. ``label`` is
    +1 / -1 for a block whose ``(block + 1)^3`` points share one sign, 0 for a *mixed* one;
    ``mixed`` lists the mixed blocks (C order) and ``values`` their logits,
    ``(M, block + 1, block + 1, block + 1)`` float32, -inf in the padding.
    """

    shape: tuple[int, int, int]
    stride: int
    block: int
    rule: str
    label: np.ndarray
    mixed: np.ndarray
    values: np.ndarray
    evaluated: int
    levels: list[LevelStats] = field(default_factory=list)

    @property
    def active_blocks(self) -> np.ndarray:
        """(M, 3) block coordinates of the blocks that hold a sign change, in C order."""
        return self.mixed

    def iter_slabs(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (x slice, occupancy (X, ny, nz) bool) covering the grid, one block row at
        a time."""
        b = self.block
        nx, ny, nz = self.shape
        rows = self.mixed[:, 0]
        for bx in range(self.label.shape[0]):
            # this row owns lattice u = bx*B .. bx*B+B-1, voxels i = u - 1
            x0, x1 = max(bx * b - 1, 0), min(bx * b + b - 1, nx)
            if x1 <= x0:
                continue
            full = _up_n(self.label[None, bx : bx + 1] > 0, b)[0]
            for m in np.flatnonzero(rows == bx):
                _, by, bz = self.mixed[m]
                full[:, by * b : by * b + b, bz * b : bz * b + b] = self.values[m, :b, :b, :b] > 0
            lx = slice(x0 + 1 - bx * b, x1 + 1 - bx * b)
            yield slice(x0, x1), full[lx, 1 : ny + 1, 1 : nz + 1]

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


def _up_n(a: np.ndarray, times: int) -> np.ndarray:
    return a.repeat(times, axis=1).repeat(times, axis=2).repeat(times, axis=3)


def _check_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    shape3 = tuple(int(n) for n in shape)
    if len(shape3) != 3 or min(shape3) < 1:
        raise UsageError(f"grid shape {shape3} must be three sizes >= 1")
    return shape3  # type: ignore[return-value]


def _check_args(shape: Sequence[int], rule: str, stride: int | None
                ) -> tuple[tuple[int, int, int], int]:
    shape3 = _check_shape(shape)
    if rule not in RULES:
        raise UsageError(f"unknown sparse rule {rule!r}: use one of {', '.join(RULES)}")
    s_top = default_stride(shape3) if stride is None else int(stride)
    if s_top < 2 or s_top & (s_top - 1):
        raise UsageError(f"stride {s_top} must be a power of two >= 2")
    return shape3, s_top


def sparse_field(arch: Arch, weights: Weights, shape: Sequence[int], *,
                 stride: int | None = None, rule: str = "margin", safety: float = 1.0,
                 margin: float = 0.5, fine_safety: float = 0.6,
                 fine_margin: float = 0.25, set_aside: bool = True) -> SparseField:
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
        The margin rule's factor on the observed slope and its floor in logits, on cells
        larger than the block. With 1.0 and 0.5 (and the old rule below the block too),
        sparse == dense on spot, nut and pinion at 256^3; measured then (evaluations as a
        fraction of 256^3, mismatched voxels): safety 1.0: spot 15.7 %, nut 27.6 %,
        pinion 30.3 %, all exact; 0.5: 10.4, 17.8, 19.6 %, all exact; 0.25: nut has 3
        wrong voxels; 0.1: nut 8. The margin (0.1 .. 0.5) changed the evaluations by
        under 1 %.
    fine_safety, fine_margin
        The same on cells of edge <= the block (8 voxels); see the module docstring for
        why 0.6 (the plate bound is 0.577). With the defaults and the band, spot, nut and
        pinion (fast-preset files) evaluate 7.5, 13.0 and 18.1 % of 256^3 and 3.4, 6.0
        and 9.4 % of 512^3, all exact.
    set_aside
        Give no last-level array to the blocks that end with one sign (see
        :func:`_refine_blocks`); the same voxels either way, less memory with it.

    Raises
    ------
    UsageError
        For an unknown rule, a stride that is not a power of two >= 2, or a bad shape.
    LimitError
        If the points evaluated times the parameters exceed the ``work`` limit.
    """
    shape3, s_top = _check_args(shape, rule, stride)
    n = np.asarray(shape3, dtype=np.int64)
    ntop = -(-(n + 1) // s_top)  # top cells per axis: the lattice covers u = 0 .. n + 1
    dims = [int(x) for x in ntop * s_top + 1]
    evaluate = _Evaluator(arch, weights, shape3, [d - 1 for d in dims])
    lip_h = lipschitz_bound(arch, weights) * 2.0 / max(shape3) if rule == "lipschitz" else 0.0
    rl = _Rule(rule, float(safety), float(margin), lip_h, float(fine_safety), float(fine_margin))
    block = min(BLOCK, s_top)
    levels: list[LevelStats] = []

    # the top lattice, whole
    ax = [np.arange(0, d, s_top, dtype=np.intp) for d in dims]
    gx, gy, gz = np.meshgrid(*ax, indexing="ij")
    z = evaluate(gx.ravel(), gy.ravel(), gz.ravel()).reshape(1, *gx.shape)
    origin = np.zeros((1, 3), dtype=np.int64)
    cand = np.ones((1, *(int(t) for t in ntop)), dtype=bool)
    active, slope, thr = _test(z, cand, None, origin, s_top, n, rl)
    if rule == "margin":  # the top level looks one cell further: slope and refinement
        assert slope is not None
        outside, _ = _border(origin, s_top, active.shape[1:], n)  # type: ignore[arg-type]
        slope = _grow(slope[0], np.maximum)[None]
        active, slope, thr = _test(z, cand, slope, origin, s_top, n, rl)
        active = _grow(active[0], np.logical_or)[None] & ~outside
    s = s_top
    while s > block:  # whole-grid levels down to the block edge
        z, count = _refine(z, active, origin, s, evaluate)
        levels.append(_stats(s, cand, active, count, thr))
        cand = _up(active)
        s //= 2
        active, slope, thr = _test(z, cand, None if slope is None else _up(slope),
                                   origin, s, n, rl)
    coarse = z[0]
    label = np.where(coarse[:-1, :-1, :-1] > 0, 1, -1).astype(np.int8)
    blocks = np.argwhere(active[0])
    block_slope = None if slope is None else slope[0][tuple(blocks.T)]
    done = _refine_blocks(coarse, blocks, block_slope, block, n, rl, evaluate, label.shape,
                          set_aside)
    vals, counts = done.values, done.counts
    label[tuple(blocks[done.dropped].T)] = np.where(done.dropped_inside, 1, -1)
    anyp = np.zeros(len(vals), dtype=bool)
    allp = np.zeros(len(vals), dtype=bool)
    for start in range(0, len(vals), BLOCK_BATCH):
        pos = (vals[start : start + BLOCK_BATCH] > 0).reshape(-1, (block + 1) ** 3)
        anyp[start : start + BLOCK_BATCH] = pos.any(axis=1)
        allp[start : start + BLOCK_BATCH] = pos.all(axis=1)
    label[tuple(blocks[done.rows].T)] = np.where(allp, 1, np.where(anyp, 0, -1))
    keep = np.flatnonzero(anyp & ~allp)
    keep = keep[np.argsort(done.rows[keep], kind="stable")]  # C order (taken-back blocks last)
    mixed_all = blocks[done.rows[keep]]
    values_all = vals[keep]
    del vals, done
    levels.append(_stats(block, cand, active, 0, thr))
    for edge in sorted(counts, reverse=True):
        cells, refined, count = counts[edge]
        levels.append(LevelStats(edge, cells, cells - refined, refined, count, 0.0))
    _share_faces(mixed_all, values_all, label.shape)
    return SparseField(shape3, s_top, block, rule, label, mixed_all, values_all,
                       evaluate.count, levels)


def _share_faces(mixed: np.ndarray, values: np.ndarray, grid: tuple[int, ...]) -> None:
    """Give the points on a face between two mixed blocks one value: the higher block's.

    Both blocks evaluated them, in different BLAS calls, and BLAS rounds a dot product
    differently with the matrix's row count (measured: vertices on a block face 1e-6 to
    1.5e-5 voxel apart, so not merged). Passes along x, then y, then z: an edge or corner
    shared by 4 or 8 blocks ends with the value of the highest one.
    """
    if not len(mixed):
        return
    b = values.shape[1] - 1
    for axis, lower, upper in _face_pairs(mixed, grid):
        hi: list[Any] = [lower, slice(None), slice(None), slice(None)]
        lo: list[Any] = [upper, slice(None), slice(None), slice(None)]
        hi[axis + 1], lo[axis + 1] = b, 0
        values[tuple(hi)] = values[tuple(lo)]


def _stats(edge: int, cand: np.ndarray, active: np.ndarray, count: int,
           thr: np.ndarray) -> LevelStats:
    cells = int(cand.sum())
    refined = int(active.sum())
    return LevelStats(edge, cells, cells - refined, refined, count,
                      float(np.median(thr)) if len(thr) else 0.0)


class _Blocks(NamedTuple):
    """What :func:`_refine_blocks` returns."""

    values: np.ndarray  # (K', B+1, B+1, B+1) float32 logits of the blocks kept to the end
    rows: np.ndarray  # their rows in the ``blocks`` given
    dropped: np.ndarray  # rows of the blocks set aside before the last level (one sign)
    dropped_inside: np.ndarray  # their sign (bool)
    counts: dict[int, tuple[int, int, int]]  # per cell edge: (tested, refined, evaluated)


def _refine_blocks(coarse: np.ndarray, blocks: np.ndarray, slope: np.ndarray | None,
                   block: int, n: np.ndarray, rule: _Rule, evaluate: _Evaluator,
                   grid: tuple[int, ...], drop: bool = True) -> _Blocks:
    """Refine the active blocks to the voxel lattice: (K, B+1, B+1, B+1) float32 logits.

    All blocks go down one level at a time (evaluated :data:`BLOCK_BATCH` blocks at a
    time), so that under the ``"margin"`` rule the cells below the block edge can follow
    the surface across block faces (see the module docstring, "band"). Points in the
    padding become -inf at the end: the dense decoder pads with "outside". Also returns,
    per cell edge below the block, (cells tested, refined, points evaluated).

    **Set aside before the last level** (``drop``): a block none of whose cells is refined
    there and whose points all have one sign (away from the grid's border) ends as that
    sign unless a neighbour's evaluated point on their shared face has the other sign
    (then the flood and the face sync could change it). Such blocks get no ``(B+1)^3``
    array: the last level's arrays were the decode's memory peak (712 k blocks, 2.1 GB, for
    nut's network at 1024^3; 46 % of them are set aside). After the flood, the blocks set
    aside whose kept neighbours hold a finite value of the other sign on the shared face
    are taken back (into rows reserved, but not touched, in the last level's array) and
    the flood goes on from them, until no such face is left. The voxels are those of
    refining every block; the kept blocks' values can differ in rounding (BLAS rounds a
    row by its place in the batch) and in the fills on faces next to a block set aside
    (an infinity of the same sign instead of that block's value).
    """
    k = len(blocks)
    z = np.empty((k, 2, 2, 2), dtype=np.float32)
    for dx, dy, dz in _CORNERS:
        z[:, dx, dy, dz] = coarse[blocks[:, 0] + dx, blocks[:, 1] + dy, blocks[:, 2] + dz]
    origin = blocks.astype(np.int64) * block
    active = np.ones((k, 1, 1, 1), dtype=bool)
    sl = None if slope is None else slope.reshape(k, 1, 1, 1)
    pairs = _face_pairs(blocks, grid)
    flooding = rule.name == "margin" and block > 2
    rows = np.arange(k)
    aside = _Aside.none()
    counts: dict[int, tuple[int, int, int]] = {}
    s = block
    tested = k
    cand = active
    while True:
        full, count = _refine_batched(z, active, origin, s, evaluate,
                                      spare=len(aside.rows) if s == 2 else 0)
        z = full[: len(z)]
        if s == 2 and flooding:
            extra, more = _flood(z, cand & ~active, origin, s, n, pairs, evaluate)
            active |= extra
            count += more
            while len(aside.rows):  # take back the blocks whose neighbours disagree
                back = _face_conflict(z, rows, aside, blocks, grid)
                if not back.any():
                    break
                m, k0 = int(back.sum()), len(z)
                new_origin = blocks[aside.rows[back]].astype(np.int64) * block
                values, more = aside.values(back, new_origin, s, evaluate)
                count += more
                full[k0 : k0 + m], _ = _refine(values, np.zeros(
                    (m, *active.shape[1:]), dtype=bool), new_origin, s, evaluate)
                z = full[: k0 + m]
                rows = np.concatenate([rows, aside.rows[back]])
                origin = np.concatenate([origin, new_origin])
                back_cand = aside.candidates(back, active.shape[1:])
                cand = np.concatenate([cand, back_cand])
                active = np.concatenate([active, np.zeros_like(back_cand)])
                aside = aside.keep(~back)
                pairs = _face_pairs(blocks[rows], grid)
                extra, more = _flood(z, cand & ~active, origin, s, n, pairs, evaluate)
                active |= extra
                count += more
        del full  # z may still view it; nothing else may (a drop below frees it)
        counts[s] = (tested, int(active.sum()), count)
        s //= 2
        if s == 1:
            break
        cand = _up(active)
        tested = int(cand.sum())
        active, sl = _test_blocks(z, cand, sl, origin, s, n, rule)
        if s == 2 and drop and len(z):
            pos = (z > 0).reshape(len(z), -1)
            inside = np.asarray(pos.all(axis=1))
            far = origin + s * (z.shape[1] - 1)
            one_sign = ((inside | ~pos.any(axis=1)) & ~active.any(axis=(1, 2, 3))
                        & (origin >= 1).all(axis=1) & (far <= n).all(axis=1))
            del pos
            if one_sign.any():
                aside = _Aside.of(rows, inside, z, cand, one_sign)
                keep = np.flatnonzero(~one_sign)
                rows, z, active, cand, origin = (rows[keep], z[keep], active[keep],
                                                 cand[keep], origin[keep])
                sl = None if sl is None else sl[keep]
                pairs = _face_pairs(blocks[rows], grid)
    # the padding (u = 0 and u > n) is "outside"
    prow, pad = _padding(origin, block + 1, 1, n)
    part = z[prow]
    np.copyto(part, np.float32(-np.inf), where=pad)
    z[prow] = part
    return _Blocks(z, rows, aside.rows, aside.inside, counts)


def _test_blocks(z: np.ndarray, cand: np.ndarray, slope: np.ndarray | None,
                 origin: np.ndarray, s: int, n: np.ndarray, rule: _Rule
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_test` of the blocks' cells of edge ``s`` (and the band, at ``s == 2``), on
    :data:`BLOCK_BATCH` blocks at a time: the same values, without the whole-array
    temporaries (at 1024^3 they were 1.2 GB for nut's network, the peak before the last
    level). ``slope`` is the parent level's; the new one is returned while a level follows.
    """
    active = np.empty(cand.shape, dtype=bool)
    out = np.empty(cand.shape, dtype=np.float32) if slope is not None and s > 2 else None
    for start in range(0, len(z), BLOCK_BATCH):
        b = slice(start, min(start + BLOCK_BATCH, len(z)))
        act, sl, _ = _test(z[b], cand[b], None if slope is None else _up(slope[b]),
                           origin[b], s, n, rule)
        if s == 2 and rule.name == "margin":
            change = cand[b] & _sign_change(z[b], origin[b], s, n)
            act &= change | ~_grow(change, np.logical_or, first=1)
        active[b] = act
        if out is not None:
            out[b] = sl
    return active, out


@dataclass
class _Aside:
    """Blocks set aside before the last level: rows, sign, and packed bits of which of their
    points were evaluated and which cells were candidates (16 + 8 bytes a block, where
    their values were 500: enough to rebuild a block taken back, by evaluating again)."""

    rows: np.ndarray
    inside: np.ndarray
    finite: np.ndarray
    cand: np.ndarray
    side: int

    @staticmethod
    def none() -> _Aside:
        empty = np.zeros(0, dtype=np.intp)
        return _Aside(empty, empty.astype(bool), np.zeros((0, 1), dtype=np.uint8),
                      np.zeros((0, 1), dtype=np.uint8), 1)

    @staticmethod
    def of(rows: np.ndarray, inside: np.ndarray, z: np.ndarray, cand: np.ndarray,
           mask: np.ndarray) -> _Aside:
        """The blocks ``mask`` of the level's arrays, packed :data:`BLOCK_BATCH` blocks at a
        time (whole-array copies of the masked values took 1.2 s at 1024^3, measured)."""
        fin: list[np.ndarray] = []
        cnd: list[np.ndarray] = []
        for start in range(0, len(z), BLOCK_BATCH):
            m = mask[start : start + BLOCK_BATCH]
            if m.any():
                part = z[start : start + BLOCK_BATCH][m]
                fin.append(np.packbits(np.isfinite(part).reshape(len(part), -1), axis=1))
                part_c = cand[start : start + BLOCK_BATCH][m]
                cnd.append(np.packbits(part_c.reshape(len(part_c), -1), axis=1))
        return _Aside(rows[mask], inside[mask], np.concatenate(fin), np.concatenate(cnd),
                      z.shape[1])

    def keep(self, mask: np.ndarray) -> _Aside:
        return _Aside(self.rows[mask], self.inside[mask], self.finite[mask], self.cand[mask],
                      self.side)

    def candidates(self, mask: np.ndarray, cells: tuple[int, ...]) -> np.ndarray:
        bits = np.unpackbits(self.cand[mask], axis=1, count=int(np.prod(cells)))
        return bits.astype(bool).reshape(-1, *cells)

    def values(self, mask: np.ndarray, origin: np.ndarray, step: int, evaluate: _Evaluator
               ) -> tuple[np.ndarray, int]:
        """The blocks' point values again: fills of their sign, evaluated where they were
        evaluated (the same logits, up to the rounding of another batch)."""
        side = self.side
        fin = np.unpackbits(self.finite[mask], axis=1, count=side**3).astype(bool)
        fin = fin.reshape(-1, side, side, side)
        z = np.where(self.inside[mask], np.float32(np.inf), np.float32(-np.inf))
        z = np.ascontiguousarray(np.broadcast_to(z[:, None, None, None], fin.shape))
        blk, i, j, k = np.nonzero(fin)
        o = origin.astype(np.intp)
        vals = evaluate(o[blk, 0] + i * step, o[blk, 1] + j * step, o[blk, 2] + k * step)
        z[fin] = vals
        return z, len(vals)


def _face_conflict(z: np.ndarray, rows: np.ndarray, aside: _Aside, blocks: np.ndarray,
                   grid: tuple[int, ...]) -> np.ndarray:
    """Which blocks set aside (a mask over ``aside``) share a face with a kept block
    (``z``, ``rows`` of ``blocks``) that holds a finite value there of the other sign."""
    where = np.full(len(blocks), -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    sign = np.zeros(len(blocks), dtype=np.int8)
    sign[aside.rows] = np.where(aside.inside, 1, -1)
    hit_rows: list[np.ndarray] = []
    for axis, lower, upper in _face_pairs(blocks, grid):
        for kept, other, face in ((lower, upper, -1), (upper, lower, 0)):
            both = np.flatnonzero((where[kept] >= 0) & (sign[other] != 0))
            for start in range(0, len(both), BLOCK_BATCH):
                sel = both[start : start + BLOCK_BATCH]
                index: list[Any] = [where[kept[sel]], slice(None), slice(None), slice(None)]
                index[axis + 1] = face
                values = z[tuple(index)]
                inside = (sign[other[sel]] > 0)[:, None, None]
                with np.errstate(invalid="ignore"):
                    bad = (np.isfinite(values) & ((values > 0) != inside)).any(axis=(1, 2))
                hit_rows.append(other[sel[bad]])
    hit = np.zeros(len(blocks), dtype=bool)
    if hit_rows:
        hit[np.concatenate(hit_rows)] = True
    return hit[aside.rows]


def _padding(origin: np.ndarray, side: int, step: int, n: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """The arrays (rows of ``origin``) that reach the padding, and their (R, side, side,
    side) masks of the points ``origin + i * step`` there; few: the grid border's."""
    far = origin + (side - 1) * step
    rows = np.flatnonzero(((origin < 1) | (far > n)).any(axis=1))
    pad = np.zeros((len(rows), side, side, side), dtype=bool)
    for axis in range(3):
        u = origin[rows, axis, None] + np.arange(side) * step
        shape = [len(rows), 1, 1, 1]
        shape[axis + 1] = side
        pad |= ((u < 1) | (u > n[axis])).reshape(shape)
    return rows, pad


def _sign_change(z: np.ndarray, origin: np.ndarray, step: int, n: np.ndarray) -> np.ndarray:
    """Cells of ``z`` (edge ``step``) whose corners differ in sign, padding counted as
    "outside" (a cell crossing the grid's border with a positive corner changes sign)."""
    net = z > 0
    mn, mx = _corner_range(net.view(np.uint8))
    out = mn != mx  # the network's own signs (a skipped cell's fill is its lowest corner's)
    rows, pad = _padding(origin, z.shape[1], step, n)
    if len(rows):
        mn, mx = _corner_range((net[rows] & ~pad).view(np.uint8))
        out[rows] |= mn != mx
    return out


def _window_any(a: np.ndarray) -> np.ndarray:
    """(K, 2c+1, ...) bool -> (K, c, ...): any over each cell's 3^3 half-step points."""
    for axis in (1, 2, 3):
        n = a.shape[axis]
        lo: list[Any] = [slice(None)] * 4
        mid: list[Any] = [slice(None)] * 4
        hi: list[Any] = [slice(None)] * 4
        lo[axis], mid[axis], hi[axis] = slice(0, n - 1, 2), slice(1, n, 2), slice(2, n, 2)
        a = a[tuple(lo)] | a[tuple(mid)] | a[tuple(hi)]
    return a


def _flood(z2: np.ndarray, cand: np.ndarray, origin: np.ndarray, step: int, n: np.ndarray,
           pairs: list[tuple[int, np.ndarray, np.ndarray]], evaluate: _Evaluator
           ) -> tuple[np.ndarray, int]:
    """Refine the candidate cells (edge ``step``, skipped so far; ``cand`` is consumed)
    where an evaluated point of theirs, evaluated here or in the neighbouring block, has
    the other sign than their corners, until none has; returns the cells refined and the
    points evaluated.

    Unevaluated points hold +-inf fills; evaluated ones are finite. The blocks first copy
    each other's evaluated values on shared faces (into their fills), so the surface is
    followed across block faces; after the first round only the blocks that changed and
    their neighbours are looked at again (measured: a few hundred cells in all at 512^3).
    """
    refined = np.zeros(cand.shape, dtype=bool)
    _sync_faces(z2, pairs)
    side = z2.shape[1]
    half = step // 2
    o = origin.astype(np.intp)
    offsets = np.array(_NEW_POINTS, dtype=np.intp)
    count = 0
    sel = np.flatnonzero(cand.any(axis=(1, 2, 3)))
    while len(sel):
        found = []
        for start in range(0, len(sel), BLOCK_BATCH):
            part = sel[start : start + BLOCK_BATCH]
            cells = np.argwhere(cand[part] & _differs(z2[part], o[part], half, n))
            cells[:, 0] = part[cells[:, 0]]
            found.append(cells)
        cells = np.concatenate(found)
        if not len(cells):
            break
        blk, i, j, k = cells.T
        cand[blk, i, j, k] = False
        refined[blk, i, j, k] = True
        # the cells' new points that hold fills, each once
        pts = (2 * cells[:, None, 1:] + offsets[None, :, :]).reshape(-1, 3)
        flat = np.unique(((np.repeat(blk, len(offsets)) * side + pts[:, 0]) * side
                          + pts[:, 1]) * side + pts[:, 2])
        flat = flat[~np.isfinite(z2.reshape(-1)[flat])]
        b, pi, pj, pk = np.unravel_index(flat, z2.shape)
        z2.reshape(-1)[flat] = evaluate(o[b, 0] + pi * half, o[b, 1] + pj * half,
                                        o[b, 2] + pk * half)
        count += len(flat)
        changed = np.zeros(len(z2), dtype=bool)
        changed[blk] = True
        near = [np.flatnonzero(changed)]
        for axis, lower, upper in pairs:
            hit = changed[lower] | changed[upper]
            _sync_faces(z2, [(axis, lower[hit], upper[hit])])
            near += [lower[hit], upper[hit]]
        sel = np.unique(np.concatenate(near))
        sel = sel[cand[sel].any(axis=(1, 2, 3))]
    return refined, count


def _differs(z: np.ndarray, origin: np.ndarray, step: int, n: np.ndarray) -> np.ndarray:
    """Cells of the half-step arrays ``z`` (K, 2c+1, ...) holding an evaluated point (or
    padding, "outside") of the other sign than their lowest corner."""
    with np.errstate(invalid="ignore"):
        neg = (z <= 0) & (z > -np.inf)  # evaluated, not inside
        pos = (z > 0) & (z < np.inf)  # evaluated, inside
    corner = z[:, :-1:2, :-1:2, :-1:2] > 0
    rows, pad = _padding(origin, z.shape[1], step, n)
    if len(rows):
        neg[rows] |= pad
        pos[rows] &= ~pad
        corner[rows] &= ~pad[:, :-1:2, :-1:2, :-1:2]
    return np.where(corner, _window_any(neg), _window_any(pos))


def _face_pairs(blocks: np.ndarray, grid: tuple[int, ...]
                ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(axis, lower, upper): the row numbers of the block pairs that share a face."""
    index = np.full(grid, -1, dtype=np.int64)
    index[tuple(blocks.T)] = np.arange(len(blocks))
    out = []
    for axis in range(3):
        nb = blocks.copy()
        nb[:, axis] += 1
        ok = np.flatnonzero(nb[:, axis] < grid[axis])
        upper = index[tuple(nb[ok].T)]
        has = upper >= 0
        out.append((axis, ok[has], upper[has]))
    return out


def _sync_faces(z2: np.ndarray, pairs: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
    """Fill each block's unevaluated face points with its neighbour's evaluated values.

    :data:`BLOCK_BATCH` pairs at a time: along one axis a block is the lower side of one
    pair at most and the upper side of one at most, on two different planes, so the
    batches touch disjoint points and give what one pass gives; at once, the copies of
    the faces were the decode's peak (560 MB more at 1024^3 for rotor_small's network).
    """
    for axis, lower_all, upper_all in pairs:
        for start in range(0, len(lower_all), BLOCK_BATCH):
            lower = lower_all[start : start + BLOCK_BATCH]
            upper = upper_all[start : start + BLOCK_BATCH]
            hi: list[Any] = [lower, slice(None), slice(None), slice(None)]
            lo: list[Any] = [upper, slice(None), slice(None), slice(None)]
            hi[axis + 1], lo[axis + 1] = -1, 0
            a, b = z2[tuple(hi)], z2[tuple(lo)]
            fa, fb = np.isfinite(a), np.isfinite(b)
            z2[tuple(hi)] = np.where(fa, a, b)
            z2[tuple(lo)] = np.where(fb, b, a)


def _refine_batched(z: np.ndarray, active: np.ndarray, origin: np.ndarray, step: int,
                    evaluate: _Evaluator, spare: int = 0) -> tuple[np.ndarray, int]:
    """:func:`_refine` on :data:`BLOCK_BATCH` arrays at a time (bounded temporaries).

    The result has ``spare`` more rows than ``z``, left unwritten: reserved address space
    only, no memory until used.
    """
    k, a, b, c = z.shape
    out = np.empty((k + spare, 2 * a - 1, 2 * b - 1, 2 * c - 1), dtype=np.float32)

    def batch(start: int) -> int:
        sl = slice(start, min(start + BLOCK_BATCH, k))
        out[sl], cnt = _refine(z[sl], active[sl], origin[sl], step, evaluate)
        return cnt

    return out, sum(_parallel_map(batch, range(0, k, BLOCK_BATCH)))


def _grow(a: np.ndarray, op: np.ufunc, first: int = 0) -> np.ndarray:
    """``a`` combined with its 26 neighbours by ``op`` (np.maximum: a max filter), over the
    three axes from ``first`` on (1: each of a stack of arrays alone)."""
    out = a.copy()
    for axis in range(first, first + 3):
        grown = out.copy()
        lo: list[Any] = [slice(None)] * a.ndim
        hi: list[Any] = [slice(None)] * a.ndim
        lo[axis], hi[axis] = slice(1, None), slice(None, -1)
        op(grown[tuple(lo)], out[tuple(hi)], out=grown[tuple(lo)])
        op(grown[tuple(hi)], out[tuple(lo)], out=grown[tuple(hi)])
        out = grown
    return out


def voxel_logits(arch: Arch, weights: Weights, shape: Sequence[int], index: np.ndarray
                 ) -> np.ndarray:
    """Logits (float32) at the centres of voxels ``index`` ((N, 3) ints) of the grid
    ``shape``: the dense decoder's values (up to about 1 ulp, see the module docstring),
    by the separable first layer, on :func:`workers` threads.

    Raises
    ------
    UsageError
        If ``shape`` is not three sizes >= 1 or an index lies outside it.
    LimitError
        If the points times the parameters exceed the ``work`` limit.
    """
    shape3 = _check_shape(shape)
    idx = np.asarray(index, dtype=np.intp)
    if idx.ndim != 2 or idx.shape[1] != 3:
        raise UsageError(f"voxel indices must be an (N, 3) array, got shape {idx.shape}")
    if len(idx) and ((idx < 0).any() or (idx >= np.asarray(shape3)).any()):
        raise UsageError(f"a voxel index lies outside the grid {shape3}")
    evaluate = _Evaluator(arch, weights, shape3, [n + 1 for n in shape3])
    return evaluate(idx[:, 0] + 1, idx[:, 1] + 1, idx[:, 2] + 1)


def sparse_voxels(arch: Arch, weights: Weights, shape: Sequence[int], **kwargs: object
                  ) -> np.ndarray:
    """The occupancy grid (bool), equal to ``network.occupancy_grid``; see :func:`sparse_field`.

    Raises
    ------
    UsageError, LimitError
        As :func:`sparse_field`.
    """
    return sparse_field(arch, weights, shape, **kwargs).voxels()  # type: ignore[arg-type]


def field_mesh(f: SparseField, ends: bool = False) -> Any:
    """Marching cubes at logit 0 on the mixed blocks, stitched; vertices in lattice ``u``.

    The blocks are meshed on the levels the dense decoder meshes
    (:func:`occcodec.shapes.meshing.logit_levels_inplace`: linear in the logit), at 0.5.

    Two passes over the marching-cubes calls: the first keeps each call's vertices in
    block-local float32 (exact, see the module docstring) and keys the ones on block
    faces; after the copies are found (:func:`_merge_keys`), the second writes the kept
    vertices and the renumbered faces straight into the two output arrays, one call at a
    time. No whole-mesh temporaries: every fresh page costs a fault, and at 1024^3 the
    concatenated and re-indexed copies of before took most of the meshing's time
    (pinion's network: 11 M faces).

    Returns (vertices (V, 3) float64 in padded voxel index, faces (F, 3) int64), and with
    ``ends`` also the logits at both ends of each vertex's lattice edge ((V, 2) float64,
    :func:`occcodec.shapes.meshing.edge_ends`), which :func:`refine_crossings` then need
    not evaluate again.
    """
    from skimage import measure

    b, side = f.block, f.block + 1
    per_call = (2 * _MC_PREFIX - 1 - _MC_PREFIX) // side  # stacked x stays below 2048
    dims = [int(g) * b + 1 for g in f.label.shape]  # the lattice's points per axis
    calls: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None] = []
    keys: list[np.ndarray] = []
    where: list[np.ndarray] = []
    count = 0
    for start in range(0, len(f.mixed), per_call):
        part = f.mixed[start : start + per_call]
        m = len(part)
        vol = np.zeros((_MC_PREFIX + m * side, side, side), dtype=np.float32)
        prob = logit_levels_inplace(f.values[start : start + m].copy())
        vol[_MC_PREFIX:] = prob.reshape(-1, side, side)
        # skimage processes cell (x, y, z) where mask[x + 1, y + 1, z + 1] is set (measured):
        # only the block's own B^3 cells, never one between two stacked blocks, and of
        # those only the cells whose corners straddle 0.5 (the others make no triangle:
        # the same mesh, measured, 17 % less time)
        mask = np.zeros(vol.shape, dtype=bool)
        mask[_MC_PREFIX:].reshape(m, side, side, side)[:, 1:, 1:, 1:] = _straddles(prob)
        v, fc, _, _ = measure.marching_cubes(vol, level=0.5, mask=mask,
                                             gradient_direction="ascent")
        del vol, mask
        local = np.ascontiguousarray(v, dtype=np.float32)
        x = local[:, 0] - np.float32(_MC_PREFIX)  # exact: x is a multiple of 2^-13 below 1024
        which = np.minimum((x // side).astype(np.int32), m - 1)
        local[:, 0] = x - (which * side).astype(np.float32)  # exact, in [0, B]
        call_ends = edge_ends(prob, local, which) if ends else None
        del prob
        idx = np.flatnonzero(((local == 0) | (local == b)).any(axis=1))
        lv = local[idx]
        lo = np.floor(lv)
        axis = np.argmax(lv != lo, axis=1)  # the fractional coordinate (0 if none)
        li = lo.astype(np.int64) + part[which[idx]] * b
        keys.append(((li[:, 0] * dims[1] + li[:, 1]) * dims[2] + li[:, 2]) * 3 + axis)
        where.append(idx + count)
        calls.append((start, local, which, fc.astype(np.int32, copy=False), call_ends))
        count += len(local)
    if not calls:
        empty = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
        return (*empty, np.zeros((0, 2))) if ends else empty
    keep, new_index = _merge_keys(count, np.concatenate(keys), np.concatenate(where))
    del keys, where
    verts = np.empty((int(keep.sum()), 3), dtype=np.float64)
    faces = np.empty((sum(len(c[3]) for c in calls if c is not None), 3), dtype=np.int64)
    ends_out = np.empty((len(verts), 2), dtype=np.float64) if ends else None
    base = vpos = fpos = 0
    for i, call in enumerate(calls):
        assert call is not None
        start, local, which, fc, call_ends = call
        calls[i] = None  # free this call's arrays as the outputs fill
        n = len(local)
        sel = np.flatnonzero(keep[base : base + n])
        out = verts[vpos : vpos + len(sel)]
        out[...] = local[sel]
        out += f.mixed[start + which[sel]] * b  # integers: exact in float64
        if ends_out is not None and call_ends is not None:
            ends_out[vpos : vpos + len(sel)] = call_ends[sel]
        np.take(new_index[base : base + n], fc, out=faces[fpos : fpos + len(fc)])
        base, vpos, fpos = base + n, vpos + len(sel), fpos + len(fc)
    return (verts, faces, ends_out) if ends else (verts, faces)



def _straddles(p: np.ndarray) -> np.ndarray:
    """Cells of the probability blocks ``p`` (M, B+1, B+1, B+1) whose corners are not all
    on one side of 0.5 (by ``>`` or by ``>=``, whichever marching cubes uses)."""
    out = np.zeros((p.shape[0], *(d - 1 for d in p.shape[1:])), dtype=bool)
    for above in (p > 0.5, p >= 0.5) if (p == 0.5).any() else (p > 0.5,):
        _, a, b, c = above.shape
        count = np.zeros(out.shape, dtype=np.uint8)
        for dx, dy, dz in _CORNERS:
            count += above[:, dx : dx + a - 1, dy : dy + b - 1, dz : dz + c - 1]
        out |= (count != 0) & (count != 8)
    return out


def _merge_keys(count: int, key: np.ndarray, where: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``count`` vertices to keep, and each vertex's row among the kept ones.

    ``where`` lists the vertices on block faces, in order, and ``key`` names the lattice
    edge each lies on: its integer coordinates and the axis of its fractional one. Copies
    (equal keys; equal positions bit for bit, see the module docstring) merge into the
    first. One int64 key per vertex is a 1-D sort, where ``np.unique(axis=0)`` on float
    rows sorted void views (40 % of meshing, before).
    """
    keep = np.ones(count, dtype=bool)
    if not len(where):
        return keep, np.arange(count, dtype=np.int64)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    copy = np.ones(len(where), dtype=bool)
    copy[first] = False
    keep[where[copy]] = False
    new_index = np.cumsum(keep, dtype=np.int64) - 1
    # only the face vertices are looked up again (a whole-array remap cost 3 passes more)
    new_index[where] = new_index[where[first][inverse.ravel()]]
    return keep, new_index


#: Regula falsi steps that move each mesh vertex along its lattice edge towards the
#: network's own zero crossing (:func:`refine_crossings`); 0 keeps marching cubes' linear
#: interpolation of the logit.
REFINE_STEPS = 3
#: Only edges whose two end logits differ by more than this are refined: where the logit
#: changes less across a voxel it is close to linear there, and the linear crossing is
#: already close to the network's. At 512^3 that is 24 % of cow's vertices, 50 % of
#: rotor_small's and 99.8 % of BoxTextured's (their median spans: 5.3, 7.9 and 28).
REFINE_SPAN = 8.0
#: Vertices per batch of :func:`refine_crossings` (bounds its temporaries; the batches are
#: the threads' units, so the result does not depend on the thread count).
_REFINE_BATCH = 1 << 18


def refine_crossings(arch: Arch, weights: Weights, verts: np.ndarray, shape: Sequence[int],
                     steps: int = REFINE_STEPS, ends: np.ndarray | None = None) -> np.ndarray:
    """Move marching-cubes vertices, in place, to the network's zero crossing on their edge.

    ``verts`` (V, 3) float64 are in voxel index coordinates (``formats/occ-v1.md`` 10.1) of
    a grid of ``shape``, each on a lattice edge: two coordinates integers, the third
    between ``lo`` and ``lo + 1``. Marching cubes places a vertex where the *linear*
    interpolation of the edge's two logits crosses 0 (:mod:`occcodec.shapes.meshing`); a
    network's logit is not linear across a voxel, and on a flat face it saturates within
    one, so that point can be a third of a voxel off (BoxTextured.glb at 512^3: 0.165 voxel
    from the mesh). Here the ends' logits are taken from ``ends`` ((V, 2), the values
    marching cubes used, :func:`occcodec.shapes.meshing.edge_ends`) or else evaluated
    (:func:`occcodec.format.network.logits` at their normalised coordinates), then
    ``steps`` steps of regula falsi (Illinois: a
    side kept twice has its value halved) shrink the bracket, and the vertex goes to the
    linear crossing in the last bracket. Three steps took BoxTextured to 0.025 voxel,
    rotor_small 0.165 -> 0.122, nut 0.614 -> 0.579, and left cow (0.186) and spot as they
    were (2026-12-04). A vertex stays on its edge (no new triangles, no cracks: a vertex is
    refined once, after the blocks' copies are merged); one whose edge reaches the padding,
    whose ends do not straddle 0 (rounding), or whose ends' logits differ by no more than
    :data:`REFINE_SPAN` (the logit is close to linear there) is left where it was.
    """
    if steps <= 0 or not len(verts):
        return verts
    dims = np.asarray(shape, dtype=np.float64)
    batches = [slice(i, min(i + _REFINE_BATCH, len(verts)))
               for i in range(0, len(verts), _REFINE_BATCH)]

    def logit_at(idx: np.ndarray) -> np.ndarray:
        p = frame.index_to_normalized(idx, shape)
        return network.logits(arch, weights, p).astype(np.float64)

    def one(sl: slice) -> None:
        v = verts[sl]
        lo_i, axis, t0 = lattice_edges(v)
        lo = lo_i.astype(np.float64)
        hi = lo.copy()
        hi[np.arange(len(v)), axis] += 1.0
        ok = (t0 > 0) & (lo >= 0).all(axis=1) & (hi <= dims - 1).all(axis=1)
        sel = np.flatnonzero(ok)
        if not len(sel):
            return
        a_pt, b_pt, ax = lo[sel], hi[sel], axis[sel]
        if ends is None:
            za, zb = logit_at(a_pt), logit_at(b_pt)
        else:
            za, zb = ends[sl][sel, 0], ends[sl][sel, 1]
        # straddling ends, and a logit steep enough across the edge that its linear
        # crossing may be off (REFINE_SPAN)
        good = ((za > 0) != (zb > 0)) & (np.abs(za - zb) > REFINE_SPAN)
        sel, a_pt, ax, za, zb = sel[good], a_pt[good], ax[good], za[good], zb[good]
        a = np.zeros(len(sel))
        b = np.ones(len(sel))
        last = np.zeros(len(sel), dtype=np.int8)  # which side moved last: -1 a, +1 b
        pts = a_pt.copy()
        r = np.arange(len(sel))
        for _ in range(steps):
            t = a + (b - a) * za / (za - zb)
            t = np.clip(t, a + 1e-6 * (b - a), b - 1e-6 * (b - a))
            pts[r, ax] = a_pt[r, ax] + t
            zt = logit_at(pts)
            move_a = (zt > 0) == (za > 0)
            # Illinois: the side that stays twice in a row has its value halved
            zb = np.where(move_a & (last == -1), zb * 0.5, zb)
            za = np.where(~move_a & (last == 1), za * 0.5, za)
            a, za = np.where(move_a, t, a), np.where(move_a, zt, za)
            b, zb = np.where(move_a, b, t), np.where(move_a, zb, zt)
            last = np.where(move_a, -1, 1).astype(np.int8)
        t = a + (b - a) * za / (za - zb)
        v[sel, ax] = a_pt[r, ax] + t

    _parallel_map(one, batches)
    return verts


def to_world(verts_u: np.ndarray, shape: Sequence[int], center: Sequence[float],
             scale: float, *, inplace: bool = False) -> np.ndarray:
    """Padded lattice index -> voxel index -> normalised -> world (``formats/occ-v1.md`` 10).

    ``inplace=True`` overwrites ``verts_u`` (float64, (V, 3)) with the same values, bit for
    bit: at 1024^3 the four temporaries of the out-of-place form are 0.5 GB of fresh pages.
    """
    if not inplace:
        return frame.index_to_world(verts_u - 1.0, shape, center, scale)
    if verts_u.dtype != np.float64:
        raise TypeError("to_world(inplace=True) needs float64 vertices")
    verts_u -= 1.0
    return frame.index_to_world(verts_u, shape, center, scale, out=verts_u)


def sparse_mesh(arch: Arch, weights: Weights, shape: Sequence[int], center: Sequence[float],
                scale: float, refine_steps: int = REFINE_STEPS, **kwargs: object
                ) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's mesh (as ``decoder.mesh_arrays``) from the sparse field.

    Returns (vertices (V, 3) float64 in world coordinates, faces (F, 3) int64), both empty
    when nothing is occupied; faces wind outward (positive volume). ``refine_steps`` go to
    :func:`refine_crossings`, ``kwargs`` to :func:`sparse_field`.

    Raises
    ------
    UsageError, LimitError
        As :func:`sparse_field`.
    """
    f = sparse_field(arch, weights, shape, **kwargs)  # type: ignore[arg-type]
    return field_surface(f, arch, weights, center, scale, refine_steps)


def field_surface(f: SparseField, arch: Arch, weights: Weights, center: Sequence[float],
                  scale: float, refine_steps: int = REFINE_STEPS
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's mesh of a sparse field: :func:`field_mesh`, each vertex moved to the
    network's crossing on its edge (:func:`refine_crossings`), in world coordinates."""
    verts, faces, ends = field_mesh(f, ends=True)
    verts -= 1.0  # padded lattice -> voxel index (exact: small integers and their halves)
    refine_crossings(arch, weights, verts, f.shape, refine_steps, ends)
    verts += 1.0
    return to_world(verts, f.shape, center, scale, inplace=True), faces


def drop_specks(verts: np.ndarray, faces: np.ndarray, min_fraction: float = 1e-3
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Remove connected components much smaller than the largest; off unless asked for.

    A closed component (every edge shared by two faces) is measured by its enclosed volume,
    an open one by its area; it is dropped when that is below ``min_fraction`` of the
    largest enclosed volume (the absolute value, over every component) or of the largest
    area. A decoded mesh is always closed (the field is
    padded with "outside"), so small floating blobs the network leaves in empty space go,
    and so do tiny inner cavities. Unused vertices are removed.

    Returns (vertices, faces, number of components removed).

    Raises
    ------
    UsageError
        If ``min_fraction`` is not in [0, 1).
    """
    if not 0.0 <= min_fraction < 1.0:
        raise UsageError(f"speck fraction {min_fraction} must be in [0, 1)")
    if not len(faces):
        return verts, faces, 0
    nv = len(verts)
    comp, big = _big_components(verts, faces, min_fraction)
    dropped = int(len(big) - big.sum())
    if dropped:
        faces = np.compress(big[comp], faces, axis=0)
    used = np.zeros(nv, dtype=bool)
    used[faces.ravel()] = True
    if used.all():  # no copies when nothing goes (11 M faces at 1024^3)
        return verts, faces, dropped
    new_index = np.cumsum(used, dtype=np.int64) - 1
    # compress and take: boolean row indexing and fancy gathers were 3.4 s of pinion's
    # 11 M faces at 1024^3; faces, a fresh array here, are renumbered in place
    faces = faces if dropped else faces.copy()
    np.take(new_index, faces, out=faces, mode="clip")
    return np.compress(used, verts, axis=0), faces, dropped


def _big_components(verts: np.ndarray, faces: np.ndarray, min_fraction: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Each face's connected component (by shared vertices), and which components are at
    least ``min_fraction`` of the largest (closed: by enclosed volume; open: by
    area); see :func:`drop_specks`.

    One sorted int64 key per half-edge (lower vertex * nv + higher) gives both the edges
    used other than twice (an open component) and the mesh's edges, whose vertex graph
    scipy labels; volumes and areas are summed over chunks of faces. The whole-mesh
    temporaries of before (a COO graph of every half-edge, ``np.unique`` with inverse and
    counts, three gathered vertex arrays) took 30 s and 4.3 GB for pinion's 11 M faces at
    1024^3 on the 2-core machine, most of it faulting fresh pages in.
    """
    from scipy.sparse import csr_matrix  # scikit-image's own dependency
    from scipy.sparse.csgraph import connected_components

    nv, nf = len(verts), len(faces)
    key = _edge_keys(faces, nv)
    key.sort()
    paired = len(key) % 2 == 0 and bool(
        (key[0::2] == key[1::2]).all() and (key[1:-1:2] != key[2::2]).all())
    first = np.empty(len(key), dtype=bool)
    first[0] = True
    np.not_equal(key[1:], key[:-1], out=first[1:])
    bad_keys = np.zeros(0, dtype=np.int64)
    if not paired:  # the keys whose run is not of length 2
        starts = np.flatnonzero(first)
        runs = np.diff(np.append(starts, len(key)))
        bad_keys = key[starts[runs != 2]]
        del starts, runs
    edges = key[first]
    del key, first
    index = np.int32 if nv < 2**31 else np.int64
    rows, cols = (edges // nv).astype(index), (edges % nv).astype(index)
    del edges
    indptr = np.zeros(nv + 1, dtype=index)
    np.cumsum(np.bincount(rows, minlength=nv), out=indptr[1:])
    del rows
    graph = csr_matrix((np.ones(len(cols), dtype=np.int8), cols, indptr), shape=(nv, nv))
    _, vertex_comp = connected_components(graph, directed=True, connection="weak")
    del graph, cols, indptr
    comp = vertex_comp[faces[:, 0]]
    present = np.zeros(int(vertex_comp.max()) + 1, dtype=bool)
    present[comp] = True  # number the components that hold faces 0..n-1, in order
    renumber = np.cumsum(present) - 1
    comp = renumber[comp]
    ncomp = int(present.sum())
    vol = np.zeros(ncomp)
    area = np.zeros(ncomp)
    open_ = np.zeros(ncomp, dtype=bool)
    for start in range(0, nf, _FACE_CHUNK):
        f = faces[start : start + _FACE_CHUNK]
        c = comp[start : start + _FACE_CHUNK]
        p0, p1, p2 = verts[f[:, 0]], verts[f[:, 1]], verts[f[:, 2]]
        vol += np.bincount(c, np.einsum("ij,ij->i", p0, np.cross(p1, p2)) / 6.0, ncomp)
        area += np.bincount(c, np.linalg.norm(np.cross(p1 - p0, p2 - p0), axis=1) / 2.0,
                            ncomp)
        if len(bad_keys):
            bad = np.isin(_edge_keys(f, nv), bad_keys).reshape(-1, 3).any(axis=1)
            open_[c[bad]] = True
    # Each kind is measured against the largest component of any kind (volume: the largest
    # |enclosed volume|, area: the largest area), not of its own kind: when the main body
    # is open (a crack of a few edges), closed specks must not be judged against the
    # largest closed speck (nut.ply at 512^3 kept 164 specks of 3e-4 of the body and less
    # that way).
    vol_ref, area_ref = np.abs(vol).max(), area.max()
    big = np.where(open_, area >= min_fraction * area_ref,
                   np.abs(vol) >= min_fraction * vol_ref)
    return comp, big


#: Faces per chunk of :func:`_big_components`' sums (1 M: 72 MB per gathered vertex array).
_FACE_CHUNK = 1 << 20


def _edge_keys(faces: np.ndarray, nv: int) -> np.ndarray:
    """(3 F,) int64: lower vertex * nv + higher, for the edges (0, 1), (1, 2), (2, 0) of
    each face in turn (nv < 3e9)."""
    key = np.empty(3 * len(faces), dtype=np.int64)
    for k, (i, j) in enumerate(((0, 1), (1, 2), (2, 0))):
        a, b = faces[:, i].astype(np.int64, copy=False), faces[:, j].astype(np.int64, copy=False)
        np.minimum(a, b, out=key[k::3])
        key[k::3] *= nv
        key[k::3] += np.maximum(a, b)
    return key


def count_components(verts: np.ndarray, faces: np.ndarray, min_fraction: float = 1e-3) -> int:
    """Connected components of a mesh (vertices shared by position index) at least
    ``min_fraction`` of the largest (as measured by :func:`drop_specks`): the components
    it keeps.
    A decoded mesh should have no more than its original (merge an input's duplicate
    vertices first, or every triangle of an STL is a component)."""
    if not len(faces):
        return 0
    comp, big = _big_components(verts, faces, min_fraction)
    return int(np.count_nonzero(big[np.unique(comp)]))
