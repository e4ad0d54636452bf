"""The lean ``.occ`` file, format version 2 (specified in ``formats/occ-v2.md``).

Version 1 spends 430-530 bytes on a msgpack header with long keys and float64 numbers, a
quarter of a small file. Version 2 keeps what a decoder needs in a few binary fields and the
informative metadata in an optional msgpack map with one-letter keys::

    magic      4 bytes   89 4F 43 32  ("\\x89OC2": the last byte is the version digit)
    flags      u8        bits 0-1 fill, bit 2 META present, bit 3 frame in float64,
                         bit 4 cubic grid (one size for all axes), bits 5-7 reserved
    grid       1 or 3 varints, each n - 1 for an axis size n (1..4096)
    frame      4 x f32   center x, y, z, scale (4 x f64 when flag bit 3 is set)
    network    u8        low nibble: positional-encoding levels (0 = none, 1..12); high
                         nibble: hidden layer count H - 1 (H = 1..16)
               nibbles   H activation ids, two to a byte, the first in the low nibble
               varints   H widths, each units - 1 (units 1..4096)
    scheme     u8        low nibble: 0 fp32, 1 fp16, 2 int8, 3 int8-layer, 4 lowbit;
                         high nibble: lowbit's bias bits - 4 (else 0); lowbit then has
                         H + 1 nibbles of weight bits, one per dense layer
    payload    the raw weights, exactly as long as the architecture and scheme need
    META       (flag bit 2) a msgpack map filling the space up to the checksum
    checksum   u32       CRC-32 (zlib) of every byte before it

Varints are unsigned LEB128 (7 bits a byte, least significant group first, high bit =
more), minimal (no trailing zero group), at most 3 bytes. Everything is little-endian.

Design choices, measured with ``tests/benchmarks/v2_overhead.py`` (results in
``tests/benchmarks/results/v2-overhead/``; ``formats/occ-v2.md`` section 14):

* Overhead (all but the payload) of fast-preset 64^3 encodes of mug, torus and nut: 37, 31,
  30 bytes stripped and 156, 150, 149 with META, against 571, 476, 450 in v1. The typical
  ``pe6,24:relu,40:relu`` at 128^3: 31 (fp16) / 33 (lowbit) stripped, 154 / 156 with META.
* No payload length and no META length: the payload's length follows from the
  architecture and the scheme (as in v1, where the header's ``raw_bytes`` merely repeated
  it), and META runs to the checksum. A cut or grown file fails the checksum.
* The payload is stored raw, not zstd-compressed: zstd at level 19 saved 3.6-7.5 % of fp16
  payloads but -0.4 to 3.1 % of low-bit ones (the point of v2), its frame costs 9+ bytes,
  and a raw payload's size is known before writing, which rate control needs.
* Small numbers share bytes: the grid sizes, widths and units are stored minus one as
  varints (128 fits one byte), a cubic grid as one size (flag bit 4), the encoding and the
  layer count in one byte, activation codes and low-bit depths as nibbles.
* The frame in float32: it only places the decoded mesh in world coordinates (voxels are
  decoded in the normalised frame and do not depend on it). Rounding ``center`` and
  ``scale`` to float32 moves a world point by at most ``2**-24 (|c|max + s)``; for a shape
  centred within its own size of the origin that is ~1e-7 of the shape, 8e-6 of a voxel
  at 128^3. The writer falls back to float64 (flag bit 3) whenever the float32 frame would
  move a point of the unit cube by more than :data:`FRAME_TOLERANCE` = 1e-3 voxel (a
  shape far from the origin: e.g. centred at 1000 x its size).
* The arch, fill and scheme by small numeric codes from tables keyed by v1's string ids
  (:data:`ACTIVATION_CODES`, :data:`SCHEME_CODES`); a code a reader does not know is a
  feature of a newer writer, refused with :class:`VersionError`, as are reserved flag bits.
* META keys by one-letter aliases (:data:`META_KEYS`), which the reader expands back to
  v1's names, so that ``meta["options"]`` and ``meta["source"]["sha256"]`` mean what they
  mean in a v1 header. Metric numbers are written as float32 (they are informative; 7
  digits), everything else exactly.

This module imports only numpy, msgpack and the standard library.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from occcodec.errors import FormatError, VersionError
from occcodec.format import limits, lowbit, quant
from occcodec.format.arch import Arch, Layer
from occcodec.format.container import read_map
from occcodec.format.network import Weights

__all__ = ["FRAME_TOLERANCE", "MAGIC", "LeanHeader", "V2Info", "WeightsSpec", "is_v2",
           "meta_from_v1", "overhead", "pack", "unpack"]

#: The first 3 bytes are shared with v1 (``\\x89OCC...``); the 4th is the version digit.
MAGIC = b"\x89OC2"
PREFIX = b"\x89OC"
VERSION = (2, 0)
FILLS = ("solid", "shell", "given")              # 2-bit code = index; 3 is reserved
FLAG_META = 1 << 2
FLAG_FRAME64 = 1 << 3
FLAG_CUBIC = 1 << 4
#: Grid mode (section 6.3 of the spec): no network; the payload is the grid, coded losslessly
#: by :mod:`occcodec.coding.ctxgrid`.
FLAG_GRID = 1 << 5
FLAG_RESERVED = 0xC0
#: Largest axis of a grid-mode file (the ctx-grid coder's limit).
MAX_CODED_GRID = 1024
#: The ctx-grid model ids a grid-mode file may name: the keys of
#: ``occcodec.coding.ctxgrid.MODELS`` (the format layer does not import the coder; a test
#: keeps the two equal).
GRID_MODELS = frozenset({1, 2})
#: Most 32-bit words a grid-mode payload may hold (the largest 3-byte varint: 8 MiB).
MAX_GRID_WORDS = (1 << 21) - 1
#: Activation codes, keyed by v1's string ids (``formats/occ-v1.md`` 6.2); never reordered.
ACTIVATION_CODES: dict[str, int] = {"relu": 0, "elu": 1, "swish": 2}
#: Weight scheme codes, keyed by v1's ``quant`` ids, plus ``lowbit``; never reordered.
SCHEME_CODES: dict[str, int] = {"fp32": 0, "fp16": 1, "int8": 2, "int8-layer": 3, "lowbit": 4}
MAX_PE_LEVELS = 12
#: Hidden layers a v2 file can name (a nibble); ``--arch`` allows as many.
MAX_HIDDEN = 16
MAX_UNITS = 4096
MAX_GRID = 4096
MAX_VARINT_BYTES = 3
#: Largest move of a world point (in voxels) that the float32 frame may cause.
FRAME_TOLERANCE = 1e-3
CRC = struct.Struct("<I")

#: META's one-letter aliases: long name -> (short key, table of the nested map or None).
#: A name not in a table is written as is; a released alias never changes meaning.
_SOURCE_KEYS: dict[str, tuple[str, Any]] = {"kind": ("k", None), "sha256": ("h", None)}
_OPTION_KEYS: dict[str, tuple[str, Any]] = {
    "preset": ("p", None), "resolution": ("r", None), "fill": ("f", None),
    "quant": ("q", None), "seed": ("s", None), "threads": ("t", None), "arch": ("a", None),
    "max_params": ("m", None), "target_iou": ("i", None), "max_bytes": ("b", None),
    "strip": ("x", None), "mode": ("g", None)}
_METRIC_KEYS: dict[str, tuple[str, Any]] = {"iou": ("i", None), "accuracy": ("a", None),
                                            "params": ("p", None),
                                            "surface_chamfer": ("c", None),
                                            "iou_sampled": ("n", None)}
META_KEYS: dict[str, tuple[str, Any]] = {
    "encoder": ("e", None), "source": ("s", _SOURCE_KEYS), "options": ("o", _OPTION_KEYS),
    "metrics": ("m", _METRIC_KEYS), "candidates": ("c", None)}


# ------------------------------------------------------------------------------ header


@dataclass(frozen=True)
class WeightsSpec:
    """How the payload stores the weights: a v1 scheme id or ``lowbit`` with its bit depths.

    ``bits`` (one per dense layer, output layer last) and ``bias_bits`` are used by
    ``lowbit`` only and must be empty / 0 otherwise.
    """

    scheme: str = "fp16"
    bits: tuple[int, ...] = ()
    bias_bits: int = 0

    def check(self, arch: Arch) -> None:
        """Raise ValueError unless the spec is complete and consistent with ``arch``."""
        if self.scheme not in SCHEME_CODES:
            raise ValueError(f"unknown weight scheme {self.scheme!r}: use "
                             f"{', '.join(SCHEME_CODES)}")
        if self.scheme == "lowbit":
            lowbit.payload_bytes(arch, self.bits, self.bias_bits)  # raises ValueError
        elif self.bits or self.bias_bits:
            raise ValueError(f"bit depths are for lowbit, not {self.scheme}")

    def payload_size(self, arch: Arch) -> int:
        """Exact byte length of the payload for ``arch`` (raises ValueError if inconsistent)."""
        self.check(arch)
        if self.scheme == "lowbit":
            return lowbit.payload_bytes(arch, self.bits, self.bias_bits)
        return quant.raw_size(arch, self.scheme)

    def quantize(self, weights: Weights) -> bytes:
        """The payload of float ``weights`` under this spec (``lowbit.quantize`` or v1's)."""
        if self.scheme == "lowbit":
            return lowbit.quantize(weights, self.bits, self.bias_bits)
        return quant.quantize(weights, self.scheme)

    def dequantize(self, payload: bytes, arch: Arch) -> Weights:
        """Float32 (kernel, bias) pairs of ``payload``.

        Raises
        ------
        FormatError
            If the payload's size or values do not fit the spec.
        """
        try:
            if self.scheme == "lowbit":
                return lowbit.dequantize(payload, arch, self.bits, self.bias_bits)
            return quant.dequantize(payload, arch, self.scheme)
        except ValueError as exc:
            raise FormatError(f"weights do not match the architecture ({exc})") from None

    def __str__(self) -> str:
        if self.scheme != "lowbit":
            return self.scheme
        return f"lowbit {'/'.join(map(str, self.bits))} bits, bias {self.bias_bits}"


@dataclass(frozen=True)
class LeanHeader:
    """What a decoder needs: grid, frame, fill, and the network and weight scheme -- or,
    in grid mode (``arch`` None), the ctx-grid model id ``grid_model`` of the coded grid."""

    grid: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float
    fill: str
    arch: Arch | None
    weights: WeightsSpec = field(default_factory=WeightsSpec)
    grid_model: int = 0


@dataclass
class V2Info:
    """Bookkeeping of a parsed file: sizes of its parts and how the frame was stored."""

    total_bytes: int
    sections: dict[str, int]
    frame64: bool
    version: tuple[int, int] = VERSION


#: Keys of a v1 HEAD map that v2 stores in its binary header (the rest go to META).
DECODING_KEYS = frozenset({"grid", "center", "scale", "fill", "arch", "quant", "weights"})


def meta_from_v1(head: Mapping[str, Any]) -> dict[str, Any]:
    """The informative part of a v1 HEAD map (``encoder``, ``source``, ``options``,
    ``metrics``, ...), in its order: what :func:`pack` takes as ``meta``."""
    return {k: v for k, v in head.items() if k not in DECODING_KEYS}


def is_v2(data: bytes) -> bool:
    """Whether ``data`` claims to be a version-2-or-later file (its magic is not v1's).

    True for ``\\x89OC`` followed by anything but ``C`` (v1's fourth byte), so that a
    newer version digit reaches :func:`unpack` and is reported as such.
    """
    return len(data) >= 4 and data.startswith(PREFIX) and data[3:4] != b"C"


# ------------------------------------------------------------------------------ varints


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    """Fields read one after another; running past ``end`` means the file is malformed."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise FormatError(f"file is truncated or malformed ({what} runs past its end)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def varint(self, what: str) -> int:
        value = 0
        for i in range(MAX_VARINT_BYTES):
            byte = self.u8(what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if byte == 0 and i > 0:
                    raise FormatError(f"{what} is a non-minimal varint: the file is damaged")
                return value
        raise FormatError(f"{what} is a varint longer than {MAX_VARINT_BYTES} bytes: the "
                          "file is damaged")


# ------------------------------------------------------------------------------ frame


def frame64_needed(grid: Sequence[int], center: Sequence[float], scale: float) -> bool:
    """Whether the float32 frame would move a point of the box by > FRAME_TOLERANCE voxel.

    A normalised point ``p`` (|p| <= 1) lands at ``center + scale * p``; float32 rounding
    moves it by at most ``max |dc| + |ds|``; a voxel is ``2 * scale / max(grid)`` wide.
    """
    vals = [*map(float, center), float(scale)]
    with np.errstate(over="ignore"):
        f32 = np.asarray(vals, dtype=np.float32).astype(np.float64)
    if not np.isfinite(f32).all() or f32[3] <= 0:
        return True
    err = np.abs(f32 - np.asarray(vals))
    move = float(err[:3].max() + err[3])
    return move > FRAME_TOLERANCE * 2.0 * float(scale) / max(grid)


# ------------------------------------------------------------------------------ writing


def _check_header(header: LeanHeader) -> None:
    """Raise ValueError unless every field fits the format."""
    if len(header.grid) != 3 or not all(1 <= int(n) <= MAX_GRID for n in header.grid):
        raise ValueError(f"grid {header.grid} is not 3 sizes in 1..{MAX_GRID}")
    vals = [*header.center, header.scale]
    if len(header.center) != 3 or not all(math.isfinite(v) for v in vals) or header.scale <= 0:
        raise ValueError("center must be 3 finite numbers and scale a finite positive one")
    if header.fill not in FILLS:
        raise ValueError(f"fill {header.fill!r} is not one of {', '.join(FILLS)}")
    arch = header.arch
    if arch is None:
        if max(header.grid) > MAX_CODED_GRID:
            raise ValueError(f"grid {header.grid} is too large for grid mode (most "
                             f"{MAX_CODED_GRID} per axis)")
        if header.grid_model not in GRID_MODELS:
            raise ValueError(f"unknown ctx-grid model {header.grid_model}")
        return
    if header.grid_model:
        raise ValueError("a network file has no ctx-grid model")
    if not 0 <= arch.pe_levels <= MAX_PE_LEVELS or not 1 <= len(arch.layers) <= MAX_HIDDEN:
        raise ValueError(f"architecture {arch} does not fit the format (PE levels 0.."
                         f"{MAX_PE_LEVELS}, 1..{MAX_HIDDEN} hidden layers)")
    for layer in arch.layers:
        if layer.activation not in ACTIVATION_CODES or not 1 <= layer.units <= MAX_UNITS:
            raise ValueError(f"layer {layer.units}:{layer.activation} does not fit the format")
    header.weights.check(arch)


def _header_bytes(header: LeanHeader, has_meta: bool, payload_len: int = 0) -> bytes:
    """The fields before the payload (``payload_len``: a grid-mode payload's bytes)."""
    _check_header(header)
    f64 = frame64_needed(header.grid, header.center, header.scale)
    cubic = len(set(header.grid)) == 1
    arch = header.arch
    flags = (FILLS.index(header.fill) | (FLAG_META if has_meta else 0)
             | (FLAG_FRAME64 if f64 else 0) | (FLAG_CUBIC if cubic else 0)
             | (FLAG_GRID if arch is None else 0))
    out = bytearray(MAGIC)
    out.append(flags)
    for n in header.grid[:1] if cubic else header.grid:
        out += _varint(int(n) - 1)
    out += struct.pack("<4d" if f64 else "<4f", *header.center, header.scale)
    if arch is None:
        words, rest = divmod(payload_len, 4)
        if rest or not 0 <= words <= MAX_GRID_WORDS:
            raise ValueError(f"a grid-mode payload is whole 32-bit words, at most "
                             f"{MAX_GRID_WORDS}; got {payload_len} bytes")
        out.append(header.grid_model)
        out += _varint(words)
        return bytes(out)
    out.append(arch.pe_levels | (len(arch.layers) - 1) << 4)
    out += _nibbles([ACTIVATION_CODES[layer.activation] for layer in arch.layers])
    for layer in arch.layers:
        out += _varint(layer.units - 1)
    spec = header.weights
    code = SCHEME_CODES[spec.scheme]
    if spec.scheme == "lowbit":
        out.append(code | (spec.bias_bits - lowbit.MIN_BIAS_BITS) << 4)
        out += _nibbles(spec.bits)
    else:
        out.append(code)
    return bytes(out)


def _nibbles(values: Sequence[int]) -> bytes:
    """Values 0..15 two to a byte, the first in the low nibble; a lone last one padded 0."""
    padded = [*values, 0] if len(values) % 2 else list(values)
    return bytes(padded[i] | padded[i + 1] << 4 for i in range(0, len(padded), 2))


def _shorten(meta: Mapping[str, Any], table: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    shorts = {short for short, _ in table.values()}
    for key, value in meta.items():
        if not isinstance(key, str):
            raise TypeError(f"META keys must be strings, not {key!r}")
        if key in table:
            short, sub = table[key]
            if sub is not None and isinstance(value, Mapping):
                value = _shorten(value, sub)
            key = short
        elif len(key) == 1 or key in shorts:
            # one-letter keys are aliases: a one-letter name would read back as another
            raise ValueError(f"META key {key!r} is one letter long: one-letter keys are "
                             "reserved for aliases")
        out[key] = value
    return out


def _expand(meta: Mapping[str, Any], table: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    longs = {short: (name, sub) for name, (short, sub) in table.items()}
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if key in longs:
            key, sub = longs[key]
            if sub is not None and isinstance(value, dict):
                value = _expand(value, sub)
        out[key] = value
    return out


def _meta_bytes(meta: Mapping[str, Any] | None) -> bytes:
    """META as msgpack: the map of short keys; metric numbers as float32, others exact."""
    if not meta:
        return b""
    short = _shorten(meta, META_KEYS)
    parts = [_map_head(len(short))]
    for key, value in short.items():
        parts.append(msgpack.packb(key, use_bin_type=True))
        if key == "m" and isinstance(value, dict):
            parts.append(msgpack.packb(value, use_bin_type=True, use_single_float=True))
        else:
            parts.append(msgpack.packb(value, use_bin_type=True))
    return b"".join(parts)


def _map_head(n: int) -> bytes:
    if n < 16:
        return bytes([0x80 | n])
    return b"\xde" + struct.pack(">H", n) if n < 1 << 16 else b"\xdf" + struct.pack(">I", n)


def pack(header: LeanHeader, payload: bytes, meta: Mapping[str, Any] | None = None) -> bytes:
    """Build a version-2 file; ``meta=None`` (or empty) gives a stripped file.

    ``meta`` uses v1's key names (``encoder``, ``source`` {kind, sha256}, ``options``,
    ``metrics``, ...); known ones are written by their one-letter aliases. Deterministic:
    the same arguments give the same bytes (maps keep their insertion order).

    Raises
    ------
    ValueError
        If a field does not fit the format, the payload's length is not what the
        architecture and scheme need, or META has a one-letter key that is not an alias.
    """
    if header.arch is not None:
        need = header.weights.payload_size(header.arch)
        if len(payload) != need:
            raise ValueError(f"payload holds {len(payload)} bytes, {header.arch} under "
                             f"{header.weights} needs {need}")
    metab = _meta_bytes(meta)
    data = _header_bytes(header, bool(metab), len(payload)) + bytes(payload) + metab
    return data + CRC.pack(zlib.crc32(data) & 0xFFFFFFFF)


def overhead(header: LeanHeader, meta: Mapping[str, Any] | None = None,
             payload_len: int = 0) -> int:
    """Exact bytes of a file of ``header`` and ``meta`` that are not the payload
    (``payload_len``: a grid-mode payload's length, which its word count field depends on).

    ``len(pack(header, payload, meta)) == overhead(header, meta, len(payload)) + len(payload)``.

    Raises
    ------
    ValueError
        As :func:`pack`.
    """
    metab = _meta_bytes(meta)
    return len(_header_bytes(header, bool(metab), payload_len)) + len(metab) + CRC.size


# ------------------------------------------------------------------------------ reading


def _code(table: Mapping[str, int], code: int, what: str) -> str:
    for name, value in table.items():
        if value == code:
            return name
    raise VersionError(f"file uses {what} code {code}, unknown to this occcodec: upgrade")


def _read_nibbles(r: _Reader, count: int, what: str) -> list[int]:
    raw = r.take((count + 1) // 2, what)
    values = [v for b in raw for v in (b & 15, b >> 4)]
    if len(values) > count and values[count]:
        raise FormatError(f"{what} have a nonzero padding nibble: the file is damaged")
    return values[:count]


def _read_header(r: _Reader) -> tuple[LeanHeader, int, bool]:
    flags = r.u8("flags")
    if flags & FLAG_RESERVED or flags & 3 == 3:
        raise VersionError(f"file sets flags 0x{flags:02x} that this occcodec does not know: "
                           "upgrade")
    sizes = [r.varint("grid size") + 1 for _ in range(1 if flags & FLAG_CUBIC else 3)]
    grid = (sizes[0],) * 3 if flags & FLAG_CUBIC else tuple(sizes)
    if max(grid) > MAX_GRID:
        raise FormatError(f"grid {grid} has a size above {MAX_GRID}: the file is damaged")
    f64 = bool(flags & FLAG_FRAME64)
    fmt = "<4d" if f64 else "<4f"
    *center, scale = struct.unpack(fmt, r.take(struct.calcsize(fmt), "frame"))
    if not all(math.isfinite(v) for v in (*center, scale)) or scale <= 0:
        raise FormatError("frame is not finite with a positive scale: the file is damaged")
    if flags & FLAG_GRID:
        return _read_grid_mode(r, flags, grid, (center[0], center[1], center[2]), scale)
    net = r.u8("network byte")
    pe, count = net & 15, (net >> 4) + 1
    if pe > MAX_PE_LEVELS:
        raise VersionError(f"file uses input encoding code {pe}, unknown to this occcodec: "
                           "upgrade")
    acts = [_code(ACTIVATION_CODES, a, "activation")
            for a in _read_nibbles(r, count, "activation codes")]
    layers = []
    for act in acts:
        units = r.varint("layer units") + 1
        if units > MAX_UNITS:
            raise FormatError(f"layer of {units} units (most {MAX_UNITS}): the file is damaged")
        layers.append(Layer(units, act))
    arch = Arch(tuple(layers), pe)
    # before anything the architecture sizes is allocated (formats/occ-v2.md 4)
    limits.check("params", arch.params, f"the network {arch}"[:80])
    byte = r.u8("weight scheme")
    scheme = _code(SCHEME_CODES, byte & 15, "weight scheme")
    spec = WeightsSpec(scheme)
    if scheme == "lowbit":
        bits = _read_nibbles(r, len(arch.layer_dims()), "bit depths")
        spec = WeightsSpec(scheme, tuple(bits), (byte >> 4) + lowbit.MIN_BIAS_BITS)
    elif byte >> 4:
        raise FormatError(f"weight scheme byte 0x{byte:02x} has bits set that {scheme} does "
                          "not use: the file is damaged")
    try:
        size = spec.payload_size(arch)
    except ValueError as exc:
        raise FormatError(f"weight scheme is invalid ({exc}): the file is damaged") from None
    header = LeanHeader(grid, (center[0], center[1], center[2]), scale,  # type: ignore[arg-type]
                        FILLS[flags & 3], arch, spec)
    return header, size, bool(flags & FLAG_META)


def _read_grid_mode(r: _Reader, flags: int, grid: tuple[int, ...],
                    center: tuple[float, float, float], scale: float
                    ) -> tuple[LeanHeader, int, bool]:
    """The rest of a grid-mode header: the ctx-grid model and the payload's word count."""
    if max(grid) > MAX_CODED_GRID:
        raise FormatError(f"grid-mode grid {grid} has a size above {MAX_CODED_GRID}: the file "
                          "is damaged")
    model = r.u8("grid model")
    if model not in GRID_MODELS:
        raise VersionError(f"file uses ctx-grid model {model}, unknown to this occcodec: "
                           "upgrade")
    words = r.varint("grid word count")
    header = LeanHeader(grid, center, scale, FILLS[flags & 3], None,  # type: ignore[arg-type]
                        grid_model=model)
    return header, 4 * words, bool(flags & FLAG_META)


def _read_meta(chunk: bytes) -> dict[str, Any]:
    meta = read_map(chunk, "META")
    if not all(isinstance(k, str) for k in meta):
        raise FormatError("META is not a msgpack map with string keys: the file is damaged")
    return _expand(meta, META_KEYS)


def unpack(data: bytes) -> tuple[LeanHeader, bytes, dict[str, Any] | None, V2Info]:
    """Parse and verify a version-2 file: (header, raw payload, expanded META or None, info).

    Raises
    ------
    FormatError
        Not an .occ v2 file, truncated, checksum mismatch, malformed field or META.
    VersionError
        A newer version digit, a reserved flag bit or an unknown code.
    LimitError
        The file or its network is above :mod:`occcodec.format.limits`.
    """
    if not data.startswith(PREFIX):
        if PREFIX.startswith(data):
            raise FormatError("file is truncated (shorter than the .occ magic)")
        raise FormatError("not an .occ file (wrong magic bytes)")
    if len(data) < len(MAGIC):
        raise FormatError("file is truncated (shorter than the .occ magic)")
    digit = data[3]
    if digit != MAGIC[3]:
        if ord("3") <= digit <= ord("9"):
            raise VersionError(f"file uses .occ format {chr(digit)}, newer than this occcodec "
                               "reads (1 and 2): upgrade occcodec")
        raise FormatError("not an .occ file (wrong magic bytes)")
    limits.check("file", len(data), "reading the .occ data")
    if len(data) < len(MAGIC) + 1 + CRC.size:
        raise FormatError("file is truncated (too short for a version 2 file)")
    end = len(data) - CRC.size
    (stored,) = CRC.unpack_from(data, end)
    if zlib.crc32(data[:end]) & 0xFFFFFFFF != stored:
        raise FormatError("checksum mismatch: the file is corrupt or truncated")
    r = _Reader(data, end)
    r.take(len(MAGIC), "magic")
    header, size, has_meta = _read_header(r)
    head_len = r.pos
    limits.check("memory", size, "reading the weights")
    payload = r.take(size, "grid payload" if header.arch is None else "weight payload")
    meta: dict[str, Any] | None = None
    if has_meta:
        if r.pos == end:
            raise FormatError("file flags a META section but has none: the file is damaged")
        meta = _read_meta(data[r.pos : end])
    elif r.pos != end:
        raise FormatError(f"file has {end - r.pos} unexpected bytes after its payload")
    sections = {"header": head_len, "grid" if header.arch is None else "weights": size}
    if meta is not None:
        sections["meta"] = end - head_len - size
    sections["checksum"] = CRC.size
    return header, payload, meta, V2Info(len(data), sections, header_frame64(data))


def header_frame64(data: bytes) -> bool:
    """Whether a v2 file's frame is stored in float64 (flag bit 3)."""
    return len(data) > 4 and bool(data[4] & FLAG_FRAME64)
