"""Encoding: shape -> voxels -> samples -> search -> training -> quantized weights -> file.

One function, :func:`encode`, runs the pipeline; ``occcodec encode`` and ``occcodec batch``
both call it, so a shape gives the same bytes whichever command compressed it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from occcodec import __version__
from occcodec.encoder.presets import PRESETS, EncodeOptions, Preset, default_threads, preset_for
from occcodec.encoder.rate import GaveUp, NoPlanFits, is_lowbit
from occcodec.encoder.rescue import FAIL_IOU, rescue
from occcodec.errors import UsageError
from occcodec.format import container
from occcodec.format.arch import Arch, parse_arch
from occcodec.format.header import build_header
from occcodec.format.quant import dequantize, quantize
from occcodec.progress import Progress
from occcodec.shapes.inputs import Shape

if TYPE_CHECKING:  # the search imports TensorFlow: only encode() and search_budget() load it
    from occcodec.encoder.sampling import Samples
    from occcodec.encoder.search import SearchBudget

# Re-exported: callers import these from here since before presets.py existed.
__all__ = ["PRESETS", "EncodeOptions", "EncodeResult", "Preset", "default_threads", "encode",
           "encode_shape", "search_budget"]


#: ``--mode auto`` weighs grid mode (the lossless ctx-grid file) against the network up to
#: this grid edge. At 128^3 the coder takes about a second and its file was written for 18
#: of the 24 shared meshes; at 512^3 it takes 20-46 s and the network's file is about 10x
#: smaller (README, Results).
GRID_AUTO_MAX_EDGE = 256
#: Above that edge (up to ``meshfit.FULL_TRUTH_EDGE``, where a mesh's truth is a full grid),
#: ``--mode auto`` codes the lossless grid only when the network's file misses the target
#: by more than this, and then writes it: it is the only file that reaches the target. A
#: narrower miss keeps the network's file and says so: at 512^3 the grid is 10-20x larger.
#: Measured at 512^3 on three shared meshes with thin parts (2CylinderEngine.glb,
#: Spider_binary.stl, 76277.obj): the networks reached 80.1 %, 96.9 % and 97.5 %.
GRID_LATE_MISS = 0.01
#: With that fallback, a network whose float IoU (plus ``ratefit.CEILING_SLACK``) is more
#: than this under the late grid's threshold (target - GRID_LATE_MISS) gets no QAT run
#: (``ratefit.run``'s ``fallback_below``): its file would be replaced by the grid anyway.
#: Measured on 43 QAT trials of 9 shared meshes at 512^3 (2026-12-05): every trial ended
#: 0.16 to 1.51 points under its network's float IoU, never above; a network under
#: 97.3 % float IoU at the 99 % target would need to gain 0.7 point to reach 98 %. A
#: margin, not a bound. When no network comes that close, the grid is coded and written
#: without any QAT run (the same file, sooner).
HOPELESS_SLACK = 0.005


@dataclass
class EncodeResult:
    data: bytes
    header: dict[str, Any]
    #: The network; None for a grid-mode file.
    arch: Arch | None
    device: str
    seconds: float
    fill_note: str
    candidates: list[dict[str, Any]] = field(default_factory=list)
    #: Set when rate control missed the request: one line saying so and what to try.
    note: str = ""

    @property
    def label(self) -> str:
        """What the file holds: the architecture, or ``ctx-grid`` (``Coded.label``)."""
        from occcodec.decoder import GRID_SCHEME

        return GRID_SCHEME if self.arch is None else str(self.arch)


def search_budget(preset: Preset, max_params: int | None = None,
                  size_bytes: Any = None) -> SearchBudget:
    """The architecture search's budget under ``preset``; ``max_params`` (``--max-params``)
    overrides the preset's cap when given; ``size_bytes(arch)``, when given, makes the
    reward's size term count file bytes."""
    from occcodec.encoder.search import SearchBudget

    return SearchBudget(
        rounds=preset.rounds, per_round=preset.per_round, epochs=preset.search_epochs,
        encodings=preset.encodings, max_params=max_params or preset.max_params,
        lr=preset.search_lr, subsample=preset.subsample, end_bias=preset.end_bias,
        acc_weight=preset.acc_weight, reward_accuracy=preset.reward_accuracy,
        controller=preset.controller, weight_sharing=preset.weight_sharing,
        size_bytes=size_bytes, batch=preset.batch)


