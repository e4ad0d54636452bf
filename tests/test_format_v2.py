"""Format version 2 (``occcodec/format/v2.py``, ``formats/occ-v2.md``): round trips, refusals,
limits, the overhead formula, and v1 files still read by the same ``decoder.load``."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from occcodec import decoder
from occcodec.batch import plan
from occcodec.errors import FormatError, LimitError, VersionError
from occcodec.format import limits, v2
from occcodec.format.arch import Arch, Layer, parse_arch
from occcodec.format.network import Weights

SPECS = [v2.WeightsSpec("fp32"), v2.WeightsSpec("fp16"), v2.WeightsSpec("int8"),
         v2.WeightsSpec("int8-layer"), v2.WeightsSpec("lowbit", (6, 5, 7), 10),
         v2.WeightsSpec("lowbit", (3, 8, 4, 8), 4)]


def _weights(arch: Arch, seed: int = 0) -> Weights:
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, 0.4, (i, o)).astype(np.float32),
             rng.normal(0, 0.1, o).astype(np.float32)) for i, o in arch.layer_dims()]


def _meta(arch: Arch) -> dict[str, object]:
    return {"encoder": "occcodec 0.1.0",
            "source": {"kind": "mesh", "sha256": hashlib.sha256(b"input").digest()},
            "options": {"preset": "default", "resolution": 128, "fill": "auto",
                        "quant": "fp16", "seed": 0, "threads": 1},
            "metrics": {"iou": 0.99125, "accuracy": 0.999875, "params": arch.params}}


def _header(spec: v2.WeightsSpec, arch: Arch | None = None,
            grid: tuple[int, int, int] = (20, 16, 24)) -> v2.LeanHeader:
    arch = arch or (parse_arch("pe2,12:relu,9:swish,7:elu") if len(spec.bits) == 4
                    else parse_arch("pe6,24:relu,40:relu"))
    return v2.LeanHeader(grid, (0.25, -1.5, 3.0), 2.5, "shell", arch, spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("with_meta", [False, True])
def test_round_trip_every_scheme(spec: v2.WeightsSpec, with_meta: bool) -> None:
    h = _header(spec)
    payload = spec.quantize(_weights(h.arch))
    meta = _meta(h.arch) if with_meta else None
    data = v2.pack(h, payload, meta)
    assert len(data) == v2.overhead(h, meta) + len(payload)
    back, got, got_meta, info = v2.unpack(data)
    assert back == h and got == payload and info.total_bytes == len(data)
    assert (got_meta is None) == (meta is None)
    coded = decoder.load(data)
    assert coded.header.arch == h.arch and coded.header.grid == h.grid
    assert coded.header.fill == "shell" and coded.header.center == h.center
    assert coded.file.version == (2, 0) and coded.lean == h
    for (k, b), (k2, b2) in zip(coded.weights, spec.dequantize(payload, h.arch), strict=True):
        assert np.array_equal(k, k2) and np.array_equal(b, b2)
    if meta is not None:
        assert coded.header.options == meta["options"]
        assert coded.header.raw["source"] == meta["source"]
        assert coded.header.metrics["iou"] == pytest.approx(0.99125, abs=1e-7)
    else:
        assert coded.header.raw == {}


# ---------------------------------------------------------------- batch resume (occcodec.batch.plan)


def _batch_item(tmp_path: Path, data: bytes) -> plan.Item:
    dst = tmp_path / "out" / "shape.occ"
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data)
    return plan.Item("shape.obj", tmp_path / "shape.obj", 10, dst, "shape.occ")


def _record(data: bytes, sha: bytes, options: dict[str, object], **over: object
            ) -> dict[str, object]:
    rec = {"path": "shape.obj", "output": "shape.occ", "status": "ok", "iou": 0.98,
           "sha256": sha.hex(), "options": options,
           "occ_sha256": hashlib.sha256(data).hexdigest()}
    return {**rec, **over}


def test_stripped_file_is_up_to_date_through_the_manifest(tmp_path: Path) -> None:
    spec = v2.WeightsSpec("lowbit", (6, 5, 7), 10)
    h = _header(spec)
    data = v2.pack(h, spec.quantize(_weights(h.arch)))
    sha, opts = hashlib.sha256(b"input").digest(), {"preset": "fast", "seed": 3}
    item = _batch_item(tmp_path, data)
    have, note = plan.check_existing(item, sha, opts, _record(data, sha, opts))
    assert note is None and have is not None
    assert have["params"] == h.arch.params and have["arch"] == str(h.arch)
    assert have["iou"] == 0.98 and have["occ_bytes"] == len(data)
    assert have["occ_sha256"] == hashlib.sha256(data).hexdigest()
    # what must make it re-encode
    assert plan.check_existing(item, sha, opts, None)[1] == (
        "replaced: a stripped .occ that the manifest does not record")
    assert plan.check_existing(item, bytes(32), opts, _record(data, sha, opts))[1] == (
        "replaced: the input changed")
    assert plan.check_existing(item, sha, {**opts, "seed": 4}, _record(data, sha, opts))[1] == (
        "replaced: the encode options changed")
    for over in ({"occ_sha256": "0" * 64}, {"output": "other.occ"}, {"status": "failed"}):
        assert plan.check_existing(item, sha, opts, _record(data, sha, opts, **over))[1] == (
            "replaced: a stripped .occ that the manifest does not record"), over


def test_unstripped_v2_file_answers_for_itself(tmp_path: Path) -> None:
    h = _header(v2.WeightsSpec("fp16"))
    meta = _meta(h.arch)
    data = v2.pack(h, h.weights.quantize(_weights(h.arch)), meta)
    item = _batch_item(tmp_path, data)
    sha, opts = meta["source"]["sha256"], meta["options"]  # type: ignore[index]
    have, note = plan.check_existing(item, sha, opts)  # no manifest record needed
    assert note is None and have is not None
    assert have["iou"] == pytest.approx(0.99125, abs=1e-7)
    assert plan.check_existing(item, sha, {**opts, "seed": 9})[1] == (
        "replaced: the encode options changed")
    # a manifest record cannot vouch for a file whose META says otherwise
    assert plan.check_existing(item, bytes(32), opts, _record(data, bytes(32), opts))[1] == (
        "replaced: the input changed")


def test_classify_records_what_a_stripped_file_lacks(tmp_path: Path) -> None:
    """A first run's record (sha256, options, occ_sha256) makes the second run skip."""
    src = tmp_path / "in" / "shape.obj"
    src.parent.mkdir()
    src.write_text("v 0 0 0\n")
    h = _header(v2.WeightsSpec("fp16"))
    data = v2.pack(h, h.weights.quantize(_weights(h.arch)))
    found, _ = plan.plan(src.parent, tmp_path / "out", frozenset({".obj"}), ".occ")
    opts = {"preset": "fast", "seed": 1}
    records, todo = plan.classify(found, {}, opts, force=False)
    assert [it.rel for it in todo] == ["shape.obj"] and todo[0].record["options"] == opts
    # what the driver then records for the written file (occcodec.batch.run._Recorder)
    found[0].dst.parent.mkdir(parents=True)  # type: ignore[union-attr]
    found[0].dst.write_bytes(data)  # type: ignore[union-attr]
    rec = plan.new_record(found[0], "ok", occ_bytes=len(data), iou=0.97,
                          occ_sha256=hashlib.sha256(data).hexdigest(), **todo[0].record)
    plan.write_manifest(tmp_path / "out" / plan.MANIFEST, {"shape.obj": rec})
    previous = plan.read_manifest(tmp_path / "out" / plan.MANIFEST)
    records, todo = plan.classify(found, previous, opts, force=False)
    assert todo == [] and records["shape.obj"]["note"] == "up to date"
    assert records["shape.obj"]["options"] == opts
    _, todo = plan.classify(found, previous, {**opts, "seed": 2}, force=False)
    assert todo[0].record["note"] == "replaced: the encode options changed"


