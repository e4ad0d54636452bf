"""Encoding: shape -> voxels -> samples -> search -> training -> quantized weights -> file.

One function, :func:`encode`, runs the pipeline; ``occcodec encode`` and ``occcodec batch``
both call it, so a shape gives the same bytes whichever command compressed it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from occcodec import __version__
from occcodec.format import container
from occcodec.format import network
from occcodec.format.arch import Arch, parse_arch
from occcodec.errors import UsageError
from occcodec.format.header import build_header
from occcodec.progress import Progress
from occcodec.format.quant import SCHEMES, dequantize, quantize


@dataclass(frozen=True)
class Preset:
    """Search and training budget. Epoch counts are full passes over the training samples."""

    rounds: int
    per_round: int
    search_epochs: int
    final_epochs: int
    encodings: tuple[int, ...]
    search_lr: float
    final_lr: float
    subsample: float
    max_params: int | None
    end_bias: float = 0.0
    acc_weight: float = 1.0
    final_lr_end: float | None = None  # cosine decay of the final fit down to this rate
    # When the final network's IoU is under this, also train the search's most accurate
    # candidate and keep the better: hard shapes buy fidelity with parameters.
    retry_below: float | None = None
    # The search's rules, by name (tables in encoder/search.py): how a candidate's accuracy
    # is scored, which controller samples, how candidates share weights, and which
    # candidate the final fit trains. The defaults are ours; "paper" follows the original.
    reward_accuracy: str = "best"
    controller: str = "plain"
    weight_sharing: str = "position"
    final_pick: str = "reward"


PRESETS: dict[str, Preset] = {
    # Previews and tests: a tiny search, a short final fit.
    "fast": Preset(1, 3, 2, 8, (0, 4), 1e-2, 1e-2, 0.5, None, 2.6, 10.0, 3e-4),
    # Tuned for fidelity and size within about a minute per shape on 2 CPU cores.
    "default": Preset(3, 4, 4, 40, (0, 2, 4, 6), 1e-2, 1e-2, 0.5, None, 2.6, 25.0, 3e-4,
                      0.97),
    # The published method as its code runs it (README, "The paper preset").
    "paper": Preset(5, 6, 40, 250, (), 1e-3, 1e-3, 1.0, None,
                    reward_accuracy="epoch-weighted", controller="hybrid",
                    weight_sharing="layer-pair", final_pick="accuracy-window"),
}


@dataclass
class EncodeOptions:
    """Everything that decides the output bytes (recorded in the header's ``options``)."""

    preset: str = "default"
    resolution: int = 128
    fill: str = "auto"
    quant: str = "fp16"
    seed: int = 0
    threads: int = 0  # 0: one per usable core
    arch: str | None = None
    max_params: int | None = None

    def resolved(self) -> EncodeOptions:
        """Validate and fill defaults.

        Raises
        ------
        UsageError
            On an unknown preset, fill or quantization, or a value out of range.
        """
        if self.preset not in PRESETS:
            raise UsageError(f"unknown preset {self.preset!r}: use {', '.join(PRESETS)}")
        if self.fill not in ("auto", "solid", "shell"):
            raise UsageError(f"unknown fill {self.fill!r}: use auto, solid or shell")
        if self.quant not in SCHEMES:
            raise UsageError(f"unknown quantization {self.quant!r}: use {', '.join(SCHEMES)}")
        if not 16 <= self.resolution <= 512:
            raise UsageError(f"resolution {self.resolution} is outside 16..512")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"seed {self.seed} must be in 0..{2**32 - 1}")
        if self.max_params is not None and self.max_params < 20:
            raise UsageError(f"--max-params {self.max_params} is too small (at least 20)")
        threads = self.threads or default_threads()
        if threads < 1:
            raise UsageError("--threads must be at least 1")
        arch = str(parse_arch(self.arch)) if self.arch else None
        return EncodeOptions(self.preset, self.resolution, self.fill, self.quant, self.seed,
                             threads, arch, self.max_params)

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def default_threads() -> int:
    """One TensorFlow intra-op thread per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class EncodeResult:
    data: bytes
    header: dict[str, Any]
    arch: Arch
    device: str
    seconds: float
    fill_note: str
    candidates: list[dict[str, Any]] = field(default_factory=list)


def measure(arch: Arch, raw: bytes, quant: str, grid: np.ndarray) -> dict[str, Any]:
    """IoU and accuracy of the stored (quantized) weights, by the decoder's own code."""
    pred = network.occupancy_grid(arch, dequantize(raw, arch, quant), grid.shape)
    inter = int(np.count_nonzero(pred & grid))
    union = int(np.count_nonzero(pred | grid))
    return {
        "iou": inter / union if union else 1.0,
        "accuracy": float(np.count_nonzero(pred == grid)) / grid.size,
        "params": arch.params,
    }