#: Scores decoded (float32) weights the way the file will be judged: ``(arch, weights,
#: surface[, trial])`` -> metrics; ``surface=False`` skips the surface distance (rate-control
#: trials), ``trial=False`` the component check too, and against a mesh's full truth it
#: estimates the IoU on the screening sample instead of decoding (float fits, whose IoU is
#: only a ceiling: ``meshfit.mesh_metrics``' ``estimate``).
Scorer = Callable[..., dict[str, Any]]


def _training_set(shape: Shape, grid: np.ndarray, rng: np.random.Generator,
                  progress: Progress, ref: Any = None, components: float | None = None,
                  screen: float | None = None
                  ) -> tuple[Samples, Scorer, Callable[[Arch], dict[str, Any]], Any]:
    """The samples to train on, how decoded weights are scored, a template of the
    metrics the score gives (same keys, values of the same encoded size: a v2 file's size is
    predicted before training), and the mesh reference (None for a voxel input), by input
    kind.

    A voxel input trains on its grid and is scored on it. A mesh input trains on points
    labelled by its inside (or shell) rule and is scored against that rule at the R^3 voxel
    centres (``ref``, computed here unless given), with a surface distance
    (:mod:`occcodec.encoder.meshfit`); with ``components`` (an IoU: the target, when
    ``Preset.clean_components``) a trial's score that reaches it also counts its extra
    components; with ``screen`` (the target) a score far under it is an estimate
    (``meshfit.mesh_metrics``).
    """
    from occcodec.encoder import meshfit
    from occcodec.encoder.ratefit import grid_metrics
    from occcodec.encoder.sampling import make_samples

    if shape.mesh is None:
        return (make_samples(grid, rng),
                lambda net, w, surface=True, trial=True: grid_metrics(net, w, grid),
                _template(shape, None), None)
    samples = meshfit.mesh_samples(shape, rng)
    progress.note(f"training on {len(samples.train_x)} points drawn from the mesh "
                  f"({shape.fill} rule)")
    if ref is None:
        progress.stage("reference")
        ref = meshfit.reference(shape, rng)
    mesh = shape.mesh

    def score(net: Arch, weights: Any, surface: bool = True, trial: bool = True
              ) -> dict[str, Any]:
        return meshfit.mesh_metrics(net, weights, ref, mesh, surface,
                                    components if trial else None, screen,
                                    estimate=not trial and not surface)

    return samples, score, _template(shape, ref), ref


def _template(shape: Shape, ref: Any) -> Callable[[Arch], dict[str, Any]]:
    """Metrics of the size the real ones will have (a v2 file's size is predicted before
    training): a voxel input's, or a mesh input's against ``ref``."""
    if shape.mesh is None:
        return lambda net: {"iou": 0.0, "accuracy": 0.0, "params": net.params}
    sampled = 0 if ref.grid is not None else len(ref.labels)
    return lambda net: {"params": net.params, "iou_sampled": sampled,
                        "iou": 0.0, "accuracy": 0.0, "surface_chamfer": 0.0}


@dataclass
class _Grid:
    """Grid mode's candidate: the truth at R, its coded payload, and its file's size."""

    truth: np.ndarray
    words: bytes
    ref: Any  # the mesh reference (MeshReference), None for a voxel input
    nbytes: int = 0

    def metrics(self, shape: Shape, measured: bool = True) -> dict[str, Any]:
        """The file's metrics: lossless, and for a mesh the surface distance of the mesh
        ``decode`` writes (``measured=False``: a 0.0 in its place, for the file's size)."""
        from occcodec.encoder import meshfit

        out: dict[str, Any] = {"iou": 1.0, "accuracy": 1.0, "params": 0}
        if self.ref is not None:
            out["surface_chamfer"] = (meshfit.grid_surface_chamfer(self.truth, self.ref,
                                                                   shape.mesh)
                                      if measured else 0.0)
        return out


