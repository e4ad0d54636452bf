"""Grid mode (formats/occ-v2.md 6.3): a format-2 file that holds the grid, coded losslessly.

The vectors of ``formats/vectors/v2-grid/`` are read by occcodec and by ``spec_read`` below,
written from occ-v2.md and ctx-grid.md alone (struct, zlib and the pure-Python coder of
``tests/test_ctxgrid_reference.py``; no occcodec import). The encoder's choice between a
network and the grid is tested on small grids and a sample mesh.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_ctxgrid_reference as REF  # the pure-Python coder, written from ctx-grid.md

from occcodec import decoder
from occcodec.errors import FormatError, UsageError, VersionError

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "formats" / "vectors" / "v2-grid"
INDEX = json.loads((VECTORS / "vectors.json").read_text())
VALID = sorted(INDEX["valid"])
INVALID = sorted(INDEX["invalid"])
ERRORS = {"FormatError": FormatError, "VersionError": VersionError}
SAMPLES = ROOT / "samples"


def _bytes(name: str) -> bytes:
    """A vector's file, valid or invalid."""
    return (VECTORS / {**INDEX["valid"], **INDEX["invalid"]}[name]["file"]).read_bytes()


def _sha(grid: np.ndarray) -> str:
    return hashlib.sha256(np.packbits(np.asarray(grid, bool).ravel(order="C")).tobytes()).hexdigest()


# ---------------------------------------------------------------- a reader from the spec


class SpecError(Exception):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = 0
    for i in range(3):
        if pos >= end:
            raise SpecError("FormatError", "varint runs into the checksum")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << (7 * i)
        if not b & 0x80:
            if b == 0 and i:
                raise SpecError("FormatError", "non-minimal varint")
            return value, pos
    raise SpecError("FormatError", "varint longer than 3 bytes")


def spec_read(data: bytes) -> dict[str, Any]:
    """A grid-mode file per occ-v2.md sections 2-6.3: shape, frame, model, words, META."""
    if data[:4] != b"\x89OC2":
        raise SpecError("FormatError", "magic")
    end = len(data) - 4
    if zlib.crc32(data[:end]) != struct.unpack("<I", data[end:])[0]:
        raise SpecError("FormatError", "checksum")
    flags = data[4]
    if flags & 0xC0 or flags & 3 == 3:
        raise SpecError("VersionError", "reserved flag or fill")
    assert flags & 0x20, "only grid-mode files here"
    pos = 5
    sizes = []
    for _ in range(1 if flags & 0x10 else 3):
        n, pos = _varint(data, pos, end)
        sizes.append(n + 1)
    shape = tuple(sizes * 3 if flags & 0x10 else sizes)
    if max(shape) > 1024:
        raise SpecError("FormatError", "grid mode allows 1024 per axis")
    fmt = "<4d" if flags & 0x08 else "<4f"
    *center, scale = struct.unpack_from(fmt, data, pos)
    pos += struct.calcsize(fmt)
    model = data[pos]
    pos += 1
    if model not in (1, 2):
        raise SpecError("VersionError", f"model {model}")
    words, pos = _varint(data, pos, end)
    if pos + 4 * words > end:
        raise SpecError("FormatError", "payload runs into the checksum")
    payload = data[pos : pos + 4 * words]
    pos += 4 * words
    if not flags & 0x04 and pos != end:
        raise SpecError("FormatError", "bytes after the payload")
    coded = [struct.unpack_from("<I", payload, 4 * i)[0] for i in range(words)]
    return {"shape": shape, "center": center, "scale": scale, "fill": flags & 3,
            "model": model, "grid": REF.ref_decode(coded, shape, model)}


