"""Format version 2 (``occcodec/format/v2.py``, ``formats/occ-v2.md``): round trips, refusals,
limits, the overhead formula, and v1 files still read by the same ``decoder.load``."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from occcodec import decoder
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