def _grid_candidate(shape: Shape, grid: np.ndarray, opts: EncodeOptions,
                    rng: np.random.Generator, progress: Progress) -> tuple[_Grid | None, Any]:
    """Grid mode's candidate when ``--mode`` lets it compete (None otherwise), and the mesh
    reference it was read from (for :func:`_training_set`; None for voxels).

    The grid is the truth the network is scored against: the voxels of a voxel input, the
    centre rule at R for a mesh (:func:`occcodec.encoder.meshfit.reference`). An empty truth
    never becomes a file: an empty shape is a failure, not a success. Its surface distance
    is measured only if the grid is written (:func:`_grid_result`).
    """
    from occcodec.coding import ctxgrid
    from occcodec.encoder import meshfit

    dims = shape.grid_frame.shape
    if not grid_mode_allowed(opts, dims):
        return None, None
    ref = None
    if shape.mesh is not None:
        if max(dims) > meshfit.FULL_TRUTH_EDGE:
            raise UsageError(f"--mode grid stores the truth grid, computed in full up to "
                             f"{meshfit.FULL_TRUTH_EDGE}^3: use --resolution "
                             f"{meshfit.FULL_TRUTH_EDGE} or less, or --mode auto")
        progress.stage("reference")
        ref = meshfit.reference(shape, rng)
        truth = ref.grid
    else:
        truth = grid
    if truth is None or not truth.any():
        if opts.mode == "grid":
            raise UsageError("the shape has no occupied voxel at this resolution: there is no "
                             "grid to write; try a higher --resolution or --fill shell")
        return None, ref
    progress.stage("grid")
    return _Grid(truth, ctxgrid.encode_words(truth), ref), ref


def _late_truth(shape: Shape, grid: np.ndarray, ref: Any, opts: EncodeOptions
                ) -> np.ndarray | None:
    """The grid grid mode would code after training (the network missed the target far, or
    no network fits ``--max-bytes``): on a grid above :data:`GRID_AUTO_MAX_EDGE` when
    ``--mode auto`` would have let the grid compete below it (the truth at R: a voxel
    input's grid, a mesh's full reference); None when there is no such fallback."""
    dims = shape.grid_frame.shape
    if (max(dims) <= GRID_AUTO_MAX_EDGE
            or not (opts.mode == "auto" and is_lowbit(opts.quant) and not opts.arch)):
        return None
    truth = grid if shape.mesh is None else getattr(ref, "grid", None)
    if truth is None or not truth.any():  # above the full truth's edge: no grid to code
        return None
    return np.asarray(truth)


def _code_late(truth: np.ndarray, shape: Shape, ref: Any, low: Any,
               progress: Progress) -> _Grid:
    """:func:`_late_truth`'s grid coded, with the exact size of its file (``low``:
    the :class:`occcodec.encoder.ratefit.Lowbit` that packs it)."""
    from occcodec.coding import ctxgrid

    progress.stage("grid")
    cand = _Grid(truth, ctxgrid.encode_words(truth), ref if shape.mesh is not None else None)
    cand.nbytes = low.grid_size(cand.words, cand.metrics(shape, measured=False))
    return cand


def _late_grid(shape: Shape, grid: np.ndarray, ref: Any, opts: EncodeOptions,
               iou: float, target: float | None, progress: Progress, low: Any,
               why: str = "the network reached") -> _Grid | None:
    """Grid mode's candidate, coded and sized (:func:`_code_late`), after the network
    missed ``target`` far (:data:`GRID_LATE_MISS`; ``iou`` is what it reached), when
    :func:`_late_truth` has a grid; None otherwise."""
    truth = _late_truth(shape, grid, ref, opts)
    if truth is None or target is None or iou >= target - GRID_LATE_MISS:
        return None
    progress.note(f"{why} {iou * 100:.2f} %, more than "
                  f"{GRID_LATE_MISS * 100:.0f} point under the target {target * 100:.2f} %: "
                  "coding the lossless grid")
    return _code_late(truth, shape, ref, low, progress)


def grid_mode_allowed(opts: EncodeOptions, dims: tuple[int, int, int]) -> bool:
    """Whether grid mode competes: ``--mode grid``, or ``auto`` for a low-bit file without
    ``--arch`` up to :data:`GRID_AUTO_MAX_EDGE`. It then wins before training
    (:func:`_grid_now`), or after it when its file is no larger than the network's or the
    network missed the target: then the grid is the smallest file that reaches it."""
    if opts.mode == "grid":
        return True
    return (opts.mode == "auto" and is_lowbit(opts.quant) and not opts.arch
            and max(dims) <= GRID_AUTO_MAX_EDGE)


