"""ctx-grid payloads, read and written by a pure-Python codec written from formats/ctx-grid.md.

The reference codec below (section numbers refer to that document) is plain Python integers,
with numpy only to hold the grids: no constriction, and none of ``occcodec.coding.ctxgrid``'s
internals. ctxgrid is used only through ``encode_grid`` / ``decode_grid`` (the streams under
test) and its public constants (to check that the document states the same ones). Decoding
each stream's words back to its grid shows the document is enough to write a reader;
producing the same words byte for byte shows it is enough to write a writer, i.e. that it
pins down constriction's fixed-point Bernoulli model and range coder completely.

Pure Python is slow, so the grids stay small (24^3 at most; the file runs in a few seconds).
"""

from __future__ import annotations

import bisect
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from occcodec.coding.ctxgrid import (
    BACKOFF_8,
    HEADER,
    MODELS,
    NEIGHBOURS_12,
    NEIGHBOURS_16,
    PROB_ONE,
    decode_grid,
    encode_grid,
)
from occcodec.errors import FormatError

# ------------------------------------------------------------------ the reference codec

P = 1 << 24  # section 1: probabilities are integers in units of 2**-24
M64 = (1 << 64) - 1
M32 = (1 << 32) - 1
BOT = 1 << 32  # renormalize when range drops below this (section 5.1)

#: Section 2.2: context bit k reads the voxel at (x - dx, y - dy, z - dz).
NEIGHBOURS = (
    (0, 0, 1), (0, 0, 2), (0, 1, -1), (0, 1, 0), (0, 1, 1), (0, 2, 0),
    (1, 0, 0), (1, -1, 0), (1, 1, 0), (1, 0, -1), (1, 0, 1), (2, 0, 0),
)
#: Section 2.2: model 2's neighbours, model 1's twelve and then bits 12-15.
NEIGHBOURS_2 = (*NEIGHBOURS, (1, 1, 1), (1, -1, 1), (1, 1, -1), (2, 1, 0))
#: Section 3.3: model 2's backoff context, bit j = context bit BACKOFF[j]; its weight.
BACKOFF = (0, 3, 6, 2, 4, 9, 7, 8)
WEIGHT = 2
#: The models by id: (neighbours, backoff bits); no backoff for model 1.
REF_MODELS = {1: (NEIGHBOURS, ()), 2: (NEIGHBOURS_2, BACKOFF)}

#: How often the encoder took each of its rarer paths (section 5.2), over the whole session.
PATHS: Counter[str] = Counter()


def kt(n1: int, n: int) -> int:
    """Section 3.1: the KT estimate, not yet clipped."""
    return ((2 * n1 + 1) * P + n + 1) // (2 * n + 2)


def clip(q: int) -> int:
    return min(max(q, 1), P - 1)


def kt_q(n1: int, n: int) -> int:
    """Section 3.1: the probability of a 1 after ``n1`` ones in ``n`` symbols."""
    return clip(kt(n1, n))