# ---------------------------------------------------------------- sizes and odd shapes


def test_overhead_targets_for_a_typical_network() -> None:
    """Issue 10's targets: <= 48 bytes stripped, <= 200 with realistic META (encoder,
    source kind and sha256, the six options of a default encode, iou, accuracy, params:
    123 bytes of META)."""
    arch = parse_arch("pe6,24:relu,40:relu")
    meta = _meta(arch)
    sizes = []
    for spec in (v2.WeightsSpec("fp16"), v2.WeightsSpec("lowbit", (8, 6, 6), 10)):
        h = v2.LeanHeader((128, 128, 128), (0.01, -0.2, 0.3), 0.87, "solid", arch, spec)
        sizes.append((v2.overhead(h), v2.overhead(h, meta)))
    assert sizes == [(31, 154), (33, 156)]  # formats/occ-v2.md section 14
    # the worst of the search space: 6 hidden layers of 64, PE 12, 512^3, low bit
    deep = parse_arch("pe12,64:relu,64:elu,64:swish,64:relu,64:elu,64:swish")
    h = v2.LeanHeader((512,) * 3, (0.1, 0.2, 0.3), 1.5, "shell", deep,
                      v2.WeightsSpec("lowbit", (8,) * 7, 16))
    assert (v2.overhead(h), v2.overhead(h, _meta(deep))) == (42, 165)
    assert v2.overhead(h) <= 48 and v2.overhead(h, _meta(deep)) <= 200


