"""Weight quantization: float tensors <-> the raw bytes stored (zstd-compressed) in a file.

Schemes, by the id written in the header:

``fp32``        every kernel then its bias, little-endian float32.
``fp16``        the same in IEEE half precision (the default: no measurable IoU loss).
``int8``        per dense layer: float32 scales, one per output channel; the kernel as int8
                (``w = q * scale[out]``, symmetric, round half to even, clipped to +-127);
                the bias as float16.
``int8-layer``  as int8 with one float32 scale for the whole kernel.

Each id maps to one small :class:`Scheme` object in :data:`QUANT_SCHEMES` (its size, its
quantize and its dequantize of one layer); an unknown id raises, it never falls back.

Kernels are (fan_in, fan_out) row-major (C order), layers in network order, output layer
last. The exact layout is specified in ``formats/occ-v1.md``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from occcodec.errors import UsageError
from occcodec.format.arch import Arch
from occcodec.format.network import Weights


class _Reader:
    """Consecutive little-endian arrays out of one buffer, each returned as float32."""

    def __init__(self, raw: bytes) -> None:
        self.buf = memoryview(raw)
        self.pos = 0

    def take(self, dtype: str, count: int) -> np.ndarray:
        arr = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr.astype(np.float32)


class Scheme(ABC):
    """One quantization scheme: how a dense layer's (kernel, bias) is stored.

    A scheme's id is written in the header, so an id's layout never changes once released;
    a new layout gets a new id (and a new entry in :data:`QUANT_SCHEMES`).
    """

    id: str

    @abstractmethod
    def nbytes(self, fan_in: int, fan_out: int) -> int:
        """Stored size of one layer of ``fan_in`` x ``fan_out``."""

    @abstractmethod
    def quantize(self, kernel: np.ndarray, bias: np.ndarray) -> bytes:
        """One layer's bytes; ``kernel`` (fan_in, fan_out) and ``bias`` are float32."""

    @abstractmethod
    def dequantize(self, reader: _Reader, fan_in: int,
                   fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        """One layer back from ``reader``: float32 kernel (fan_in, fan_out) and bias."""


@dataclass(frozen=True)
class FloatScheme(Scheme):
    """Every kernel then its bias as little-endian floats of ``dtype``."""

    id: str
    dtype: str

    def nbytes(self, fan_in: int, fan_out: int) -> int:
        return np.dtype(self.dtype).itemsize * (fan_in * fan_out + fan_out)

    def quantize(self, kernel: np.ndarray, bias: np.ndarray) -> bytes:
        return kernel.astype(self.dtype).tobytes() + bias.astype(self.dtype).tobytes()

    def dequantize(self, reader: _Reader, fan_in: int,
                   fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        kernel = reader.take(self.dtype, fan_in * fan_out)
        return kernel.reshape(fan_in, fan_out), reader.take(self.dtype, fan_out)


@dataclass(frozen=True)
class Int8Scheme(Scheme):
    """float32 scales (one per output channel, or one per layer), the kernel as int8
    (``w = q * scale``, symmetric, round half to even, clipped to +-127), the bias as
    float16."""

    id: str
    per_channel: bool

    def nbytes(self, fan_in: int, fan_out: int) -> int:
        return 4 * (fan_out if self.per_channel else 1) + fan_in * fan_out + 2 * fan_out

    def scales(self, kernel: np.ndarray) -> np.ndarray:
        """The float32 scales of ``kernel``: max |w| / 127 per channel or per layer."""
        amax = (np.abs(kernel).max(axis=0) if self.per_channel
                else np.array([np.abs(kernel).max()]))
        scales = (amax / 127.0).astype(np.float32)
        # An all-zero channel gets scale 1 so that dequantization stays finite and exact.
        scales[scales == 0] = 1.0
        return scales

    def quantize(self, kernel: np.ndarray, bias: np.ndarray) -> bytes:
        scales = self.scales(kernel)
        q = np.clip(np.rint(kernel / scales), -127, 127).astype("<i1")
        return scales.astype("<f4").tobytes() + q.tobytes() + bias.astype("<f2").tobytes()

    def dequantize(self, reader: _Reader, fan_in: int,
                   fan_out: int) -> tuple[np.ndarray, np.ndarray]:
        scales = reader.take("<f4", fan_out if self.per_channel else 1)
        # a damaged scale (3e38) times 127 overflows to inf: the IEEE result is intended,
        # numpy's RuntimeWarning is not (the network's evaluation copes with inf)
        with np.errstate(over="ignore", invalid="ignore"):
            kernel = (reader.take("<i1", fan_in * fan_out).reshape(fan_in, fan_out) * scales)
        return kernel, reader.take("<f2", fan_out)


#: Every scheme the format knows, by the id written in the header (formats/occ-v1.md 8).
QUANT_SCHEMES: dict[str, Scheme] = {s.id: s for s in (
    FloatScheme("fp32", "<f4"),
    FloatScheme("fp16", "<f2"),
    Int8Scheme("int8", per_channel=True),
    Int8Scheme("int8-layer", per_channel=False),
)}
#: The scheme ids, in the order the CLI lists them.
SCHEMES: tuple[str, ...] = tuple(QUANT_SCHEMES)


def scheme(name: str) -> Scheme:
    """The scheme with id ``name``.

    Raises
    ------
    UsageError
        On an unknown id (never a fallback: a wrong layout would decode to noise).
    """
    try:
        return QUANT_SCHEMES[name]
    except KeyError:
        raise UsageError(f"unknown quantization {name!r}: use {', '.join(SCHEMES)}") from None


def quantize(weights: Weights, scheme_id: str) -> bytes:
    """Serialise ``weights`` under the scheme ``scheme_id``, layers in network order.

    Raises
    ------
    UsageError
        On an unknown scheme.
    """
    s = scheme(scheme_id)
    return b"".join(s.quantize(np.asarray(k, dtype=np.float32), np.asarray(b, dtype=np.float32))
                    for k, b in weights)


def raw_size(arch: Arch, scheme_id: str) -> int:
    """Byte length of the uncompressed weights of ``arch`` under ``scheme_id``.

    Raises
    ------
    UsageError
        On an unknown scheme.
    """
    s = scheme(scheme_id)
    return sum(s.nbytes(fan_in, fan_out) for fan_in, fan_out in arch.layer_dims())


def dequantize(raw: bytes, arch: Arch, scheme_id: str) -> Weights:
    """Inverse of :func:`quantize`: float32 (kernel, bias) pairs.

    Raises
    ------
    UsageError
        On an unknown scheme.
    ValueError
        If ``raw`` is not exactly the size the architecture needs, or a value is not finite.
    """
    s = scheme(scheme_id)
    expected = raw_size(arch, scheme_id)
    if len(raw) != expected:
        raise ValueError(f"weights hold {len(raw)} bytes, the architecture needs {expected}")
    reader = _Reader(raw)
    weights: Weights = [s.dequantize(reader, fan_in, fan_out)
                        for fan_in, fan_out in arch.layer_dims()]
    if not all(np.isfinite(k).all() and np.isfinite(b).all() for k, b in weights):
        raise ValueError("weights contain NaN or infinite values")
    return weights
