"""Unit tests of the encoder's parts: sampling, the search's reward and weight sharing, the
trainer's batch size and learning-rate schedule, and the presets (before these, all were
reached only through whole encodes from the CLI)."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from occcodec.encoder import pipeline, presets
from occcodec.encoder.presets import PRESETS, EncodeOptions, Preset
from occcodec.encoder.sampling import boundary_mask, make_samples
from occcodec.encoder.search import SearchBudget, WeightBank, reward
from occcodec.encoder.train import batch_size, cosine_lr, init_weights
from occcodec.errors import UsageError
from occcodec.format.arch import LARGEST_PARAMS, NI_PARAMS, parse_arch

#: TensorFlow starts with the thread count the CLI tests use (see conftest).
pytestmark = pytest.mark.usefixtures("tf_one_thread")


def cube_grid(n: int = 12, lo: int = 3, hi: int = 9) -> np.ndarray:
    grid = np.zeros((n, n, n), bool)
    grid[lo:hi, lo:hi, lo:hi] = True
    return grid


def ball_grid(n: int = 32) -> np.ndarray:
    c = (np.arange(n) - (n - 1) / 2) / (n / 2)
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    return x**2 + y**2 + z**2 < 0.6


# --- sampling ---------------------------------------------------------------------------------

def test_boundary_set_of_a_cube() -> None:
    grid = cube_grid()
    mask = boundary_mask(grid)
    inner = grid.copy()
    inner[4:8, 4:8, 4:8] = False  # the cube's own outer shell: 6^3 - 4^3
    assert np.array_equal(mask & grid, inner)
    assert int((mask & grid).sum()) == 216 - 64
    # outside: only face neighbours (6-connectivity), one 6x6 layer per face, no edges
    outer = mask & ~grid
    assert int(outer.sum()) == 6 * 36
    assert outer[2, 5, 5] and outer[9, 5, 5] and not outer[2, 2, 5] and not outer[2, 2, 2]


def test_boundary_counts_the_grid_edge_as_empty() -> None:
    full = np.ones((4, 5, 6), bool)
    mask = boundary_mask(full)
    assert int(mask.sum()) == full.size - 2 * 3 * 4  # all but the 2x3x4 core
    assert not boundary_mask(np.zeros((4, 4, 4), bool)).any()


def test_sample_counts_and_labels() -> None:
    grid = ball_grid()
    s = make_samples(grid, np.random.default_rng(0))
    b = int(boundary_mask(grid).sum())
    rest = grid.size - b
    assert s.boundary == b
    # a quarter of the rest is kept: binomial(rest, 1/4), within 5 standard deviations
    assert abs(s.interior_kept - rest / 4) < 5 * np.sqrt(rest * 0.25 * 0.75)
    reps = max(1, round(s.interior_kept / b))
    assert reps > 1  # the ball's boundary is smaller than its kept rest: it is tiled
    assert len(s.train_x) == len(s.train_y) == b * reps + s.interior_kept
    assert len(s.val_x) == len(s.val_y) == b + s.interior_kept
    # every label is the grid's value at the sample's voxel (coordinates back to indices)
    n = grid.shape[0]
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y)):
        assert x.dtype == np.float32 and y.dtype == np.float32
        ijk = np.rint(x * (n / 2) + (n - 1) / 2).astype(int)
        assert np.array_equal(grid[ijk[:, 0], ijk[:, 1], ijk[:, 2]], y > 0.5)
    # the validation set holds every boundary voxel exactly once
    val_ijk = np.rint(s.val_x * (n / 2) + (n - 1) / 2).astype(int)
    on_boundary = boundary_mask(grid)[val_ijk[:, 0], val_ijk[:, 1], val_ijk[:, 2]]
    assert int(on_boundary.sum()) == b
    assert len(np.unique(val_ijk, axis=0)) == len(val_ijk)


def test_sampling_without_balance_keeps_one_copy() -> None:
    grid = ball_grid()
    s = make_samples(grid, np.random.default_rng(0), balance=False)
    assert len(s.train_x) == s.boundary + s.interior_kept


def test_sampling_is_determined_by_the_seed() -> None:
    grid = ball_grid()
    a = make_samples(grid, np.random.default_rng(11))
    b = make_samples(grid, np.random.default_rng(11))
    c = make_samples(grid, np.random.default_rng(12))
    for f in dataclasses.fields(a):
        assert np.array_equal(getattr(a, f.name), getattr(b, f.name))
    assert not np.array_equal(a.val_x, c.val_x)


# --- search: reward and weight sharing ----------------------------------------------------------

def test_reward_formula() -> None:
    assert reward(0.98, NI_PARAMS) == 0.0  # the NI baseline at 98 % is the zero point
    assert reward(0.98, LARGEST_PARAMS) == pytest.approx((NI_PARAMS - LARGEST_PARAMS) / LARGEST_PARAMS)
    assert reward(0.99, 500) == pytest.approx(0.01 + (7553 - 500) / 21121)
    assert reward(0.99, 500, acc_weight=25.0) == pytest.approx(25 * 0.01 + (7553 - 500) / 21121)
    # with the paper's weight, 1 % of accuracy is worth 211 parameters
    assert reward(0.99, 1211) == pytest.approx(reward(0.98, 1000), abs=1e-3)


def test_weight_bank_shares_identical_layer_pairs() -> None:
    rng = np.random.default_rng(0)
    bank = WeightBank()
    a = parse_arch("16:relu,8:elu")
    trained = [(k + 1.0, b + 1.0) for k, b in init_weights(a, rng)]  # unlike any fresh draw
    bank.put(a, trained)
    # same shapes at the same positions, other activations: every tensor is shared
    same = bank.initial(parse_arch("16:swish,8:relu"), rng)
    for (k, b), (k2, b2) in zip(trained, same, strict=True):
        assert k2 is k and b2 is b
    # the first pair (3 -> 16) is shared, (16 -> 12) and the output (12 -> 1) are fresh
    part = bank.initial(parse_arch("16:relu,12:elu"), rng)
    assert part[0][0] is trained[0][0]
    assert part[1][0].shape == (16, 12) and part[2][0].shape == (12, 1)
    assert np.all(part[1][1] == 0.0) and np.abs(part[1][0]).max() <= np.sqrt(6 / 28)
    # same shape at another position is not shared; nor is another input width
    moved = bank.initial(parse_arch("8:relu,16:elu,8:elu"), rng)
    assert all(k is not t for (k, _), (t, _) in zip(moved, trained, strict=False))
    pe = bank.initial(parse_arch("pe2,16:relu,8:elu"), rng)
    assert pe[0][0].shape == (15, 16) and pe[0][0] is not trained[0][0]
    assert pe[1][0] is trained[1][0]  # (16 -> 8) at position 1: shared


def test_weight_bank_keeps_the_latest_weights() -> None:
    rng = np.random.default_rng(1)
    bank = WeightBank()
    arch = parse_arch("12:relu")
    first, second = init_weights(arch, rng), init_weights(arch, rng)
    bank.put(arch, first)
    bank.put(arch, second)
    assert all(k is k2 for (k, _), (k2, _) in zip(bank.initial(arch, rng), second, strict=True))


# --- trainer: batch size and learning-rate schedule ---------------------------------------------

def test_batch_size_rule() -> None:
    assert batch_size(16384 * 64) == 16384  # the paper's batch at 128^3
    assert batch_size(10**8) == 16384  # never larger
    assert batch_size(64 * 300) == 300  # smaller grids: about 64 steps a pass
    assert batch_size(64 * 20) == 32  # but at least 32 ...
    assert batch_size(20) == 20  # ... or the whole set when smaller
    assert batch_size(0) == 1


def test_small_grid_epoch_is_about_64_steps() -> None:
    s = make_samples(ball_grid(32), np.random.default_rng(0))
    n = len(s.train_x)
    assert batch_size(n) < 16384
    assert 64 <= n // batch_size(n) <= 65


def test_cosine_schedule_ends() -> None:
    lr, end, epochs = 1e-2, 3e-4, 40
    rates = [cosine_lr(e, epochs, lr, end) for e in range(epochs)]
    assert rates[0] == lr
    assert rates[-1] == pytest.approx(end, rel=1e-12, abs=0.0)
    assert all(a >= b for a, b in itertools.pairwise(rates))
    assert cosine_lr(2, 5, lr, end) == pytest.approx((lr + end) / 2)  # the midpoint
    assert cosine_lr(0, 1, lr, end) == lr  # one epoch: no decay


# --- presets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds(name: str) -> None:
    p = PRESETS[name]
    assert Preset(**dataclasses.asdict(p)) == p
    assert p.rounds >= 1 and p.per_round >= 1 and p.search_epochs >= 1 and p.final_epochs >= 1
    assert 0.0 < p.subsample <= 1.0 and p.search_lr > 0 and p.final_lr > 0
    budget = pipeline.search_budget(p)
    assert isinstance(budget, SearchBudget)
    assert (budget.rounds, budget.per_round, budget.epochs, budget.encodings, budget.lr,
            budget.subsample, budget.end_bias, budget.acc_weight, budget.max_params) == (
        p.rounds, p.per_round, p.search_epochs, p.encodings, p.search_lr, p.subsample,
        p.end_bias, p.acc_weight, p.max_params)
    assert budget.batch == p.batch  # the candidates' fits use the preset's batch
    assert pipeline.search_budget(p, max_params=500).max_params == 500
    opts = EncodeOptions(preset=name, threads=1).resolved()
    assert opts.preset == name and opts.record()["preset"] == name


def test_preset_fields_by_name() -> None:
    paper = PRESETS["paper"]  # METHOD.md section 3, unchanged
    assert (paper.rounds, paper.per_round, paper.search_epochs, paper.final_epochs) == (5, 6, 40, 250)
    assert paper.encodings == () and paper.search_lr == paper.final_lr == 1e-3
    assert paper.acc_weight == 1.0 and paper.final_lr_end is None and paper.retry_below is None
    fast, default = PRESETS["fast"], PRESETS["default"]
    assert fast.rounds * fast.per_round < default.rounds * default.per_round
    assert fast.final_epochs < default.final_epochs < paper.final_epochs
    assert default.retry_below == 0.97 and fast.retry_below is None
    assert default.encodings == (0, 2, 4, 6) and fast.encodings == (0, 4)
    # ours train on batches of 1,024 (more Adam steps a pass); the paper keeps its 16,384
    assert fast.batch == default.batch == 1024 and paper.batch == 16384


@pytest.mark.parametrize(("name", "edge", "mesh", "fine"), [
    ("default", 512, True, True), ("default", 256, True, True),
    ("default", 255, True, False), ("default", 128, True, False),
    ("default", 512, False, False),  # a voxel input keeps the preset's own target
    ("fast", 512, True, False), ("paper", 1024, True, False)])
def test_fine_resolution_target(name: str, edge: int, mesh: bool, fine: bool) -> None:
    p = PRESETS[name]
    got = presets.preset_for(p, edge, mesh)
    if not fine:
        assert got is p
        return
    assert got.target_iou == 0.99 and got.lowbit_max_params is None and got.clean_components
    assert dataclasses.replace(got, target_iou=p.target_iou, clean_components=False,
                               lowbit_max_params=p.lowbit_max_params) == p


def test_presets_and_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Preset(1, 3, 2, 8, (0, 4), 1e-2, 1e-2, 0.5)  # type: ignore[misc]
    with pytest.raises(TypeError):
        EncodeOptions("fast")  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["fast"].rounds = 2  # type: ignore[misc]


def test_options_resolve_and_refuse() -> None:
    opts = EncodeOptions(preset="fast", resolution=64, arch="PE2,16:ELU", threads=2).resolved()
    assert opts.arch == "pe2,16:elu" and opts.threads == 2
    assert EncodeOptions().resolved().threads == presets.default_threads()
    rec = EncodeOptions(threads=1).resolved().record()
    assert "arch" not in rec and "max_params" not in rec and rec["quant"] == "auto"
    assert "threads" not in rec  # it does not change the bytes
    for bad, match in (({"preset": "quick"}, "unknown preset 'quick'"),
                       ({"fill": "hollow"}, "is not one of auto, solid, shell"),
                       ({"quant": "int4"}, "unknown quantization"),
                       ({"resolution": 8}, "outside 16..1024"),
                       ({"seed": -1}, "seed"),
                       ({"max_params": 5}, "too small")):
        with pytest.raises(UsageError, match=match):
            EncodeOptions(**bad).resolved()  # type: ignore[arg-type]


def test_pipeline_reexports_the_presets() -> None:
    assert pipeline.PRESETS is PRESETS and pipeline.EncodeOptions is EncodeOptions
    assert pipeline.Preset is Preset and pipeline.default_threads is presets.default_threads