@pytest.mark.parametrize(("grid", "arch"), [
    ((1, 1, 1), "1:relu"),
    ((4096, 1, 129), "pe12,4096:swish"),
    ((128, 128, 128), ",".join(["3:elu"] * 16)),
    ((2, 300, 7), "pe1,127:relu,128:elu,129:swish")])
def test_odd_sizes_round_trip(grid: tuple[int, int, int], arch: str) -> None:
    a = parse_arch(arch)
    spec = v2.WeightsSpec("lowbit", tuple(3 + i % 6 for i in range(len(a.layer_dims()))), 16)
    h = v2.LeanHeader(grid, (2.0**-100, -7.0, 3.5), 2.0**-10, "given", a, spec)  # f32-exact
    payload = spec.quantize(_weights(a))
    back = v2.unpack(v2.pack(h, payload))
    assert back[0] == h and back[1] == payload


def test_same_arguments_same_bytes() -> None:
    h = _header(v2.WeightsSpec("lowbit", (4, 4, 4), 10))
    payload = h.weights.quantize(_weights(h.arch))
    assert v2.pack(h, payload, _meta(h.arch)) == v2.pack(h, payload, _meta(h.arch))
    assert v2.pack(h, payload, None) == v2.pack(h, payload, {})


# ---------------------------------------------------------------- the frame


def test_frame_is_float32_unless_that_moves_it() -> None:
    arch = parse_arch("8:relu")
    payload = v2.WeightsSpec("fp16").quantize(_weights(arch))

    def frame(center: tuple[float, float, float], scale: float) -> tuple[bool, v2.LeanHeader]:
        h = v2.LeanHeader((128, 128, 128), center, scale, "solid", arch)
        _, _, _, info = v2.unpack(v2.pack(h, payload))
        return info.frame64, v2.unpack(v2.pack(h, payload))[0]

    f64, back = frame((0.1, -0.2, 0.3), 0.7)
    assert not f64
    voxel = 2 * 0.7 / 128
    moved = max(abs(a - b) for a, b in zip(back.center, (0.1, -0.2, 0.3), strict=True))
    assert moved + abs(back.scale - 0.7) <= 1e-3 * voxel
    f64, back = frame((1000.1, -2000.2, 0.3), 0.01)  # far from the origin: float64, exact
    assert f64 and back.center == (1000.1, -2000.2, 0.3) and back.scale == 0.01
    f64, back = frame((1e39, 0.0, 0.0), 1e39)  # beyond float32's range
    assert f64 and back.center[0] == 1e39


# ---------------------------------------------------------------- META


def test_meta_keys_round_trip_through_their_aliases() -> None:
    h = _header(v2.WeightsSpec("fp16"))
    meta = {**_meta(h.arch), "x-new": {"a": 1}, "candidates": [["8:relu", 0.5]]}
    meta["options"] = {**meta["options"], "target_iou": 0.99, "max_bytes": 1500, "newopt": 0.3}
    data = v2.pack(h, h.weights.quantize(_weights(h.arch)), meta)
    got = v2.unpack(data)[2]
    assert got is not None
    assert got["options"] == meta["options"]  # exact: float64 for option values
    assert got["x-new"] == {"a": 1} and got["candidates"] == [["8:relu", 0.5]]
    assert got["metrics"]["params"] == h.arch.params
    assert got["metrics"]["iou"] == float(np.float32(0.99125))  # metrics: float32
    # the short keys are what is stored
    assert b"\xa1o" in data and b"options" not in data and b"target_iou" not in data