def backoff_q(n1: int, n: int, s1: int, sn: int) -> int:
    """Section 3.3: model 2's probability from the context's counts and its backoff's."""
    return clip((n1 * P + WEIGHT * kt(s1, sn) + (n + WEIGHT) // 2) // (n + WEIGHT))


def split(q: int) -> int:
    """Section 4: the fixed-point frequency of a 0 (symbol 1's interval starts there)."""
    return (P - q) * (P - 2) // P + 1


def interval(bit: int, q: int) -> tuple[int, int]:
    """Section 4: (left cumulative, frequency) of ``bit`` under ``q``."""
    f0 = split(q)
    return (0, f0) if bit == 0 else (f0, P - f0)


class RefEncoder:
    """Section 5.2: the range encoder, with held-back ("inverted") words and the flush."""

    def __init__(self) -> None:
        self.lower = 0
        self.range = M64
        self.held = 0  # number of held-back words (0: normal situation)
        self.first = 0  # the first held-back word
        self.words: list[int] = []

    def _release(self, carry: bool) -> None:
        if carry:
            PATHS["carry"] += 1
        self.words.append(self.first + 1 if carry else self.first)
        self.words.extend([0 if carry else M32] * (self.held - 1))
        self.held = 0

    def code(self, bit: int | None, q: int) -> int:
        assert bit is not None
        left, freq = interval(bit, q)
        scale = self.range >> 24
        self.range = scale * freq
        new_lower = (self.lower + scale * left) & M64
        if self.held and (new_lower + self.range) & M64 > new_lower:
            self._release(carry=new_lower < self.lower)
        self.lower = new_lower
        if self.range < BOT:
            self.range <<= 32
            top = self.lower >> 32
            self.lower = (self.lower << 32) & M64
            if self.held:
                PATHS["held more"] += 1
                self.held += 1
            elif (self.lower + self.range) & M64 > self.lower:
                self.words.append(top)
            else:
                PATHS["held"] += 1
                self.held, self.first = 1, top
        return bit

    def finish(self) -> list[int]:
        """Section 5.3: the payload words (the encoder itself is left as it was)."""
        if self.range == M64:
            return []  # nothing coded
        out, held = list(self.words), self.held
        point = (self.lower + BOT - 1) & M64
        if held:
            PATHS["flush held"] += 1
            carry = point < self.lower
            if carry:
                PATHS["flush carry"] += 1
            out.append(self.first + 1 if carry else self.first)
            out.extend([0 if carry else M32] * (held - 1))
        out.append(point >> 32)
        if ((self.lower + self.range) & M64) >> 32 == point >> 32:
            PATHS["flush zero"] += 1
            out.append(0)
        return out


class RefDecoder:
    """Section 5.4: the range decoder; words past the end read as 0."""

    def __init__(self, words: list[int]) -> None:
        self.words = words
        self.pos = 2
        w = [*words[:2], 0, 0]
        self.point = (w[0] << 32) | w[1]
        self.lower = 0
        self.range = M64

    def code(self, bit: int | None, q: int) -> int:
        assert bit is None
        scale = self.range >> 24
        quantile = ((self.point - self.lower) & M64) // scale
        if quantile >= P:
            raise ValueError("ctx-grid payload is corrupt (quantile out of range)")
        f0 = split(q)
        bit = 0 if quantile < f0 else 1
        left, freq = (0, f0) if bit == 0 else (f0, P - f0)
        self.lower = (self.lower + scale * left) & M64
        self.range = scale * freq
        if self.range < BOT:
            self.lower = (self.lower << 32) & M64
            self.range <<= 32
            word = self.words[self.pos] if self.pos < len(self.words) else 0
            self.pos += 1
            self.point = ((self.point << 32) & M64) | word
        return bit


Coder = Callable[[int | None, int], int]


def wavefronts(shape: tuple[int, int, int]) -> Iterator[list[tuple[int, int, int]]]:
    """Section 2.3: each wavefront's voxels, in coding order."""
    nx, ny, nz = shape
    pairs = sorted((3 * x + 2 * y, x, y) for x in range(nx) for y in range(ny))
    keys = [k for k, _, _ in pairs]
    for t in range(3 * (nx - 1) + 2 * (ny - 1) + nz):
        lo, hi = bisect.bisect_right(keys, t - nz), bisect.bisect_right(keys, t)
        yield [(x, y, t - k) for k, x, y in pairs[lo:hi]]


def run_model(shape: tuple[int, int, int], code: Coder, grid: np.ndarray | None,
              model: int = 1) -> np.ndarray:
    """Section 6: code every wavefront; ``grid`` is given to encode and None to decode."""
    nx, ny, nz = shape
    neighbours, backoff = REF_MODELS[model]
    full = (1 << len(neighbours)) - 1
    # Padded so that every neighbour of a voxel is a cell: 2 before each axis, 1 after y and z.
    sy, sx = nz + 3, (ny + 3) * (nz + 3)
    cells = [0] * ((nx + 2) * sx)
    shifts = [dx * sx + dy * sy + dz for dx, dy, dz in neighbours]
    base = 2 * sx + 2 * sy + 2
    known = None if grid is None else [int(v) for v in grid.ravel()]
    n1 = [0] * (full + 1)
    n = [0] * (full + 1)
    s1 = [0] * (1 << len(backoff))
    sn = [0] * (1 << len(backoff))

    def small(c: int) -> int:
        return sum(((c >> b) & 1) << j for j, b in enumerate(backoff))

    def q_of(c: int) -> int:
        if not backoff:
            return kt_q(n1[c], n[c])
        return backoff_q(n1[c], n[c], s1[small(c)], sn[small(c)])

    for front in wavefronts(shape):
        at = [base + x * sx + y * sy + z for x, y, z in front]
        ctx = []
        for a in at:
            c = 0
            for k, s in enumerate(shifts):
                c |= cells[a - s] << k
            ctx.append(c)
        vals = None if known is None else [known[(x * ny + y) * nz + z] for x, y, z in front]
        groups = []  # (context, expected value, members): the empty group first
        for c, expected in ((0, 0), (full, 1)):
            members = [i for i, ci in enumerate(ctx) if ci == c]
            if members:
                groups.append((c, expected, members))
        others = [i for i, ci in enumerate(ctx) if ci not in (0, full)]
        out = [0] * len(front)
        flags = []
        for c, expected, members in groups:
            q = q_of(c)
            surprise = q if expected == 0 else P - q
            flag = None if vals is None else int(any(vals[i] != expected for i in members))
            flags.append(code(flag, min(len(members) * surprise, P - 1)))
        for i in others:
            out[i] = code(None if vals is None else vals[i], q_of(ctx[i]))
        for (c, expected, members), flag in zip(groups, flags, strict=True):
            q = q_of(c)
            for i in members:
                out[i] = code(None if vals is None else vals[i], q) if flag else expected
        for i, c in enumerate(ctx):
            n1[c] += out[i]
            n[c] += 1
            if backoff:
                s1[small(c)] += out[i]
                sn[small(c)] += 1
            cells[at[i]] = out[i]
    view = np.array(cells, dtype=bool).reshape(nx + 2, ny + 3, nz + 3)
    return view[2:, 2 : 2 + ny, 2 : 2 + nz].copy()


def ref_encode(grid: np.ndarray, model: int = 1) -> list[int]:
    enc = RefEncoder()
    run_model(grid.shape, enc.code, grid, model)
    return enc.finish()


def ref_decode(words: list[int], shape: tuple[int, int, int], model: int = 1) -> np.ndarray:
    return run_model(shape, RefDecoder(words).code, None, model)


# ------------------------------------------------------------------ grids


def _random(shape: tuple[int, int, int], density: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) < density


def _sphere(n: int) -> np.ndarray:
    c = np.indices((n, n, n)) - (n - 1) / 2
    return (c**2).sum(axis=0) < (0.4 * n) ** 2


def _plate(shape: tuple[int, int, int]) -> np.ndarray:
    g = np.zeros(shape, dtype=bool)
    g[:, shape[1] // 2, 1:-1] = True
    return g


def _hollow_box(shape: tuple[int, int, int]) -> np.ndarray:
    g = np.zeros(shape, dtype=bool)
    g[2:-2, 2:-2, 2:-2] = True
    g[4:-4, 4:-4, 4:-4] = False
    return g


def _solid_with_surprises() -> np.ndarray:
    # Isolated voxels in empty space and holes in a solid: both uniform groups get flagged.
    g = np.zeros((20, 20, 20), dtype=bool)
    g[5:16, 5:16, 5:16] = True
    g[1, 2, 3] = g[18, 1, 17] = True
    g[10, 10, 10] = g[7, 12, 9] = False
    return g


GRIDS: dict[str, np.ndarray] = {
    "1x1x1-empty": np.zeros((1, 1, 1), dtype=bool),
    "1x1x1-full": np.ones((1, 1, 1), dtype=bool),
    "1x5x3-random": _random((1, 5, 3), 0.5, 1),
    "5x1x3-random": _random((5, 1, 3), 0.5, 2),
    "4x3x1-random": _random((4, 3, 1), 0.5, 3),
    "2x2x2-example": np.array([[[1, 0], [1, 1]], [[0, 0], [1, 1]]], dtype=bool),
    "empty-9x7x8": np.zeros((9, 7, 8), dtype=bool),
    "full-9x7x8": np.ones((9, 7, 8), dtype=bool),
    "random-0.02-17x9x12": _random((17, 9, 12), 0.02, 4),
    "random-0.3-17x9x12": _random((17, 9, 12), 0.3, 5),
    "random-0.5-12x12x12": _random((12, 12, 12), 0.5, 6),
    "random-0.9-11x13x7": _random((11, 13, 7), 0.9, 7),
    "random-0.999-10x10x10": _random((10, 10, 10), 0.999, 8),
    "sphere-24": _sphere(24),
    "sphere-13": _sphere(13),
    "plate-24x24x24": _plate((24, 24, 24)),
    "plate-3x20x9": _plate((3, 20, 9)),
    "surprises-20": _solid_with_surprises(),
    "long-2x3x40": _random((2, 3, 40), 0.4, 9),
    "long-40x2x3": _random((40, 2, 3), 0.4, 10),
    "random-0.5-7x11x4": _random((7, 11, 4), 0.5, 46),  # held words at the flush
    "random-0.03-3x2x7": _random((3, 2, 7), 0.03, 65),  # the flush's extra zero word
    "random-0.1-24x24x24": _random((24, 24, 24), 0.1, 11),
    "random-0.01-24x20x22": _random((24, 20, 22), 0.01, 12),
    "random-0.7-24x17x19": _random((24, 17, 19), 0.7, 13),
    "hollow-box-20x22x24": _hollow_box((20, 22, 24)),
}

#: Section 8.1's worked example (the 2x2x2 grid above): its payload and decoded symbols.
EXAMPLE_WORDS = [0xD9800000]
EXAMPLE_SYMBOLS = [1, 1, 0, 1, 1, 0, 0, 1, 1]
#: Section 8.2's: a 1x1x10 column, six empty voxels then four full ones.
COLUMN = np.array([[[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]], dtype=bool)
COLUMN_WORDS = [0x39B1D9FD]
COLUMN_Q = [8388608, 4194304, 2796203, 2097152, 1677722, 1398101, 1198373, 1198373,
            8388608, 8388608, 12582912]
#: Section 8.3's: the same column under model 2 (the backoff prior).
COLUMN2_WORDS = [0x57A533CE]
COLUMN2_Q = [8388608, 2796203, 1398102, 838861, 559241, 399457, 299593, 299593,
             8388608, 12582912, 14913081]

#: Section 9's coder vectors, recorded from constriction 0.5.0's RangeEncoder with
#: Bernoulli(perfect=False) at p = q / 2**24: (symbols, q, words, the rare paths taken).
CODER_VECTORS = [
    ([0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1],
     [16777215, 16777214, 16777215, 2, 16777215, 16777213, 8388608, 16777215, 1, 1, 1, 2, 2],
     [0x00000000, 0x00037FFA, 0x007FF1FD, 0xFF080BFF, 0xFFFFFFFF, 0xDC120000],
     {"held", "held more", "carry", "flush held"}),
    ([1, 0, 0, 1, 1, 1, 0, 1],
     [16777201, 16777212, 16777209, 16777164, 16777194, 16777156, 16777206, 16777155],
     [0x00000F00, 0x00000000, 0x00000000],
     {"held", "flush held", "flush carry", "flush zero"}),
]


def _words(data: bytes) -> list[int]:
    payload = data[HEADER.size :]
    return [int(w) for w in np.frombuffer(payload, dtype="<u4")]


#: Every model the reference knows; each grid is coded under each.
MODEL_IDS = sorted(REF_MODELS)
CASES = [(name, m) for m in MODEL_IDS for name in GRIDS]


@pytest.fixture(scope="module")
def streams() -> dict[tuple[str, int], bytes]:
    return {(name, m): encode_grid(GRIDS[name], m) for name, m in CASES}


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize(("name", "model"), CASES)
def test_reference_decoder_reads_ctxgrid(streams: dict[tuple[str, int], bytes], name: str,
                                         model: int) -> None:
    data = streams[name, model]
    _, _, model_id, nx, ny, nz, _ = HEADER.unpack_from(data)
    assert model_id == model
    words = _words(data)
    dec = RefDecoder(words)
    back = run_model((nx, ny, nz), dec.code, None, model)
    assert back.shape == GRIDS[name].shape
    np.testing.assert_array_equal(back, GRIDS[name])
    # Section 5.4: the decoder read one word past the end, or exactly to it when the flush
    # wrote its extra zero word.
    assert dec.pos == len(words) + 1 or (dec.pos == len(words) and words[-1] == 0)


@pytest.mark.parametrize(("name", "model"), CASES)
def test_reference_encoder_writes_the_same_words(streams: dict[tuple[str, int], bytes],
                                                 name: str, model: int) -> None:
    assert ref_encode(GRIDS[name], model) == _words(streams[name, model])


def test_reference_encoder_exercises_the_rare_paths() -> None:
    # Held-back words and carries are what a careless port gets wrong: make sure these grids
    # reach them. (A second held word, or a carry at the flush, needs the interval to straddle
    # 2**64 with lower >= 2**64 - 2**32, about 2**-32 per word: the coder vectors cover those.)
    PATHS.clear()
    for g in GRIDS.values():
        ref_encode(g, 1)
    for path in ("held", "carry", "flush held", "flush zero"):
        assert PATHS[path] > 0, f"no grid takes the encoder path {path!r}: {dict(PATHS)}"


@pytest.mark.parametrize("index", range(len(CODER_VECTORS)))
def test_coder_vectors(index: int) -> None:
    symbols, qs, words, paths = CODER_VECTORS[index]
    PATHS.clear()
    enc = RefEncoder()
    for bit, q in zip(symbols, qs, strict=True):
        enc.code(bit, q)
    assert enc.finish() == words
    assert {p for p, n in PATHS.items() if n} == paths
    dec = RefDecoder(words)
    assert [dec.code(None, q) for q in qs] == symbols
    assert dec.pos == len(words) + (words[-1] != 0)


def _trace(words: list[int], shape: tuple[int, int, int], model: int = 1
           ) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    dec = RefDecoder(words)

    def spy(bit: int | None, q: int) -> int:
        out = dec.code(bit, q)
        seen.append((out, q))
        return out

    run_model(shape, spy, None, model)
    return seen


def test_worked_examples() -> None:
    g = GRIDS["2x2x2-example"]
    assert _words(encode_grid(g, 1)) == EXAMPLE_WORDS == ref_encode(g)
    assert _trace(EXAMPLE_WORDS, g.shape) == [(b, P // 2) for b in EXAMPLE_SYMBOLS]
    assert _words(encode_grid(COLUMN, 1)) == COLUMN_WORDS == ref_encode(COLUMN)
    trace = _trace(COLUMN_WORDS, COLUMN.shape)
    assert [q for _, q in trace] == COLUMN_Q
    assert [b for b, _ in trace] == [0] * 6 + [1] * 5
    assert [split(q) for q in (1, P // 2, P - 1)] == [P - 2, P // 2, 1]
    # Model 2: the same column, the same symbols, other probabilities (section 8.3); the
    # 2x2x2 grid codes to the same word (all its probabilities are 1/2 under both).
    assert _words(encode_grid(COLUMN, 2)) == COLUMN2_WORDS == ref_encode(COLUMN, 2)
    trace = _trace(COLUMN2_WORDS, COLUMN.shape, 2)
    assert [q for _, q in trace] == COLUMN2_Q
    assert [b for b, _ in trace] == [0] * 6 + [1] * 5
    assert _words(encode_grid(g, 2)) == EXAMPLE_WORDS == ref_encode(g, 2)


def test_spec_and_this_file_agree() -> None:
    spec = (Path(__file__).resolve().parent.parent / "formats" / "ctx-grid.md").read_text()
    assert NEIGHBOURS == NEIGHBOURS_12 and P == PROB_ONE  # ctxgrid's public constants
    assert NEIGHBOURS_2 == NEIGHBOURS_16 and BACKOFF == BACKOFF_8
    assert set(REF_MODELS) == set(MODELS) and MODELS[2].backoff_weight == WEIGHT
    assert all(str(q) in spec for q in COLUMN2_Q)
    for w in EXAMPLE_WORDS + COLUMN_WORDS + COLUMN2_WORDS:
        assert f"0x{w:08X}" in spec
    for _, _, words, _ in CODER_VECTORS:
        assert " ".join(f"{w:08X}" for w in words) in spec


def test_decoders_agree_on_a_corrupt_payload() -> None:
    # point - lower >= 2**24 * scale on the first symbol: both refuse.
    words = [M32, M32]
    with pytest.raises(ValueError, match="corrupt"):
        ref_decode(words, (2, 2, 2))
    payload = np.array(words, dtype="<u4").tobytes()
    data = HEADER.pack(b"CG", 1, 1, 2, 2, 2, zlib.crc32(payload)) + payload
    with pytest.raises(FormatError):
        decode_grid(data)


def test_missing_words_read_as_zero(streams: dict[tuple[str, int], bytes]) -> None:
    # Section 5.4: the flush's trailing zero word is redundant for a reader.
    for (name, model), data in streams.items():
        words = _words(data)
        if words and words[-1] == 0:
            np.testing.assert_array_equal(ref_decode(words[:-1], GRIDS[name].shape, model),
                                          GRIDS[name])
