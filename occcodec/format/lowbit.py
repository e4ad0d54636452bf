"""Low-bit weights: per-layer bit depth, per-output-channel scales, one packed bit stream.

This is the numpy reference a decoder follows (no TensorFlow). It is not yet a scheme of the
v1 container; the v2 file format will carry it. The TensorFlow fake quantization used while
training (``occcodec.encoder.qat``) computes the very same values, bit for bit.

Quantization of one dense layer with kernel ``K`` (fan_in, fan_out), bias ``c`` (fan_out),
``b`` weight bits (3..8) and ``bb`` bias bits (:data:`BIAS_BITS` by default, 4..16):

* ``qmax(b) = 2**(b - 1) - 1`` (symmetric: 3 bits give the 7 levels -3..3).
* Channel scale ``s[o] = f16(min(max_i |K[i, o]|, 65504 * qmax) / qmax)``: float32 division,
  then rounded to IEEE half precision (round to nearest even) and back; a scale that is 0
  (an all-zero or a vanishingly small channel) becomes 1, so every weight of that channel
  is stored as 0.
* Codes ``q[i, o] = clip(rint(K[i, o] / s[o]), -qmax, qmax)`` where the division is float32
  and ``rint`` rounds half to even (numpy's ``np.rint``, TensorFlow's ``tf.round``).
* Decoded weight ``K'[i, o] = q[i, o] * s[o]`` in float32 (exact: |q| < 2**8).
* The bias the same way with one scale for the whole layer:
  ``t = f16(min(max_o |c[o]|, 65504 * qmax(bb)) / qmax(bb))``, ``c' = q * t``.

Byte layout (``payload_bytes`` gives its exact length before anything is written):

1. For each layer in network order (output layer last): its ``fan_out`` channel scales, then
   its bias scale, all little-endian float16.
2. One bit stream: for each layer in order, the kernel codes row-major over (fan_in,
   fan_out) (C order, as the kernels are stored in v1) at ``b`` bits each, then the
   ``fan_out`` bias codes at ``bb`` bits each. Codes are offset binary,
   ``u = q + qmax`` in 0..2*qmax; the all-ones value ``2**b - 1`` never occurs and a decoder
   rejects it. Each code is written least significant bit first, and bits fill each byte
   from its least significant bit (bit ``j`` of the stream is bit ``j % 8`` of byte
   ``j // 8``). The last byte is padded with zero bits, which a decoder checks.

Why these choices (measured with ``tests/benchmarks/lowbit_sweep.py``): float16 scales hold
(the rounding error of a half-precision scale is at most 2**-11 of it, far under half a
step even at 8 bits). Biases scaled per layer: with 8-bit weights, biases at 6, 8, 10 and 12
bits gave the same IoU to 0.01 point on nut.ply at 128^3 (99.18 %) and within 0.05 point on
the torus sample at 32^3, so :data:`BIAS_BITS` = 10 is a margin, not a need; it costs 1.25
bytes a channel against 2 for float16. One scale and one bias per output channel come to
about 3.25 bytes a channel: on a 2,000-parameter network with 65 channels, 4-bit weights
take 1,000 bytes and scales and biases about 200, the next place to save bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occcodec.errors import FormatError
from occcodec.format.arch import Arch
from occcodec.format.network import Weights

#: Weight bit depths a layer may use.
MIN_BITS, MAX_BITS = 3, 8
#: Default bias bit depth (biases are one per channel: a few bits more cost little).
BIAS_BITS = 10
MIN_BIAS_BITS, MAX_BIAS_BITS = 4, 16
#: Largest finite float16: scales are clamped below it so that they stay finite.
_F16_MAX = 65504.0


def qmax(bits: int) -> int:
    """Largest code magnitude at ``bits`` bits (symmetric, offset binary 0..2*qmax)."""
    return (1 << (bits - 1)) - 1


def channel_scales(values: np.ndarray, bits: int, axis: int | None) -> np.ndarray:
    """Float32 scales of ``values`` (max |value| along ``axis``, or all when None) at ``bits``.

    Each scale is rounded to float16 as stored; a zero scale becomes 1 (all codes 0).
    """
    q = np.float32(qmax(bits))
    amax = np.abs(np.asarray(values, dtype=np.float32)).max(axis=axis)
    amax = np.minimum(np.asarray(amax, dtype=np.float32), np.float32(_F16_MAX) * q)
    scales = np.atleast_1d((amax / q).astype(np.float16).astype(np.float32))
    scales[scales == 0] = 1.0
    return scales


def codes(values: np.ndarray, scales: np.ndarray, bits: int) -> np.ndarray:
    """Signed integer codes ``clip(rint(values / scales), -qmax, qmax)`` (float32 division)."""
    q = qmax(bits)
    ratio = np.asarray(values, dtype=np.float32) / scales
    return np.clip(np.rint(ratio), -q, q).astype(np.int32)


def fake_quantize(kernel: np.ndarray, bias: np.ndarray, bits: int,
                  bias_bits: int = BIAS_BITS) -> tuple[np.ndarray, np.ndarray]:
    """The float32 values a decoder gets for one layer (quantize then dequantize)."""
    ks = channel_scales(kernel, bits, axis=0)
    bs = channel_scales(bias, bias_bits, axis=None)
    return (codes(kernel, ks, bits).astype(np.float32) * ks,
            codes(bias, bs, bias_bits).astype(np.float32) * bs)


def _check_bits(layer_count: int, bits_per_layer: Sequence[int], bias_bits: int) -> list[int]:
    bits = [int(b) for b in bits_per_layer]
    if len(bits) != layer_count:
        raise ValueError(f"{len(bits)} bit depths given for {layer_count} dense layers")
    if any(not MIN_BITS <= b <= MAX_BITS for b in bits):
        raise ValueError(f"weight bit depths {bits} must lie in {MIN_BITS}..{MAX_BITS}")
    if not MIN_BIAS_BITS <= bias_bits <= MAX_BIAS_BITS:
        raise ValueError(f"bias bits {bias_bits} must lie in {MIN_BIAS_BITS}..{MAX_BIAS_BITS}")
    return bits


def _pack_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned ``values`` as a little-endian bit array (uint8 0/1), ``bits`` per value."""
    shifts = np.arange(bits, dtype=np.uint32)
    return ((values.astype(np.uint32)[:, None] >> shifts) & 1).astype(np.uint8).ravel()


