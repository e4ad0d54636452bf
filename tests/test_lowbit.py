"""Low-bit weights: the numpy reference (format/lowbit.py) and the fake quantization and
fine-tune that train for it (encoder/qat.py)."""

from __future__ import annotations

import numpy as np
import pytest

from occcodec.errors import FormatError
from occcodec.format import lowbit
from occcodec.format.arch import parse_arch
from occcodec.shapes.frame import axis_coords

ODD = parse_arch("pe1,7:elu,5:relu,3:swish")  # 9->7->5->3->1: no layer fills whole bytes


@pytest.fixture
def qat():
    """encoder.qat with TensorFlow's pools set first, as the suite's in-process encodes
    set them (one thread): the pools cannot change once TensorFlow has run an op."""
    pytest.importorskip("tensorflow")
    from occcodec.encoder import qat
    from occcodec.encoder.tf import configure

    configure()
    return qat


def _weights(arch, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, scale, (i, o)).astype(np.float32),
             rng.normal(0, scale, o).astype(np.float32)) for i, o in arch.layer_dims()]


@pytest.mark.parametrize("bits", range(lowbit.MIN_BITS, lowbit.MAX_BITS + 1))
@pytest.mark.parametrize("bias_bits", [4, 10, 16])
def test_round_trip_is_exact_and_sized(bits: int, bias_bits: int) -> None:
    w = _weights(ODD, bits)
    per_layer = [bits, lowbit.MAX_BITS, lowbit.MIN_BITS, bits]
    raw = lowbit.quantize(w, per_layer, bias_bits)
    assert len(raw) == lowbit.payload_bytes(ODD, per_layer, bias_bits)
    got = lowbit.dequantize(raw, ODD, per_layer, bias_bits)
    for (k, b), (k2, b2), nb in zip(w, got, per_layer, strict=True):
        fk, fb = lowbit.fake_quantize(k, b, nb, bias_bits)
        assert k2.dtype == np.float32 and k2.shape == k.shape
        np.testing.assert_array_equal(k2, fk)
        np.testing.assert_array_equal(b2, fb)
    # quantizing the decoded weights again gives the same bytes (codes and scales are fixed)
    assert lowbit.quantize(got, per_layer, bias_bits) == raw


def test_payload_size_formula() -> None:
    bits = [8, 3, 5, 4]
    scales = 2 * ((7 + 1) + (5 + 1) + (3 + 1) + (1 + 1))
    stream = 9 * 7 * 8 + 7 * 5 * 3 + 5 * 3 * 5 + 3 * 1 * 4 + (7 + 5 + 3 + 1) * 10
    assert lowbit.payload_bytes(ODD, bits) == scales + (stream + 7) // 8


def test_bit_order_is_lsb_first_offset_binary() -> None:
    # a 3 -> 1 -> 1 network ("1:relu")
    w = [(np.array([[1.0], [-1.0], [0.0]], np.float32), np.zeros(1, np.float32)),
         (np.array([[1.0]], np.float32), np.zeros(1, np.float32))]
    raw = lowbit.quantize(w, [3, 3], bias_bits=4)
    assert raw[:8] == np.array([1 / 3, 1, 1 / 3, 1], "<f2").tobytes()  # scales then bias scale
    # codes 3, -3, 0 -> u = 6, 0, 3 at 3 bits; bias 0 -> u = 7 at 4 bits; then 3 -> 6; bias 7
    bits = "011" + "000" + "110" + "1110" + "011" + "1110"
    bits += "0" * (-len(bits) % 8)
    expected = bytes(int(bits[i : i + 8][::-1], 2) for i in range(0, len(bits), 8))
    assert raw[8:] == expected


def test_error_within_half_a_step_per_channel() -> None:
    w = _weights(ODD, 3, scale=0.7)
    for bits in range(lowbit.MIN_BITS, lowbit.MAX_BITS + 1):
        got = lowbit.dequantize(lowbit.quantize(w, [bits] * 4), ODD, [bits] * 4)
        for (k, _), (k2, _) in zip(w, got, strict=True):
            step = np.abs(k).max(axis=0) / lowbit.qmax(bits)
            assert (np.abs(k - k2) <= 0.5 * step * (1 + 2**-10)).all()


