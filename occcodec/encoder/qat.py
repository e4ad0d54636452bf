"""Quantization-aware fine-tuning for low-bit weights (``occcodec.format.lowbit``).

After the float fit, a short fine-tune trains the float "shadow" weights through a fake
quantizer: the forward pass (training and validation) uses exactly the values a decoder will
get from :func:`occcodec.format.lowbit.dequantize`, and the gradient passes straight through
the rounding (the straight-through estimator). The kept checkpoint is then quantized by
``lowbit.quantize`` and measured by the decoder's own numpy network, as ``pipeline.measure``
does for the v1 schemes.

Why: issue 10 measured that 6-bit post-training quantization loses up to 4 IoU points on
networks under 2,000 parameters, and that the layer fed by the positional encoding needs
more bits than the rest; :func:`allocate_bits` chooses the bits per layer greedily against an
IoU target. Measured (``tests/benchmarks/results/lowbit-sweep/results.md``, nut and spot
at 128^3): 10 QAT epochs at 8 bits on the first layer and 4 after keep IoU within 0.3 point
of fp16 at 41-44 % of its bytes, where 4-bit PTQ lost 3-6 points.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occcodec.encoder import train as tr
from occcodec.encoder.sampling import Samples
from occcodec.encoder.tf import tf
from occcodec.format import lowbit
from occcodec.format.arch import Arch
from occcodec.format.network import Weights, occupancy_grid
from occcodec.shapes.frame import axis_coords

Tensor = Any  # TensorFlow ships no type stubs


def tf_fake_quantize(values: Tensor, bits: int, axis: int | None) -> Tensor:
    """Quantize-dequantize ``values`` as :func:`lowbit.fake_quantize` does, bit for bit.

    ``axis=0`` gives one scale per output channel of a kernel, ``None`` one scale for all
    (a bias). The gradient is the identity (straight-through estimator): the scale is
    derived from the maximum, so no value is clipped beyond float16 rounding of the scale.
    """
    q = float(lowbit.qmax(bits))
    cap = float(np.float32(lowbit._F16_MAX) * np.float32(q))

    @tf.custom_gradient  # type: ignore[misc]
    def fq(v: Tensor) -> tuple[Tensor, object]:
        amax = tf.minimum(tf.reduce_max(tf.abs(v), axis=axis), cap)
        # The same float32 division and round-to-nearest-even float16 cast as numpy's.
        s = tf.cast(tf.cast(amax / q, tf.float16), tf.float32)
        s = tf.where(s == 0.0, tf.ones_like(s), s)
        out = tf.clip_by_value(tf.round(v / s), -q, q) * s
        return out, lambda g: g

    return fq(values)


def layer_fn(bits_per_layer: Sequence[int], bias_bits: int = lowbit.BIAS_BITS) -> tr.LayerFn:
    """The :class:`occcodec.encoder.train.Trainer` hook that fake-quantizes every layer."""
    bits = list(bits_per_layer)

    def fn(index: int, kernel: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        return (tf_fake_quantize(kernel, bits[index], 0),
                tf_fake_quantize(bias, bias_bits, None))

    return fn


def measure(arch: Arch, raw: bytes, bits: Sequence[int], grid: np.ndarray,
            bias_bits: int = lowbit.BIAS_BITS) -> float:
    """IoU of stored low-bit weights on ``grid``, decoded by the decoder's own code."""
    pred = occupancy_grid(arch, lowbit.dequantize(raw, arch, bits, bias_bits),
                         axis_coords(grid.shape))
    union = int(np.count_nonzero(pred | grid))
    return int(np.count_nonzero(pred & grid)) / union if union else 1.0


def finetune(arch: Arch, weights: Weights, samples: Samples, bits: Sequence[int], epochs: int,
             rng: np.random.Generator, lr: float = 1e-3, final_lr: float = 1e-4,
             bias_bits: int = lowbit.BIAS_BITS, batch: int = 16384) -> tr.TrainResult:
    """``epochs`` of quantization-aware training from ``weights``; the best checkpoint by
    quantized validation accuracy (the starting weights count as epoch 0, so the result is
    never worse on validation than post-training quantization)."""
    fn = layer_fn(bits, bias_bits)
    start = tr.Trainer(arch, weights, layer_fn=fn)
    start_acc = start.accuracy(samples.val_x, samples.val_y)
    res = tr.train(arch, weights, samples, epochs, rng, lr=lr, keep_best=True,
                   final_lr=final_lr, layer_fn=fn, batch=batch)
    if start_acc >= res.best_val_acc:
        return tr.TrainResult([(k.copy(), b.copy()) for k, b in weights], start_acc, epochs)
    return res


@dataclass
class Allocation:
    """Bits per layer chosen by :func:`allocate_bits`, with what it cost to choose them."""

    bits: list[int]
    iou: float
    evaluations: int
    seconds: float


def allocate_bits(arch: Arch, weights: Weights, grid: np.ndarray, target_iou: float,
                  start: Sequence[int], floor: int = lowbit.MIN_BITS,
                  bias_bits: int = lowbit.BIAS_BITS) -> Allocation:
    """Lower layers' bit depths greedily while the quantized IoU stays >= ``target_iou``.

    Each round tries one bit less on every layer above ``floor``, each measured by the numpy
    decoder on ``grid`` after ``lowbit`` quantization of ``weights`` (no retraining), and
    keeps the trial that saves the most bytes (ties: the higher IoU). It stops when no trial
    holds the target. Cost: at most (layers x bits lowered) grid evaluations.

    Measured weakness (nut, spot at 128^3, target fp16 IoU - 0.5 point, from QAT at 8+6
    bits): it picked [7, 4, 4] (1,537 B) and [7, 6, 6] (1,289 B), where a plain QAT at
    [8, 3, 3] / [8, 4, 4] gave 1,529 B / 1,240 B at equal or better IoU: trials measured
    without retraining overstate what a lowered layer loses. 7 to 19 evaluations, 14 to
    93 s on the loaded shared machine.
    """
    t0 = time.perf_counter()
    bits = list(start)
    best_iou = measure(arch, lowbit.quantize(weights, bits, bias_bits), bits, grid, bias_bits)
    evaluations = 1
    while True:
        trials = []
        for i, b in enumerate(bits):
            if b <= floor:
                continue
            trial = [*bits[:i], b - 1, *bits[i + 1:]]
            raw = lowbit.quantize(weights, trial, bias_bits)
            iou = measure(arch, raw, trial, grid, bias_bits)
            evaluations += 1
            if iou >= target_iou:
                trials.append((len(raw), -iou, trial))
        if not trials:
            return Allocation(bits, best_iou, evaluations, time.perf_counter() - t0)
        _, neg_iou, bits = min(trials)
        best_iou = -neg_iou
