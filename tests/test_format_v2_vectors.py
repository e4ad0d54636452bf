"""The version-2 vectors of formats/vectors/v2/, read by occcodec and by a parser written from
formats/occ-v2.md alone.

``spec_read`` below follows occ-v2.md (struct, zlib, msgpack; no occcodec import). For what v2
takes unchanged from v1 (the v1 weight layouts, the network's evaluation) it calls the v1
spec reader of ``tests/test_format_vectors.py``, itself written from occ-v1.md alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import re
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from occcodec import decoder
from occcodec.errors import FormatError, VersionError

FORMATS = Path(__file__).resolve().parent.parent / "formats"
VECTORS = FORMATS / "vectors" / "v2"
INDEX = json.loads((VECTORS / "vectors.json").read_text())
VALID = sorted(INDEX["valid"])
INVALID = sorted(INDEX["invalid"])
ERRORS = {"FormatError": FormatError, "VersionError": VersionError}
SPEC = (FORMATS / "occ-v2.md").read_text()


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


V1 = _load("v1_spec_reader", Path(__file__).resolve().parent / "test_format_vectors.py")


def vector(name: str) -> bytes:
    rec = INDEX["valid"].get(name) or INDEX["invalid"][name]
    return (VECTORS / rec["file"]).read_bytes()


def grid_sha256(grid: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(grid.ravel(order="C")).tobytes()).hexdigest()


# ---------------------------------------------------------------- the reader, from occ-v2.md


class SpecError(Exception):
    """kind: "format" or "version" (occ-v2.md section 4)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind


FILLS = ("solid", "shell", "given")
ACTS = {0: "relu", 1: "elu", 2: "swish"}
SCHEMES = {0: "fp32", 1: "fp16", 2: "int8", 3: "int8-layer", 4: "lowbit"}
ALIASES: dict[str, dict[str, str]] = {  # section 7, per map: alias -> name
    "": {"e": "encoder", "s": "source", "o": "options", "m": "metrics", "c": "candidates"},
    "source": {"k": "kind", "h": "sha256"},
    "options": {"p": "preset", "r": "resolution", "f": "fill", "q": "quant", "s": "seed",
                "t": "threads", "a": "arch", "m": "max_params", "i": "target_iou",
                "b": "max_bytes", "x": "strip"},
    "metrics": {"i": "iou", "a": "accuracy", "p": "params"},
}


