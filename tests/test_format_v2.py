"""Format version 2 (``occcodec/format/v2.py``, ``formats/occ-v2.md``): round trips, refusals,
limits, the overhead formula, and v1 files still read by the same ``decoder.load``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from occcodec import decoder
from occcodec.batch import plan
from occcodec.format import v2
from occcodec.format.arch import Arch, parse_arch
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
