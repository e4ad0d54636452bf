"""The test vectors of formats/vectors/, read by occcodec and by a parser written from the spec.

``spec_read`` below follows formats/occ-v1.md alone (struct, zlib, msgpack, zstandard; numpy
only for the float64 evaluation) and does not import occcodec. Where it and occcodec agree on
every vector, the spec describes what occcodec does.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zstandard

from occcodec import decoder
from occcodec.errors import FormatError, VersionError

FORMATS = Path(__file__).resolve().parent.parent / "formats"
VECTORS = FORMATS / "vectors"
INDEX = json.loads((VECTORS / "vectors.json").read_text())
VALID = sorted(INDEX["valid"])
INVALID = sorted(INDEX["invalid"])
ERRORS = {"FormatError": FormatError, "VersionError": VersionError}


def vector(name: str) -> bytes:
    rec = INDEX["valid"].get(name) or INDEX["invalid"][name]
    return (VECTORS / rec["file"]).read_bytes()


def grid_sha256(grid: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(grid.ravel(order="C")).tobytes()).hexdigest()


# ---------------------------------------------------------------- the vectors themselves

def test_index_covers_the_directory() -> None:
    listed = {r["file"] for r in [*INDEX["valid"].values(), *INDEX["invalid"].values()]}
    assert listed == {p.name for p in VECTORS.glob("*.occ")}
    assert len(VALID) >= 4 and len(INVALID) >= 5


@pytest.mark.parametrize("name", VALID + INVALID)
def test_vector_files_are_intact(name: str) -> None:
    rec = INDEX["valid"].get(name) or INDEX["invalid"][name]
    data = vector(name)
    assert len(data) == rec["bytes"]
    assert hashlib.sha256(data).hexdigest() == rec["sha256"]


# ---------------------------------------------------------------- occcodec reads them

@pytest.mark.parametrize("name", VALID)
def test_valid_vector_decodes(name: str) -> None:
    rec = INDEX["valid"][name]
    coded = decoder.read(VECTORS / rec["file"])
    grid = decoder.voxels(coded)
    assert list(grid.shape) == rec["shape"]
    assert int(grid.sum()) == rec["occupied"]
    assert grid_sha256(grid) == rec["grid_sha256"]
    for res, sub in rec.get("resolutions", {}).items():
        g = decoder.voxels(coded, int(res))
        assert [list(g.shape), int(g.sum()), grid_sha256(g)] == [
            sub["shape"], sub["occupied"], sub["grid_sha256"]]
    # the margin that makes the hashes safe across float implementations
    z = coded.logit_grid(grid.shape)
    assert np.abs(z).min() > INDEX["margin"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vector_is_refused(name: str) -> None:
    rec = INDEX["invalid"][name]
    with pytest.raises(FormatError) as exc:
        decoder.read(VECTORS / rec["file"])
    assert type(exc.value) is ERRORS[rec["error"]], str(exc.value)
    assert rec["file"] in str(exc.value)  # the message names the file
    if rec["error"] == "VersionError":
        assert "upgrade" in str(exc.value)


# ---------------------------------------------------------------- an independent reader

class SpecError(Exception):
    """kind: "format" or "version" (occ-v1.md section 4)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind


@dataclass
class SpecFile:
    version: tuple[int, int]
    header: dict[str, Any]
    dims: list[tuple[int, int]]
    acts: list[str]
    levels: int
    weights: list[tuple[list[float], list[float]]]  # (row-major kernel, bias) per layer
    skipped: list[bytes] = field(default_factory=list)


MAGIC = b"\x89OCC\r\n\x1a\n"
ACTS = ("relu", "elu", "swish")
SCHEMES = ("fp32", "fp16", "int8", "int8-layer")


