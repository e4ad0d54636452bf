"""Regenerate the .occ v1 test vectors in ``formats/vectors/`` (see ``formats/occ-v1.md``).

Run it on purpose only: the vectors are a contract with other decoders, and new bytes break
it. It refuses to overwrite existing vectors unless ``--force`` is given::

    python formats/make_vectors.py            # writes formats/vectors/ if it is empty
    python formats/make_vectors.py --force    # regenerate (then review the diff!)

No TensorFlow and no training: every network is drawn from a seeded numpy generator and its
output bias is then placed in the widest gap between the grid's logits, so that 20-50 % of
the voxels are occupied and no voxel has ``|logit| < MARGIN``, in float32 (occcodec's own
decoder) and in float64 (an independent evaluation). Float differences between decoders
therefore cannot flip a voxel of a vector. A draw that misses the margin is redrawn with the
next seed.

Beside the valid vectors it writes invalid ones, each derived from vector ``a`` by hand
(bad magic, truncation, checksum, newer major, unknown required section, ...), with the
error class a reader must raise. ``vectors.json`` records, per vector, the file's SHA-256 and
either the decoded grid (shape, occupied count, SHA-256 of ``np.packbits(grid.ravel())``) or
the expected error.

The file bytes depend on the zstd library (level 19), which ``vectors.json`` records; the
decoded grids do not.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import zstandard

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout, occcodec not installed
    sys.path.insert(0, str(ROOT))

from occcodec.format import container, network, v2
from occcodec.format.arch import Arch, parse_arch
from occcodec.format.header import build_header
from occcodec.format.network import Weights
from occcodec.shapes.frame import axis_coords

OUT_DIR = Path(__file__).resolve().parent / "vectors"
INDEX = "vectors.json"
#: The version-2 vectors' folder, under the v1 vectors' (their own ``vectors.json``).
V2_DIR = "v2"
#: The version-2 grid-mode vectors' folder (occ-v2.md section 6.3), added with grid mode.
V2_GRID_DIR = "v2-grid"
#: Smallest |logit| allowed at any voxel of a vector, in float32 and in float64.
MARGIN = 1e-3
#: Fraction of occupied voxels a vector must have.
FILL_RANGE = (0.2, 0.5)
MAX_TRIES = 200


@dataclass(frozen=True)
class VectorSpec:
    name: str
    arch: str
    quant: str
    grid: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float
    seed: int
    #: Extra decode resolutions (longest axis) recorded for this vector.
    resolutions: tuple[int, ...] = ()


SPECS = (
    VectorSpec("a-identity-relu-fp32", "16:relu,16:relu", "fp32", (16, 16, 16),
               (0.0, 0.0, 0.0), 1.0, 1000),
    # Non-cubic grid; decoded again at 16 (down) and 27 on the long side, where
    # scaled_shape meets a tie: 20 * 27 / 24 = 22.5 rounds (half to even) to 22.
    VectorSpec("b-pe2-elu-swish-fp16", "pe2,24:elu,16:swish", "fp16", (20, 16, 24),
               (0.5, -1.25, 2.0), 0.75, 2000, resolutions=(16, 27)),
    VectorSpec("c-pe1-int8", "pe1,12:swish,12:relu,8:elu", "int8", (18, 18, 12),
               (10.0, 20.0, 30.0), 2.5, 3000),
    VectorSpec("d-identity-int8-layer", "32:elu", "int8-layer", (16, 24, 16),
               (0.0, 0.0, 0.0), 1.0, 4000),
)


@dataclass(frozen=True)
class V2Spec:
    """A version-2 vector (formats/occ-v2.md): a network, its weight scheme, frame and META."""

    name: str
    arch: str
    weights: v2.WeightsSpec
    grid: tuple[int, int, int]
    center: tuple[float, float, float]
    scale: float
    fill: str
    seed: int
    meta: bool
    resolutions: tuple[int, ...] = ()
    #: META keys beyond the usual four (a reader keeps what it does not know).
    extra_meta: tuple[tuple[str, Any], ...] = ()


#: The v2 vectors (in ``vectors/v2/``). Where arch, scheme, grid and seed equal a v1
#: vector's, the network and the decoded grid are that vector's too.
V2_SPECS = (
    V2Spec("a-fp16-stripped", "pe2,24:elu,16:swish", v2.WeightsSpec("fp16"), (20, 16, 24),
           (0.5, -1.25, 2.0), 0.75, "given", 2000, meta=False, resolutions=(16, 27)),
    V2Spec("b-fp32-meta", "16:relu,16:relu", v2.WeightsSpec("fp32"), (16, 16, 16),
           (0.0, 0.0, 0.0), 1.0, "solid", 1000, meta=True),
    # 3 dense layers: an odd number of bit-depth nibbles, so one padding nibble
    V2Spec("c-lowbit-meta", "pe1,12:swish,8:elu", v2.WeightsSpec("lowbit", (3, 5, 8), 10),
           (18, 13, 11), (10.0, 20.0, 30.0), 2.5, "shell", 5000, meta=True),
    # float32 would move the frame by ~6e-5 world units, 5 % of a 0.0011-unit voxel
    V2Spec("d-int8-frame64", "pe1,12:swish,12:relu,8:elu", v2.WeightsSpec("int8"),
           (18, 18, 12), (1000.1, -2000.2, 0.3), 0.01, "solid", 3000, meta=False),
    # two-byte varints: a grid size of 130 and a layer of 130 units
    V2Spec("e-lowbit-wide", "pe3,130:relu", v2.WeightsSpec("lowbit", (4, 8), 6),
           (130, 9, 8), (0.0, 0.0, 0.0), 1.0, "solid", 6000, meta=False),
    # META with keys this reader has no alias for: kept by their names
    V2Spec("f-int8-layer-future-meta", "32:elu", v2.WeightsSpec("int8-layer"), (16, 24, 16),
           (0.0, 0.0, 0.0), 1.0, "given", 4000, meta=True,
           extra_meta=(("x-future", {"anything": [1, 2.5, "three"]}),
                       ("candidates", [["32:elu", 0.97], ["16:relu", 0.93]]))),
)


# ---------------------------------------------------------------- an independent float64 decoder

def _coords64(shape: tuple[int, ...]) -> np.ndarray:
    m = max(shape)
    axes = [(np.arange(n) - (n - 1) / 2.0) / (m / 2.0) for n in shape]
    xx, yy, zz = np.meshgrid(*axes, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel(), zz.ravel()], axis=1)


def logits64(arch: Arch, weights: Weights, shape: tuple[int, ...]) -> np.ndarray:
    """The spec's forward pass in float64, written apart from occcodec.format.network."""
    p = _coords64(shape)
    feats = [p]
    for k in range(arch.pe_levels):
        feats += [np.sin(np.pi * 2.0**k * p), np.cos(np.pi * 2.0**k * p)]
    h = np.concatenate(feats, axis=1)
    acts = {"relu": lambda x: np.maximum(x, 0.0),
            "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))),
            "swish": lambda x: x * (0.5 * (1.0 + np.tanh(0.5 * x)))}  # x * sigmoid(x)
    for layer, (k, b) in zip(arch.layers, weights[:-1], strict=True):
        h = acts[layer.activation](h @ k.astype(np.float64) + b.astype(np.float64))
    k, b = weights[-1]
    return (h @ k.astype(np.float64) + b.astype(np.float64))[:, 0].reshape(shape)