def encode(path: str | os.PathLike[str], options: EncodeOptions,
           progress: Progress | None = None) -> EncodeResult:
    """Compress one shape file into ``.occ`` bytes (not written: the caller writes them).

    Raises
    ------
    InputError, UsageError
        On an unusable input or option.
    """
    from occcodec.shapes.inputs import load_shape, sha256_file

    progress = progress or Progress()
    opts = options.resolved()
    preset = PRESETS[opts.preset]
    t0 = time.perf_counter()
    progress.stage("voxelize")
    shape = load_shape(path, resolution=opts.resolution, fill=opts.fill)
    grid = np.asarray(shape.occupancy, dtype=bool)
    if shape.fill_note:
        progress.note(shape.fill_note)
    progress.advance(f"{'x'.join(map(str, grid.shape))}, {int(grid.sum())} occupied")

    from occcodec.encoder import search as nas
    from occcodec.encoder import train as tr
    from occcodec.encoder.sampling import make_samples

    device = tr.configure(opts.threads)
    progress.note(f"training on {device} with {opts.threads} thread(s)")
    rng = np.random.default_rng(opts.seed)
    progress.stage("sample")
    samples = make_samples(grid, rng)
    progress.advance(f"{len(samples.train_x)} samples, {samples.boundary} on the boundary")

    def epoch_hook(e: int, loss: float, acc: float) -> None:
        progress.advance(f"epoch {e}: loss {loss:.4f}, val acc {acc * 100:.3f} %")

    candidates: list[dict[str, Any]] = []
    fallback: Any = None  # the search's most accurate candidate, when not the one picked
    if opts.arch:
        arch = parse_arch(opts.arch)
        start = tr.init_weights(arch, rng)
    else:
        budget = nas.SearchBudget(preset.rounds, preset.per_round, preset.search_epochs,
                                  preset.encodings, opts.max_params or preset.max_params,
                                  preset.search_lr, preset.subsample, preset.end_bias,
                                  preset.acc_weight, reward_accuracy=preset.reward_accuracy,
                                  controller=preset.controller,
                                  weight_sharing=preset.weight_sharing)
        progress.stage("search", preset.rounds * preset.per_round)

        def cand_hook(k: int, n: int, c: nas.Candidate) -> None:
            progress.advance(f"{c.arch} ({c.arch.params} params): acc {c.accuracy * 100:.2f} %")

        found = nas.search(samples, budget, rng, opts.seed, on_candidate=cand_hook)
        if not found:
            raise UsageError(f"no network fits --max-params {opts.max_params}: raise it")
        best = nas.FINAL_PICKS[preset.final_pick](found)
        candidates = [{"arch": str(c.arch), "params": c.arch.params,
                       "accuracy": c.accuracy, "reward": c.reward} for c in found]
        progress.note(f"search picked {best.arch} ({best.arch.params} params)")
        arch, start = best.arch, best.weights
        most_accurate = max(found, key=lambda c: c.accuracy)
        if preset.retry_below is not None and most_accurate.arch != best.arch:
            fallback = most_accurate
    def fit(net: Arch, weights: Any) -> tuple[bytes, dict[str, Any]]:
        """The final training, then quantization and the decoder's own measurement."""
        progress.stage("train", preset.final_epochs)
        trained = tr.train(net, weights, samples, preset.final_epochs, rng, lr=preset.final_lr,
                           keep_best=True, on_epoch=epoch_hook, final_lr=preset.final_lr_end)
        progress.stage("quantize")
        stored = quantize(trained.weights, opts.quant)
        measured = measure(net, stored, opts.quant, grid)
        progress.advance(f"IoU {measured['iou'] * 100:.2f} %")
        return stored, measured

    raw, metrics = fit(arch, start)
    retry = preset.retry_below
    if fallback is not None and retry is not None and metrics["iou"] < retry:
        progress.note(f"IoU {metrics['iou'] * 100:.2f} % is under {retry * 100:.0f} %: also "
                      f"training the most accurate candidate, {fallback.arch} "
                      f"({fallback.arch.params} params)")
        raw2, metrics2 = fit(fallback.arch, fallback.weights)
        if metrics2["iou"] > metrics["iou"]:
            arch, raw, metrics = fallback.arch, raw2, metrics2
        progress.note(f"kept {arch} (IoU {metrics['iou'] * 100:.2f} %)")
    header = build_header(
        encoder=f"occcodec {__version__}", arch=arch, grid=grid.shape, center=shape.center,
        scale=shape.scale, fill=shape.fill, quant=opts.quant, raw_bytes=len(raw),
        source_kind=shape.source_kind, source_sha256=bytes.fromhex(sha256_file(path)),
        options=opts.record(), metrics=metrics)
    data = container.pack(header, raw)
    return EncodeResult(data, header, arch, device, time.perf_counter() - t0, shape.fill_note,
                        candidates)
