"""Architectures, the HEAD map, weight quantization and the numpy network."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from occcodec.errors import FormatError, UsageError
from occcodec.format import container, network
from occcodec.format.arch import LARGEST_PARAMS, NI_PARAMS, Arch, Layer, parse_arch
from occcodec.format.header import build_header, parse_header
from occcodec.format.quant import SCHEMES, dequantize, quantize, raw_size
from occcodec.shapes.frame import axis_coords


def random_weights(arch: Arch, rng: np.random.Generator, scale: float = 1.0) -> list:
    return [((rng.standard_normal((i, o)) * scale / np.sqrt(i)).astype(np.float32),
             (rng.standard_normal(o) * 0.1).astype(np.float32)) for i, o in arch.layer_dims()]


# ---------------------------------------------------------------- arch

@pytest.mark.parametrize(("text", "levels", "layers", "canonical"), [
    ("32:elu,48:relu", 0, [(32, "elu"), (48, "relu")], "32:elu,48:relu"),
    ("pe4,24:swish,24:swish", 4, [(24, "swish"), (24, "swish")], "pe4,24:swish,24:swish"),
    (" PE2 , 8:ReLU ,", 2, [(8, "relu")], "pe2,8:relu"),
    ("1:elu,2:elu,3:elu,4:elu,5:elu,4096:swish", 0,
     [(1, "elu"), (2, "elu"), (3, "elu"), (4, "elu"), (5, "elu"), (4096, "swish")],
     "1:elu,2:elu,3:elu,4:elu,5:elu,4096:swish"),
    ("pe12,8:relu", 12, [(8, "relu")], "pe12,8:relu"),
])
def test_parse_arch(text: str, levels: int, layers: list, canonical: str) -> None:
    arch = parse_arch(text)
    assert arch.pe_levels == levels
    assert [(x.units, x.activation) for x in arch.layers] == layers
    assert str(arch) == canonical
    assert parse_arch(str(arch)) == arch


@pytest.mark.parametrize("text", [
    "", ",", "pe4", "pe", "pex,8:relu", "pe0,8:relu", "pe13,8:relu", "8:tanh", "8", "8:",
    "abc:relu", "0:relu", "4097:relu", "-8:relu", ",".join(["8:relu"] * 17), "8:relu,pe2",
])
def test_parse_arch_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="expected e.g."):
        parse_arch(text)


def test_params_of_the_papers_reference_networks() -> None:
    ni = Arch(tuple(Layer(32, "relu") for _ in range(8)))
    assert ni.params == NI_PARAMS == 7553
    largest = Arch(tuple(Layer(64, "relu") for _ in range(6)))
    assert largest.params == LARGEST_PARAMS == 21121


def test_params_and_dims() -> None:
    arch = parse_arch("pe2,24:elu,16:swish")
    assert arch.input_dim == 15
    assert arch.layer_dims() == [(15, 24), (24, 16), (16, 1)]
    assert arch.params == 15 * 24 + 24 + 24 * 16 + 16 + 16 + 1
    assert parse_arch("16:relu,16:relu").params == 353  # formats/occ-v1.md section 6.3


def test_arch_header_round_trip() -> None:
    for text in ("32:elu,48:relu", "pe4,24:swish,24:swish"):
        arch = parse_arch(text)
        assert Arch.from_header(arch.to_header()) == arch
    assert parse_arch("8:relu").to_header() == {
        "encoding": {"type": "identity"}, "layers": [{"units": 8, "activation": "relu"}],
        "output": "sigmoid"}


def test_arch_header_defaults_and_unknown_keys() -> None:
    arch = Arch.from_header({"layers": [{"units": 8, "activation": "elu", "future": 1}],
                             "future": {"x": 1}})
    assert arch == parse_arch("8:elu")


@pytest.mark.parametrize("obj", [
    None, [], {"layers": []}, {"layers": "8:relu"}, {"layers": [8]},
    {"layers": [{"units": 0, "activation": "relu"}]},
    {"layers": [{"units": 8.0, "activation": "relu"}]},
    {"layers": [{"units": 8, "activation": "gelu"}]},
    {"layers": [{"units": 8, "activation": "relu"}], "output": "softmax"},
    {"layers": [{"units": 8, "activation": "relu"}], "encoding": {"type": "fourier"}},
    {"layers": [{"units": 8, "activation": "relu"}], "encoding": {"type": "posenc"}},
    {"layers": [{"units": 8, "activation": "relu"}], "encoding": {"type": "posenc", "levels": 13}},
    {"layers": [{"units": 8, "activation": "relu"}], "encoding": "identity"},
])
def test_arch_from_header_refuses(obj: object) -> None:
    with pytest.raises(ValueError):
        Arch.from_header(obj)


# ---------------------------------------------------------------- header

def make_header(**over: object) -> dict:
    arch = parse_arch("pe2,16:elu,8:swish")
    h = build_header(encoder="test", arch=arch, grid=(20, 16, 24), center=(0.5, -1, 2),
                     scale=0.75, fill="shell", quant="int8", raw_bytes=raw_size(arch, "int8"),
                     source_kind="mesh", source_sha256=bytes(32), options={"seed": 3},
                     metrics={"iou": 0.99, "accuracy": 0.999, "params": arch.params})
    h.update(over)
    return h


def test_header_round_trip_through_a_file() -> None:
    raw = make_header()
    got = container.unpack(container.pack(raw, b"\x00")).header
    assert got == raw
    assert list(got) == ["encoder", "grid", "center", "scale", "fill", "arch", "quant",
                         "weights", "source", "options", "metrics"]
    h = parse_header(got)
    assert h.arch == parse_arch("pe2,16:elu,8:swish")
    assert (h.grid, h.center, h.scale, h.fill, h.quant) == (
        (20, 16, 24), (0.5, -1.0, 2.0), 0.75, "shell", "int8")
    assert h.metrics["params"] == h.arch.params
    assert h.options == {"seed": 3}


def test_header_unknown_and_informative_keys() -> None:
    raw = {k: v for k, v in make_header(future={"a": 1}).items()
           if k not in ("encoder", "weights", "source", "options", "metrics")}
    h = parse_header(raw)
    assert h.metrics == {} and h.options == {}


@pytest.mark.parametrize(("key", "value"), [
    ("grid", None), ("grid", [16, 16]), ("grid", [16, 16, 0]), ("grid", [16, 16, 4097]),
    ("grid", [16, 16, 16.0]), ("center", [0, 0]), ("center", [0, 0, "0"]),
    ("center", [0, 0, math.nan]), ("center", [0, 0, math.inf]), ("center", [0, 0, True]),
    ("scale", 0), ("scale", -1.0), ("scale", math.inf), ("scale", math.nan), ("scale", "1"),
    ("fill", "hollow"), ("fill", None), ("quant", "int4"), ("quant", None),
    ("arch", None), ("arch", {"layers": []}),
])
def test_header_refuses(key: str, value: object) -> None:
    raw = make_header(**{key: value})
    if value is None:
        del raw[key]
    with pytest.raises(FormatError, match=repr(key)):
        parse_header(raw)


# ---------------------------------------------------------------- quantization

ARCHS = ("16:relu,16:relu", "pe2,24:elu,16:swish", "pe1,12:swish,12:relu,8:elu", "32:elu")


@given(st.sampled_from(ARCHS), st.sampled_from(SCHEMES), st.integers(0, 2**32 - 1),
       st.floats(1e-3, 1e3))
def test_quant_round_trip_within_bounds(text: str, scheme: str, seed: int, mag: float) -> None:
    arch = parse_arch(text)
    weights = random_weights(arch, np.random.default_rng(seed), scale=mag)
    raw = quantize(weights, scheme)
    assert len(raw) == raw_size(arch, scheme)
    back = dequantize(raw, arch, scheme)
    assert len(back) == len(weights)
    for (k, b), (k2, b2) in zip(weights, back, strict=True):
        assert k2.shape == k.shape and b2.shape == b.shape
        assert k2.dtype == np.float32 and b2.dtype == np.float32
        if scheme == "fp32":
            assert np.array_equal(k, k2) and np.array_equal(b, b2)
            continue
        # biases: float16 in every other scheme (relative error <= 2^-11, normal range)
        assert np.all(np.abs(b2 - b) <= np.abs(b) * 2.0**-11 + 2.0**-25)
        if scheme == "fp16":
            assert np.all(np.abs(k2 - k) <= np.abs(k) * 2.0**-11 + 2.0**-25)
        else:
            amax = np.abs(k).max(axis=0) if scheme == "int8" else np.abs(k).max()
            step = amax / 127.0
            assert np.all(np.abs(k2 - k) <= step / 2.0 * (1 + 1e-5))
            assert np.allclose(np.abs(k2).max(axis=0 if scheme == "int8" else None), amax,
                               rtol=1e-6)


def test_int8_layout_by_hand() -> None:
    """formats/occ-v1.md 8.1: scales f32[fan_out], kernel i8 row-major, bias f16."""
    arch = Arch((Layer(2, "relu"),))  # dims (3, 2), (2, 1)
    # 0.4921259880065918 / float32(1/127) is exactly 62.5 in float32, 0.25 / (0.5/127) is 63.5
    k1 = np.array([[1.0, -0.5], [0.4921259880065918, 0.25], [-1.0, 0.0]], np.float32)
    k2 = np.array([[0.0], [0.0]], np.float32)  # an all-zero kernel: scale 1
    weights = [(k1, np.array([0.5, -2.0], np.float32)), (k2, np.array([3.0], np.float32))]
    raw = quantize(weights, "int8")
    s1 = np.frombuffer(raw, "<f4", 2, 0)
    assert np.allclose(s1, [1 / 127, 0.5 / 127])
    q1 = np.frombuffer(raw, "<i1", 6, 8).reshape(3, 2)
    assert q1.tolist() == [[127, -127], [62, 64], [-127, 0]]  # ties to even, both ways
    assert np.frombuffer(raw, "<f2", 2, 14).tolist() == [0.5, -2.0]
    assert np.frombuffer(raw, "<f4", 1, 18).tolist() == [1.0]
    assert raw[22:24] == b"\x00\x00"
    assert np.frombuffer(raw, "<f2", 1, 24).tolist() == [3.0]
    assert len(raw) == 26 == raw_size(arch, "int8")
    back = dequantize(raw, arch, "int8")
    assert np.array_equal(back[0][0], (q1.astype(np.float32) * s1).astype(np.float32))
    assert np.array_equal(back[1][0], k2)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dequantize_refuses_wrong_sizes(scheme: str) -> None:
    arch = parse_arch("pe1,12:swish,8:elu")
    raw = quantize(random_weights(arch, np.random.default_rng(0)), scheme)
    for bad in (raw[:-1], raw + b"\x00", b"", raw_size(parse_arch("12:swish,8:elu"), scheme)
                * b"\x00"):
        with pytest.raises(ValueError, match="bytes"):
            dequantize(bad, arch, scheme)


def test_unknown_scheme() -> None:
    arch = parse_arch("8:relu")
    w = random_weights(arch, np.random.default_rng(0))
    with pytest.raises(UsageError, match="unknown quantization 'int4'"):
        quantize(w, "int4")
    with pytest.raises(UsageError, match="unknown quantization"):
        raw_size(arch, "int4")
    with pytest.raises(UsageError, match="unknown quantization"):
        dequantize(b"", arch, "int4")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dequantize_refuses_non_finite(scheme: str) -> None:
    arch = parse_arch("8:relu")
    w = random_weights(arch, np.random.default_rng(0))
    w[-1] = (w[-1][0], np.array([np.inf], np.float32))
    raw = quantize(w, scheme)
    with pytest.raises(ValueError, match="NaN or infinite"):
        dequantize(raw, arch, scheme)


# ---------------------------------------------------------------- network

def reference_logits(arch: Arch, weights: list, pts: np.ndarray) -> np.ndarray:
    """formats/occ-v1.md section 9 in float64, written apart from occcodec.format.network."""
    p = np.asarray(pts, np.float64)
    cols = [p[:, 0], p[:, 1], p[:, 2]]
    for k in range(arch.pe_levels):
        cols += [np.sin(2.0**k * math.pi * p[:, a]) for a in range(3)]
        cols += [np.cos(2.0**k * math.pi * p[:, a]) for a in range(3)]
    h = np.stack(cols, axis=1)
    for layer, (k, b) in zip(arch.layers, weights[:-1], strict=True):
        a = h @ k.astype(np.float64) + b
        if layer.activation == "relu":
            h = np.maximum(a, 0)
        elif layer.activation == "elu":
            h = np.where(a > 0, a, np.exp(np.minimum(a, 0)) - 1)
        else:
            h = a * (1 / (1 + np.exp(-a)))
    k, b = weights[-1]
    return (h @ k.astype(np.float64) + b)[:, 0]


@pytest.mark.parametrize("text", (*ARCHS, "pe6,20:relu,20:elu,20:swish"))
def test_logits_match_a_float64_reference(text: str) -> None:
    arch = parse_arch(text)
    rng = np.random.default_rng(7)
    weights = random_weights(arch, rng, scale=2.0)
    pts = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    got = network.logits(arch, weights, pts)
    assert got.dtype == np.float32 and got.shape == (500,)
    want = reference_logits(arch, weights, pts)
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_positional_encoding_order() -> None:
    p = np.array([[0.25, -0.5, 0.125]], np.float32)
    f = network.positional_encoding(p, 2)[0]
    assert f.shape == (15,)
    x, y, z = p[0].astype(np.float64)
    want = [x, y, z,
            np.sin(np.pi * x), np.sin(np.pi * y), np.sin(np.pi * z),
            np.cos(np.pi * x), np.cos(np.pi * y), np.cos(np.pi * z),
            np.sin(2 * np.pi * x), np.sin(2 * np.pi * y), np.sin(2 * np.pi * z),
            np.cos(2 * np.pi * x), np.cos(2 * np.pi * y), np.cos(2 * np.pi * z)]
    assert np.allclose(f, want, atol=1e-6)


def test_activations() -> None:
    x = np.array([-30.0, -1.0, 0.0, 0.5, 3.0], np.float32)
    one = lambda text: network.logits(  # noqa: E731 - a 1-unit identity network
        parse_arch(text), [(np.array([[1, 0, 0]], np.float32).T, np.zeros(1, np.float32)),
                           (np.ones((1, 1), np.float32), np.zeros(1, np.float32))],
        np.stack([x, 0 * x, 0 * x], axis=1))
    assert np.allclose(one("1:relu"), np.maximum(x, 0))
    assert np.allclose(one("1:elu"), np.where(x > 0, x, np.expm1(x)))
    assert np.allclose(one("1:swish"), x / (1 + np.exp(-x.astype(np.float64))), atol=1e-7)


def test_grid_coords() -> None:
    x, y, z = axis_coords((4, 8, 2))
    assert x.tolist() == [-0.375, -0.125, 0.125, 0.375]
    assert y.tolist() == [-0.875, -0.625, -0.375, -0.125, 0.125, 0.375, 0.625, 0.875]
    assert z.tolist() == [-0.125, 0.125]
    c = axis_coords((130, 130, 130))[0]
    assert c.dtype == np.float32
    assert c[0] == np.float32(-129 / 130) and c[-1] == np.float32(129 / 130)
    assert axis_coords((1, 3, 3))[0].tolist() == [0.0]


def test_iter_grid_points_is_c_order() -> None:
    axes = axis_coords((3, 4, 5))
    pts = np.concatenate([p for _, p in network.iter_grid_points(axes)])
    ii, jj, kk = np.meshgrid(*axes, indexing="ij")
    assert np.array_equal(pts, np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1))


def test_logit_grid_matches_pointwise_logits() -> None:
    """The per-axis factorised grid evaluation agrees with logits() at the same points."""
    arch = parse_arch("pe2,10:elu,6:swish")
    weights = random_weights(arch, np.random.default_rng(5), scale=2.0)
    axes = axis_coords((6, 5, 7))
    pts = np.concatenate([p for _, p in network.iter_grid_points(axes)])
    want = network.logits(arch, weights, pts).reshape(6, 5, 7)
    assert np.allclose(network.logit_grid(arch, weights, axes), want, rtol=1e-5, atol=1e-5)


def test_occupancy_grid_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    arch = parse_arch("pe1,12:swish,8:elu")
    weights = random_weights(arch, np.random.default_rng(3), scale=3.0)
    shape = (11, 7, 9)
    axes = axis_coords(shape)
    whole = network.logit_grid(arch, weights, axes)
    assert whole.shape == shape and whole.dtype == np.float32
    for chunk in (1, 37, 63, 64, 10_000):  # smaller than a plane, not a multiple, larger
        monkeypatch.setattr(network, "CHUNK_POINTS", chunk)
        assert np.allclose(network.logit_grid(arch, weights, axes), whole, rtol=1e-6,
                           atol=1e-6)
        assert np.array_equal(network.occupancy_grid(arch, weights, axes), whole > 0)
    grid = network.occupancy_grid(arch, weights, axes)
    assert grid.dtype == bool and 0 < grid.sum() < grid.size


def test_occupancy_threshold_is_strict() -> None:
    arch = parse_arch("1:relu")
    w = [(np.zeros((3, 1), np.float32), np.zeros(1, np.float32)),
         (np.zeros((1, 1), np.float32), np.zeros(1, np.float32))]
    assert not network.occupancy_grid(arch, w, axis_coords((2, 2, 2))).any()  # logit 0: empty


@pytest.mark.parametrize(("shape", "res", "want"), [
    ((16, 16, 16), 32, (32, 32, 32)),
    ((20, 16, 24), 24, (20, 16, 24)),
    ((20, 16, 24), 27, (22, 18, 27)),   # 22.5: ties to even
    ((20, 16, 24), 30, (25, 20, 30)),
    ((20, 16, 24), 16, (13, 11, 16)),
    ((6, 10, 20), 18, (5, 9, 18)),      # 5.4, 9.0
    ((2, 3, 100), 16, (1, 1, 16)),      # 0.32 and 0.48 become 1, not 0
])
def test_scaled_shape(shape: tuple, res: int, want: tuple) -> None:
    assert network.scaled_shape(shape, res) == want