# ---------------------------------------------------------------- drawing a network

def _draw(arch: Arch, rng: np.random.Generator) -> Weights:
    weights: Weights = []
    dims = arch.layer_dims()
    for idx, (fan_in, fan_out) in enumerate(dims):
        gain = 8.0 if idx == len(dims) - 1 else 1.0  # spread the logits over several units
        kernel = rng.standard_normal((fan_in, fan_out)) * gain * np.sqrt(2.0 / fan_in)
        bias = rng.standard_normal(fan_out) * 0.2
        weights.append((kernel.astype(np.float32), bias.astype(np.float32)))
    weights[-1] = (weights[-1][0], np.zeros(1, np.float32))
    return weights


def _bias_dtype(quant: str) -> str:
    return "<f4" if quant == "fp32" else "<f2"


def _place_bias(native: np.ndarray, others: list[np.ndarray], dtype: str) -> float | None:
    """The output bias, representable in ``dtype``, farthest from the logits of every grid
    decoded for the vector, among those that leave FILL_RANGE of the native grid occupied."""
    s = np.sort(native.ravel().astype(np.float64))
    n = len(s)
    lo, hi = int(np.ceil(n * (1 - FILL_RANGE[1]))), int(np.floor(n * (1 - FILL_RANGE[0])))
    if hi <= lo:
        return None
    every = np.sort(np.concatenate([native.ravel(), *(z.ravel() for z in others)]))
    every = every[(every >= s[lo - 1]) & (every <= s[hi - 1])].astype(np.float64)
    if len(every) < 2:
        return None
    # a threshold t between two neighbours; the bias -t is rounded to what the file stores
    t = -(-(every[:-1] + every[1:]) / 2.0).astype(dtype).astype(np.float64)
    k = int(np.argmax(np.minimum(t - every[:-1], every[1:] - t)))
    return float(-t[k])