def _is_uint(v: object, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def spec_read(data: bytes) -> SpecFile:
    # section 4, steps 1-5
    if not data.startswith(MAGIC):
        raise SpecError("format", "magic")
    if len(data) < 16:
        raise SpecError("format", "short preamble")
    major, minor, count = struct.unpack_from("<HHI", data, 8)
    if major > 1:
        raise SpecError("version", "major")
    if major == 0:
        raise SpecError("format", "major 0")
    if len(data) < 20:
        raise SpecError("format", "no trailer")
    if struct.unpack_from("<I", data, len(data) - 4)[0] != zlib.crc32(data[:-4]):
        raise SpecError("format", "crc")
    # steps 6-7, section 5
    pos, end, known, skipped = 16, len(data) - 4, {}, []
    for _ in range(count):
        if pos + 16 > end:
            raise SpecError("format", "section header past the end")
        tag, flags, length = struct.unpack_from("<4sIQ", data, pos)
        pos += 16
        if length > end - pos:
            raise SpecError("format", "payload past the end")
        payload, pos = data[pos : pos + length], pos + length
        if tag in (b"HEAD", b"WGTS"):
            if tag in known:
                raise SpecError("format", "duplicate")
            known[tag] = payload
        elif flags & 1:
            raise SpecError("version", "unknown required section")
        else:
            skipped.append(tag)
    if pos != end:
        raise SpecError("format", "bytes after the sections")
    if set(known) != {b"HEAD", b"WGTS"}:
        raise SpecError("format", "missing section")
    header, levels, dims, acts, quant = _spec_head(known[b"HEAD"])
    raw = _spec_frame(known[b"WGTS"])
    weights = _spec_weights(raw, dims, quant)
    return SpecFile((major, minor), header, dims, acts, levels, weights, skipped)


def _spec_head(payload: bytes) -> tuple[dict, int, list, list, str]:
    """Section 6: the map and its required keys."""
    try:
        h = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except Exception as exc:
        raise SpecError("format", f"msgpack: {exc}") from None
    if not isinstance(h, dict):
        raise SpecError("format", "HEAD is not a map")
    grid, center, scale = h.get("grid"), h.get("center"), h.get("scale")
    if not (isinstance(grid, list) and len(grid) == 3 and all(_is_uint(n, 1, 4096) for n in grid)):
        raise SpecError("format", "grid")
    if not (isinstance(center, list) and len(center) == 3 and all(map(_is_num, center))):
        raise SpecError("format", "center")
    if not (_is_num(scale) and scale > 0):
        raise SpecError("format", "scale")
    if h.get("fill") not in ("solid", "shell", "given") or h.get("quant") not in SCHEMES:
        raise SpecError("format", "fill or quant")
    arch = h.get("arch")
    if not isinstance(arch, dict) or arch.get("output", "sigmoid") != "sigmoid":
        raise SpecError("format", "arch")
    enc = arch.get("encoding", {"type": "identity"})
    if not isinstance(enc, dict) or enc.get("type") not in ("identity", "posenc"):
        raise SpecError("format", "encoding")
    levels = 0
    if enc["type"] == "posenc":
        levels = enc.get("levels")
        if not _is_uint(levels, 1, 12):
            raise SpecError("format", "levels")
    layers = arch.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError("format", "layers")
    widths, acts = [], []
    for layer in layers:
        if not (isinstance(layer, dict) and _is_uint(layer.get("units"), 1, 4096)
                and layer.get("activation") in ACTS):
            raise SpecError("format", "layer")
        widths.append(layer["units"])
        acts.append(layer["activation"])
    fan_in = [3 + 6 * levels, *widths]
    dims = list(zip(fan_in, [*widths, 1], strict=True))  # section 6.3
    return h, levels, dims, acts, h["quant"]


def _spec_frame(payload: bytes) -> bytes:
    """Section 7: exactly one zstd frame with its content size."""
    try:
        size = zstandard.get_frame_parameters(payload).content_size
        if size == zstandard.CONTENTSIZE_UNKNOWN or size > 2**30:
            raise SpecError("format", "content size")
        dobj = zstandard.ZstdDecompressor().decompressobj()
        raw = dobj.decompress(payload)
    except zstandard.ZstdError as exc:
        raise SpecError("format", f"zstd: {exc}") from None
    if not dobj.eof or dobj.unused_data or len(raw) != size:
        raise SpecError("format", "frame does not fill the section")
    return raw


def _f32(x: float) -> float:
    """Round a double to the nearest float32 (ties to even)."""
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.inf


def _spec_weights(raw: bytes, dims: list, quant: str) -> list:
    """Section 8: layout and dequantization, with struct only."""
    need = sum({"fp32": 4 * (i * o + o), "fp16": 2 * (i * o + o),
                "int8": 4 * o + i * o + 2 * o, "int8-layer": 4 + i * o + 2 * o}[quant]
               for i, o in dims)
    if len(raw) != need:
        raise SpecError("format", "weights size")
    pos, out = 0, []

    def take(code: str, n: int) -> list:
        nonlocal pos
        vals = list(struct.unpack_from(f"<{n}{code}", raw, pos))
        pos += struct.calcsize(f"<{n}{code}")
        return vals

    for fan_in, fan_out in dims:
        n = fan_in * fan_out
        if quant in ("fp32", "fp16"):
            code = "f" if quant == "fp32" else "e"
            kernel, bias = take(code, n), take(code, fan_out)
        else:
            scales = take("f", fan_out if quant == "int8" else 1)
            q = take("b", n)
            kernel = [_f32(v * scales[idx % fan_out if quant == "int8" else 0])
                      for idx, v in enumerate(q)]
            bias = take("e", fan_out)
        if not all(map(math.isfinite, kernel + bias)):
            raise SpecError("format", "non-finite weight")
        out.append((kernel, bias))
    return out


def spec_scaled_shape(shape: list[int], res: int) -> list[int]:
    """Section 10.3 with integers: round(n * R / m), ties to even, at least 1."""
    m, out = max(shape), []
    for n in shape:
        q, r = divmod(n * res, m)
        q += 1 if 2 * r > m or (2 * r == m and q % 2) else 0
        out.append(max(1, q))
    return out


def spec_grid(f: SpecFile, shape: list[int]) -> np.ndarray:
    """Sections 9 and 10.1 in float64."""
    m = max(shape)
    axes = [[(i - (n - 1) / 2) / (m / 2) for i in range(n)] for n in shape]
    p = np.array([(x, y, z) for x in axes[0] for y in axes[1] for z in axes[2]])
    cols = [p]
    for k in range(f.levels):
        cols += [np.sin(2.0**k * math.pi * p), np.cos(2.0**k * math.pi * p)]
    h = np.concatenate(cols, axis=1)
    for idx, ((fan_in, fan_out), (kernel, bias)) in enumerate(zip(f.dims, f.weights,
                                                                  strict=True)):
        a = h @ np.array(kernel).reshape(fan_in, fan_out) + np.array(bias)
        act = f.acts[idx] if idx < len(f.acts) else "logit"
        if act == "relu":
            a = np.maximum(a, 0.0)
        elif act == "elu":
            a = np.where(a > 0, a, np.expm1(np.minimum(a, 0.0)))
        elif act == "swish":
            a = a / (1.0 + np.exp(-a))
        h = a
    z = h[:, 0].reshape(shape)
    assert np.abs(z).min() > INDEX["margin"]  # float64 keeps the margin too
    return z > 0


# ---------------------------------------------------------------- the reader agrees with occcodec

@pytest.mark.parametrize("name", VALID)
def test_spec_reader_agrees_with_occcodec(name: str) -> None:
    data = vector(name)
    f = spec_read(data)
    coded = decoder.load(data)
    assert f.header == coded.file.header
    assert f.version == coded.file.version
    assert [t.decode("ascii", "replace") for t in f.skipped] == coded.file.skipped
    h = coded.header
    assert tuple(f.header["grid"]) == h.grid and f.levels == h.arch.pe_levels
    assert f.dims == h.arch.layer_dims()
    assert f.acts == [x.activation for x in h.arch.layers]
    for (kernel, bias), (k, b) in zip(f.weights, coded.weights, strict=True):
        assert np.array_equal(np.array(kernel, np.float32).reshape(k.shape), k)
        assert np.array_equal(np.array(bias, np.float32), b)
    assert f.header["weights"]["raw_bytes"] == len(coded.file.weights)


@pytest.mark.parametrize("name", VALID)
def test_spec_decoder_reproduces_the_recorded_grids(name: str) -> None:
    rec = INDEX["valid"][name]
    f = spec_read(vector(name))
    decodes = [(f.header["grid"], rec)]
    decodes += [(spec_scaled_shape(f.header["grid"], int(r)), sub)
                for r, sub in rec.get("resolutions", {}).items()]
    for shape, want in decodes:
        assert shape == want["shape"]
        grid = spec_grid(f, shape)
        assert int(grid.sum()) == want["occupied"]
        assert grid_sha256(grid) == want["grid_sha256"]


@pytest.mark.parametrize("name", INVALID)
def test_spec_reader_refuses_the_invalid_vectors(name: str) -> None:
    rec = INDEX["invalid"][name]
    with pytest.raises(SpecError) as exc:
        spec_read(vector(name))
    assert exc.value.kind == {"FormatError": "format", "VersionError": "version"}[rec["error"]]


# ---------------------------------------------------------------- regenerating

def _make_vectors() -> Any:
    spec = importlib.util.spec_from_file_location("make_vectors", FORMATS / "make_vectors.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_vectors", module)
    spec.loader.exec_module(module)
    return module


def test_make_vectors_reproduces_the_vectors() -> None:
    """Same networks and grids; the same bytes too when the zstd library is the same."""
    files, index = _make_vectors().build()
    assert sorted(files) == sorted(p.name for p in VECTORS.glob("*.occ"))
    same_zstd = index["zstd_library"] == INDEX["zstd_library"]
    for name in VALID:
        new, old = decoder.load(files[name + ".occ"]), decoder.load(vector(name))
        assert new.file.header == old.file.header
        assert new.file.weights == old.file.weights
        rec = {k: v for k, v in index["valid"][name].items() if not same_zstd and k != "sha256"}
        assert all(_strip_margins(INDEX["valid"][name][k]) == _strip_margins(v)
                   for k, v in rec.items())
    if same_zstd:
        assert _strip_margins(index) == _strip_margins(INDEX)
        assert _margins_of(index) == pytest.approx(_margins_of(INDEX), abs=1e-5)


def _strip_margins(obj: Any) -> Any:
    """The record without its informative ``min_abs_logit`` values (float32 summation order
    may move their last digit), which :func:`_margins_of` compares with a tolerance."""
    if isinstance(obj, dict):
        return {k: _strip_margins(v) for k, v in obj.items() if k != "min_abs_logit"}
    return obj


def _margins_of(obj: Any) -> list[float]:
    if isinstance(obj, dict):
        return [m for k in sorted(obj) for m in (
            [obj[k]] if k == "min_abs_logit" else _margins_of(obj[k]))]
    return []


def test_make_vectors_refuses_to_overwrite(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    mv = _make_vectors()

    def files() -> dict[str, bytes]:  # v1's vectors and, under v2/, version 2's
        return {p.relative_to(tmp_path).as_posix(): p.read_bytes()
                for p in tmp_path.rglob("*") if p.is_file()}

    assert mv.main(["--out", str(tmp_path)]) == 0
    first = files()
    assert "v2/vectors.json" in first and "vectors.json" in first
    (tmp_path / "a-identity-relu-fp32.occ").write_bytes(b"edited")
    assert mv.main(["--out", str(tmp_path)]) == 1
    assert "--force" in capsys.readouterr().err
    assert (tmp_path / "a-identity-relu-fp32.occ").read_bytes() == b"edited"
    # a missing set is written, the existing one kept
    for p in (tmp_path / "v2").iterdir():
        p.unlink()
    assert mv.main(["--out", str(tmp_path)]) == 0
    assert (tmp_path / "a-identity-relu-fp32.occ").read_bytes() == b"edited"
    assert mv.main(["--out", str(tmp_path), "--force"]) == 0
    assert files() == first


# ---------------------------------------------------------------- the spec text itself

SPEC = (FORMATS / "occ-v1.md").read_text()


def test_spec_hex_dump_is_vector_a() -> None:
    """The worked example of occ-v1.md section 13 shows the real bytes."""
    data = vector("a-identity-relu-fp32")
    rows = re.findall(r"^([0-9a-f]{8}): ((?:[0-9a-f]{4} ?){1,8})", SPEC, flags=re.M)
    assert len(rows) >= 8
    for offset, hexes in rows:
        chunk = bytes.fromhex(hexes.replace(" ", ""))
        start = int(offset, 16)
        assert data[start : start + len(chunk)] == chunk, offset
    assert f"`{data[-4:].hex(' ')}`" in SPEC
    assert f"({len(data)} bytes)" in SPEC


def test_spec_lists_every_vector() -> None:
    for name in VALID + INVALID:
        assert f"| `{name}` |" in SPEC, name
