"""Weight quantization: float tensors <-> the raw bytes stored (zstd-compressed) in a file.

Schemes, by the id written in the header:

``fp32``        every kernel then its bias, little-endian float32.
``fp16``        the same in IEEE half precision (the default: no measurable IoU loss).
``int8``        per dense layer: float32 scales, one per output channel; the kernel as int8
                (``w = q * scale[out]``, symmetric, round half to even, clipped to +-127);
                the bias as float16.
``int8-layer``  as int8 with one float32 scale for the whole kernel.

Kernels are (fan_in, fan_out) row-major (C order), layers in network order, output layer
last. The exact layout is specified in ``formats/occ-v1.md``.
"""

from __future__ import annotations

import numpy as np

from occcodec.format.arch import Arch
from occcodec.format.network import Weights

SCHEMES: tuple[str, ...] = ("fp32", "fp16", "int8", "int8-layer")


def _int8_scales(kernel: np.ndarray, per_channel: bool) -> np.ndarray:
    amax = np.abs(kernel).max(axis=0) if per_channel else np.array([np.abs(kernel).max()])
    scales = (amax / 127.0).astype(np.float32)
    # An all-zero channel gets scale 1 so that dequantization stays finite and exact.
    scales[scales == 0] = 1.0
    return scales


def quantize(weights: Weights, scheme: str) -> bytes:
    """Serialise ``weights`` under ``scheme`` (raises ValueError on an unknown scheme)."""
    parts: list[bytes] = []
    for kernel, bias in weights:
        kernel = np.asarray(kernel, dtype=np.float32)
        bias = np.asarray(bias, dtype=np.float32)
        if scheme in ("fp32", "fp16"):
            dt = "<f4" if scheme == "fp32" else "<f2"
            parts += [kernel.astype(dt).tobytes(), bias.astype(dt).tobytes()]
        elif scheme in ("int8", "int8-layer"):
            scales = _int8_scales(kernel, scheme == "int8")
            q = np.clip(np.rint(kernel / scales), -127, 127).astype("<i1")
            parts += [scales.astype("<f4").tobytes(), q.tobytes(), bias.astype("<f2").tobytes()]
        else:
            raise ValueError(f"unknown quantization {scheme!r}")
    return b"".join(parts)


def raw_size(arch: Arch, scheme: str) -> int:
    """Byte length of the uncompressed weights of ``arch`` under ``scheme``."""
    total = 0
    for fan_in, fan_out in arch.layer_dims():
        n = fan_in * fan_out
        if scheme == "fp32":
            total += 4 * (n + fan_out)
        elif scheme == "fp16":
            total += 2 * (n + fan_out)
        elif scheme == "int8":
            total += 4 * fan_out + n + 2 * fan_out
        elif scheme == "int8-layer":
            total += 4 + n + 2 * fan_out
        else:
            raise ValueError(f"unknown quantization {scheme!r}")
    return total


def dequantize(raw: bytes, arch: Arch, scheme: str) -> Weights:
    """Inverse of :func:`quantize`: float32 (kernel, bias) pairs.

    Raises
    ------
    ValueError
        If ``raw`` is not exactly the size the architecture needs, or a value is not finite.
    """
    expected = raw_size(arch, scheme)
    if len(raw) != expected:
        raise ValueError(f"weights hold {len(raw)} bytes, the architecture needs {expected}")
    buf = memoryview(raw)
    pos = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal pos
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=pos)
        pos += arr.nbytes
        return arr.astype(np.float32)

    weights: Weights = []
    for fan_in, fan_out in arch.layer_dims():
        n = fan_in * fan_out
        if scheme in ("fp32", "fp16"):
            dt = "<f4" if scheme == "fp32" else "<f2"
            kernel, bias = take(dt, n), take(dt, fan_out)
        else:
            scales = take("<f4", fan_out if scheme == "int8" else 1)
            kernel = (take("<i1", n).reshape(fan_in, fan_out) * scales).ravel()
            bias = take("<f2", fan_out)
        weights.append((kernel.reshape(fan_in, fan_out), bias))
    if not all(np.isfinite(k).all() and np.isfinite(b).all() for k, b in weights):
        raise ValueError("weights contain NaN or infinite values")
    return weights