def _margins(arch: Arch, weights: Weights, shapes: list[tuple[int, int, int]]) -> float:
    """Smallest |logit| over the shapes in float32 and float64; 0 if the two disagree."""
    worst = np.inf
    for shape in shapes:
        z32 = network.logit_grid(arch, weights, axis_coords(shape))
        z64 = logits64(arch, weights, shape)
        if not np.array_equal(z32 > 0, z64 > 0):
            return 0.0
        worst = min(worst, float(np.abs(z32).min()), float(np.abs(z64).min()))
    return worst


def make_network(spec: VectorSpec | V2Spec) -> tuple[Arch, bytes, int]:
    """Draw seeds from ``spec.seed`` until a network meets the margin; (arch, raw, seed)."""
    arch = parse_arch(spec.arch)
    wspec = spec.weights if isinstance(spec, V2Spec) else v2.WeightsSpec(spec.quant)
    shapes = [spec.grid] + [network.scaled_shape(spec.grid, r) for r in spec.resolutions]
    for seed in range(spec.seed, spec.seed + MAX_TRIES):
        weights = _draw(arch, np.random.default_rng(seed))
        stored = wspec.dequantize(wspec.quantize(weights), arch)
        zs = [network.logit_grid(arch, stored, axis_coords(shape)) for shape in shapes]
        bias = _place_bias(zs[0], zs[1:], _bias_dtype(wspec.scheme))
        if bias is None:
            continue
        weights[-1] = (weights[-1][0], np.array([bias], np.float32))
        raw = wspec.quantize(weights)
        stored = wspec.dequantize(raw, arch)
        frac = float(network.occupancy_grid(arch, stored, axis_coords(spec.grid)).mean())
        if FILL_RANGE[0] <= frac <= FILL_RANGE[1] and _margins(arch, stored, shapes) > MARGIN:
            return arch, raw, seed
    raise RuntimeError(f"{spec.name}: no seed in {MAX_TRIES} tries meets the margin")


def make_valid(spec: VectorSpec) -> tuple[bytes, int]:
    arch, raw, seed = make_network(spec)
    header = build_header(
        encoder="occcodec formats/make_vectors.py", arch=arch, grid=spec.grid,
        center=spec.center, scale=spec.scale, fill="given", quant=spec.quant,
        raw_bytes=len(raw), source_kind="voxels",
        source_sha256=hashlib.sha256(f"occ-v1 test vector {spec.name}".encode()).digest(),
        options={"vector": spec.name, "seed": seed},
        metrics={"iou": 1.0, "accuracy": 1.0, "params": arch.params})
    return container.pack(header, raw), seed


# ---------------------------------------------------------------- hand-built variants

def _split(data: bytes) -> tuple[tuple[int, int], list[tuple[bytes, int, bytes]]]:
    """Sections of a valid file, by the spec's layout (no checks: our own vector)."""
    _, major, minor, count = container.PREAMBLE.unpack_from(data, 0)
    pos, out = container.PREAMBLE.size, []
    for _ in range(count):
        tag, flags, length = container.SECTION.unpack_from(data, pos)
        pos += container.SECTION.size
        out.append((tag, flags, data[pos : pos + length]))
        pos += length
    return (major, minor), out


