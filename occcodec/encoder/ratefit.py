"""The training side of rate control: float fit, QAT at each plan's bits, the decoder's IoU.

:mod:`occcodec.encoder.rate` decides which plans (network x bits per layer) to try; this
module trains them. Each network gets one float fit (the preset's final fit, cached: the
plans of one network share it), then each plan a short quantization-aware fine-tune from
those float weights (:func:`occcodec.encoder.qat.finetune`), quantized by
``lowbit.quantize`` and measured on the encoded grid by the decoder's numpy network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from occcodec import __version__
from occcodec.encoder import qat
from occcodec.encoder import train as tr
from occcodec.encoder.presets import EncodeOptions, Preset
from occcodec.encoder.rate import (
    GaveUp,
    Outcome,
    Plan,
    SizeFn,
    Trial,
    bit_pairs,
    control,
    layer_bits,
    plans,
    search_pair,
)
from occcodec.encoder.sampling import Samples, with_points
from occcodec.format import lowbit, network
from occcodec.format.arch import Arch
from occcodec.format.network import Weights
from occcodec.progress import Progress
from occcodec.shapes.frame import axis_coords

#: The float IoU a network must reach for its plans to be tried against a target: QAT
#: trains on, so a quantized network can end a little above its float fit. A margin, not a
#: measured bound; a network under it still gets its largest plan trained (as the closest).
CEILING_SLACK = 0.002
#: Rate control tries a smaller network first when the search's pick clears the target by
#: at least this much in float IoU (the room quantization and a smaller network can use) ...
SHRINK_HEADROOM = 0.01
#: ... the most accurate search candidate (by its short fit) of at most this share of the
#: pick's bytes (both at the search's bit pair). One step: each try costs a float fit.
SHRINK_RATIO = 0.6
#: The smaller network's plans are tried only when its float IoU clears the target by this
#: much (plus ``CEILING_SLACK``): quantization at 4 bits cost spot's pe2,20:relu,32:relu 0.8
#: point (98.05 % float, 97.27 % at 8+4 bits), and three failed QAT runs cost a minute.
SHRINK_ROOM = 0.004
#: That smaller network is tried even before the pick is trained when its search accuracy
#: is within this of the pick's (the pick's float fit is then saved when it passes: nut's
#: pick of 8,509 parameters cost 70 of 200 CPU seconds at 512^3 only to show its room).
FIRST_ACCURACY_GAP = 0.02
#: Epochs of the float fit's extra training against its spurious parts (``run``'s
#: ``spurious``), at the QAT learning rate falling tenfold: a second full fit would cost
#: 40 epochs; a few passes with those parts' centres added remove them (airplane at 512^3).
SPURIOUS_EPOCHS = 4
#: With a fallback (``run``'s ``fallback_below``), a network whose float IoU is this far
#: under the fallback's threshold ends rate control: no later network (the pick after a
#: smaller first one, the search's most accurate after the pick) is fitted. Those networks
#: were as accurate in the search; measured at 512^3 (2026-12-05): alligator's three
#: networks reached 35.7, 42.2 and 36.1 %, woody's two 30.5 and 21.1 %: one float fit
#: each (20-25 s) saved.
ABANDON_GAP = 0.03

#: Finds a network's spurious parts: ``(arch, weights)`` -> (normalised points, labels,
#: number of parts) to train against, or None (:func:`occcodec.encoder.meshfit.
#: spurious_samples`).
Spurious = Callable[[Arch, Weights], "tuple[np.ndarray, np.ndarray, int] | None"]


@dataclass
class Start:
    """A network the rate control may train, with the weights its float fit starts from."""

    arch: Arch
    weights: Weights
    accuracy: float = 0.0  # the search's validation accuracy (0: not searched)


def grid_metrics(arch: Arch, weights: Weights, grid: np.ndarray) -> dict[str, Any]:
    """IoU and accuracy on ``grid`` of float32 ``weights``, by the decoder's own network."""
    pred = network.occupancy_grid(arch, weights, axis_coords(grid.shape))
    inter = int(np.count_nonzero(pred & grid))
    union = int(np.count_nonzero(pred | grid))
    return {"iou": inter / union if union else 1.0,
            "accuracy": float(np.count_nonzero(pred == grid)) / grid.size,
            "params": arch.params}


