"""The format's enumerations as tables: activations (numpy and TensorFlow twins), quantization.

The decoder evaluates a network with the numpy activations, the encoder trains it with the
TensorFlow ones: if the two tables disagree, a file decodes to another shape than the one
trained, so they are compared key for key and value for value.
"""

from __future__ import annotations

import numpy as np
import pytest

from occcodec.encoder import train
from occcodec.errors import FormatError, UsageError
from occcodec.format import network
from occcodec.format.arch import ACTIVATIONS, Arch, Layer, parse_arch
from occcodec.format.quant import (
    QUANT_SCHEMES,
    SCHEMES,
    FloatScheme,
    Int8Scheme,
    dequantize,
    quantize,
    raw_size,
    scheme,
)

#: TensorFlow starts with the thread count the CLI tests use (see conftest).
pytestmark = pytest.mark.usefixtures("tf_one_thread")

tf = train.tf
# Dense around 0, where the three functions bend, plus far tails (overflow of exp(-x)).
GRID = np.concatenate([np.linspace(-12.0, 12.0, 4801), [-1e4, -300.0, -90.0, 90.0, 300.0, 1e4],
                       [0.0, -0.0, 1e-7, -1e-7]]).astype(np.float32)


def test_activation_tables_have_the_format_ids() -> None:
    assert tuple(network.ACTIVATION_FNS) == ACTIVATIONS
    assert tuple(train.TF_ACTIVATIONS) == ACTIVATIONS


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_numpy_and_tensorflow_activations_agree(name: str) -> None:
    ours = network.activation(name)(GRID.copy())  # works in place: give it a copy
    theirs = train.tf_activation(name)(tf.constant(GRID)).numpy()
    assert ours.dtype == np.float32 and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_activations_have_their_textbook_values() -> None:
    x = np.array([-2.0, 0.0, 3.0], np.float32)
    np.testing.assert_allclose(network.activation("relu")(x.copy()), [0.0, 0.0, 3.0])
    np.testing.assert_allclose(network.activation("elu")(x.copy()), [np.expm1(-2.0), 0.0, 3.0],
                               rtol=1e-6)
    sig = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(network.activation("swish")(x.copy()), x * sig, rtol=1e-6)


def test_unknown_activation_raises_never_falls_back() -> None:
    with pytest.raises(FormatError, match="unknown activation 'tanh'"):
        network.activation("tanh")
    with pytest.raises(UsageError, match="unknown activation 'tanh'"):
        train.tf_activation("tanh")
    arch = Arch((Layer(4, "tanh"),))  # built around parse_arch, which would refuse it
    weights = [(np.ones((3, 4), np.float32), np.zeros(4, np.float32)),
               (np.ones((4, 1), np.float32), np.zeros(1, np.float32))]
    with pytest.raises(FormatError):
        network.logits(arch, weights, np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("levels", [0, 1, 4, 6])
def test_numpy_and_tensorflow_encodings_agree(levels: int) -> None:
    pts = np.random.default_rng(levels).uniform(-1.0, 1.0, (500, 3)).astype(np.float32)
    ours = network.positional_encoding(pts, levels)
    theirs = train._tf_encode(tf.constant(pts), levels).numpy()
    assert ours.shape == theirs.shape == (500, 3 + 6 * levels)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_numpy_and_tensorflow_networks_agree() -> None:
    """A whole network: the decoder's logits equal the trainer's (same weights)."""
    arch = parse_arch("pe2,12:relu,8:elu,8:swish")
    weights = train.init_weights(arch, np.random.default_rng(3))
    pts = np.random.default_rng(4).uniform(-1.0, 1.0, (300, 3)).astype(np.float32)
    ours = network.logits(arch, weights, pts)
    theirs = train.Trainer(arch, weights)._logits(tf.constant(pts)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


def test_quant_table_keys_and_kinds() -> None:
    assert SCHEMES == tuple(QUANT_SCHEMES) == ("fp32", "fp16", "int8", "int8-layer")
    for sid, s in QUANT_SCHEMES.items():
        assert s.id == sid and scheme(sid) is s
    assert isinstance(scheme("fp16"), FloatScheme) and isinstance(scheme("int8"), Int8Scheme)
    with pytest.raises(UsageError, match="use fp32, fp16, int8, int8-layer"):
        scheme("int4")


@pytest.mark.parametrize("sid", SCHEMES)
def test_quant_table_round_trips(sid: str) -> None:
    arch = parse_arch("pe1,12:swish,8:elu")
    rng = np.random.default_rng(7)
    weights = [(rng.normal(0, 0.5, (i, o)).astype(np.float32),
                rng.normal(0, 0.1, o).astype(np.float32)) for i, o in arch.layer_dims()]
    s = scheme(sid)
    per_layer = [s.quantize(k, b) for k, b in weights]
    assert [len(p) for p in per_layer] == [s.nbytes(i, o) for i, o in arch.layer_dims()]
    raw = quantize(weights, sid)
    assert raw == b"".join(per_layer) and len(raw) == raw_size(arch, sid)
    back = dequantize(raw, arch, sid)
    for (k, b), (k2, b2) in zip(weights, back, strict=True):
        assert k2.shape == k.shape and k2.dtype == np.float32 and b2.dtype == np.float32
        if sid == "fp32":
            assert np.array_equal(k, k2) and np.array_equal(b, b2)
        else:
            step = (np.abs(k).max(axis=0) / 127.0 if sid == "int8"
                    else np.abs(k).max() / 127.0 if sid == "int8-layer"
                    else np.abs(k) * 2.0**-11)
            assert np.all(np.abs(k2 - k) <= step * (0.5 if "int8" in sid else 1.0) + 1e-7)
            assert np.all(np.abs(b2 - b) <= np.abs(b) * 2.0**-11 + 2.0**-25)
    # quantizing the stored values again changes nothing: re-encoding a file is lossless
    assert quantize(back, sid) == raw