def assemble(sections: list[tuple[bytes, int, bytes]], major: int = 1, minor: int = 0,
             junk: bytes = b"") -> bytes:
    """A file from sections (then ``junk``), with a correct CRC: occ-v1.md's layout."""
    body = [container.PREAMBLE.pack(container.MAGIC, major, minor, len(sections))]
    for tag, flags, payload in sections:
        body += [container.SECTION.pack(tag, flags, len(payload)), payload]
    data = b"".join(body) + junk
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def _zstd(raw: bytes, content_size: bool = True) -> bytes:
    return zstandard.ZstdCompressor(level=container.ZSTD_LEVEL, write_checksum=False,
                                    write_content_size=content_size).compress(raw)


def variants(base: bytes) -> tuple[dict[str, bytes], dict[str, tuple[bytes, str, str]]]:
    """(valid variants of ``base`` that decode like it, invalid ones with error and reason)."""
    _, secs = _split(base)
    head, wgts = secs[0], secs[1]
    raw = zstandard.ZstdDecompressor().decompress(wgts[2])
    header = msgpack.unpackb(head[2], raw=False)
    future = dict(header, **{"x-future-key": {"anything": [1, 2.5, "three"]}})
    valid = {
        # A newer minor version, an unknown header key, an unknown optional section (with a
        # reserved flag bit set) between HEAD and WGTS and another at the end: all ignored.
        "e-minor-future": assemble(
            [(b"HEAD", 1, msgpack.packb(future, use_bin_type=True)),
             (b"XOPT", 0x2, b"an optional section a 1.x reader skips"),
             wgts, (b"\x00\xffzz", 0, b"")], minor=7),
        # Sections may come in any order.
        "f-weights-first": assemble([wgts, head]),
    }
    flipped = bytearray(base)
    wgts_at = len(base) - 4 - len(wgts[2])
    flipped[wgts_at + len(wgts[2]) // 2] ^= 0x10
    bad_magic = bytearray(base)
    bad_magic[1] = ord("o")
    no_grid = {k: v for k, v in header.items() if k != "grid"}
    invalid = {
        "x-bad-magic": (bytes(bad_magic), "FormatError", "second magic byte is 'o'"),
        "x-truncated": (base[:-10], "FormatError", "last 10 bytes cut off"),
        "x-bad-checksum": (bytes(flipped), "FormatError",
                           "one bit flipped inside the WGTS payload, CRC not updated"),
        "x-major-2": (assemble(secs, major=2), "VersionError", "format version 2.0"),
        "x-unknown-required": (assemble([*secs, (b"XREQ", 1, b"must understand")]),
                               "VersionError", "unknown section XREQ with the required flag"),
        "x-duplicate-head": (assemble([head, head, wgts]), "FormatError", "two HEAD sections"),
        "x-missing-weights": (assemble([head]), "FormatError", "no WGTS section"),
        "x-trailing-after-frame": (assemble([head, (b"WGTS", 1, wgts[2] + b"\0\0\0\0")]),
                                   "FormatError", "4 zero bytes after the zstd frame"),
        "x-no-content-size": (assemble([head, (b"WGTS", 1, _zstd(raw, content_size=False))]),
                              "FormatError", "zstd frame without Frame_Content_Size"),
        "x-weights-size": (assemble([head, (b"WGTS", 1, _zstd(raw[:-4]))]), "FormatError",
                           "raw weights 4 bytes shorter than the architecture needs"),
        "x-missing-grid": (assemble([(b"HEAD", 1, msgpack.packb(no_grid, use_bin_type=True)),
                                     wgts]), "FormatError", "HEAD lacks the required key grid"),
        "x-bytes-after-sections": (assemble(secs, junk=b"\0"), "FormatError",
                                   "one byte between the last section and the trailer "
                                   "(CRC correct for the file as it stands)"),
    }
    return valid, invalid


# ---------------------------------------------------------------- version 2

def v2_meta(name: str, seed: int, params: int) -> dict[str, Any]:
    """A vector's META with v1's key names (v2.pack writes their one-letter aliases)."""
    return {"encoder": "occcodec formats/make_vectors.py",
            "source": {"kind": "voxels",
                       "sha256": hashlib.sha256(f"occ-v2 test vector {name}".encode()).digest()},
            "options": {"vector": name, "seed": seed},
            "metrics": {"iou": 1.0, "accuracy": 1.0, "params": params}}


def make_valid_v2(spec: V2Spec) -> tuple[bytes, int]:
    arch, raw, seed = make_network(spec)
    header = v2.LeanHeader(spec.grid, spec.center, spec.scale, spec.fill, arch, spec.weights)
    meta = {**v2_meta(spec.name, seed, arch.params), **dict(spec.extra_meta)}
    return v2.pack(header, raw, meta if spec.meta else None), seed


def _crc(body: bytes) -> bytes:
    """``body`` with its CRC-32 appended (occ-v2.md section 3)."""
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


@dataclass
class _Fields:
    """Byte offsets of a v2 file's fields, found by walking the layout of occ-v2.md."""

    grid: int
    frame: int
    network: int
    acts: int
    widths: int
    scheme: int
    payload: int
    end: int        # where the payload ends: META, or the CRC of a stripped file


def _skip_varints(data: bytes, pos: int, count: int) -> int:
    for _ in range(count):
        while data[pos] & 0x80:
            pos += 1
        pos += 1
    return pos


def _fields(data: bytes) -> _Fields:
    head, payload, _, _ = v2.unpack(data)
    grid = 5
    frame = _skip_varints(data, grid, 1 if data[4] & 0x10 else 3)
    network = frame + (32 if data[4] & 0x08 else 16)
    hidden = (data[network] >> 4) + 1
    acts = network + 1
    widths = acts + (hidden + 1) // 2
    scheme = _skip_varints(data, widths, hidden)
    bits = head.weights.bits
    pos = scheme + 1 + ((len(bits) + 1) // 2 if bits else 0)
    return _Fields(grid, frame, network, acts, widths, scheme, pos, pos + len(payload))


def _patch(data: bytes, at: int, new: bytes, cut: int | None = None) -> bytes:
    """``data`` without its CRC, bytes ``[at, at + cut)`` replaced by ``new`` (``cut``
    defaults to ``len(new)``), then a fresh CRC."""
    body = data[:-4]
    cut = len(new) if cut is None else cut
    return _crc(body[:at] + new + body[at + cut :])


def v2_invalid(made: dict[str, bytes]) -> dict[str, tuple[bytes, str, str]]:
    """Invalid v2 vectors, from vector a (fp16, stripped, 2 hidden layers), c (lowbit, 3
    dense layers, META) and e (1 hidden layer: a padding nibble after its activation)."""
    stripped, low, wide = made["a-fp16-stripped"], made["c-lowbit-meta"], made["e-lowbit-wide"]
    fa, fc, fe = _fields(stripped), _fields(low), _fields(wide)
    flags = stripped[4]
    bad_magic = bytearray(stripped)
    bad_magic[1] = ord("o")
    flipped = bytearray(stripped)
    flipped[fa.payload + 7] ^= 0x04
    head_c = low[: fc.end]
    lbits = v2.unpack(low)[0]
    n_scales = sum(o + 1 for _, o in lbits.arch.layer_dims())
    stream_at = fc.payload + 2 * n_scales    # first code of the first kernel, 3 bits
    used = sum(i * o * b + o * lbits.weights.bias_bits
               for (i, o), b in zip(lbits.arch.layer_dims(), lbits.weights.bits, strict=True))
    assert lbits.weights.bits[0] == 3 and 0 < used % 8 < 7  # bit 7 of the last byte: padding
    assert len(lbits.weights.bits) == 3  # bit-depth nibbles (3, 5), (8, padding)
    net = stripped[fa.network]
    return {
        "x-bad-magic": (bytes(bad_magic), "FormatError", "second magic byte is 'o'"),
        "x-truncated": (stripped[:-10], "FormatError", "last 10 bytes cut off"),
        "x-bad-checksum": (bytes(flipped), "FormatError",
                           "one bit flipped in the payload, CRC not updated"),
        "x-version-3": (_patch(stripped, 3, b"3"), "VersionError", "version digit '3'"),
        "x-reserved-flag": (_patch(stripped, 4, bytes([flags | 0x80])), "VersionError",
                            "reserved flag bit 7 set"),
        "x-fill-3": (_patch(stripped, 4, bytes([flags | 0x03])), "VersionError",
                     "fill code 3 (reserved)"),
        "x-encoding-13": (_patch(stripped, fa.network, bytes([net & 0xF0 | 13])),
                          "VersionError", "positional-encoding code 13 (reserved)"),
        "x-unknown-activation": (_patch(stripped, fa.acts, bytes([stripped[fa.acts] & 0xF0 | 3])),
                                 "VersionError", "activation code 3 (reserved)"),
        "x-activation-pad-nibble": (_patch(wide, fe.acts, bytes([wide[fe.acts] | 0x10])),
                                    "FormatError",
                                    "nonzero padding nibble after vector e's one activation"),
        "x-unknown-scheme": (_patch(stripped, fa.scheme, b"\x05"), "VersionError",
                             "weight scheme code 5 (reserved)"),
        "x-scheme-high-nibble": (_patch(stripped, fa.scheme, b"\x21"), "FormatError",
                                 "fp16 with a nonzero high nibble in the scheme byte"),
        "x-nonminimal-varint": (_patch(stripped, fa.grid, bytes([stripped[fa.grid] | 0x80, 0]),
                                       cut=1), "FormatError",
                                "first grid size as a 2-byte varint with a zero last group"),
        "x-grid-4097": (_patch(stripped, fa.grid, b"\x80\x20", cut=1), "FormatError",
                        "first grid size 4097 (varint 4096)"),
        "x-scale-zero": (_patch(stripped, fa.frame + 12, struct.pack("<f", 0.0)),
                         "FormatError", "frame scale 0.0"),
        "x-payload-short": (_crc(stripped[:-5]), "FormatError",
                            "payload one byte shorter than the network needs"),
        "x-bytes-after-payload": (_crc(stripped[:-4] + b"\0"), "FormatError",
                                  "one byte after the payload, META flag clear"),
        "x-meta-flag-empty": (_patch(stripped, 4, bytes([flags | 0x04])), "FormatError",
                              "META flag set, nothing after the payload"),
        "x-meta-not-map": (_crc(head_c + msgpack.packb([1, 2])), "FormatError",
                           "META is a msgpack array"),
        "x-meta-trailing": (_crc(low[:-4] + b"\xc0"), "FormatError",
                            "a msgpack nil after the META map"),
        "x-meta-repeated-key": (_crc(head_c + b"\x82\xa1e\xa1x\xa1e\xa1y"), "FormatError",
                                "META map {e: x, e: y}"),
        "x-lowbit-bits-9": (_patch(low, fc.scheme + 1, bytes([low[fc.scheme + 1] & 0xF0 | 9])),
                            "FormatError", "bit depth 9 for the first layer"),
        "x-lowbit-bias-17": (_patch(low, fc.scheme, bytes([low[fc.scheme] & 0x0F | 13 << 4])),
                             "FormatError", "bias bits 17 (high nibble 13)"),
        "x-lowbit-pad-nibble": (_patch(low, fc.scheme + 2, bytes([low[fc.scheme + 2] | 0x10])),
                                "FormatError", "nonzero padding nibble after the bit depths"),
        "x-lowbit-all-ones": (_patch(low, stream_at, bytes([low[stream_at] | 0x07])),
                              "FormatError", "first 3-bit code is 7, the unused all-ones value"),
        "x-lowbit-pad-bits": (_patch(low, fc.end - 1, bytes([low[fc.end - 1] | 0x80])),
                              "FormatError", "nonzero padding bit at the end of the stream"),
    }


def build_v2() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The v2 vector files by name and their index, in memory."""
    files: dict[str, bytes] = {}
    index: dict[str, Any] = {
        "format": "occ 2.0", "generator": "formats/make_vectors.py",
        "grid_sha256": "as in ../vectors.json", "margin": MARGIN, "valid": {}, "invalid": {}}
    made: dict[str, bytes] = {}
    for spec in V2_SPECS:
        data, seed = make_valid_v2(spec)
        made[spec.name] = files[spec.name + ".occ"] = data
        rec = {"file": spec.name + ".occ", "sha256": hashlib.sha256(data).hexdigest(),
               "bytes": len(data), "arch": spec.arch, "weights": str(spec.weights),
               "seed": seed, **_decoded(data)}
        if spec.resolutions:
            rec["resolutions"] = {str(r): _decoded(data, r) for r in spec.resolutions}
        index["valid"][spec.name] = rec
    for name, (data, error, why) in v2_invalid(made).items():
        files[name + ".occ"] = data
        index["invalid"][name] = {"file": name + ".occ",
                                  "sha256": hashlib.sha256(data).hexdigest(),
                                  "bytes": len(data), "error": error, "why": why}
    return files, index


# ---------------------------------------------------------------- v2 grid mode

def _ball(shape: tuple[int, int, int], centre: tuple[float, ...], radius: float) -> np.ndarray:
    idx = np.indices(shape, dtype=np.float64)
    return sum((idx[a] - centre[a]) ** 2 for a in range(3)) <= radius**2  # type: ignore[no-any-return]


def _grid_specs() -> list[tuple[str, np.ndarray, str, bool, tuple[int, ...], int]]:
    """(name, grid, fill, with META, decode resolutions, ctx-grid model) of the valid
    grid-mode vectors: the first four as published with model 1, then model 2's (added when
    model 2 became the default; the model-1 files are unchanged)."""
    rng = np.random.default_rng(2026)
    ball = _ball((16, 16, 16), (7.5, 7.5, 7.5), 6.2)
    holed = _ball((20, 12, 17), (9.5, 5.5, 8.0), 7.0) & ~_ball((20, 12, 17), (9.5, 5.5, 8.0), 3.5)
    noisy = rng.random((9, 16, 5)) < 0.3
    return [
        ("g-ball-stripped", ball, "solid", False, (24, 16), 1),
        ("g-hollow-meta", holed, "shell", True, (40,), 1),
        ("g-noise-meta", noisy, "given", True, (), 1),
        ("g-empty-stripped", np.zeros((16, 16, 16), dtype=bool), "given", False, (), 1),
        ("g2-ball-stripped", ball, "solid", False, (24,), 2),
        ("g2-hollow-meta", holed, "shell", True, (), 2),
        ("g2-noise-stripped", noisy, "given", False, (), 2),
    ]


def build_v2_grid() -> tuple[dict[str, bytes], dict[str, Any]]:
    """The v2 grid-mode vector files by name and their index, in memory."""
    from occcodec.coding import ctxgrid

    files: dict[str, bytes] = {}
    index: dict[str, Any] = {
        "format": "occ 2.0, grid mode (flag bit 5)", "generator": "formats/make_vectors.py",
        "grid_sha256": "as in ../vectors.json", "valid": {}, "invalid": {}}
    made: dict[str, bytes] = {}
    for name, grid, fill, with_meta, resolutions, model in _grid_specs():
        words = ctxgrid.encode_words(grid, model)
        header = v2.LeanHeader(tuple(int(n) for n in grid.shape),  # type: ignore[arg-type]
                               (0.25, -1.5, 3.0), 2.5, fill, None, grid_model=model)
        meta = v2_meta(name, 0, 0) if with_meta else None
        data = v2.pack(header, words, meta)
        made[name] = files[name + ".occ"] = data
        rec = {"file": name + ".occ", "sha256": hashlib.sha256(data).hexdigest(),
               "bytes": len(data), "model": model, "words": len(words) // 4,
               **_decoded_grid(data)}
        assert rec["grid_sha256"] == grid_digest(grid)  # lossless, or no vector
        if resolutions:
            rec["resolutions"] = {str(r): _decoded_grid(data, r) for r in resolutions}
        index["valid"][name] = rec
    ball = made["g-ball-stripped"]
    at = 5 + 1 + 16          # flags, one cubic grid varint, f32 frame: the model byte
    body = ball[:-4]
    for name, (data, error, why) in {
        "x-grid-model-3": (_patch(ball, at, b"\x03"), "VersionError",
                           "ctx-grid model 3 (unknown)"),
        "x-grid-words-long": (_patch(ball, at + 1, bytes([ball[at + 1] + 1])), "FormatError",
                              "word count one more than the payload holds"),
        "x-grid-words-short": (_patch(ball, at + 1, bytes([ball[at + 1] - 1])), "FormatError",
                               "word count one less: 4 bytes after the payload, META clear"),
        "x-grid-1025": (_crc(body[:5] + b"\x80\x08" + body[6:]), "FormatError",
                        "cubic grid size 1025 (above grid mode's 1024)"),
        "x-grid-reserved-flag": (_patch(ball, 4, bytes([ball[4] | 0x40])), "VersionError",
                                 "reserved flag bit 6 set on a grid-mode file"),
    }.items():
        files[name + ".occ"] = data
        index["invalid"][name] = {"file": name + ".occ",
                                  "sha256": hashlib.sha256(data).hexdigest(),
                                  "bytes": len(data), "error": error, "why": why}
    return files, index


def _decoded_grid(data: bytes, resolution: int | None = None) -> dict[str, Any]:
    from occcodec import decoder

    grid = decoder.voxels(decoder.load(data), resolution)
    return {"shape": list(grid.shape), "occupied": int(grid.sum()),
            "grid_sha256": grid_digest(grid)}


# ---------------------------------------------------------------- the index

def grid_digest(grid: np.ndarray) -> str:
    """SHA-256 of the grid as bits in C order, first voxel in the high bit (np.packbits)."""
    bits = np.packbits(np.asarray(grid, bool).ravel(order="C"))
    return hashlib.sha256(bits.tobytes()).hexdigest()


def _decoded(data: bytes, resolution: int | None = None) -> dict[str, Any]:
    from occcodec import decoder

    coded = decoder.load(data)
    grid = decoder.voxels(coded, resolution)
    z = coded.logit_grid(grid.shape)
    return {"shape": list(grid.shape), "occupied": int(grid.sum()),
            "grid_sha256": grid_digest(grid), "min_abs_logit": round(float(np.abs(z).min()), 6)}


def build() -> tuple[dict[str, bytes], dict[str, Any]]:
    """All vector files by name and the index, in memory."""
    files: dict[str, bytes] = {}
    index: dict[str, Any] = {
        "format": "occ 1.0",
        "generator": "formats/make_vectors.py",
        "zstd_library": ".".join(map(str, zstandard.ZSTD_VERSION)),
        "grid_sha256": "SHA-256 of np.packbits(grid.ravel(order='C')): voxels in C order "
                       "(x slowest, z fastest), 8 per byte, first voxel in the most significant "
                       "bit, last byte zero-padded",
        "margin": MARGIN,
        "valid": {}, "invalid": {},
    }
    base = b""
    for spec in SPECS:
        data, seed = make_valid(spec)
        base = base or data
        files[spec.name + ".occ"] = data
        rec = {"file": spec.name + ".occ", "sha256": hashlib.sha256(data).hexdigest(),
               "bytes": len(data), "arch": spec.arch, "quant": spec.quant, "seed": seed,
               **_decoded(data)}
        if spec.resolutions:
            rec["resolutions"] = {str(r): _decoded(data, r) for r in spec.resolutions}
        index["valid"][spec.name] = rec
    valid, invalid = variants(base)
    for name, data in valid.items():
        files[name + ".occ"] = data
        index["valid"][name] = {"file": name + ".occ", "sha256": hashlib.sha256(data).hexdigest(),
                                "bytes": len(data), "same_as": SPECS[0].name, **_decoded(data)}
    for name, (data, error, why) in invalid.items():
        files[name + ".occ"] = data
        index["invalid"][name] = {"file": name + ".occ",
                                  "sha256": hashlib.sha256(data).hexdigest(),
                                  "bytes": len(data), "error": error, "why": why}
    return files, index


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=OUT_DIR, help=f"directory (default {OUT_DIR})")
    ap.add_argument("--force", action="store_true", help="overwrite existing vectors")
    args = ap.parse_args(argv)
    from occcodec.fsutil import atomic_write_bytes

    wrote = 0
    # one set per format version; a set already there is kept unless --force
    for out, make in ((args.out, build), (args.out / V2_DIR, build_v2),
                      (args.out / V2_GRID_DIR, build_v2_grid)):
        existing = sorted(out.glob("*.occ")) + sorted(out.glob(INDEX))
        if existing and not args.force:
            print(f"make_vectors: {out} already holds {len(existing)} vector file(s); "
                  "they are a published contract: rerun with --force only on purpose",
                  file=sys.stderr)
            continue
        files, index = make()
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            atomic_write_bytes(out / name, data, force=True)
        text = json.dumps(index, indent=2) + "\n"
        atomic_write_bytes(out / INDEX, text.encode(), force=True)
        print(f"wrote {len(files)} vectors and {INDEX} to {out}")
        wrote += 1
    return 0 if wrote else 1


if __name__ == "__main__":
    sys.exit(main())