class Cursor:
    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = data, 0, end

    def bytes(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise SpecError("format", "field runs into the checksum")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.bytes(1)[0]

    def varint(self) -> int:  # section 1
        value = 0
        for i in range(3):
            b = self.u8()
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if i and b == 0:
                    raise SpecError("format", "non-minimal varint")
                return value
        raise SpecError("format", "varint longer than 3 bytes")

    def nibbles(self, count: int) -> list[int]:
        raw = self.bytes((count + 1) // 2)
        vals = []
        for b in raw:
            vals += [b & 0x0F, b >> 4]
        if count % 2 and vals[-1]:
            raise SpecError("format", "padding nibble")
        return vals[:count]


def _no_dupes(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in pairs:
        if k in out:
            raise SpecError("format", "repeated META key")
        out[k] = v
    return out


def _expand(meta: dict[str, Any], table: str = "") -> dict[str, Any]:
    out = {}
    for key, value in meta.items():
        name = ALIASES[table].get(key, key) if table in ALIASES else key
        if table == "" and name in ("source", "options", "metrics") and isinstance(value, dict):
            value = _expand(value, name)
        out[name] = value
    return out


def _lowbit(raw: bytes, dims: list[tuple[int, int]], bits: list[int], bb: int) -> list:
    """Section 6.2 with Python integers and struct."""
    n_scales = sum(o + 1 for _, o in dims)
    total = sum(i * o * b + o * bb for (i, o), b in zip(dims, bits, strict=True))
    if len(raw) != 2 * n_scales + (total + 7) // 8:
        raise SpecError("format", "lowbit payload size")
    scales = list(struct.unpack_from(f"<{n_scales}e", raw, 0))
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise SpecError("format", "scale")
    stream = int.from_bytes(raw[2 * n_scales :], "little")  # bit j = bit j%8 of byte j//8
    if stream >> total:
        raise SpecError("format", "padding bits")
    pos, spos, out = 0, 0, []

    def codes(count: int, width: int) -> list[int]:
        nonlocal pos
        qmax = (1 << (width - 1)) - 1
        vals = []
        for _ in range(count):
            u = (stream >> pos) & ((1 << width) - 1)  # least significant bit first
            pos += width
            if u == (1 << width) - 1:
                raise SpecError("format", "all-ones code")
            vals.append(u - qmax)
        return vals

    for (fan_in, fan_out), b in zip(dims, bits, strict=True):
        s, t = scales[spos : spos + fan_out], scales[spos + fan_out]
        spos += fan_out + 1
        q = codes(fan_in * fan_out, b)
        kernel = [V1._f32(v * s[idx % fan_out]) for idx, v in enumerate(q)]
        bias = [V1._f32(v * t) for v in codes(fan_out, bb)]
        out.append((kernel, bias))
    return out


def spec_read(data: bytes) -> tuple[dict[str, Any], Any]:
    """(fields, a v1 SpecFile for the evaluation of occ-v1.md 9) per occ-v2.md section 4."""
    if len(data) < 4:
        raise SpecError("format", "short")
    if data[:3] != b"\x89OC":
        raise SpecError("format", "magic")
    if data[3] != ord("2"):
        raise SpecError("version" if ord("3") <= data[3] <= ord("9") else "format", "version")
    if len(data) < 9:
        raise SpecError("format", "short")
    if struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise SpecError("format", "crc")
    c = Cursor(data, len(data) - 4)
    c.bytes(4)
    flags = c.u8()
    if flags & 0xE0 or flags & 3 == 3:
        raise SpecError("version", "flags")
    sizes = [c.varint() + 1 for _ in range(1 if flags & 0x10 else 3)]
    grid = sizes * 3 if flags & 0x10 else sizes
    if max(grid) > 4096:
        raise SpecError("format", "grid")
    frame = struct.unpack("<4d" if flags & 0x08 else "<4f", c.bytes(32 if flags & 0x08 else 16))
    if not all(map(math.isfinite, frame)) or frame[3] <= 0:
        raise SpecError("format", "frame")
    net = c.u8()
    levels, hidden = net & 0x0F, (net >> 4) + 1
    if levels > 12:
        raise SpecError("version", "encoding")
    acts = []
    for code in c.nibbles(hidden):
        if code not in ACTS:
            raise SpecError("version", "activation")
        acts.append(ACTS[code])
    widths = [c.varint() + 1 for _ in range(hidden)]
    if max(widths) > 4096:
        raise SpecError("format", "units")
    dims = list(zip([3 + 6 * levels, *widths], [*widths, 1], strict=True))
    sb = c.u8()
    if sb & 0x0F not in SCHEMES:
        raise SpecError("version", "scheme")
    scheme = SCHEMES[sb & 0x0F]
    if scheme == "lowbit":
        bb = (sb >> 4) + 4
        bits = c.nibbles(len(dims))
        if not all(3 <= b <= 8 for b in bits) or bb > 16:
            raise SpecError("format", "bit depths")
        size = 2 * sum(o + 1 for _, o in dims) + (sum(
            i * o * b + o * bb for (i, o), b in zip(dims, bits, strict=True)) + 7) // 8
    else:
        if sb >> 4:
            raise SpecError("format", "scheme high nibble")
        size = sum({"fp32": 4 * (i * o + o), "fp16": 2 * (i * o + o),
                    "int8": 4 * o + i * o + 2 * o, "int8-layer": 4 + i * o + 2 * o}[scheme]
                   for i, o in dims)
    payload = c.bytes(size)
    meta = None
    if flags & 0x04:
        if c.pos == c.end:
            raise SpecError("format", "META flagged, absent")
        try:
            meta = msgpack.unpackb(data[c.pos : c.end], raw=False, strict_map_key=False,
                                   object_pairs_hook=_no_dupes)
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError("format", f"META: {exc}") from None
        if not isinstance(meta, dict) or not all(isinstance(k, str) for k in meta):
            raise SpecError("format", "META is not a map with str keys")
        meta = _expand(meta)
    elif c.pos != c.end:
        raise SpecError("format", "bytes after the payload")
    if scheme == "lowbit":
        weights = _lowbit(payload, dims, bits, bb)
    else:
        try:
            weights = V1._spec_weights(payload, dims, scheme)
        except V1.SpecError as exc:
            raise SpecError(exc.kind, str(exc)) from None
    fields = {"grid": grid, "center": list(frame[:3]), "scale": frame[3],
              "fill": FILLS[flags & 3], "scheme": scheme, "meta": meta,
              "frame64": bool(flags & 0x08)}
    return fields, V1.SpecFile((2, 0), fields, dims, acts, levels, weights)


# ---------------------------------------------------------------- the vectors themselves


def test_index_covers_the_directory() -> None:
    listed = {r["file"] for r in [*INDEX["valid"].values(), *INDEX["invalid"].values()]}
    assert listed == {p.name for p in VECTORS.glob("*.occ")}
    assert len(VALID) >= 6 and len(INVALID) >= 20


@pytest.mark.parametrize("name", VALID + INVALID)
def test_vector_files_are_intact(name: str) -> None:
    rec = INDEX["valid"].get(name) or INDEX["invalid"][name]
    data = vector(name)
    assert len(data) == rec["bytes"] and hashlib.sha256(data).hexdigest() == rec["sha256"]


@pytest.mark.parametrize("name", VALID)
def test_occcodec_decodes_the_valid_vectors(name: str) -> None:
    rec = INDEX["valid"][name]
    coded = decoder.read(VECTORS / rec["file"])
    assert coded.file.version == (2, 0) and coded.lean is not None
    for res, want in [(None, rec), *((int(r), s) for r, s in rec.get("resolutions", {}).items())]:
        g = decoder.voxels(coded, res)
        assert [list(g.shape), int(g.sum()), grid_sha256(g)] == [
            want["shape"], want["occupied"], want["grid_sha256"]]
    assert np.abs(coded.logit_grid(coded.header.grid)).min() > INDEX["margin"]


@pytest.mark.parametrize("name", INVALID)
def test_occcodec_refuses_the_invalid_vectors(name: str) -> None:
    rec = INDEX["invalid"][name]
    with pytest.raises(FormatError) as exc:
        decoder.read(VECTORS / rec["file"])
    assert type(exc.value) is ERRORS[rec["error"]], str(exc.value)
    assert rec["file"] in str(exc.value)
    if rec["error"] == "VersionError":
        assert "upgrade" in str(exc.value)


# ---------------------------------------------------------------- the spec reader agrees


@pytest.mark.parametrize("name", VALID)
def test_spec_reader_agrees_with_occcodec(name: str) -> None:
    data = vector(name)
    fields, f = spec_read(data)
    coded = decoder.load(data)
    h = coded.header
    assert tuple(fields["grid"]) == h.grid and fields["fill"] == h.fill
    assert tuple(fields["center"]) == h.center and fields["scale"] == h.scale
    assert f.dims == h.arch.layer_dims() and f.levels == h.arch.pe_levels
    assert f.acts == [layer.activation for layer in h.arch.layers]
    assert (fields["meta"] or {}) == h.raw
    assert fields["frame64"] == (name == "d-int8-frame64")
    for (kernel, bias), (k, b) in zip(f.weights, coded.weights, strict=True):
        assert np.array_equal(np.array(kernel, np.float32).reshape(k.shape), k)
        assert np.array_equal(np.array(bias, np.float32), b)


@pytest.mark.parametrize("name", VALID)
def test_spec_decoder_reproduces_the_recorded_grids(name: str) -> None:
    rec = INDEX["valid"][name]
    fields, f = spec_read(vector(name))
    decodes = [(fields["grid"], rec)]
    decodes += [(V1.spec_scaled_shape(fields["grid"], int(r)), sub)
                for r, sub in rec.get("resolutions", {}).items()]
    for shape, want in decodes:
        assert shape == want["shape"]
        grid = V1.spec_grid(f, shape)
        assert int(grid.sum()) == want["occupied"]
        assert grid_sha256(grid) == want["grid_sha256"]


@pytest.mark.parametrize("name", INVALID)
def test_spec_reader_refuses_the_invalid_vectors(name: str) -> None:
    rec = INDEX["invalid"][name]
    with pytest.raises(SpecError) as exc:
        spec_read(vector(name))
    assert exc.value.kind == {"FormatError": "format", "VersionError": "version"}[rec["error"]]


@pytest.mark.parametrize(("v2_name", "v1_name"), [
    ("a-fp16-stripped", "b-pe2-elu-swish-fp16"), ("b-fp32-meta", "a-identity-relu-fp32"),
    ("d-int8-frame64", "c-pe1-int8"), ("f-int8-layer-future-meta", "d-identity-int8-layer")])
def test_same_network_as_a_v1_vector_same_weights_and_grid(v2_name: str, v1_name: str) -> None:
    """v2's payload is v1's raw weights: the same network decodes to the same grid."""
    new = decoder.load(vector(v2_name))
    old = decoder.read(FORMATS / "vectors" / f"{v1_name}.occ")
    assert new.file.weights == old.file.weights
    assert INDEX["valid"][v2_name]["grid_sha256"] == V1.INDEX["valid"][v1_name]["grid_sha256"]


# ---------------------------------------------------------------- regenerating


def test_make_vectors_reproduces_the_v2_vectors_byte_for_byte() -> None:
    """No zstd in v2: the same networks give the same bytes on any machine."""
    files, index = _load("make_vectors", FORMATS / "make_vectors.py").build_v2()
    assert sorted(files) == sorted(p.name for p in VECTORS.glob("*.occ"))
    for name, data in files.items():
        assert data == (VECTORS / name).read_bytes(), name
    assert V1._strip_margins(index) == V1._strip_margins(INDEX)


# ---------------------------------------------------------------- the spec text itself


def _dump_blocks() -> dict[str, list[tuple[int, bytes]]]:
    """The hex dumps of occ-v2.md section 13, by the vector each names before it."""
    blocks: dict[str, list[tuple[int, bytes]]] = {}
    name = ""
    for line in SPEC.splitlines():
        named = re.search(r"`vectors/(v2/|v2-grid/)([a-z0-9-]+)\.occ`", line)
        if named:
            name = named.group(1) + named.group(2)
        row = re.match(r"^([0-9a-f]{8}): ((?:[0-9a-f]{2,4} ?){1,8})", line)
        if row and name:
            blocks.setdefault(name, []).append(
                (int(row.group(1), 16), bytes.fromhex(row.group(2).replace(" ", ""))))
    return blocks


def test_spec_hex_dumps_are_the_vectors() -> None:
    blocks = _dump_blocks()
    assert set(blocks) == {"v2/a-fp16-stripped", "v2/c-lowbit-meta", "v2-grid/g-ball-stripped"}
    for name, rows in blocks.items():
        data = (VECTORS.parent / f"{name}.occ").read_bytes()
        for offset, chunk in rows:
            assert data[offset : offset + len(chunk)] == chunk, (name, hex(offset))
        if name.startswith("v2/"):
            assert f"`{data[-4:].hex(' ')}`" in SPEC
        assert f"`vectors/{name}.occ` ({len(data)} bytes)" in SPEC


def test_spec_lists_every_vector() -> None:
    for name in VALID + INVALID:
        assert f"| `{name}` |" in SPEC, name
