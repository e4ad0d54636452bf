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

from occcodec.format import container, network  # noqa: E402
from occcodec.format.arch import Arch, parse_arch  # noqa: E402
from occcodec.format.header import build_header  # noqa: E402
from occcodec.format.network import Weights  # noqa: E402
from occcodec.format.quant import dequantize, quantize  # noqa: E402
from occcodec.shapes.frame import axis_coords

OUT_DIR = Path(__file__).resolve().parent / "vectors"
INDEX = "vectors.json"
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


def make_network(spec: VectorSpec) -> tuple[Arch, bytes, int]:
    """Draw seeds from ``spec.seed`` until a network meets the margin; (arch, raw, seed)."""
    arch = parse_arch(spec.arch)
    shapes = [spec.grid] + [network.scaled_shape(spec.grid, r) for r in spec.resolutions]
    for seed in range(spec.seed, spec.seed + MAX_TRIES):
        weights = _draw(arch, np.random.default_rng(seed))
        stored = dequantize(quantize(weights, spec.quant), arch, spec.quant)
        zs = [network.logit_grid(arch, stored, axis_coords(shape)) for shape in shapes]
        bias = _place_bias(zs[0], zs[1:], _bias_dtype(spec.quant))
        if bias is None:
            continue
        weights[-1] = (weights[-1][0], np.array([bias], np.float32))
        raw = quantize(weights, spec.quant)
        stored = dequantize(raw, arch, spec.quant)
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
        "x-unknown-required": (assemble(secs + [(b"XREQ", 1, b"must understand")]),
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

    existing = sorted(args.out.glob("*.occ")) + sorted(args.out.glob(INDEX))
    if existing and not args.force:
        print(f"make_vectors: {args.out} already holds {len(existing)} vector file(s); "
              "they are a published contract: rerun with --force only on purpose",
              file=sys.stderr)
        return 1
    files, index = build()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(args.out / name, data, force=True)
    text = json.dumps(index, indent=2) + "\n"
    atomic_write_bytes(args.out / INDEX, text.encode(), force=True)
    print(f"wrote {len(files)} vectors and {INDEX} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