def spec_resample(grid: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """occ-v2.md 6.3's rule, voxel by voxel."""
    src = grid.shape
    m, m2 = max(src), max(shape)
    maps = [[min(max(((2 * j + 1 - n2) * m + n * m2) // (2 * m2), 0), n - 1)
             for j in range(n2)] for n, n2 in zip(src, shape, strict=True)]
    out = np.zeros(shape, dtype=bool)
    for i in range(shape[0]):
        for j in range(shape[1]):
            for k in range(shape[2]):
                out[i, j, k] = grid[maps[0][i], maps[1][j], maps[2][k]]
    return out


@pytest.mark.parametrize("name", VALID)
def test_vectors_decode_as_recorded(name: str) -> None:
    rec = INDEX["valid"][name]
    coded = decoder.load(_bytes(name))
    assert coded.grid_mode and coded.params == 0 and coded.header.quant == "ctx-grid"
    grid = decoder.voxels(coded)
    assert list(grid.shape) == rec["shape"]
    assert int(grid.sum()) == rec["occupied"] and _sha(grid) == rec["grid_sha256"]
    assert len(coded.grid_payload or b"") == 4 * rec["words"]
    for r, want in rec.get("resolutions", {}).items():
        got = decoder.voxels(coded, int(r))
        assert list(got.shape) == want["shape"] and _sha(got) == want["grid_sha256"]


@pytest.mark.parametrize("name", VALID)
def test_spec_reader_decodes_vectors(name: str) -> None:
    rec = INDEX["valid"][name]
    got = spec_read(_bytes(name))
    assert list(got["shape"]) == rec["shape"] and _sha(got["grid"]) == rec["grid_sha256"]
    assert got["model"] == rec["model"]
    for r, want in rec.get("resolutions", {}).items():
        m = max(got["shape"])
        shape = tuple(max(1, round(n * int(r) / m)) for n in got["shape"])
        assert _sha(spec_resample(got["grid"], shape)) == want["grid_sha256"]


@pytest.mark.parametrize("name", INVALID)
def test_invalid_vectors_are_refused(name: str) -> None:
    rec = INDEX["invalid"][name]
    with pytest.raises(ERRORS[rec["error"]]):
        decoder.load(_bytes(name))
    with pytest.raises(SpecError) as info:
        spec_read(_bytes(name))
    assert info.value.kind == rec["error"]


def test_make_vectors_reproduces_the_grid_vectors_byte_for_byte() -> None:
    """The published model-1 files and model 2's come out the same from the script (no zstd,
    no training: the bytes depend only on the coder)."""
    from test_format_v2_vectors import _load

    files, index = _load("make_vectors", ROOT / "formats" / "make_vectors.py").build_v2_grid()
    assert sorted(files) == sorted(p.name for p in VECTORS.glob("*.occ"))
    for name, data in files.items():
        assert data == (VECTORS / name).read_bytes(), name
    assert index == INDEX
    assert {rec["model"] for rec in INDEX["valid"].values()} == {1, 2}


def test_format_layer_knows_the_coders_models() -> None:
    from occcodec.coding import ctxgrid
    from occcodec.format import v2

    assert set(v2.GRID_MODELS) == set(ctxgrid.MODELS)


def _grid_file(grid: np.ndarray, meta: dict[str, Any] | None = None) -> bytes:
    from occcodec.coding import ctxgrid
    from occcodec.format import v2

    header = v2.LeanHeader(tuple(grid.shape), (1.0, 2.0, -3.0), 0.5, "given", None,
                           grid_model=ctxgrid.DEFAULT_MODEL)
    words = ctxgrid.encode_words(grid)
    data = v2.pack(header, words, meta)
    assert len(data) == v2.overhead(header, meta, len(words)) + len(words)
    return data


def test_round_trip_is_lossless_and_the_overhead_is_exact() -> None:
    rng = np.random.default_rng(5)
    for shape in ((16, 16, 16), (23, 9, 31), (1, 40, 7)):
        grid = rng.random(shape) < 0.4
        for meta in (None, {"encoder": "test", "metrics": {"iou": 1.0}}):
            coded = decoder.load(_grid_file(grid, meta))
            assert np.array_equal(coded.stored_grid(), grid)
            assert coded.header.raw == (meta or {})


def test_a_network_file_is_not_a_grid_and_back() -> None:
    coded = decoder.load(_bytes("g-ball-stripped"))
    with pytest.raises(UsageError):
        _ = coded.net
    with pytest.raises(UsageError):
        coded.logit_grid((16, 16, 16))
    info = decoder.info_record(coded)
    assert info["arch"] == "ctx-grid" and info["params"] == 0 and "grid" in info["sections"]


def test_writer_refuses_what_the_format_cannot_hold() -> None:
    from occcodec.format import v2

    big = v2.LeanHeader((1025, 4, 4), (0.0, 0.0, 0.0), 1.0, "given", None, grid_model=1)
    with pytest.raises(ValueError, match="1024"):
        v2.pack(big, b"\0\0\0\0")
    odd = v2.LeanHeader((4, 4, 4), (0.0, 0.0, 0.0), 1.0, "given", None, grid_model=1)
    with pytest.raises(ValueError, match="words"):
        v2.pack(odd, b"\0\0\0")
    with pytest.raises(ValueError, match="model"):
        v2.pack(v2.LeanHeader((4, 4, 4), (0.0, 0.0, 0.0), 1.0, "given", None,
                              grid_model=7), b"")


@pytest.mark.parametrize(("src", "dst"), [((16, 16, 16), (24, 24, 24)), ((20, 12, 17), (40, 24, 34)),
                                         ((9, 16, 5), (18, 32, 10)), ((16, 16, 16), (48, 48, 48))])
def test_upsampling_takes_the_voxel_holding_each_centre(src, dst) -> None:
    """Where no centre lies on a face, the integer rule is the float containment rule."""
    from occcodec.shapes.frame import axis_coords

    rng = np.random.default_rng(1)
    grid = rng.random(src) < 0.5
    out = decoder.resample(grid, dst)
    assert np.array_equal(out, spec_resample(grid, dst))
    c = np.stack(np.meshgrid(*[a.astype(np.float64) for a in axis_coords(dst)],
                             indexing="ij"), axis=-1).reshape(-1, 3)
    idx, inside = decoder.containing_voxel(c, src)
    assert inside.all()
    assert np.array_equal(out.reshape(-1), grid[tuple(idx.T)])


def test_downsampling_by_two_takes_the_positive_side() -> None:
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[1::2, 1::2, 1::2] = True  # only odd voxels: centres of the halved grid sit on faces
    assert decoder.resample(grid, (2, 2, 2)).all()


def test_point_queries_read_the_stored_voxels() -> None:
    from occcodec.api import decode

    rng = np.random.default_rng(3)
    grid = rng.random((10, 6, 8)) < 0.5
    shape = decode(_grid_file(grid))
    h = shape.header
    idx = np.argwhere(np.ones(grid.shape, dtype=bool)).astype(np.float64)
    m = max(grid.shape)
    p = (idx + 0.5 - np.asarray(grid.shape) / 2) / (m / 2)  # voxel centres, normalised
    world = np.asarray(h.center) + h.scale * p
    assert np.array_equal(shape.occupancy(world), grid.reshape(-1))
    assert np.array_equal(shape.probability(world), grid.reshape(-1).astype(np.float32))
    far = np.asarray(h.center) + h.scale * np.array([[1.01, 0, 0], [0, -0.9, 0], [0, 0, 9]])
    assert not shape.occupancy(far).any()
    assert np.array_equal(shape.voxels(), grid)


def test_decode_budget_is_checked_before_the_grid_is_decoded() -> None:
    from occcodec.errors import LimitError
    from occcodec.format import limits

    coded = decoder.load(_bytes("g-ball-stripped"))
    with limits.raised(memory=1000), pytest.raises(LimitError):
        coded.stored_grid()


# ---------------------------------------------------------------- the encoder's choice


@pytest.fixture(scope="module")
def encoder(tf_one_thread):
    pytest.importorskip("tensorflow")
    import occcodec

    return occcodec


def _box(n: int = 32) -> np.ndarray:
    grid = np.zeros((n, n, n), dtype=bool)
    grid[6:-6, 8:-5, 4:-9] = True
    return grid


def test_mode_grid_writes_the_grid_without_training(encoder) -> None:
    rng = np.random.default_rng(0)
    grid = np.zeros((24, 24, 24), dtype=bool)
    grid[4:20, 4:20, 4:20] = rng.random((16, 16, 16)) < 0.6
    res = encoder.encode_result(grid, mode="grid", threads=1)
    assert res.arch is None and res.header["metrics"]["iou"] == 1.0
    coded = decoder.load(res.data)
    assert coded.grid_mode and np.array_equal(decoder.voxels(coded), grid)
    assert coded.header.options["mode"] == "grid"


def test_auto_writes_a_simple_grid_before_any_network(encoder) -> None:
    """A box's grid file is smaller than the smallest network file: no search, no training."""
    res = encoder.encode_result(_box(), threads=1, preset="fast")
    assert res.arch is None and res.candidates == []
    coded = decoder.load(res.data)
    assert np.array_equal(decoder.voxels(coded), _box())
    assert "mode" not in coded.header.options  # auto, the default, is not recorded


def test_auto_takes_the_grid_within_max_bytes(encoder) -> None:
    """Noise: a grid file larger than a small network's, yet the highest IoU in budget."""
    grid = np.random.default_rng(4).random((24, 24, 24)) < 0.3
    size = len(encoder.encode(grid, mode="grid", threads=1, preset="fast"))
    assert size > 1000
    res = encoder.encode_result(grid, threads=1, preset="fast", max_bytes=size + 50)
    assert res.arch is None and res.candidates == [] and len(res.data) <= size + 50
    assert np.array_equal(decoder.voxels(decoder.load(res.data)), grid)


def test_grid_smaller_than_every_searched_network_skips_training(
        encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rate control trains only the searched networks: a grid smaller than all of their
    smallest files wins right after the search, before any final fit."""
    from occcodec.encoder import search, train
    from occcodec.format.arch import parse_arch

    wide = parse_arch("pe6,64:relu,64:relu,64:relu")

    def fake_search(samples, budget, rng, seed, on_candidate=None):
        return [search.Candidate(wide, 0.99, 1.0, train.init_weights(wide, rng))]

    def no_training(*a, **k):
        raise AssertionError("trained a network")

    monkeypatch.setattr(search, "search", fake_search)
    monkeypatch.setattr(train, "train", no_training)
    grid = np.random.default_rng(6).random((24, 24, 24)) < 0.2
    res = encoder.encode_result(grid, threads=1, preset="fast")
    assert res.arch is None and [c["arch"] for c in res.candidates] == []
    assert np.array_equal(decoder.voxels(decoder.load(res.data)), grid)


def test_above_the_auto_edge_a_far_miss_writes_the_grid(
        encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above GRID_AUTO_MAX_EDGE the grid is coded only after the network's file missed the
    target by more than GRID_LATE_MISS; a narrower miss keeps the network's file."""
    from occcodec.encoder import pipeline

    monkeypatch.setattr(pipeline, "GRID_AUTO_MAX_EDGE", 16)  # 24^3 is "above" it
    # a box with holes of noise: learnt as a box (IoU about 0.8), far under 0.95
    grid = np.zeros((24, 24, 24), dtype=bool)
    grid[4:20, 3:21, 5:19] = np.random.default_rng(4).random((16, 18, 14)) < 0.8
    from occcodec.encoder import qat
    from occcodec.encoder import train as tr
    from occcodec.encoder.presets import PRESETS

    fits: list[int] = []
    real_train, real_qat = tr.train, qat.finetune

    def spy_train(arch, weights, samples, epochs, *a, **kw):
        fits.append(epochs)
        return real_train(arch, weights, samples, epochs, *a, **kw)

    def spy_qat(*a, **kw):
        fits.append(-1)
        return real_qat(*a, **kw)

    monkeypatch.setattr(tr, "train", spy_train)
    monkeypatch.setattr(qat, "finetune", spy_qat)
    res = encoder.encode_result(grid, threads=1, preset="fast", target_iou=0.95)
    assert res.arch is None and res.header["metrics"]["iou"] == 1.0 and not res.note
    assert np.array_equal(decoder.voxels(decoder.load(res.data)), grid)
    # the network's float fit (about 0.8) is far under the target: no QAT run, and no
    # second network fitted (``ratefit.ABANDON_GAP``); the grid is coded right away
    final = PRESETS["fast"].final_epochs
    assert -1 not in fits and fits.count(final) == 1
    monkeypatch.setattr(pipeline, "GRID_LATE_MISS", 1.0)  # no miss is far
    res = encoder.encode_result(grid, threads=1, preset="fast", target_iou=0.95)
    assert res.arch is not None and 0.5 < res.header["metrics"]["iou"] < 0.94
    assert "not reached" in res.note


@pytest.mark.parametrize("edge", [256, 16])
def test_a_grid_over_max_bytes_is_never_written(
        encoder, monkeypatch: pytest.MonkeyPatch, edge: int) -> None:
    """--max-bytes holds for grid mode too: a grid over it is not written, before training
    (at or under GRID_AUTO_MAX_EDGE) or after the network missed the target (above it):
    the network's file within the budget is kept, and says the target was missed."""
    from occcodec.encoder import pipeline

    monkeypatch.setattr(pipeline, "GRID_AUTO_MAX_EDGE", edge)  # 40^3: under 256, over 16
    grid = np.zeros((40, 40, 40), dtype=bool)
    grid[4:36, 4:36, 4:36] = np.random.default_rng(4).random((32, 32, 32)) < 0.8
    size = len(encoder.encode(grid, mode="grid", threads=1, preset="fast"))
    cap = size - 500
    res = encoder.encode_result(grid, threads=1, preset="fast", target_iou=0.95,
                                max_bytes=cap)
    assert len(res.data) <= cap and res.arch is not None
    assert "not reached" in res.note and res.header["metrics"]["iou"] < 0.95
    with pytest.raises(UsageError, match="over --max-bytes"):
        encoder.encode_result(grid, threads=1, preset="fast", mode="grid", max_bytes=cap)


def test_above_the_auto_edge_the_grid_is_the_file_when_no_network_fits(
        encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above GRID_AUTO_MAX_EDGE the grid is not coded before training, but when no network
    fits --max-bytes it is coded then, and written if it fits; if not, the error says both
    sizes."""
    from occcodec.encoder import pipeline, train

    def no_training(*a, **k):
        raise AssertionError("trained a network")

    monkeypatch.setattr(pipeline, "GRID_AUTO_MAX_EDGE", 16)  # 32^3 is "above" it
    size = len(encoder.encode(_box(), mode="grid", threads=1, preset="fast"))
    monkeypatch.setattr(train, "train", no_training)  # the search is not train.train
    res = encoder.encode_result(_box(), threads=1, preset="fast", max_bytes=size + 50)
    assert res.arch is None and len(res.data) <= size + 50
    assert np.array_equal(decoder.voxels(decoder.load(res.data)), _box())
    with pytest.raises(UsageError, match=r"no network fits --max-bytes .*the lossless grid "
                                         r"would be [\d,]+ bytes"):
        encoder.encode_result(_box(), threads=1, preset="fast", max_bytes=size // 2)


def test_above_the_auto_edge_max_bytes_takes_the_grid_over_a_poor_network(
        encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    """--max-bytes alone (the highest IoU within it), above GRID_AUTO_MAX_EDGE: a network
    far under the preset's target gives way to the grid when the grid fits, not when it
    does not."""
    from occcodec.encoder import pipeline

    monkeypatch.setattr(pipeline, "GRID_AUTO_MAX_EDGE", 16)  # 40^3 is "above" it
    grid = np.zeros((40, 40, 40), dtype=bool)
    grid[4:36, 4:36, 4:36] = np.random.default_rng(4).random((32, 32, 32)) < 0.8
    size = len(encoder.encode(grid, mode="grid", threads=1, preset="fast"))
    res = encoder.encode_result(grid, threads=1, preset="fast", max_bytes=size + 100)
    assert res.arch is None and len(res.data) <= size + 100
    assert np.array_equal(decoder.voxels(decoder.load(res.data)), grid)
    res = encoder.encode_result(grid, threads=1, preset="fast", max_bytes=size // 2)
    assert res.arch is not None and len(res.data) <= size // 2
    assert res.header["metrics"]["iou"] < 0.9


def test_mode_network_and_arch_never_write_the_grid(encoder) -> None:
    res = encoder.encode_result(_box(), threads=1, preset="fast", mode="network",
                                arch="pe1,8:relu")
    assert res.arch is not None and not decoder.load(res.data).grid_mode
    res = encoder.encode_result(_box(), threads=1, preset="fast", arch="pe1,8:relu")
    assert res.arch is not None  # --arch asks for a network


@pytest.mark.parametrize(("kw", "match"), [
    ({"mode": "grid", "quant": "fp16"}, "format-2"),
    ({"mode": "grid", "arch": "pe1,8:relu"}, "--arch"),
    ({"mode": "voxels"}, "--mode"),
])
def test_mode_options_are_checked(encoder, kw, match) -> None:
    with pytest.raises(UsageError, match=match):
        encoder.encode_result(_box(), threads=1, preset="fast", **kw)


def test_mode_grid_above_the_full_truth_is_refused(encoder) -> None:
    with pytest.raises(UsageError, match="--resolution 512 or less"):
        encoder.encode_result(SAMPLES / "torus.ply", resolution=600, mode="grid", threads=1)


def test_mesh_grid_mode_is_the_centre_rule_truth(encoder) -> None:
    from occcodec.shapes.inputs import load_shape
    from occcodec.shapes.inside import centre_grid

    res = encoder.encode_result(SAMPLES / "torus.ply", resolution=32, mode="grid", threads=1)
    coded = decoder.load(res.data)
    shape = load_shape(SAMPLES / "torus.ply", 32)
    gf = shape.grid_frame
    truth = centre_grid(shape.mesh, gf.center, gf.scale, gf.shape, "solid")
    assert np.array_equal(decoder.voxels(coded), truth) and truth.any()
    assert res.header["metrics"]["surface_chamfer"] > 0.0


def test_cli_encodes_shows_and_decodes_a_grid_file(capsys, tmp_path) -> None:
    pytest.importorskip("tensorflow")
    from conftest import run_cli

    out = tmp_path / "blob.occ"
    code, text, err = run_cli(capsys, "encode", SAMPLES / "blob.npz", "-o", out, "--mode",
                              "grid", "--threads", "1", "-q")
    assert code == 0, err
    assert "lossless grid" in text
    code, text, _ = run_cli(capsys, "info", out, "--json")
    assert code == 0 and json.loads(text)["arch"] == "ctx-grid"
    code, _, err = run_cli(capsys, "decode", out, "-o", tmp_path / "blob.ply")
    assert code == 0, err and (tmp_path / "blob.ply").stat().st_size > 0