def effective_target(opts: EncodeOptions, preset: Preset) -> float | None:
    """``--target-iou`` when given; else none under ``--max-bytes`` (the best IoU within
    it); else the preset's target."""
    if opts.target_iou is not None or opts.max_bytes is not None:
        return opts.target_iou
    return preset.target_iou


def order_starts(found: Sequence[Start], pick: Start, quant: str, size: SizeFn,
                 max_bytes: int | None, target: float | None,
                 auto: tuple[tuple[int, int], ...] = ()) -> list[Start]:
    """The networks rate control tries, in order (at most two: each costs a float fit).

    With a target: the search's pick, then its most accurate candidate (the search's
    accuracies are of short fits, so a larger network is the step up when the pick misses).
    With only ``--max-bytes``: the most accurate candidates that have a plan within it.
    """
    most_accurate = max(found, key=lambda s: s.accuracy) if found else pick
    if target is not None:
        order = [pick, most_accurate]
    else:
        pairs = bit_pairs(quant, auto)
        order = sorted(found, key=lambda s: -s.accuracy) or [pick]
        order = [s for s in order if plans(s.arch, pairs, size, max_bytes)] or [pick]
    out: list[Start] = []
    for s in order:
        if all(str(s.arch) != str(o.arch) for o in out):
            out.append(s)
    return out[:2]


#: Scores decoded float32 weights as the file will be judged (the pipeline's scorer):
#: ``(arch, weights, surface[, trial])`` -> metrics with at least ``iou``, ``accuracy``,
#: ``params``; ``trial=False`` (a float fit, whose IoU is only a ceiling) skips the
#: component check a trial gets and may estimate the IoU on a sample (``iou_sampled``).
Score = Callable[..., dict[str, Any]]


def smaller_start(found: Sequence[Start], arch: Arch,
                  nbytes: Callable[[Arch], int]) -> Start | None:
    """The search candidate rate control tries before ``arch`` when ``arch`` has room to
    spare: the most accurate one (then the smallest) of at most :data:`SHRINK_RATIO` of its
    bytes; None when no candidate is that small."""
    cap = SHRINK_RATIO * nbytes(arch)
    small = [s for s in found if s.accuracy > 0 and nbytes(s.arch) <= cap]
    return max(small, key=lambda s: (s.accuracy, -nbytes(s.arch)), default=None)


