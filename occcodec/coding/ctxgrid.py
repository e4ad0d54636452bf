"""ctx-grid: a voxel grid coded losslessly by an adaptive binary arithmetic coder.

Every voxel is coded with an adaptive Bernoulli model chosen by its *context*, the occupancy
of 12 (model 1) or 16 (model 2) causal neighbours. The coder is constriction's range coder
(``queue.RangeEncoder``), which decodes in the order it encodes, so that whole groups of
voxels are modelled and coded by one vectorized call each. Needs numpy and constriction only.

Stream layout (all integers little-endian)
------------------------------------------
====== ====== ==========================================================================
offset bytes  field
====== ====== ==========================================================================
0      2      magic ``b"CG"``
2      1      version, 1
3      1      model id (the table :data:`MODELS`: 1 or 2; new streams use 2)
4      6      shape: 3 x uint16, (nx, ny, nz), each 1..1024
10     4      CRC-32 (zlib) of the payload
14     4k     payload: the range coder's uint32 words
====== ====== ==========================================================================

Model 1, exactly
----------------
*Grid.* ``g[x, y, z]`` (C order, axes x, y, z); a voxel outside the grid reads as 0.

*Neighbours.* Context bit ``k`` (``k = 0..11``) is ``g[x - dx, y - dy, z - dz]`` for the
k-th offset ``(dx, dy, dz)`` of :data:`NEIGHBOURS_12`: six in the voxel's own x-slice,
``(0,0,1) (0,0,2) (0,1,-1) (0,1,0) (0,1,1) (0,2,0)``, and six in the two slices before,
``(1,0,0) (1,-1,0) (1,1,0) (1,0,-1) (1,0,1) (2,0,0)``. The context is
``c = sum(bit_k << k)``, 0..4095.

*Order.* Voxels are coded in wavefronts ``t = 3x + 2y + z``, ``t = 0 .. 3(nx-1) +
2(ny-1) + nz-1``. Every offset above has ``3dx + 2dy + dz >= 1``, so a voxel's
neighbours all lie on earlier wavefronts and a whole wavefront's contexts are known before
it is coded. Within a wavefront the voxels are ordered by ``(3x + 2y, x)`` ascending
(within one wavefront ``3x + 2y`` determines ``z``, and ``x`` breaks its ties).

*Counts.* Per context two counts ``n0[c], n1[c]``, both 0 at the start. They are frozen
while a wavefront is coded and then increased by that wavefront's zeros and ones in each
context (block adaptation: within a wavefront no symbol depends on another).

*Probabilities.* With ``n = n0 + n1`` and ``P = 2**24``, the probability of a 1 is the
Krichevsky-Trofimov estimate in integers,
``q[c] = clip(((2 n1 + 1) * P + n + 1) // (2n + 2), 1, P - 1)``, i.e. the exact rational
``(n1 + 1/2) / (n + 1)`` rounded to a multiple of ``2**-24``. The coder gets the float64
``q / 2**24``, which is exact, and maps it to its own fixed point (constriction 0.4+'s
``Bernoulli(perfect=False)``, deterministic float-to-integer code in Rust: below one half a
1 gets ``q + 1`` of ``2**24``), so no rounding depends on the machine. ``formats/ctx-grid.md``
restates that mapping and the range coder byte for byte.

*Uniform contexts.* Most voxels see an all-empty (``c = 0``) or all-full (``c = 4095``)
context and are almost never a surprise. For each of these two groups ``U`` in a wavefront
(when not empty) one *flag* is coded first: 1 when some voxel of ``U`` is a surprise (a 1
in the empty context, a 0 in the full one; the expected values are 0 and 1), with probability
``min(|U| * e, P - 1) / P``, where ``e`` is the context's surprise probability ``q[c]``
(empty) or ``P - q[c]`` (full): the union bound on "some voxel is a surprise". Only when a
flag is 1 are that group's voxels coded one by one. This costs about what coding each voxel
would, and turns most voxels into O(1) coder work per wavefront: 95.9 % of the voxels
(90.2 % at least) of the 24 shared meshes at 128^3 have a uniform context.

*Model 2* differs in two places only. Its context has 16 bits: the 12 above, then
``(1,1,1) (1,-1,1) (1,1,-1) (2,1,0)`` (:data:`NEIGHBOURS_16`; the full context is 65535).
And a context's probability starts from a coarser estimate: the *backoff context*
``s(c)``, bit ``j`` = bit ``BACKOFF_8[j]`` of ``c`` (0..255), has its own counts
``m1, m`` (updated with the same voxels), ``qs = ((2 m1 + 1) P + m + 1) // (2m + 2)``
(not clipped), and ``q[c] = clip((n1 P + 2 qs + (n + 2) // 2) // (n + 2), 1, P - 1)``:
the backoff's estimate counted as two observations. On the 24 shared meshes at 128^3
this makes the payloads 11 % smaller in all than model 1's (9.4 % for the median shape;
at 512^3 on five of them, 16 % in all); 16 neighbours without the backoff are 1 %
*larger* at 128^3: too many contexts to learn.

*Symbol order in a wavefront.* One batch: the empty-context flag (if that group is not
empty), the full-context flag (likewise), then every other voxel in wavefront order. Then,
if the empty flag was 1, the empty group's voxels; then, if the full flag was 1, the full
group's. Then the counts are updated with every voxel of the wavefront.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from occcodec.errors import FormatError

MAGIC = b"CG"
VERSION = 1
HEADER = struct.Struct("<2sBB3HI")
MAX_AXIS = 1024
#: Largest grid :func:`decode_grid` allocates unless told otherwise (1024^3 voxels).
DEFAULT_MAX_VOXELS = MAX_AXIS**3
PROB_BITS = 24
PROB_ONE = 1 << PROB_BITS

Offset = tuple[int, int, int]

#: The 12 causal neighbours of model 1, as offsets (dx, dy, dz) subtracted from the voxel.
NEIGHBOURS_12: tuple[Offset, ...] = (
    (0, 0, 1), (0, 0, 2), (0, 1, -1), (0, 1, 0), (0, 1, 1), (0, 2, 0),
    (1, 0, 0), (1, -1, 0), (1, 1, 0), (1, 0, -1), (1, 0, 1), (2, 0, 0),
)


@dataclass(frozen=True)
class Model:
    """A context model: its neighbours and the wavefront ``t = a x + b y + c z``."""

    model_id: int
    neighbours: tuple[Offset, ...]
    plane: tuple[int, int, int] = (3, 2, 1)
    #: Bits of the context that form the backoff context (empty: no backoff, model 1).
    backoff: tuple[int, ...] = ()
    #: How many observations the backoff estimate counts as (the prior's weight ``k``).
    backoff_weight: int = 0

    def __post_init__(self) -> None:
        if len(self.neighbours) > 16 or len(self.backoff) > 16:
            raise ValueError("a context has at most 16 bits")
        if any(not 0 <= b < len(self.neighbours) for b in self.backoff):
            raise ValueError(f"backoff bits {self.backoff} name no neighbour")
        if bool(self.backoff) != (self.backoff_weight > 0):
            raise ValueError("a backoff context needs a positive weight, and only it")
        a, b, c = self.plane
        for dx, dy, dz in self.neighbours:
            # Why: a neighbour on the same or a later wavefront would not be decoded yet.
            if a * dx + b * dy + c * dz < 1:
                raise ValueError(f"neighbour {(dx, dy, dz)} is not causal for plane {self.plane}")

    @property
    def full(self) -> int:
        """The context of a voxel whose neighbours are all occupied."""
        return (1 << len(self.neighbours)) - 1


#: Model 2's 16 neighbours: model 1's 12, then four more in the two slices before.
NEIGHBOURS_16: tuple[Offset, ...] = (*NEIGHBOURS_12, (1, 1, 1), (1, -1, 1), (1, 1, -1), (2, 1, 0))

#: Model 2's backoff context: the bits of the 16-bit context it reads, in order (the three
#: face neighbours, then five more of the nearest).
BACKOFF_8: tuple[int, ...] = (0, 3, 6, 2, 4, 9, 7, 8)

#: Context models by the id written in the header. Model 2 (16 neighbours with a backoff
#: prior) makes the 24 shared meshes' 128^3 grids 11 % smaller in all than model 1 (9.4 %
#: for the median shape; ``tests/benchmarks/ctxgrid_models.py``); model 1 stays for the
#: files that use it.
MODELS: dict[int, Model] = {1: Model(1, NEIGHBOURS_12),
                            2: Model(2, NEIGHBOURS_16, backoff=BACKOFF_8, backoff_weight=2)}
#: The model new files use.
DEFAULT_MODEL = 2


class _Layout:
    """A zero-padded flat copy of the grid and each wavefront's voxel positions in it.

    With the grid padded by ``lo`` before and ``hi`` after each axis, the flat position of
    voxel ``(x, y, t - a x - b y)`` on wavefront ``t`` is ``t + base + F[x, y]``, where
    ``F = x (sx - a) + y (sy - b)`` does not depend on ``t``. Sorting the (x, y) pairs by
    ``a x + b y`` therefore makes every wavefront one contiguous run of that sorted list,
    and a neighbour at flat distance ``o`` one ``take`` from the padded array shifted by
    ``o`` -- no index arithmetic per voxel.
    """

    def __init__(self, shape: tuple[int, int, int], model: Model) -> None:
        nx, ny, nz = shape
        a, b, c = model.plane
        if c != 1:
            raise ValueError("the wavefront must advance z by 1")
        offs = np.array(model.neighbours)
        lo = np.maximum(offs.max(axis=0), 0)
        hi = np.maximum(-offs.min(axis=0), 0)
        self.padded = (nx + lo[0] + hi[0], ny + lo[1] + hi[1], nz + lo[2] + hi[2])
        sy = self.padded[2]
        sx = self.padded[1] * sy
        self.base = int(lo[0] * sx + lo[1] * sy + lo[2])
        self.shifts = [int(dx * sx + dy * sy + dz) for dx, dy, dz in model.neighbours]
        xs, ys = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
        key = (a * xs + b * ys).ravel()
        order = np.lexsort((xs.ravel(), key))  # by key, then x: the documented order
        self.key = key[order]
        self.f = (xs.ravel() * (sx - a) + ys.ravel() * (sy - b))[order].astype(np.intp)
        self.nz = nz
        self.planes = a * (nx - 1) + b * (ny - 1) + nz
        # Each wavefront's run [start, stop) of the sorted pairs: key in (t - nz, t].
        t = np.arange(self.planes)
        self.start = np.searchsorted(self.key, t - nz, side="right")
        self.stop = np.searchsorted(self.key, t, side="right")
        self.cap = int((self.stop - self.start).max())
        self.inner = tuple(slice(int(lo[i]), int(lo[i]) + shape[i]) for i in range(3))

    def contexts(self, flat: np.ndarray, t: int, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
        """The contexts of wavefront ``t``'s voxels, read from the padded uint8 ``flat`` grid.

        Twelve ``take``s on shifted views are most of the coder's time (about 60 % at 256^3);
        a uint8 grid rather than uint16 halves the cache lines they touch.
        """
        f = self.f[self.start[t] : self.stop[t]]
        n = f.size
        ctx, buf = out[:n], tmp[:n]
        np.take(flat[t + self.base - self.shifts[0] :], f, out=buf)
        ctx[:] = buf
        for k in range(1, len(self.shifts)):
            np.take(flat[t + self.base - self.shifts[k] :], f, out=buf)
            np.bitwise_or(ctx, np.left_shift(buf, k, dtype=np.uint16), out=ctx)
        return ctx


class _Counts:
    """The adaptive model: counts per context, turned into probabilities on demand.

    Model 1 uses the KT estimate of a context's own counts. A model with a backoff keeps a
    second table of counts over the backoff context ``s`` (a few of the context's bits) and
    uses its KT estimate ``qs`` as the prior of the full context's: with weight ``k``,
    ``q = round((n1 * P + k * qs) / (n + k))`` -- the backoff's estimate while a context is
    new, its own frequencies once it has been seen often.
    """

    def __init__(self, model: Model) -> None:
        contexts = model.full + 1
        self.n1 = np.zeros(contexts, dtype=np.int64)
        self.tot = np.zeros(contexts, dtype=np.int64)
        self.k = model.backoff_weight
        if self.k:
            c = np.arange(contexts)
            # sidx[c]: the backoff context of context c (bit j = bit backoff[j] of c).
            self.sidx = np.zeros(contexts, dtype=np.intp)
            for j, b in enumerate(model.backoff):
                self.sidx |= ((c >> b) & 1) << j
            self.s1 = np.zeros(1 << len(model.backoff), dtype=np.int64)
            self.stot = np.zeros(1 << len(model.backoff), dtype=np.int64)

    @staticmethod
    def _kt(n1: np.ndarray, tot: np.ndarray) -> np.ndarray:
        # Integer KT estimate, rounded: exact, so identical on every machine.
        return ((2 * n1 + 1) * PROB_ONE + tot + 1) // (2 * tot + 2)  # type: ignore[no-any-return]

    def q(self, ctx: np.ndarray | int) -> np.ndarray:
        """Quantized probabilities of a 1 (units of ``2**-24``) for the contexts ``ctx``."""
        n1, tot = self.n1[ctx], self.tot[ctx]
        if not self.k:
            q = self._kt(n1, tot)
        else:
            s = self.sidx[ctx]
            qs = self._kt(self.s1[s], self.stot[s])
            q = (n1 * PROB_ONE + self.k * qs + (tot + self.k) // 2) // (tot + self.k)
        return np.clip(q, 1, PROB_ONE - 1)

    def add(self, ctx: np.ndarray, sym: np.ndarray) -> None:
        """Count the symbols ``sym`` seen in contexts ``ctx``."""
        idx = ctx.astype(np.intp)
        self._add(self.n1, self.tot, idx, sym)
        if self.k:
            self._add(self.s1, self.stot, self.sidx[idx], sym)

    @staticmethod
    def _add(n1: np.ndarray, tot: np.ndarray, ctx: np.ndarray, sym: np.ndarray) -> None:
        both = np.bincount(ctx * 2 + sym, minlength=2 * tot.size)
        n1 += both[1::2]
        tot += both[0::2] + both[1::2]

    def add_uniform(self, c: int, size: int, ones: int) -> None:
        """Count ``size`` symbols in context ``c``, ``ones`` of them 1."""
        self.n1[c] += ones
        self.tot[c] += size
        if self.k:
            s = self.sidx[c]
            self.s1[s] += ones
            self.stot[s] += size


def _flag_q(size: int, surprise_q: int) -> int:
    """The quantized probability that some of ``size`` voxels is a surprise (union bound)."""
    return min(size * surprise_q, PROB_ONE - 1)


class _Coder:
    """One interface over constriction's range encoder and decoder.

    ``code(sym, q)`` encodes ``sym`` (encoder) or decodes ``len(q)`` symbols (decoder, where
    ``sym`` is None) with the per-symbol probabilities of a 1 ``q / 2**24``, and returns
    the symbols, so that encoder and decoder share one loop and cannot drift apart.
    """

    def __init__(self, words: np.ndarray | None = None) -> None:
        import constriction  # type: ignore[import-untyped]  # ships no stubs

        self.family = constriction.stream.model.Bernoulli(perfect=False)
        self.decoding = words is not None
        if words is None:
            self.enc = constriction.stream.queue.RangeEncoder()
        else:
            self.dec = constriction.stream.queue.RangeDecoder(words)

    def code(self, sym: np.ndarray | None, q: np.ndarray) -> np.ndarray:
        if not q.size:
            return np.zeros(0, dtype=np.int32)
        p = q.astype(np.float64) / PROB_ONE  # exact: q < 2**24
        if self.decoding:
            try:
                return np.asarray(self.dec.decode(self.family, p), dtype=np.int32)
            except (AssertionError, ValueError, RuntimeError) as exc:
                raise FormatError(f"ctx-grid payload is corrupt ({exc}): re-create the file"
                                  ) from exc
        assert sym is not None
        self.enc.encode(sym, self.family, p)
        return sym

    def words(self) -> np.ndarray:
        return np.asarray(self.enc.get_compressed(), dtype=np.uint32)


def _run(lay: _Layout, flat: np.ndarray, model: Model, coder: _Coder) -> None:
    """Code every wavefront in order: read symbols from ``flat`` or write them into it.

    Only the voxels of non-uniform contexts (the "others") cost per-voxel work beyond the
    context itself; the two uniform groups are counted, flagged and coded only when flagged.
    """
    full = model.full
    counts = _Counts(model)
    ctx_buf = np.empty(lay.cap, dtype=np.uint16)
    tmp = np.empty(lay.cap, dtype=np.uint8)
    for t in range(lay.planes):
        ctx = lay.contexts(flat, t, ctx_buf, tmp)
        f = lay.f[lay.start[t] : lay.stop[t]]
        at = t + lay.base
        # ctx - 1 wraps 0 to 65535, so "neither 0 nor full" is one comparison.
        oth = np.flatnonzero((ctx - np.uint16(1)) < full - 1)
        ctx_o = ctx[oth]
        n_full = (int(ctx.sum(dtype=np.int64)) - int(ctx_o.sum(dtype=np.int64))) // full
        n_empty = ctx.size - oth.size - n_full
        # (context, size, expected value) of each uniform group present, empty one first.
        groups = [g for g in ((0, n_empty, 0), (full, n_full, 1)) if g[1]]
        flag_q = [_flag_q(size, int(counts.q(c)) if exp == 0 else PROB_ONE - int(counts.q(c)))
                  for c, size, exp in groups]
        q = np.concatenate([np.array(flag_q, dtype=np.int64), counts.q(ctx_o)])
        known = None
        first = None
        if not coder.decoding:
            known = flat[f + at]
            flags = [int(np.any(known[ctx == c] != exp)) for c, _, exp in groups]
            first = np.concatenate([np.array(flags, dtype=np.int32), known[oth].astype(np.int32)])
        out = coder.code(first, q)
        sym_o = out[len(groups) :]
        for (c, size, exp), flag in zip(groups, out[: len(groups)], strict=False):
            idx = None
            if flag or (coder.decoding and exp):
                idx = np.flatnonzero(ctx == c)
            ones = size * exp
            if flag:
                assert idx is not None
                vals = coder.code(None if known is None else known[idx].astype(np.int32),
                                  np.full(size, counts.q(c), dtype=np.int64))
                ones = int(vals.sum())
                if coder.decoding:
                    flat[f[idx] + at] = vals
            elif coder.decoding and exp:
                flat[f[idx] + at] = 1
            counts.add_uniform(c, size, ones)
        if coder.decoding:
            flat[f[oth] + at] = sym_o
        counts.add(ctx_o, sym_o)


def _check_grid(grid: np.ndarray) -> np.ndarray:
    g = np.asarray(grid)
    if g.ndim != 3 or not all(1 <= s <= MAX_AXIS for s in g.shape):
        raise ValueError(f"ctx-grid codes 3-D grids of 1..{MAX_AXIS} per axis, got {g.shape}")
    if g.dtype != np.bool_:
        raise ValueError(f"ctx-grid codes bool grids, got {g.dtype}")
    return g


def encode_words(grid: np.ndarray, model_id: int = DEFAULT_MODEL) -> bytes:
    """The coded payload of a 3-D bool grid alone: the range coder's uint32 words,
    little-endian, without the stream header (an ``.occ`` file's grid mode stores the
    shape and the model in its own header). :func:`decode_words` inverts it.

    Raises
    ------
    ValueError
        If ``grid`` is not a 3-D bool array of 1..1024 per axis, or the model is unknown.
    """
    g = _check_grid(grid)
    if model_id not in MODELS:
        raise ValueError(f"unknown ctx-grid model {model_id}: use one of {sorted(MODELS)}")
    model = MODELS[model_id]
    lay = _Layout(g.shape, model)
    padded = np.zeros(lay.padded, dtype=np.uint8)
    padded[lay.inner] = g
    coder = _Coder()
    _run(lay, padded.ravel(), model, coder)
    return coder.words().astype("<u4").tobytes()


def decode_words(payload: bytes, shape: tuple[int, int, int], model_id: int = DEFAULT_MODEL,
                 max_voxels: int = DEFAULT_MAX_VOXELS) -> np.ndarray:
    """Decode :func:`encode_words`' payload of a grid of ``shape`` under model ``model_id``.

    Raises
    ------
    FormatError
        If the shape is outside 1..1024 per axis or above ``max_voxels`` (checked before
        allocating), the model is unknown, or the payload is not whole words or is corrupt.
    """
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    _check_payload(shape, model_id, len(payload), max_voxels)
    return _decode(payload, shape, model_id)


def _check_payload(shape: tuple[int, int, int], model_id: int, nbytes: int,
                   max_voxels: int) -> None:
    """Refuse (before allocating) an unknown model, a shape outside 1..1024 per axis or
    above ``max_voxels``, or a payload that is not whole words."""
    if model_id not in MODELS:
        raise FormatError(f"ctx-grid model {model_id} is unknown (known: {sorted(MODELS)}): "
                          "use a newer occcodec")
    if not all(1 <= s <= MAX_AXIS for s in shape):
        raise FormatError(f"ctx-grid shape {shape} is outside 1..{MAX_AXIS} per axis: "
                          "the header is corrupt")
    if shape[0] * shape[1] * shape[2] > max_voxels:
        raise FormatError(f"ctx-grid shape {shape} exceeds the budget of {max_voxels} voxels: "
                          "raise max_voxels if the grid is expected")
    if nbytes % 4:
        raise FormatError(f"ctx-grid payload is {nbytes} bytes, not whole 32-bit "
                          "words: the data is truncated")


def _decode(payload: bytes, shape: tuple[int, int, int], model_id: int) -> np.ndarray:
    """The grid of a checked payload (:func:`_check_payload`)."""
    model = MODELS[model_id]
    lay = _Layout(shape, model)
    padded = np.zeros(lay.padded, dtype=np.uint8)
    coder = _Coder(np.frombuffer(bytes(payload), dtype="<u4").astype(np.uint32))
    _run(lay, padded.ravel(), model, coder)
    return padded[lay.inner].astype(bool)


def encode_grid(grid: np.ndarray, model_id: int = DEFAULT_MODEL) -> bytes:
    """Code a 3-D bool grid losslessly; :func:`decode_grid` inverts it exactly.

    Parameters
    ----------
    grid
        Bool array of shape (nx, ny, nz), each axis 1..1024.
    model_id
        A key of :data:`MODELS`.

    Returns
    -------
    bytes
        The 14-byte header and the coded payload (:func:`encode_words`); the same grid
        always gives the same bytes.

    Raises
    ------
    ValueError
        If ``grid`` is not a 3-D bool array of 1..1024 per axis, or the model is unknown.
    """
    words = encode_words(grid, model_id)
    nx, ny, nz = np.shape(grid)
    return HEADER.pack(MAGIC, VERSION, model_id, nx, ny, nz, zlib.crc32(words)) + words


def decode_grid(data: bytes, max_voxels: int = DEFAULT_MAX_VOXELS) -> np.ndarray:
    """Decode a :func:`encode_grid` stream back to the exact bool grid.

    Parameters
    ----------
    data
        The whole stream.
    max_voxels
        Refuse (before allocating) a declared shape with more voxels than this.

    Returns
    -------
    numpy.ndarray
        Bool array of the declared shape.

    Raises
    ------
    FormatError
        If the stream is truncated or corrupt (magic, version, model, shape, checksum or
        payload), or declares more than ``max_voxels`` voxels.
    """
    data = bytes(data)
    if len(data) < HEADER.size:
        raise FormatError(f"ctx-grid stream is {len(data)} bytes, shorter than its "
                          f"{HEADER.size}-byte header: the data is truncated")
    magic, version, model_id, nx, ny, nz, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FormatError(f"not a ctx-grid stream (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise FormatError(f"ctx-grid version {version} is not supported (this reader knows "
                          f"{VERSION}): use a newer occcodec")
    shape = (nx, ny, nz)
    payload = data[HEADER.size:]
    _check_payload(shape, model_id, len(payload), max_voxels)
    if zlib.crc32(payload) != crc:
        raise FormatError("ctx-grid checksum mismatch: the data is corrupt or truncated")
    return _decode(payload, shape, model_id)