def _unpack_bits(stream: np.ndarray, bits: int) -> np.ndarray:
    weights = (np.uint32(1) << np.arange(bits, dtype=np.uint32))
    return stream.reshape(-1, bits).astype(np.uint32) @ weights


def quantize(weights: Weights, bits_per_layer: Sequence[int],
             bias_bits: int = BIAS_BITS) -> bytes:
    """Serialise ``weights`` with ``bits_per_layer[l]`` bits per kernel weight of layer ``l``.

    Raises
    ------
    ValueError
        If the bit depths are out of range or not one per layer.
    """
    bits = _check_bits(len(weights), bits_per_layer, bias_bits)
    head: list[bytes] = []
    stream: list[np.ndarray] = []
    for (kernel, bias), b in zip(weights, bits, strict=True):
        kernel = np.asarray(kernel, dtype=np.float32)
        bias = np.asarray(bias, dtype=np.float32).ravel()
        ks = channel_scales(kernel, b, axis=0)
        bs = channel_scales(bias, bias_bits, axis=None)
        head += [ks.astype("<f2").tobytes(), bs.astype("<f2").tobytes()]
        stream.append(_pack_bits(codes(kernel, ks, b).ravel() + qmax(b), b))
        stream.append(_pack_bits(codes(bias, bs, bias_bits) + qmax(bias_bits), bias_bits))
    packed = np.packbits(np.concatenate(stream), bitorder="little")
    return b"".join(head) + packed.tobytes()


def _stream_bits(arch: Arch, bits: Sequence[int], bias_bits: int) -> int:
    return sum(i * o * b + o * bias_bits for (i, o), b in zip(arch.layer_dims(), bits,
                                                                strict=True))


def payload_bytes(arch: Arch, bits_per_layer: Sequence[int], bias_bits: int = BIAS_BITS) -> int:
    """Exact byte length of :func:`quantize`'s output for ``arch``.

    Raises
    ------
    ValueError
        If the bit depths are out of range or not one per layer.
    """
    bits = _check_bits(len(arch.layer_dims()), bits_per_layer, bias_bits)
    scales = sum(o + 1 for _, o in arch.layer_dims())
    return 2 * scales + (_stream_bits(arch, bits, bias_bits) + 7) // 8


def dequantize(data: bytes, arch: Arch, bits_per_layer: Sequence[int],
               bias_bits: int = BIAS_BITS) -> Weights:
    """Inverse of :func:`quantize`: float32 (kernel, bias) pairs, exactly as a decoder gets.

    Raises
    ------
    ValueError
        If the bit depths are out of range or not one per layer.
    FormatError
        If ``data`` is not exactly :func:`payload_bytes` long, a scale is not finite and
        positive, a code is the unused all-ones value, or the padding bits are not zero.
    """
    bits = _check_bits(len(arch.layer_dims()), bits_per_layer, bias_bits)
    expected = payload_bytes(arch, bits, bias_bits)
    if len(data) != expected:
        raise FormatError(f"low-bit weights hold {len(data)} bytes, the architecture and bit "
                          f"depths need {expected}: the file is damaged or mislabelled")
    dims = arch.layer_dims()
    n_scales = sum(o + 1 for _, o in dims)
    scales = np.frombuffer(data, dtype="<f2", count=n_scales).astype(np.float32)
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise FormatError("low-bit weights hold a scale that is not finite and positive: "
                          "the file is damaged")
    raw = np.frombuffer(data, dtype=np.uint8, offset=2 * n_scales)
    stream = np.unpackbits(raw, bitorder="little")
    used = _stream_bits(arch, bits, bias_bits)
    if stream[used:].any():
        raise FormatError("low-bit weights have nonzero padding bits: the file is damaged")
    out: Weights = []
    spos = bpos = 0

    def take(count: int, width: int) -> np.ndarray:
        """The next ``count`` codes at ``width`` bits, as signed float32 values."""
        nonlocal bpos
        u = _unpack_bits(stream[bpos : bpos + count * width], width)
        bpos += count * width
        if (u == (1 << width) - 1).any():
            raise FormatError(f"low-bit weights hold the unused code {(1 << width) - 1} at "
                              f"{width} bits: the file is damaged")
        return (u.astype(np.int32) - qmax(width)).astype(np.float32)

    for (fan_in, fan_out), b in zip(dims, bits, strict=True):
        ks, bs = scales[spos : spos + fan_out], scales[spos + fan_out]
        spos += fan_out + 1
        kernel = take(fan_in * fan_out, b).reshape(fan_in, fan_out) * ks
        out.append((kernel, take(fan_out, bias_bits) * bs))
    return out