def run(starts: Sequence[Start], samples: Samples, score: Score, preset: Preset,
        opts: EncodeOptions, rng: np.random.Generator, progress: Progress, size: SizeFn,
        epoch_hook: Callable[[int, float, float], None] | None = None,
        found: Sequence[Start] = (), spurious: Spurious | None = None,
        fallback_below: float | None = None) -> Outcome:
    """Train and measure plans until the request is met (or the networks are spent).

    With ``spurious``, a float fit whose decoded grid has spurious parts (components away
    from the truth) is trained :data:`SPURIOUS_EPOCHS` more epochs with those parts' voxel
    centres added to the training set as empty, and the QAT runs that follow keep them.

    ``found`` (the search's candidates) are the smaller networks tried first when a
    network clears the target by :data:`SHRINK_HEADROOM` (:func:`smaller_start`).
    Trials are scored without the surface distance; the caller measures the chosen one
    fully.

    ``fallback_below``: an IoU under which the caller writes its fallback (the lossless
    grid) instead of any network file. A network whose float IoU is under it gets no QAT
    run, and one under it by :data:`ABANDON_GAP` more ends the walk (``rate.control``'s
    ``fallback_below`` and ``abandon_below``) and is not trained against its spurious
    parts (its IoU, estimated before, decides).

    Raises
    ------
    UsageError
        When no plan fits ``--max-bytes``.
    GaveUp
        When no network's float IoU reached ``fallback_below`` (none was quantized).
    """
    floats: dict[str, tuple[Weights, float]] = {}
    target = effective_target(opts, preset)
    abandon = None if fallback_below is None else fallback_below - ABANDON_GAP
    by_key = {str(s.arch): s for s in [*found, *starts]}
    pair = search_pair(opts.quant, preset.auto_pairs)

    def float_fit(arch: Arch) -> tuple[Weights, float]:
        nonlocal samples
        key = str(arch)
        if key not in floats:
            progress.stage("train", preset.final_epochs)
            res = tr.train(arch, by_key[key].weights, samples, preset.final_epochs, rng,
                           lr=preset.final_lr, keep_best=True, batch=preset.batch,
                           on_epoch=epoch_hook,
                           final_lr=preset.final_lr_end)
            weights = res.weights
            scored = None
            if spurious is not None and abandon is not None:
                # a ceiling under ``abandon`` ends rate control: such a network's spurious
                # parts are not worth a decode and more epochs
                scored = score(arch, weights, False, False)
                if scored["iou"] + CEILING_SLACK >= abandon:
                    scored = None
            hard = spurious(arch, weights) if spurious is not None and scored is None else None
            if hard is not None:
                x, y, parts = hard
                progress.note(f"{arch}: {parts} spurious part(s), {len(x):,} voxel centres: "
                              f"training {SPURIOUS_EPOCHS} more epochs against them")
                samples = with_points(samples, x, y)
                progress.stage("train", SPURIOUS_EPOCHS)
                weights = tr.train(arch, weights, samples, SPURIOUS_EPOCHS, rng,
                                   lr=preset.qat_lr, keep_best=False, batch=preset.batch,
                                   on_epoch=epoch_hook, final_lr=preset.qat_lr / 10).weights
            if scored is None:
                scored = score(arch, weights, False, False)
            iou = scored["iou"]
            on = scored.get("iou_sampled", 0)
            progress.note(f"{arch}: float IoU {iou * 100:.2f} %"
                          + (f" (on {on:,} voxel centres)" if on else ""))
            floats[key] = (weights, iou)
        return floats[key]

    def evaluate(plan: Plan) -> Trial:
        weights, _ = float_fit(plan.arch)
        progress.stage("quantize", preset.qat_epochs)
        tuned = qat.finetune(plan.arch, weights, samples, plan.bits, preset.qat_epochs, rng,
                             lr=preset.qat_lr, final_lr=preset.qat_lr / 10,
                             batch=preset.batch)
        payload = lowbit.quantize(tuned.weights, plan.bits)
        decoded = lowbit.dequantize(payload, plan.arch, plan.bits)
        metrics = score(plan.arch, decoded, False)
        extra = int(metrics.pop("extra_components", 0))  # a trial's check, not a metric
        spurious = f", {extra} spurious part(s): not clean" if extra else ""
        progress.note(f"{plan.arch} at bits {list(plan.bits)}: IoU {metrics['iou'] * 100:.2f} "
                      f"% in {plan.nbytes:,} bytes{spurious}")
        return Trial(plan, metrics["iou"], payload, metrics, clean=extra == 0)

    def ceiling(arch: Arch) -> float:
        return float_fit(arch)[1] + CEILING_SLACK

    def nbytes(arch: Arch) -> int:
        return size(arch, layer_bits(arch, pair))

    first = None
    if target is not None and found and starts:
        pick = by_key[str(starts[0].arch)]
        small = smaller_start(found, pick.arch, nbytes)
        if small is not None and small.accuracy >= pick.accuracy - FIRST_ACCURACY_GAP:
            first = small.arch
            progress.note(f"trying the smaller {small.arch} ({small.arch.params} params, "
                          f"search accuracy {small.accuracy * 100:.2f} %) before the pick")

    def shrink(arch: Arch, top: float) -> Arch | None:
        if target is None or top - CEILING_SLACK < target + SHRINK_HEADROOM:
            return None
        small = smaller_start(found, arch, nbytes)
        if small is not None and str(small.arch) != str(first):
            progress.note(f"{arch} has room above the target: trying the smaller "
                          f"{small.arch} ({small.arch.params} params) first")
        return None if small is None else small.arch

    try:
        return control([s.arch for s in starts], bit_pairs(opts.quant, preset.auto_pairs),
                       size, evaluate, target=target, max_bytes=opts.max_bytes,
                       ceiling=ceiling, shrink=shrink, shrink_room=SHRINK_ROOM, first=first,
                       fallback_below=fallback_below, abandon_below=abandon)
    except GaveUp as gave:  # the float IoUs themselves, not the ceilings (+ CEILING_SLACK)
        raise GaveUp([(a, floats[str(a)][1]) for a, _ in gave.ceilings]) from None