def test_one_letter_meta_names_are_refused() -> None:
    h = _header(v2.WeightsSpec("fp16"))
    payload = h.weights.quantize(_weights(h.arch))
    with pytest.raises(ValueError, match="one letter"):
        v2.pack(h, payload, {"z": 1})
    with pytest.raises(ValueError, match="one letter"):
        v2.pack(h, payload, {"options": {"o": 1}})


def test_pack_refuses_what_does_not_fit() -> None:
    h = _header(v2.WeightsSpec("fp16"))
    payload = h.weights.quantize(_weights(h.arch))
    with pytest.raises(ValueError, match="needs"):
        v2.pack(h, payload[:-1])
    bad = [v2.LeanHeader((0, 4, 4), h.center, 1.0, "solid", h.arch),
           v2.LeanHeader((4, 4, 4), h.center, -1.0, "solid", h.arch),
           v2.LeanHeader((4, 4, 4), h.center, 1.0, "hollow", h.arch),
           v2.LeanHeader((4, 4, 4), h.center, 1.0, "solid", h.arch,
                         v2.WeightsSpec("lowbit", (9, 8, 8), 10)),
           v2.LeanHeader((4, 4, 4), h.center, 1.0, "solid", h.arch, v2.WeightsSpec("fp8")),
           v2.LeanHeader((4, 4, 4), h.center, 1.0, "solid",
                         Arch(tuple(Layer(4, "relu") for _ in range(17))))]
    for header in bad:
        with pytest.raises(ValueError):
            v2.overhead(header)


# ---------------------------------------------------------------- damage is refused


def _small_file() -> bytes:
    h = v2.LeanHeader((5, 6, 7), (0.0, 1.0, 2.0), 1.0, "solid", parse_arch("pe1,3:elu"),
                      v2.WeightsSpec("lowbit", (3, 4), 5))
    return v2.pack(h, h.weights.quantize(_weights(h.arch)),
                   {"encoder": "t", "metrics": {"iou": 0.5}})


def test_every_truncation_is_refused() -> None:
    data = _small_file()
    for n in range(len(data)):
        with pytest.raises(FormatError):
            decoder.load(data[:n])


def test_every_single_bit_flip_is_refused() -> None:
    data = _small_file()
    for pos in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[pos] ^= 1 << bit
            with pytest.raises(FormatError):  # a CRC-32 catches every 1-bit error
                decoder.load(bytes(bad))


def test_newer_version_digit_asks_for_an_upgrade() -> None:
    data = bytearray(_small_file())
    data[3] = ord("5")
    with pytest.raises(VersionError, match="upgrade"):
        decoder.load(bytes(data))
    data[3] = ord("x")
    with pytest.raises(FormatError, match="not an .occ file"):
        decoder.load(bytes(data))


# ---------------------------------------------------------------- limits


def test_limits_are_checked_before_allocation() -> None:
    big = parse_arch("pe12,4096:relu,4096:relu")
    h = v2.LeanHeader((16, 16, 16), (0.0, 0.0, 0.0), 1.0, "solid", big,
                      v2.WeightsSpec("lowbit", (3, 3, 3), 4))
    payload = bytes(v2.WeightsSpec("lowbit", (3, 3, 3), 4).payload_size(big))
    data = v2.pack(h, payload)  # zero scales: invalid weights, but the limit comes first
    with pytest.raises(LimitError, match="params"):
        decoder.load(data)
    with limits.raised(file=len(data) - 1), pytest.raises(LimitError, match="file"):
        decoder.load(_small_file() + bytes(len(data)))


def test_a_declared_network_bigger_than_the_file_is_refused_without_allocating() -> None:
    """33 header bytes naming 16 layers of 4096 units: refused by the params limit."""
    h = v2.LeanHeader((4, 4, 4), (0.0, 0.0, 0.0), 1.0, "solid", parse_arch("1:relu"))
    data = bytearray(v2.pack(h, bytes(h.weights.payload_size(h.arch))))
    net_at = 4 + 1 + 1 + 16
    body = (bytes(data[:net_at]) + bytes([0xF0]) + bytes(8) + b"\xff\x1f" * 16 + b"\x01")
    forged = body + zlib.crc32(body).to_bytes(4, "little")
    with pytest.raises(LimitError, match="params"):
        decoder.load(forged)