def _grid_now(opts: EncodeOptions, low: Any, preset: Preset, nbytes: int) -> bool:
    """Whether grid mode wins before any training: asked for, within ``--max-bytes`` (the
    highest IoU there is), or no larger than the smallest file a searched network makes."""
    from occcodec.format.arch import ACTIVATIONS, WIDTHS, Layer

    if opts.mode == "grid" or (opts.max_bytes is not None and nbytes <= opts.max_bytes):
        return True
    tiny = [Arch((Layer(min(WIDTHS), a),), min(preset.encodings, default=0))
            for a in ACTIVATIONS]
    return bool(nbytes <= low.smallest_network(tiny))


def _grid_result(low: Any, cand: _Grid, shape: Shape, device: str,
                 t0: float) -> EncodeResult:
    """The grid-mode file of ``cand``, its metrics measured now."""
    metrics = cand.metrics(shape)
    data = low.grid_file(cand.words, metrics)
    if len(data) != cand.nbytes:
        raise RuntimeError(f"internal error: predicted {cand.nbytes} bytes for the grid, "
                           f"packed {len(data)}; please report it")
    from occcodec.decoder import GRID_SCHEME

    record = {"metrics": metrics, "fill": shape.fill, "quant": GRID_SCHEME, "mode": "grid"}
    return EncodeResult(data, record, None, device, time.perf_counter() - t0, shape.fill_note,
                        [], "")


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
    t0 = time.perf_counter()
    progress.stage("voxelize")
    shape = load_shape(path, resolution=opts.resolution, fill=opts.fill)
    return encode_shape(shape, bytes.fromhex(sha256_file(path)), opts, progress, t0)


def encode_shape(shape: Shape, source_sha256: bytes, options: EncodeOptions,
                 progress: Progress | None = None, started: float | None = None) -> EncodeResult:
    """Compress a loaded :class:`~occcodec.shapes.inputs.Shape` into ``.occ`` bytes.

    ``source_sha256`` is recorded in the header (the input file's SHA-256, or a digest of an
    in-memory mesh or grid) so that ``batch`` can tell whether a file is up to date.

    Raises
    ------
    UsageError
        On a bad option, or when no searched network fits ``--max-params``.
    QualityError
        When no network captures the shape (:func:`occcodec.encoder.rescue.rescue`).
    """
    from occcodec import sparse

    opts = options.resolved()
    # the decodes that score every candidate use the cores training may use: two encodes
    # side by side with --threads 1 each do not fight over them (the file is the same)
    with sparse.workers(opts.threads):
        return _encode_shape(shape, source_sha256, opts, progress or Progress(), started)