def test_zero_channel_and_bad_payloads() -> None:
    w = _weights(ODD)
    w[1][0][:, 2] = 0.0
    bits = [4, 4, 4, 3]  # 621 bits in the stream: 3 padding bits in the last byte
    raw = lowbit.quantize(w, bits)
    assert (lowbit.dequantize(raw, ODD, bits)[1][0][:, 2] == 0).all()
    with pytest.raises(FormatError, match="need"):
        lowbit.dequantize(raw[:-1], ODD, bits)
    with pytest.raises(FormatError, match="padding"):
        lowbit.dequantize(raw[:-1] + bytes([raw[-1] | 0x80]), ODD, bits)
    stream = 2 * (8 + 6 + 4 + 2)  # the float16 scales come first
    with pytest.raises(FormatError, match="unused code"):
        lowbit.dequantize(raw[:stream] + b"\xff" + raw[stream + 1 :], ODD, bits)
    with pytest.raises(FormatError, match="scale"):
        lowbit.dequantize(b"\x00\xfc" + raw[2:], ODD, bits)  # float16 -inf
    with pytest.raises(ValueError, match="bit depths"):
        lowbit.payload_bytes(ODD, [2, 4, 4, 4])


def test_tf_fake_quant_equals_numpy(qat) -> None:
    tf = qat.tf
    rng = np.random.default_rng(5)
    for bits in range(lowbit.MIN_BITS, lowbit.MAX_BITS + 1):
        k = (rng.normal(0, 1, (37, 29)) * rng.lognormal(0, 2, 29)).astype(np.float32)
        b = rng.normal(0, 0.3, 29).astype(np.float32)
        k[:, 3] = 0.0
        fk, fb = lowbit.fake_quantize(k, b, bits)
        np.testing.assert_array_equal(qat.tf_fake_quantize(tf.constant(k), bits, 0).numpy(), fk)
        np.testing.assert_array_equal(
            qat.tf_fake_quantize(tf.constant(b), lowbit.BIAS_BITS, None).numpy(), fb)
        var = tf.Variable(k)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(qat.tf_fake_quantize(var, bits, 0) * 3.0)
        np.testing.assert_array_equal(tape.gradient(loss, var).numpy(), np.full_like(k, 3.0))


def test_qat_beats_post_training_quantization(qat) -> None:
    from occcodec.encoder import train as tr
    from occcodec.encoder.sampling import make_samples

    idx = np.indices((24, 24, 24)).astype(np.float32) - 11.5
    r = np.sqrt(idx[0] ** 2 + idx[1] ** 2)
    grid = ((r - 7.0) ** 2 + idx[2] ** 2) < 16.0  # a torus
    arch = parse_arch("pe2,24:elu,16:elu")
    rng = np.random.default_rng(0)
    samples = make_samples(grid, rng)
    fit = tr.train(arch, tr.init_weights(arch, rng), samples, 15, rng, lr=1e-2, final_lr=1e-3)
    bits = [3, 3, 3]
    ptq = qat.measure(arch, lowbit.quantize(fit.weights, bits), bits, grid)
    tuned = qat.finetune(arch, fit.weights, samples, bits, 5, np.random.default_rng(1))
    after = qat.measure(arch, lowbit.quantize(tuned.weights, bits), bits, grid)
    assert after > ptq + 0.02, (ptq, after)  # measured: 92.4 % -> 99.3 %


def test_allocate_bits_holds_the_target(qat) -> None:
    from occcodec.format.network import occupancy_grid

    arch = parse_arch("pe1,12:relu,8:relu")
    w = _weights(arch, 2)
    grid = occupancy_grid(arch, w, axis_coords((16, 16, 16)))  # the float network's own shape
    alloc = qat.allocate_bits(arch, w, grid, 0.9, [8, 8, 8])
    assert alloc.iou >= 0.9 and alloc.evaluations > 1
    assert qat.measure(arch, lowbit.quantize(w, alloc.bits), alloc.bits, grid) == alloc.iou
    assert sum(alloc.bits) < 24