# ---------------------------------------------------------------- through the API and the CLI


def test_api_and_cli_read_v2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import occcodec
    from occcodec.cli.main import main

    h = v2.LeanHeader((16, 16, 16), (0.0, 0.0, 0.0), 1.0, "solid", parse_arch("pe2,12:elu"),
                      v2.WeightsSpec("lowbit", (6, 6), 10))
    data = v2.pack(h, h.weights.quantize(_weights(h.arch)))
    shape = occcodec.decode(data)
    assert shape.voxels().shape == (16, 16, 16)
    path = tmp_path / "s.occ"
    path.write_bytes(data)
    assert main(["info", str(path), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["format"] == "2.0" and rec["bytes"] == len(data)
    assert rec["header"]["quant"] == "lowbit 6/6 bits, bias 10"
    assert rec["header"]["frame"] == "float32" and "meta" not in rec["sections"]
    assert main(["info", str(path)]) == 0
    assert "none (stripped)" in capsys.readouterr().out
    assert main(["decode", str(path), "-o", str(tmp_path / "s.npz")]) == 0


def test_a_v1_file_converts_to_v2_with_the_same_decode() -> None:
    """What the encoder's switch to v2 does: v1's HEAD -> LeanHeader + META, same payload."""
    vectors = Path(__file__).resolve().parent.parent / "formats" / "vectors"
    old = decoder.read(vectors / "c-pe1-int8.occ")
    h = old.header
    lean = v2.LeanHeader(h.grid, h.center, h.scale, h.fill, h.arch, v2.WeightsSpec(h.quant))
    meta = v2.meta_from_v1(old.file.header)
    assert list(meta) == ["encoder", "source", "options", "metrics"]
    new = decoder.load(v2.pack(lean, old.file.weights, meta))
    assert new.header.raw == meta and new.header.center == h.center
    assert np.array_equal(decoder.voxels(new), decoder.voxels(old))


# ---------------------------------------------------------------- fuzzing (hypothesis profile)


@given(st.binary(max_size=64), st.integers(0, 200), st.integers(0, 64))
def test_any_body_with_a_valid_crc_decodes_or_raises_an_occ_error(
        junk: bytes, at: int, cut: int) -> None:
    """Splice bytes into a real file and fix its CRC: the parser, not the checksum, must
    then refuse (FormatError, LimitError) or decode; never another exception."""
    body = _small_file()[:-4]
    at = min(at, len(body))
    body = body[:at] + junk + body[at + cut :]
    data = body + zlib.crc32(body).to_bytes(4, "little")
    try:
        decoder.load(data)
    except (FormatError, LimitError):
        pass


def test_surface_metrics_have_aliases() -> None:
    """``surface_chamfer`` and ``iou_sampled`` (mesh inputs) are written as ``c`` and ``n``
    and read back under their names; a file written before the aliases keeps its long keys."""
    import struct
    import zlib

    import msgpack

    from occcodec.format import v2
    from occcodec.format.arch import parse_arch

    arch = parse_arch("8:relu")
    header = v2.LeanHeader((16, 16, 16), (0.0, 0.0, 0.0), 1.0, "solid", arch)
    payload = bytes(v2.WeightsSpec("fp16").payload_size(arch))
    metrics = {"iou": 0.5, "accuracy": 0.75, "params": arch.params,
               "surface_chamfer": 0.25, "iou_sampled": 0}
    data = v2.pack(header, payload, {"metrics": metrics})
    assert b"surface_chamfer" not in data and b"iou_sampled" not in data
    _, _, meta, _ = v2.unpack(data)
    assert meta == {"metrics": metrics}
    old = msgpack.packb({"m": {"i": 0.5, "surface_chamfer": 0.25}})
    body = data[: len(data) - 4 - len(v2._meta_bytes({"metrics": metrics}))] + old
    _, _, meta, _ = v2.unpack(body + struct.pack("<I", zlib.crc32(body)))
    assert meta == {"metrics": {"iou": 0.5, "surface_chamfer": 0.25}}