def _encode_shape(shape: Shape, source_sha256: bytes, opts: EncodeOptions,
                  progress: Progress, started: float | None) -> EncodeResult:
    preset = preset_for(PRESETS[opts.preset], max(shape.grid_frame.shape),
                        shape.mesh is not None)
    t0 = time.perf_counter() if started is None else started
    grid = np.asarray(shape.occupancy, dtype=bool)
    if shape.fill_note:
        progress.note(shape.fill_note)
    progress.advance(f"{'x'.join(map(str, grid.shape))}, {int(grid.sum())} occupied")

    from occcodec.encoder import ratefit
    from occcodec.encoder import search as nas
    from occcodec.encoder import train as tr
    from occcodec.encoder.tf import configure

    progress.stage("setup")
    device = configure()
    progress.note(f"training on {device}; scoring on {opts.threads} thread(s)")
    rng = np.random.default_rng(opts.seed)
    coded_grid, ref = _grid_candidate(shape, grid, opts, rng, progress)
    if coded_grid is not None:  # before sampling: grid mode may win without any training
        sizer = ratefit.Lowbit(shape, None, _template(shape, ref), source_sha256, opts, preset)
        coded_grid.nbytes = sizer.grid_size(coded_grid.words,
                                            coded_grid.metrics(shape, measured=False))
        progress.advance(f"grid mode: {coded_grid.nbytes:,} bytes, lossless")
        if opts.max_bytes is not None and coded_grid.nbytes > opts.max_bytes:
            if opts.mode == "grid":
                raise UsageError(f"the lossless grid is {coded_grid.nbytes:,} bytes, over "
                                 f"--max-bytes {opts.max_bytes:,}: raise --max-bytes, or use "
                                 "--mode auto for a network")
            progress.note(f"the lossless grid ({coded_grid.nbytes:,} bytes) is over "
                          f"--max-bytes {opts.max_bytes:,}: it cannot be the file")
            coded_grid = None
        elif _grid_now(opts, sizer, preset, coded_grid.nbytes):
            return _grid_result(sizer, coded_grid, shape, device, t0)
    progress.stage("sample")
    target = ratefit.effective_target(opts, preset)
    samples, score, template, ref = _training_set(
        shape, grid, rng, progress, ref,
        target if preset.clean_components else None, target)
    progress.advance(f"{len(samples.train_x)} samples, {samples.boundary} on the boundary")

    def epoch_hook(e: int, loss: float, acc: float) -> None:
        progress.advance(f"epoch {e}: loss {loss:.4f}, val acc {acc * 100:.3f} %")

    candidates: list[dict[str, Any]] = []
    fallback: Any = None  # the search's most accurate candidate, when not the one picked
    most_accurate: Any = None  # the same, for rescue(), whatever the preset
    low = (ratefit.Lowbit(shape, score, template, source_sha256, opts, preset)
           if is_lowbit(opts.quant) else None)  # low-bit (v2) files: encoder/rate.py
    found: list[Any] = []
    if opts.arch:
        arch = parse_arch(opts.arch)
        start = tr.init_weights(arch, rng)
    else:
        cap = opts.max_params
        if (low is not None and cap is None and opts.target_iou is None
                and opts.max_bytes is None):
            cap = preset.lowbit_max_params  # the preset's own target: its bytes
        budget = search_budget(preset, cap, low and low.search_size())
        progress.stage("search", preset.rounds * preset.per_round)

        def cand_hook(k: int, n: int, c: nas.Candidate) -> None:
            progress.advance(f"{c.arch} ({c.arch.params} params): acc {c.accuracy * 100:.2f} %")

        found = nas.search(samples, budget, rng, opts.seed, on_candidate=cand_hook)
        if not found:
            raise UsageError(f"no network fits --max-params {opts.max_params}: raise it")
        best = nas.FINAL_PICKS[preset.final_pick](found)
        candidates = [{"arch": str(c.arch), "params": c.arch.params,
                       "accuracy": c.accuracy, "reward": c.reward} for c in found]
        if (coded_grid is not None and low is not None
                and coded_grid.nbytes <= low.smallest_network([c.arch for c in found])):
            # rate control only trains these networks: none can make a smaller file
            progress.note(f"the lossless grid ({coded_grid.nbytes:,} bytes) is no larger than "
                          "any searched network's smallest file: writing the grid")
            return _grid_result(low, coded_grid, shape, device, t0)
        progress.note(f"search picked {best.arch} ({best.arch.params} params)")
        arch, start = best.arch, best.weights
        most_accurate = max(found, key=lambda c: c.accuracy)
        if preset.retry_below is not None and most_accurate.arch != best.arch:
            fallback = most_accurate
    if low is not None:
        # (a grid within --max-bytes was written before training: _grid_now)
        spurious = None
        if preset.clean_components and ref is not None and shape.mesh is not None:
            from occcodec.encoder.meshfit import spurious_samples

            def spurious(net: Arch, weights: Any) -> Any:
                return spurious_samples(net, weights, ref, rng)

        fallback = None
        if coded_grid is None and opts.max_bytes is None:  # (a late grid may not fit in it)
            target = ratefit.effective_target(opts, preset)
            if target is not None and _late_truth(shape, grid, ref, opts) is not None:
                fallback = target - GRID_LATE_MISS - HOPELESS_SLACK
        try:
            data, record, arch, note = low.encode(arch, start, found, samples, rng, progress,
                                                  epoch_hook, spurious, fallback)
        except NoPlanFits as err:  # (before any training) the grid may still fit
            truth = None if coded_grid is not None else _late_truth(shape, grid, ref, opts)
            if truth is None:
                raise
            progress.note("no network fits --max-bytes: coding the lossless grid")
            only = _code_late(truth, shape, ref, low, progress)
            if opts.max_bytes is not None and only.nbytes > opts.max_bytes:
                raise NoPlanFits(f"{err} (the lossless grid would be {only.nbytes:,} "
                                 "bytes)") from None
            return _grid_result(low, only, shape, device, t0)
        except GaveUp as gave:
            late = _late_grid(shape, grid, ref, opts, gave.best,
                              ratefit.effective_target(opts, preset), progress,
                              low, why="no network came near the target: the best float "
                              "IoU was")
            assert late is not None  # fallback was set: _late_truth had a grid
            return _grid_result(low, late, shape, device, t0)
        if coded_grid is None:
            # under --max-bytes alone, the preset's own target says when the network is poor
            # enough to weigh the grid (which, within the budget, has the highest IoU)
            poor = ratefit.effective_target(opts, preset)
            if poor is None and opts.max_bytes is not None:
                poor = preset.target_iou
            coded_grid = _late_grid(shape, grid, ref, opts, record["metrics"]["iou"], poor,
                                    progress, low)
            if (coded_grid is not None and opts.max_bytes is not None
                    and coded_grid.nbytes > opts.max_bytes):
                progress.note(f"the lossless grid ({coded_grid.nbytes:,} bytes) is over "
                              f"--max-bytes {opts.max_bytes:,}: keeping the network's file")
                coded_grid = None
        if coded_grid is not None:
            iou = record["metrics"]["iou"]
            target = ratefit.effective_target(opts, preset)
            if coded_grid.nbytes <= len(data):
                progress.note(f"the lossless grid ({coded_grid.nbytes:,} bytes) is no larger "
                              f"than the network's file ({len(data):,} bytes at IoU "
                              f"{iou * 100:.2f} %): writing the grid")
                return _grid_result(low, coded_grid, shape, device, t0)
            if target is None and opts.max_bytes is not None:  # within it: checked above
                progress.note(f"the lossless grid ({coded_grid.nbytes:,} bytes) fits "
                              f"--max-bytes {opts.max_bytes:,} with IoU 100 % against the "
                              f"network's {iou * 100:.2f} %: writing the grid")
                return _grid_result(low, coded_grid, shape, device, t0)
            if target is not None and iou < target:
                # the smallest file that reaches the target is the only one that does
                progress.note(f"the network reached {iou * 100:.2f} % < the target "
                              f"{target * 100:.2f} %: writing the lossless grid "
                              f"({coded_grid.nbytes:,} bytes against {len(data):,})")
                return _grid_result(low, coded_grid, shape, device, t0)
        if record["metrics"]["iou"] < FAIL_IOU:  # not captured: escalate, or no file

            def fit_low(net: Arch, weights: Any, epochs: int) -> tuple[bytes, dict[str, Any]]:
                blob, rec = low.single(net, weights, epochs, samples, rng, progress,
                                       epoch_hook)
                record.update(rec)
                return blob, rec["metrics"]

            arch, data, _ = rescue(grid, arch, data, record["metrics"], fit=fit_low,
                                   candidate=most_accurate,
                                   init=lambda net: tr.init_weights(net, rng),
                                   epochs=preset.final_epochs, progress=progress,
                                   fixed_arch=bool(opts.arch))
        return EncodeResult(data, record, arch, device, time.perf_counter() - t0,
                            shape.fill_note, candidates, note)

    def fit(net: Arch, weights: Any, epochs: int | None = None) -> tuple[bytes, dict[str, Any]]:
        """The final training, then quantization and the decoder's own measurement."""
        epochs = epochs or preset.final_epochs
        progress.stage("train", epochs)
        trained = tr.train(net, weights, samples, epochs, rng, lr=preset.final_lr,
                           batch=preset.batch,
                           keep_best=True, on_epoch=epoch_hook, final_lr=preset.final_lr_end)
        progress.stage("quantize")
        stored = quantize(trained.weights, opts.quant)
        measured = score(net, dequantize(stored, net, opts.quant), True)
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
    arch, raw, metrics = rescue(grid, arch, raw, metrics, fit=fit, candidate=most_accurate,
                                 init=lambda net: tr.init_weights(net, rng),
                                 epochs=preset.final_epochs, progress=progress,
                                 fixed_arch=bool(opts.arch))
    header = build_header(
        encoder=f"occcodec {__version__}", arch=arch, grid=shape.grid_frame.shape,
        center=shape.center,
        scale=shape.scale, fill=shape.fill, quant=opts.quant, raw_bytes=len(raw),
        source_kind=shape.source_kind, source_sha256=source_sha256,
        options=opts.record(), metrics=metrics)
    data = container.pack(header, raw)
    return EncodeResult(data, header, arch, device, time.perf_counter() - t0, shape.fill_note,
                        candidates)
