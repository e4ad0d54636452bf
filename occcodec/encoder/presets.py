"""Encoder presets (search and training budgets) and the options that decide a file's bytes.

No TensorFlow here: the CLI, batch and bench import these to parse and record options
without starting TensorFlow. Everything is built by keyword, so a new field never shifts the
meaning of another.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from occcodec.encoder.rate import LOWBIT_QUANTS, is_lowbit
from occcodec.errors import UsageError
from occcodec.format.arch import parse_arch
from occcodec.format.quant import SCHEMES
from occcodec.shapes.frame import check_encode_resolution, check_fill


@dataclass(frozen=True, kw_only=True)
class Preset:
    """Search and training budget. Epoch counts are full passes over the training samples.

    Attributes
    ----------
    rounds, per_round
        Controller rounds, and candidate networks sampled (and briefly trained) per round.
    search_epochs, final_epochs
        Passes of each candidate's fit, and of the final fit of the picked network.
    encodings
        Positional-encoding level counts the controller may choose from; ``()`` means the raw
        coordinates only (the paper's space).
    search_lr, final_lr
        Adam learning rates of the candidate fits and (at its start) of the final fit.
    subsample
        Share of the training samples each candidate fit sees (validation stays whole).
    max_params
        Parameter cap of the searched networks (``--max-params`` overrides it).
    end_bias
        Initial logit of the controller's "end" token: > 0 starts the search on shallower
        networks.
    acc_weight
        Weight of accuracy in the search reward (1 is the paper's; see ``search.reward``).
    final_lr_end
        When set, the final fit's learning rate follows a cosine down to this rate.
    retry_below
        When the final network's IoU is under this, also train the search's most accurate
        candidate and keep the better: hard shapes buy fidelity with parameters.
    reward_accuracy, controller, weight_sharing, final_pick
        The search's rules, by name (tables in :mod:`occcodec.encoder.search`): how a
        candidate's accuracy is scored, which controller samples, how candidates share
        weights, and which candidate the final fit trains. The defaults are ours; ``paper``
        follows the original code (README, "The paper preset").
    target_iou
        The IoU a low-bit file (``--quant auto`` or ``N``) aims at, at the fewest bytes,
        when neither ``--target-iou`` nor ``--max-bytes`` is given (``encoder/rate.py``).
    qat_epochs, qat_lr
        Passes and starting learning rate of the quantization-aware fine-tune that scores
        each bit allocation of a low-bit file (cosine down to a tenth).
    auto_pairs
        The (first-layer, later-layer) bit pairs ``--quant auto`` chooses from; ``()`` means
        all of :data:`occcodec.encoder.rate.BIT_PAIRS`. ``fast`` takes 8+4 only: one QAT run.
    lowbit_max_params
        The search's parameter cap for a low-bit file aimed at the preset's own target (no
        ``--target-iou``, ``--max-bytes`` or ``--max-params``): the bytes of the default
        file. An explicit target lifts it (fidelity first); v1 files never see it.
    fine_target_iou, fine_edge
        For a mesh input encoded at ``--resolution`` of at least ``fine_edge``, the preset's
        own target rises to ``fine_target_iou`` and ``lowbit_max_params`` no longer caps the
        search (None: no change). There a network's bytes barely grow with the resolution
        while every grid coder's grow 3.6-4x per doubling, so fidelity is the cheap side:
        at 512^3 a 99 % file is still a tenth of the ctx-grid file on the shapes measured
        (README, Results). There ``clean_components`` is set too.
    clean_components
        Rate control counts a plan as reaching the target only when its decoded voxels have
        no more connected components than the truth (:func:`occcodec.encoder.meshfit.
        extra_components`): a floating sheet like the one nut.ply's file had at 512^3
        before ``FINE_MIX`` (2 components against 1) makes the plan fail. It does not see
        defects of the decoded mesh that leave the voxels in one piece (README, Known
        limits).
    batch
        Largest training batch (``train.batch_size`` makes small sample sets' batches
        smaller). 1,024 for ours: at 512^3 on cow and rotor_small, pe6,48:swish,48:swish
        reached 99.35 % / 99.18 % float IoU after 40 epochs of batch 1,024 or 4,096, against
        98.75 % / 98.50 % at the paper's 16,384, in about the same seconds (more Adam steps
        per pass over the same points; 256 was no better and slower).
    size_term
        What the search reward's size term counts for low-bit files: ``"bytes"`` (the
        predicted file size at the search's bit pair) or ``"params"`` (the paper's). Files
        of the v1 schemes (fp16, int8, ...) always use parameters, so their bytes stay.
    """

    rounds: int
    per_round: int
    search_epochs: int
    final_epochs: int
    encodings: tuple[int, ...]
    search_lr: float
    final_lr: float
    subsample: float
    max_params: int | None = None
    end_bias: float = 0.0
    acc_weight: float = 1.0
    final_lr_end: float | None = None
    retry_below: float | None = None
    reward_accuracy: str = "best"
    controller: str = "plain"
    weight_sharing: str = "position"
    final_pick: str = "reward"
    target_iou: float = 0.98
    qat_epochs: int = 8
    qat_lr: float = 1e-3
    auto_pairs: tuple[tuple[int, int], ...] = ()
    lowbit_max_params: int | None = None
    size_term: str = "bytes"
    fine_target_iou: float | None = None
    fine_edge: int = 256
    clean_components: bool = False
    batch: int = 1024
    #: What ``--quant auto`` (the default) stores under this preset: ``"auto"``, low-bit
    #: weights with the bits chosen by rate control; ``paper`` keeps float weights (fp16),
    #: so that the published method is not changed by our rate control.
    auto_quant: str = "auto"


PRESETS: dict[str, Preset] = {
    # Previews and tests: a tiny search (3 candidates of 2 epochs), a short final fit.
    "fast": Preset(
        rounds=1, per_round=3, search_epochs=2, final_epochs=8, encodings=(0, 4),
        search_lr=1e-2, final_lr=1e-2, subsample=0.5, max_params=None,
        end_bias=2.6, acc_weight=10.0, final_lr_end=3e-4, target_iou=0.95, qat_epochs=2,
        auto_pairs=((8, 4),),
    ),
    # Tuned for fidelity and size within about a minute per shape on 2 CPU cores (the
    # figures are in README.md): 12 candidates, positional encodings, a retry under 97 % IoU.
    "default": Preset(
        rounds=3, per_round=4, search_epochs=4, final_epochs=40, encodings=(0, 2, 4, 6),
        search_lr=1e-2, final_lr=1e-2, subsample=0.5, max_params=None,
        end_bias=2.6, acc_weight=25.0, final_lr_end=3e-4, retry_below=0.97,
        lowbit_max_params=4000, fine_target_iou=0.99,
    ),
    # The published method as its code runs it (README, "The paper preset"): 5 rounds x 6
    # candidates x 40 epochs, final 250 epochs, raw coordinates, the paper's reward, the
    # hybrid controller, layer-pair sharing and the accuracy-window final pick.
    "paper": Preset(
        rounds=5, per_round=6, search_epochs=40, final_epochs=250, encodings=(),
        search_lr=1e-3, final_lr=1e-3, subsample=1.0, max_params=None,
        reward_accuracy="epoch-weighted", controller="hybrid",
        weight_sharing="layer-pair", final_pick="accuracy-window",
        target_iou=0.99, qat_epochs=10, size_term="params", auto_quant="fp16", batch=16384,
    ),
}


def preset_for(preset: Preset, edge: int, mesh: bool) -> Preset:
    """``preset`` as it applies to a shape whose grid's longest edge is ``edge`` (a mesh's
    ``--resolution``): with ``fine_target_iou`` set, a mesh at ``fine_edge`` or above gets
    that target, no ``lowbit_max_params`` cap and ``clean_components``; anything else gets
    ``preset`` itself."""
    if not mesh or preset.fine_target_iou is None or edge < preset.fine_edge:
        return preset
    return replace(preset, target_iou=max(preset.target_iou, preset.fine_target_iou),
                   lowbit_max_params=None, clean_components=True)


def preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises
    ------
    UsageError
        On an unknown name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}: use {', '.join(PRESETS)}") from None


def default_threads() -> int:
    """One thread per core this process may use."""
    from occcodec.sparse import usable_cores

    return usable_cores()


#: ``--mode`` values (:attr:`EncodeOptions.mode`).
MODES: tuple[str, ...] = ("auto", "network", "grid")


@dataclass(kw_only=True)
class EncodeOptions:
    """Everything that decides the output bytes (recorded in the header's ``options``)."""

    preset: str = "default"
    resolution: int = 128
    fill: str = "auto"
    quant: str = "auto"
    seed: int = 0
    #: Cores the encode may use (0: one per usable core): the decodes that score each
    #: candidate run on them; TensorFlow trains on one (``encoder.tf.TRAIN_THREADS``), so
    #: the bytes do not depend on it and it is not recorded.
    threads: int = 0
    arch: str | None = None
    max_params: int | None = None
    target_iou: float | None = None
    max_bytes: int | None = None
    strip: bool = False  # no meta section (v2 files); not recorded: a stripped file has none
    #: ``auto``: a network, or the lossless grid (grid mode) when its file is no larger or
    #: the network misses the target (up to ``pipeline.GRID_AUTO_MAX_EDGE``);
    #: ``network``: always a network; ``grid``: always the lossless grid (low-bit files).
    mode: str = "auto"

    def resolved(self) -> EncodeOptions:
        """Validate and fill defaults.

        Raises
        ------
        UsageError
            On an unknown preset, fill or quantization, or a value out of range.
        """
        quant = preset(self.preset).auto_quant if self.quant == "auto" else self.quant
        check_fill(self.fill)
        if quant not in SCHEMES and not is_lowbit(self.quant):
            raise UsageError(f"unknown quantization {self.quant!r}: use "
                             f"{', '.join(LOWBIT_QUANTS + SCHEMES)}")
        self._check_rate(quant)
        check_encode_resolution(self.resolution)
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"seed {self.seed} must be in 0..{2**32 - 1}")
        if self.max_params is not None and self.max_params < 20:
            raise UsageError(f"--max-params {self.max_params} is too small (at least 20)")
        threads = self.threads or default_threads()
        if threads < 1:
            raise UsageError("--threads must be at least 1")
        arch = str(parse_arch(self.arch)) if self.arch else None
        if self.mode not in MODES:
            raise UsageError(f"unknown --mode {self.mode!r}: use {', '.join(MODES)}")
        if self.mode == "grid" and not is_lowbit(quant):
            raise UsageError(f"--mode grid writes a format-2 file: use --quant auto or 3..8, "
                             f"not --quant {quant}")
        if self.mode == "grid" and arch:
            raise UsageError("--mode grid stores no network: leave out --arch")
        return EncodeOptions(preset=self.preset, resolution=self.resolution, fill=self.fill,
                             quant=quant, seed=self.seed, threads=threads, arch=arch,
                             max_params=self.max_params, target_iou=self.target_iou,
                             max_bytes=self.max_bytes, strip=self.strip, mode=self.mode)

    def _check_rate(self, quant: str) -> None:
        """``--target-iou`` and ``--max-bytes`` need a low-bit file and sane values.

        Raises
        ------
        UsageError
            On a value out of range, or either option with a v1 quantization.
        """
        if self.target_iou is not None and not 0.0 < self.target_iou <= 1.0:
            raise UsageError(f"--target-iou {self.target_iou} must lie in (0, 1], e.g. 0.99")
        if self.max_bytes is not None and self.max_bytes < 1:
            raise UsageError(f"--max-bytes {self.max_bytes} must be at least 1")
        rate = self.target_iou is not None or self.max_bytes is not None
        if (rate or self.strip) and not is_lowbit(quant):
            what = "--strip" if not rate else "--target-iou and --max-bytes"
            why = (" (--preset paper stores the published fp16 weights unless --quant says "
                   "otherwise)" if self.quant == "auto" else "")
            raise UsageError(f"{what} need a low-bit file: use --quant 3..8 or auto with "
                             f"another preset, not --quant {quant}{why}")

    def record(self) -> dict[str, Any]:
        """The options as the header's ``options`` map (unset ones left out; ``strip`` never:
        a stripped file has no options map, and v1 files keep the map they always had;
        ``threads`` no more: it does not change the bytes, and files made before 2026-12-03,
        when TensorFlow trained on that many threads, keep it)."""
        return {k: v for k, v in asdict(self).items()
                if v is not None and k not in ("strip", "threads")
                and not (k == "mode" and v == "auto")}