class Lowbit:
    """A low-bit (v2) file of one shape: its predicted sizes, its rate control, its bytes."""

    def __init__(self, shape: Any, score: Score | None, template: Callable[[Arch], dict[str, Any]],
                 source_sha256: bytes, opts: EncodeOptions, preset: Preset) -> None:
        # template(arch): metrics of the size the real ones will have (v2 packs metric floats
        # as float32, 5 bytes whatever the value; counts are known before training)
        self.shape, self.score, self.template, self.sha = shape, score, template, source_sha256
        self.opts, self.preset = opts, preset

    def header(self, arch: Arch | None, bits: Sequence[int] = ()) -> Any:
        """The lean v2 header of ``arch`` at ``bits``; ``arch=None``: a grid-mode header."""
        from occcodec.coding.ctxgrid import DEFAULT_MODEL
        from occcodec.format import v2

        gf = self.shape.grid_frame  # the R^3 grid of the truth (meshes may exceed the voxels)
        nx, ny, nz = (int(n) for n in gf.shape)
        cx, cy, cz = (float(c) for c in gf.center)
        if arch is None:
            return v2.LeanHeader(grid=(nx, ny, nz), center=(cx, cy, cz), scale=float(gf.scale),
                                 fill=self.shape.fill, arch=None, grid_model=DEFAULT_MODEL)
        return v2.LeanHeader(
            grid=(nx, ny, nz), center=(cx, cy, cz),
            scale=float(gf.scale), fill=self.shape.fill, arch=arch,
            weights=v2.WeightsSpec("lowbit", bits=tuple(int(b) for b in bits),
                                   bias_bits=lowbit.BIAS_BITS))

    def meta(self, metrics: dict[str, Any]) -> dict[str, Any] | None:
        """The optional meta section (None with ``--strip``): encoder, options, source,
        metrics measured by the decoder's code."""
        if self.opts.strip:
            return None
        return {"encoder": f"occcodec {__version__}",
                "source": {"kind": self.shape.source_kind, "sha256": self.sha},
                "options": self.opts.record(), "metrics": metrics}

    def size(self, arch: Arch, bits: tuple[int, ...]) -> int:
        """The exact size of the file ``arch`` at ``bits`` will be written as."""
        from occcodec.format import v2

        meta = self.meta(self.template(arch))
        return lowbit.payload_bytes(arch, bits) + v2.overhead(self.header(arch, bits), meta)

    def search_size(self) -> Callable[[Arch], int] | None:
        """The search reward's size term (bytes at the search's bit pair), or None when the
        preset keeps the paper's parameter count."""
        if self.preset.size_term != "bytes":
            return None
        pair = search_pair(self.opts.quant, self.preset.auto_pairs)
        return lambda arch: self.size(arch, layer_bits(arch, pair))

    def pack(self, trial: Trial) -> bytes:
        """The file of a measured trial."""
        from occcodec.format import v2

        plan = trial.plan
        return v2.pack(self.header(plan.arch, plan.bits), trial.payload,
                       self.meta(dict(trial.metrics)))

    def encode(self, arch: Arch, start: Weights, found: Sequence[Any], samples: Samples,
               rng: np.random.Generator, progress: Progress,
               epoch_hook: Callable[[int, float, float], None] | None,
               spurious: Spurious | None = None, fallback_below: float | None = None
               ) -> tuple[bytes, dict[str, Any], Arch, str]:
        """Rate control over the search's networks, then the file (``spurious`` and
        ``fallback_below``: see :func:`run`).

        Returns the file's bytes, its record for ``EncodeResult.header`` (metrics, fill,
        quant, bits, the trials), the network, and the rate-control note ("" when the
        request was met).

        Raises
        ------
        UsageError
            When no plan fits ``--max-bytes``.
        GaveUp
            As :func:`run`.
        """
        pick = next((Start(c.arch, c.weights, c.accuracy) for c in found
                     if str(c.arch) == str(arch)), Start(arch, start))
        every = [Start(c.arch, c.weights, c.accuracy) for c in found]
        starts = order_starts(every, pick, self.opts.quant, self.size, self.opts.max_bytes,
                              effective_target(self.opts, self.preset),
                              self.preset.auto_pairs)
        assert self.score is not None, "a Lowbit made before sampling cannot train"
        outcome = run(starts, samples, self.score, self.preset, self.opts, rng, progress,
                      self.size, epoch_hook, every, spurious, fallback_below)
        chosen = self._measured(outcome.chosen)
        data = self.pack(chosen)
        # Rate control relied on the prediction; a file over --max-bytes is never returned.
        cap = self.opts.max_bytes
        if len(data) != chosen.plan.nbytes or (cap is not None and len(data) > cap):
            raise RuntimeError(f"internal error: predicted {chosen.plan.nbytes} bytes, packed "
                               f"{len(data)} (--max-bytes {cap}); please report it")
        # Not shown here: the pipeline may still write the lossless grid instead, and the
        # CLI shows a kept network's note once, as a warning, at the end.
        note = outcome.note_at(chosen.iou) if outcome.note_at else outcome.note
        bits = list(chosen.plan.bits)
        record = {"metrics": dict(chosen.metrics), "fill": self.shape.fill,
                  "quant": f"lowbit {','.join(map(str, bits))}", "bits": bits,
                  "trials": [{"arch": str(t.plan.arch), "bits": list(t.plan.bits),
                              "bytes": t.plan.nbytes, "iou": t.iou} for t in outcome.trials]}
        return data, record, chosen.plan.arch, note

    def grid_file(self, words: bytes, metrics: dict[str, Any]) -> bytes:
        """The grid-mode file (``formats/occ-v2.md`` 6.3) of a grid coded by
        :func:`occcodec.coding.ctxgrid.encode_words`: no network."""
        from occcodec.format import v2

        return v2.pack(self.header(None), words, self.meta(metrics))

    def grid_size(self, words: bytes, metrics: dict[str, Any]) -> int:
        """The exact size of :meth:`grid_file` with metrics of the same kinds as ``metrics``
        (v2 packs metric floats at a fixed width, so their values do not matter)."""
        from occcodec.format import v2

        return len(words) + v2.overhead(self.header(None), self.meta(metrics), len(words))

    def smallest_network(self, archs: Sequence[Arch]) -> int:
        """Bytes of the smallest file any of ``archs`` could make at the allowed bits: a
        lower bound on what the network path can write."""
        pairs = bit_pairs(self.opts.quant, self.preset.auto_pairs)
        return min(self.size(a, layer_bits(a, p)) for a in archs for p in pairs)

    def _measured(self, trial: Trial) -> Trial:
        """The trial with its full metrics (the surface distance too, for a mesh input)."""
        plan = trial.plan
        assert self.score is not None, "a Lowbit made before sampling cannot score"
        metrics = self.score(plan.arch, lowbit.dequantize(trial.payload, plan.arch, plan.bits),
                             True)
        return Trial(plan, metrics["iou"], trial.payload, metrics)

    def single(self, arch: Arch, start: Weights, epochs: int, samples: Samples,
               rng: np.random.Generator, progress: Progress,
               epoch_hook: Callable[[int, float, float], None] | None
               ) -> tuple[bytes, dict[str, Any]]:
        """One network, ``epochs`` of float fit and a QAT fine-tune at the preset's largest
        bit pair, no rate control: the rescue's fit (:mod:`occcodec.encoder.rescue`).

        Returns the file and its record (metrics, quant, bits).
        """
        progress.stage("train", epochs)
        res = tr.train(arch, start, samples, epochs, rng, lr=self.preset.final_lr,
                       keep_best=True, batch=self.preset.batch, on_epoch=epoch_hook,
                       final_lr=self.preset.final_lr_end)
        pairs = bit_pairs(self.opts.quant, self.preset.auto_pairs)
        bits = layer_bits(arch, max(pairs))
        progress.stage("quantize", self.preset.qat_epochs)
        tuned = qat.finetune(arch, res.weights, samples, bits, self.preset.qat_epochs, rng,
                             lr=self.preset.qat_lr, final_lr=self.preset.qat_lr / 10,
                             batch=self.preset.batch)
        payload = lowbit.quantize(tuned.weights, bits)
        plan = Plan(arch, tuple(bits), self.size(arch, tuple(bits)))
        trial = self._measured(Trial(plan, 0.0, payload, {}))
        return self.pack(trial), {"metrics": dict(trial.metrics), "bits": list(bits),
                                  "quant": f"lowbit {','.join(map(str, bits))}"}
