"""Rate control (encoder/rate.py, encoder/ratefit.py): the choice among plans with hand-made
scores, then through the encoder on tiny grids with fixed small networks."""

from __future__ import annotations

import numpy as np
import pytest

from occcodec.encoder.presets import EncodeOptions
from occcodec.encoder.rate import (
    BIT_PAIRS,
    GaveUp,
    Plan,
    Trial,
    bit_pairs,
    closest,
    control,
    layer_bits,
    plans,
    smallest_passing,
)
from occcodec.errors import UsageError
from occcodec.format import lowbit
from occcodec.format.arch import parse_arch

SMALL = parse_arch("pe2,16:relu,16:relu")
LARGE = parse_arch("pe4,32:relu,32:relu")
TINY = parse_arch("8:relu")


def _size(arch, bits):
    return lowbit.payload_bytes(arch, bits) + 40  # any fixed overhead will do here


class Scored:
    """A hand-made evaluator: IoU of a plan from a table by (arch, bits); counts calls."""

    def __init__(self, table):
        self.table = table
        self.calls: list[Plan] = []

    def __call__(self, plan: Plan) -> Trial:
        self.calls.append(plan)
        return Trial(plan, self.table[(str(plan.arch), plan.bits)])


def _table(arch, ious):
    """IoUs for ``arch``'s plans in size order."""
    ladder = plans(arch, BIT_PAIRS, _size)
    assert len(ladder) == len(ious)
    return {(str(arch), p.bits): iou for p, iou in zip(ladder, ious, strict=True)}


def test_plans_sorted_by_size_and_within_cap() -> None:
    ladder = plans(SMALL, BIT_PAIRS, _size)
    sizes = [p.nbytes for p in ladder]
    assert sizes == sorted(sizes) and len(ladder) == len(BIT_PAIRS)
    assert all(p.nbytes == _size(SMALL, p.bits) for p in ladder)
    capped = plans(SMALL, BIT_PAIRS, _size, max_bytes=sizes[2])
    assert [p.nbytes for p in capped] == sizes[:3]
    assert layer_bits(SMALL, (8, 3)) == (8, 3, 3)
    assert bit_pairs("5") == ((8, 5),) and bit_pairs("auto") == BIT_PAIRS
    with pytest.raises(UsageError):
        bit_pairs("fp16")


@pytest.mark.parametrize("first_pass", range(7))  # index of the smallest passing plan
def test_smallest_passing_is_found_by_bisection(first_pass: int) -> None:
    ious = [0.90 + 0.01 * i for i in range(6)]
    target = ious[first_pass] if first_pass < 6 else 0.999
    ladder = plans(SMALL, BIT_PAIRS, _size)
    ev = Scored(_table(SMALL, ious))
    passing, trials = smallest_passing(ladder, ev, target)
    assert len(ev.calls) <= 3  # 6 plans: at most ceil(log2(7)) QAT runs
    if first_pass == 6:
        assert passing is None
    else:
        assert passing is not None and passing.plan == ladder[first_pass]
    assert trials == [Trial(p, ev.table[(str(p.arch), p.bits)]) for p in ev.calls]


def test_target_picks_smallest_passing_candidate_and_steps_up() -> None:
    # the small network never reaches 0.99; the large one first does at its third plan
    table = {**_table(SMALL, [0.95, 0.96, 0.97, 0.975, 0.98, 0.98]),
             **_table(LARGE, [0.985, 0.988, 0.991, 0.993, 0.995, 0.996])}
    ev = Scored(table)
    out = control([SMALL, LARGE], BIT_PAIRS, _size, ev, target=0.99)
    assert out.reached and not out.note
    assert out.chosen.plan == plans(LARGE, BIT_PAIRS, _size)[2]
    # a ceiling under the target skips the small network's ladder but its largest plan
    ev2 = Scored(table)
    out2 = control([SMALL, LARGE], BIT_PAIRS, _size, ev2, target=0.99,
                   ceiling=lambda a: 0.981 if a == SMALL else 0.999)
    assert out2.chosen.plan == out.chosen.plan
    assert [p.arch for p in ev2.calls].count(SMALL) == 1
    assert ev2.calls[0] == plans(SMALL, BIT_PAIRS, _size)[-1]


@pytest.mark.parametrize("small_reaches", [True, False])
def test_room_above_target_tries_a_smaller_network_first(small_reaches: bool) -> None:
    # LARGE clears 0.97 easily; SMALL, offered by shrink(), reaches it at its second plan
    # (or never): its file is written, else LARGE's own smallest passing plan
    small_ious = [0.965, 0.972, 0.975, 0.98, 0.985, 0.99] if small_reaches else [0.9] * 6
    table = {**_table(SMALL, small_ious),
             **_table(LARGE, [0.975, 0.98, 0.985, 0.99, 0.995, 0.997])}
    asked: list[tuple[str, float]] = []

    def shrink(arch, top):
        asked.append((str(arch), top))
        return SMALL if arch == LARGE else None

    ev = Scored(table)
    ceilings = {str(LARGE): 0.999, str(SMALL): 0.99 if small_reaches else 0.95}
    out = control([LARGE], BIT_PAIRS, _size, ev, target=0.97,
                  ceiling=lambda a: ceilings[str(a)], shrink=shrink)
    assert out.reached and asked == [(str(LARGE), 0.999)]
    if small_reaches:
        assert out.chosen.plan == plans(SMALL, BIT_PAIRS, _size)[1]
        assert all(p.arch == SMALL for p in ev.calls)
    else:  # the small network's float IoU is under the target: none of its plans trained
        assert out.chosen.plan == plans(LARGE, BIT_PAIRS, _size)[0]
        assert all(p.arch == LARGE for p in ev.calls)
    # without a target (--max-bytes alone) nothing shrinks
    asked.clear()
    control([LARGE], BIT_PAIRS, _size, Scored(table), target=None, max_bytes=10**6,
            ceiling=lambda a: ceilings[str(a)], shrink=shrink)
    assert asked == []


@pytest.mark.parametrize("small_reaches", [True, False])
def test_a_first_network_spares_the_picks_training(small_reaches: bool) -> None:
    table = {**_table(SMALL, [0.965, 0.972, 0.975, 0.98, 0.985, 0.99] if small_reaches
                      else [0.9] * 6),
             **_table(LARGE, [0.975, 0.98, 0.985, 0.99, 0.995, 0.997])}
    fitted: list[str] = []

    def ceiling(a):
        fitted.append(str(a))
        return {str(LARGE): 0.999, str(SMALL): 0.99 if small_reaches else 0.95}[str(a)]

    ev = Scored(table)
    out = control([LARGE], BIT_PAIRS, _size, ev, target=0.97, ceiling=ceiling,
                  shrink=lambda a, top: SMALL, first=SMALL)
    assert out.reached
    if small_reaches:  # the pick (LARGE) is never trained
        assert out.chosen.plan == plans(SMALL, BIT_PAIRS, _size)[1]
        assert set(fitted) == {str(SMALL)}
    else:  # SMALL is not tried twice (the shrink of LARGE names it again)
        assert out.chosen.plan == plans(LARGE, BIT_PAIRS, _size)[0]
        assert all(p.arch == LARGE for p in ev.calls)


def test_smaller_start_is_the_most_accurate_small_candidate() -> None:
    from occcodec.encoder.ratefit import SHRINK_RATIO, Start, smaller_start

    tiny = parse_arch("pe2,8:relu")
    found = [Start(LARGE, [], 0.96), Start(SMALL, [], 0.93), Start(tiny, [], 0.95)]

    def nbytes(a):
        return _size(a, layer_bits(a, (8, 4)))

    assert nbytes(SMALL) <= SHRINK_RATIO * nbytes(LARGE)
    assert smaller_start(found, LARGE, nbytes).arch == tiny
    assert smaller_start(found, tiny, nbytes) is None


def test_unreachable_target_gives_closest_and_one_line() -> None:
    table = {**_table(SMALL, [0.95, 0.96, 0.97, 0.975, 0.98, 0.98]),
             **_table(LARGE, [0.96, 0.97, 0.975, 0.978, 0.979, 0.979])}
    out = control([SMALL, LARGE], BIT_PAIRS, _size, Scored(table), target=0.99)
    assert not out.reached
    best = max(out.trials, key=lambda t: t.iou)
    assert out.chosen is best and out.chosen.iou == 0.98
    assert "\n" not in out.note and "not reached" in out.note and "try" in out.note
    assert "98.00 %" in out.note
    # the note for the chosen plan measured again (a screened trial holds an estimate)
    assert out.note_at is not None and out.note_at(0.9712) == out.note.replace(
        "98.00 %", "97.12 %")


def test_networks_under_the_fallback_get_no_qat_run() -> None:
    """With a fallback (the lossless grid replaces any file under ``fallback_below``), a
    network whose ceiling is under it is not quantized; the next one is tried as usual."""
    table = {**_table(SMALL, [0.95, 0.96, 0.97, 0.975, 0.98, 0.98]),
             **_table(LARGE, [0.985, 0.988, 0.991, 0.993, 0.995, 0.996])}
    ceilings = {str(SMALL): 0.92, str(LARGE): 0.999}
    ev = Scored(table)
    out = control([SMALL, LARGE], BIT_PAIRS, _size, ev, target=0.99,
                  ceiling=lambda a: ceilings[str(a)], fallback_below=0.97, abandon_below=0.9)
    assert out.reached and out.chosen.plan == plans(LARGE, BIT_PAIRS, _size)[2]
    assert all(p.arch == LARGE for p in ev.calls)
    # without the fallback the small network's largest plan is trained, as the closest
    ev2 = Scored(table)
    control([SMALL, LARGE], BIT_PAIRS, _size, ev2, target=0.99,
            ceiling=lambda a: ceilings[str(a)])
    assert ev2.calls[0] == plans(SMALL, BIT_PAIRS, _size)[-1]


@pytest.mark.parametrize("abandon", [None, 0.9])
def test_every_network_under_the_fallback_gives_up(abandon: float | None) -> None:
    """No network near the target: no QAT run, GaveUp with the ceilings; a ceiling under
    ``abandon_below`` ends the walk before the next network's float fit."""
    ceilings = {str(SMALL): 0.80, str(LARGE): 0.95}
    asked: list[str] = []

    def ceiling(a):
        asked.append(str(a))
        return ceilings[str(a)]

    ev = Scored({})
    with pytest.raises(GaveUp) as gave:
        control([SMALL, LARGE], BIT_PAIRS, _size, ev, target=0.99, ceiling=ceiling,
                fallback_below=0.97, abandon_below=abandon)
    assert not ev.calls
    expect = [str(SMALL)] if abandon is not None else [str(SMALL), str(LARGE)]
    assert asked == expect
    assert [str(a) for a, _ in gave.value.ceilings] == expect
    assert gave.value.best == max(ceilings[a] for a in expect)
    # a smaller first network that far under ends the walk before the pick is fitted
    asked.clear()
    ceilings[str(TINY)] = 0.5
    if abandon is not None:
        with pytest.raises(GaveUp) as gave:
            control([SMALL, LARGE], BIT_PAIRS, _size, ev, target=0.99, ceiling=ceiling,
                    first=TINY, fallback_below=0.97, abandon_below=abandon)
        assert asked == [str(TINY)] * len(asked) and gave.value.best == 0.5
    # a network between the two thresholds is still trained, and is the closest
    ceilings[str(SMALL)] = 0.975
    ev = Scored(_table(SMALL, [0.95, 0.96, 0.97, 0.975, 0.98, 0.979]))
    out = control([SMALL, LARGE], BIT_PAIRS, _size, ev, target=0.99,
                  ceiling=lambda a: ceilings[str(a)], fallback_below=0.97,
                  abandon_below=abandon)
    assert not out.reached and out.chosen.plan == plans(SMALL, BIT_PAIRS, _size)[-1]


@pytest.mark.parametrize("cap", [300, 420, 520, 700, 5000])
def test_max_bytes_is_never_exceeded(cap: int) -> None:
    table = {**_table(SMALL, [0.95, 0.96, 0.97, 0.975, 0.98, 0.98]),
             **_table(LARGE, [0.96, 0.97, 0.975, 0.978, 0.99, 0.995])}
    fitting = [p for a in (LARGE, SMALL) for p in plans(a, BIT_PAIRS, _size, cap)]
    for target in (None, 0.97, 0.999):
        ev = Scored(table)
        if not fitting:
            with pytest.raises(UsageError, match="--max-bytes"):
                control([LARGE, SMALL], BIT_PAIRS, _size, ev, target=target, max_bytes=cap)
            assert not ev.calls
            continue
        out = control([LARGE, SMALL], BIT_PAIRS, _size, ev, target=target, max_bytes=cap)
        assert all(p.nbytes <= cap for p in ev.calls)
        assert out.chosen.plan.nbytes <= cap
        if target is None:  # the best IoU within the cap: the largest plan that fits
            first = [p for p in fitting if p.arch == fitting[0].arch] or fitting
            assert out.chosen.plan == max(first, key=lambda p: p.nbytes)


def test_rate_options_are_checked() -> None:
    with pytest.raises(UsageError, match="low-bit"):
        EncodeOptions(quant="fp16", target_iou=0.99).resolved()
    with pytest.raises(UsageError, match="target-iou"):
        EncodeOptions(target_iou=1.5).resolved()
    opts = EncodeOptions(target_iou=0.99, max_bytes=900, strip=True).resolved()
    rec = opts.record()
    assert rec["quant"] == "auto" and rec["target_iou"] == 0.99 and rec["max_bytes"] == 900
    assert "strip" not in rec
    # a v1 file's options map keeps the keys it always had but threads, which no longer
    # changes the bytes (TensorFlow trains on one thread)
    assert set(EncodeOptions(quant="fp16").resolved().record()) == {
        "preset", "resolution", "fill", "quant", "seed"}


# --- through the encoder --------------------------------------------------------------------

def _ball(n: int = 16) -> np.ndarray:
    idx = np.indices((n, n, n)).astype(float)
    return ((idx - (n - 1) / 2) ** 2).sum(axis=0) <= (0.35 * n) ** 2


@pytest.fixture(scope="module")
def encoder(tf_one_thread):
    pytest.importorskip("tensorflow")
    import occcodec

    return occcodec


def _enc(occcodec, **kw):
    # fast: one bit pair (8+4) and short fits; a fixed network: no search
    kw = {"preset": "fast", "threads": 1, "arch": "pe1,8:relu", **kw}
    return occcodec.encode_result(_ball(), **kw)


@pytest.fixture(scope="module")
def laddered(encoder):
    """The default preset's whole ladder of bit pairs, bisected with QAT runs."""
    return _enc(encoder, preset="default")


def test_written_size_is_the_predicted_one(encoder, laddered) -> None:
    from occcodec.format import v2

    res = laddered
    assert 1 <= len(res.header["trials"]) <= 3  # bisection over 6 pairs
    assert any(t["bytes"] == len(res.data) for t in res.header["trials"])
    header, _payload, meta, _ = v2.unpack(res.data)
    assert list(header.weights.bits) == res.header["bits"]
    assert meta is not None and meta["options"]["quant"] == "auto"
    assert meta["options"]["preset"] == "default"
    assert meta["metrics"]["iou"] == pytest.approx(res.header["metrics"]["iou"], abs=1e-6)
    # the decoder's IoU is the one recorded
    got = encoder.decode(res.data).voxels()
    grid = _ball()
    iou = np.count_nonzero(got & grid) / np.count_nonzero(got | grid)
    assert iou == pytest.approx(res.header["metrics"]["iou"], abs=1e-6)


def test_fits_use_the_presets_batch(encoder, monkeypatch) -> None:
    from occcodec.encoder import train

    seen: list[int] = []
    real = train.train

    def spy(*args, **kw):
        seen.append(kw["batch"])
        return real(*args, **kw)

    monkeypatch.setattr(train, "train", spy)
    _enc(encoder)  # fast: one float fit, one QAT run at 8+4
    assert seen == [1024, 1024]  # the largest batch (this small set's is smaller)


def test_strip_and_explicit_bits(encoder) -> None:
    from occcodec.format import v2

    res = _enc(encoder, quant="5", strip=True)
    header, _payload, meta, _ = v2.unpack(res.data)
    assert meta is None and header.weights.bits == (8, 5)
    assert len(res.data) == res.header["trials"][-1]["bytes"]


def test_encoder_max_bytes_and_unreachable(encoder, laddered) -> None:
    # the best IoU within a cap: the largest plan that fits, never over it
    cap = len(laddered.data) + 60
    res = _enc(encoder, preset="default", max_bytes=cap)
    assert len(res.data) <= cap and len(res.header["trials"]) == 1
    assert res.header["trials"][0]["bytes"] == len(res.data)
    with pytest.raises(UsageError, match="no network fits --max-bytes 50"):
        _enc(encoder, max_bytes=50)
    hard = _enc(encoder, target_iou=1.0)
    if hard.header["metrics"]["iou"] < 1.0:
        assert "not reached" in hard.note and "try" in hard.note and "\n" not in hard.note
        # the note gives the written file's measured IoU
        assert f"kept the closest, {hard.header['metrics']['iou'] * 100:.2f} %" in hard.note


def test_v1_requests_write_v1(encoder) -> None:
    res = _enc(encoder, quant="fp16")
    assert res.data[:4] == b"\x89OCC" and not res.note
    header = encoder.decode(res.data).header
    assert header.quant == "fp16"
    assert set(header.options) == {"preset", "resolution", "fill", "quant", "seed",
                                   "arch"}


def test_search_reward_counts_bytes_at_the_paper_rate(encoder) -> None:
    from occcodec.encoder.search import SearchBudget, reward

    common = {"rounds": 1, "per_round": 1, "epochs": 1, "encodings": (0,), "max_params": None,
              "lr": 1e-2, "subsample": 1.0, "acc_weight": 25.0}
    by_params = SearchBudget(**common)
    # bytes proportional to parameters: the paper's reward exactly
    by_bytes = SearchBudget(**common, size_bytes=lambda a: 3 * a.params)
    for arch in (SMALL, LARGE):
        assert by_params.reward(0.99, arch) == reward(0.99, arch.params, 25.0)
        assert by_bytes.reward(0.99, arch) == pytest.approx(by_params.reward(0.99, arch))
    # real low-bit sizes: the channel costs make a wide first layer on a PE dearer
    real = SearchBudget(**common, size_bytes=lambda a: _size(a, layer_bits(a, (8, 4))))
    assert real.reward(0.99, SMALL) > real.reward(0.99, LARGE)


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("kw", "cap"), [
    ({}, 4000),                                   # the default target: the preset's cap
    ({"target_iou": 0.99}, None),                 # an explicit target lifts it
    ({"max_bytes": 5000}, None),                  # so does a byte budget
    ({"max_params": 900}, 900),                   # --max-params wins
    ({"quant": "fp16"}, None),                    # v1 files never see it
])
def test_default_search_cap_applies_at_the_presets_own_target(
        encoder, monkeypatch: pytest.MonkeyPatch, kw, cap) -> None:
    from occcodec.encoder import search

    seen = []

    def fake_search(samples, budget, *a, **k):
        seen.append(budget.max_params)
        raise _Stop

    monkeypatch.setattr(search, "search", fake_search)
    with pytest.raises(_Stop):
        encoder.encode_result(_ball(), preset="default", threads=1, mode="network", **kw)
    assert seen == [cap]


def test_a_trial_with_spurious_parts_never_passes() -> None:
    # plans 1 and 2 reach the target but decode with extra components: plan 3 is the
    # smallest that passes; when none is clean, the closest is a clean one if any
    ladder = plans(SMALL, BIT_PAIRS, _size)
    dirty = {ladder[1].bits, ladder[2].bits}

    def ev(plan):
        return Trial(plan, 0.99, clean=plan.bits not in dirty)

    passing, _ = smallest_passing(ladder, ev, 0.985)
    assert passing is not None and passing.plan == ladder[3]
    assert not Trial(ladder[0], 0.999, clean=False).passes(0.9)
    trials = [Trial(ladder[0], 0.95), Trial(ladder[1], 0.97, clean=False)]
    assert closest(trials) is trials[0]


def test_extra_components_of_a_decoded_grid() -> None:
    from occcodec.encoder.meshfit import MeshReference, extra_components, grid_components

    truth = np.zeros((40, 40, 40), bool)
    truth[5:35, 5:35, 5:35] = True
    ref = MeshReference(dims=(40, 40, 40), center=(0.0, 0.0, 0.0), scale=1.0, grid=truth)
    pred = truth.copy()
    assert extra_components(pred, ref) == 0 and ref.components == 1
    pred[0:4, 36:40, 0:4] = True  # a floater of 64 voxels: over 1e-3 of 27,000
    assert grid_components(pred) == 2 and extra_components(pred, ref) == 1
    pred[0:4, 36:40, 0:4] = False
    pred[0, 39, 0] = True  # a speck of one voxel is not counted
    assert extra_components(pred, ref) == 0
    pred[36, 36, 36] = True  # touching a corner (26-connected) is the same component
    assert grid_components(pred) == 1


def test_components_are_counted_only_for_trials_that_reach_the_target() -> None:
    from occcodec import sparse
    from occcodec.encoder.meshfit import MeshReference, mesh_metrics
    from occcodec.format.arch import Arch, Layer

    # an octahedron |x| + |y| + |z| < 0.5: relu(+-x), relu(+-y), relu(+-z), summed
    arch = Arch((Layer(6, "relu"),), pe_levels=0)
    k0 = np.concatenate([np.eye(3), -np.eye(3)], axis=1).astype(np.float32)
    weights = [(k0, np.zeros(6, np.float32)),
               (-np.ones((6, 1), np.float32), np.array([0.5], np.float32))]
    dims = (32, 32, 32)
    truth = sparse.sparse_voxels(arch, weights, dims)
    assert truth.any()
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0, grid=truth)
    reached = mesh_metrics(arch, weights, ref, None, surface=False, components=0.99)
    assert reached["iou"] == 1.0 and reached["extra_components"] == 0
    missed = mesh_metrics(arch, weights, ref, None, surface=False, components=1.01)
    assert missed["iou"] == 1.0 and "extra_components" not in missed
    assert "extra_components" not in mesh_metrics(arch, weights, ref, None, surface=False)
    # the same weights were decoded once and kept; other weights push out the oldest
    assert len(ref.fields) == 1
    kept = ref.field(arch, weights)
    assert ref.field(arch, [(k.copy(), b.copy()) for k, b in weights]) is kept
    for bias in (0.4, 0.3):
        ref.field(arch, [weights[0], (weights[1][0], np.array([bias], np.float32))])
    assert len(ref.fields) == 2 and all(f is not kept for f in ref.fields.values())


def test_trials_far_under_the_target_are_screened_on_a_sample() -> None:
    from occcodec import sparse
    from occcodec.encoder.meshfit import SCREEN_MARGIN, MeshReference, mesh_metrics
    from occcodec.format.arch import Arch, Layer

    arch = Arch((Layer(6, "relu"),), pe_levels=0)
    k0 = np.concatenate([np.eye(3), -np.eye(3)], axis=1).astype(np.float32)

    def octahedron(radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(k0, np.zeros(6, np.float32)),
                (-np.ones((6, 1), np.float32), np.array([radius], np.float32))]

    dims = (48, 48, 48)  # 110,592 voxels: the whole grid is the sample
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0,
                        grid=sparse.sparse_voxels(arch, octahedron(0.45), dims))
    exact = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False)
    assert exact["iou_sampled"] == 0 and 0.6 < exact["iou"] < 0.9
    far = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False, screen=0.99)
    assert far["iou_sampled"] == ref.grid.size and far["iou"] == pytest.approx(exact["iou"])
    near = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False,
                        screen=exact["iou"] + SCREEN_MARGIN / 2)
    assert near["iou_sampled"] == 0 and near["iou"] == exact["iou"]


def test_float_fits_are_estimated_on_the_sample_without_a_decode() -> None:
    from occcodec import sparse
    from occcodec.encoder.meshfit import SCREEN_CENTRES, MeshReference, mesh_metrics
    from occcodec.format.arch import Arch, Layer

    arch = Arch((Layer(6, "relu"),), pe_levels=0)
    k0 = np.concatenate([np.eye(3), -np.eye(3)], axis=1).astype(np.float32)

    def octahedron(radius: float) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(k0, np.zeros(6, np.float32)),
                (-np.ones((6, 1), np.float32), np.array([radius], np.float32))]

    dims = (112, 112, 112)  # 1.4 M voxels: the sample is a part of the grid
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0,
                        grid=sparse.sparse_voxels(arch, octahedron(0.45), dims))
    est = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False, estimate=True)
    assert est["iou_sampled"] == SCREEN_CENTRES < ref.grid.size
    assert not ref.fields  # nothing decoded
    exact = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False)
    assert exact["iou_sampled"] == 0 and len(ref.fields) == 1
    assert est["iou"] != exact["iou"] and est["iou"] == pytest.approx(exact["iou"], abs=2e-3)
    # the estimate is for float fits only: a trial near its target is still decoded
    near = mesh_metrics(arch, octahedron(0.5), ref, None, surface=False,
                        screen=exact["iou"])
    assert near["iou_sampled"] == 0


def _octahedron_net():
    """|x| + |y| + |z| < 0.5 as a one-layer relu network (no positional encoding)."""
    from occcodec.format.arch import Arch, Layer

    arch = Arch((Layer(6, "relu"),), pe_levels=0)
    k0 = np.concatenate([np.eye(3), -np.eye(3)], axis=1).astype(np.float32)
    return arch, [(k0, np.zeros(6, np.float32)),
                  (-np.ones((6, 1), np.float32), np.array([0.5], np.float32))]


def test_spurious_parts_are_the_components_away_from_the_truth(monkeypatch) -> None:
    from occcodec import sparse
    from occcodec.encoder import meshfit
    from occcodec.encoder.meshfit import MeshReference, spurious_samples
    from occcodec.shapes.frame import index_to_normalized

    arch, weights = _octahedron_net()
    dims = (32, 32, 32)
    octa = sparse.sparse_voxels(arch, weights, dims)
    rng = np.random.default_rng(0)
    # the truth is the network's own shape: nothing spurious
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0, grid=octa.copy())
    assert spurious_samples(arch, weights, ref, rng) is None
    # a truth that only touches the octahedron: it overlaps, so it is not spurious
    touch = np.zeros(dims, bool)
    touch[16, 16, 16] = True
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0, grid=touch)
    assert spurious_samples(arch, weights, ref, rng) is None
    # a truth away from it: the whole octahedron is one spurious part, every voxel centre
    # labelled empty, at the coordinates the network is evaluated at
    away = np.zeros(dims, bool)
    away[0:3, 0:3, 0:3] = True
    ref = MeshReference(dims=dims, center=(0.0, 0.0, 0.0), scale=1.0, grid=away)
    x, y, parts = spurious_samples(arch, weights, ref, rng)
    assert parts == 1 and len(x) == np.count_nonzero(octa) and not y.any()
    want = index_to_normalized(np.argwhere(octa).astype(np.float64), dims)
    got = {tuple(p) for p in np.round(x.astype(np.float64), 5)}
    assert got == {tuple(p) for p in np.round(want, 5)}
    # more centres than the cap: a subset of them
    monkeypatch.setattr(meshfit, "SPURIOUS_CAP", 100)
    x2, _, parts2 = spurious_samples(arch, weights, ref, rng)
    assert parts2 == 1 and len(x2) == 100
    assert {tuple(p) for p in np.round(x2.astype(np.float64), 5)} <= got
    # a full truth is needed
    assert spurious_samples(arch, weights, MeshReference(dims=dims, center=(0.0, 0.0, 0.0),
                                                         scale=1.0), rng) is None


def test_added_points_are_repeated_to_their_share() -> None:
    from occcodec.encoder.sampling import ADDED_REPEAT, ADDED_SHARE, Samples, with_points

    n = 100_000
    s = Samples(train_x=np.zeros((n, 3), np.float32), train_y=np.ones(n, np.float32),
                val_x=np.zeros((5, 3), np.float32), val_y=np.ones(5, np.float32),
                boundary=0, interior_kept=n)
    x = np.full((100, 3), 0.25, np.float32)
    out = with_points(s, x, np.zeros(100, np.float32))
    reps = int(np.ceil(ADDED_SHARE * n / 100))
    assert 1 < reps <= ADDED_REPEAT
    assert len(out.train_x) == n + reps * 100 and np.count_nonzero(out.train_y == 0) == reps * 100
    assert out.val_x is s.val_x and len(s.train_x) == n  # the original is untouched
    many = np.zeros((5_000, 3), np.float32)
    assert len(with_points(s, many, np.zeros(5_000, np.float32)).train_x) == n + 5_000
    few = with_points(s, x[:1], np.zeros(1, np.float32))
    assert len(few.train_x) == n + ADDED_REPEAT


def test_a_float_fit_with_spurious_parts_trains_against_them(encoder, monkeypatch) -> None:
    from occcodec.encoder import qat, ratefit
    from occcodec.encoder import train as tr
    from occcodec.encoder.presets import PRESETS
    from occcodec.encoder.sampling import make_samples
    from occcodec.progress import Progress

    grid = _ball()
    rng = np.random.default_rng(0)
    samples = make_samples(grid, rng)
    arch = parse_arch("pe1,8:relu")
    far = np.full((40, 3), 0.9, np.float32)  # a corner the ball never reaches
    asked: list[str] = []

    def spurious(net, weights):
        asked.append(str(net))
        return (far, np.zeros(len(far), np.float32), 2) if len(asked) == 1 else None

    fits: list[tuple[int, int]] = []
    real_train, real_qat = tr.train, qat.finetune

    def spy_train(arch_, weights, s, epochs, *a, **kw):
        fits.append((epochs, len(s.train_x)))
        return real_train(arch_, weights, s, epochs, *a, **kw)

    def spy_qat(arch_, weights, s, *a, **kw):
        fits.append((-1, len(s.train_x)))
        return real_qat(arch_, weights, s, *a, **kw)

    monkeypatch.setattr(tr, "train", spy_train)
    monkeypatch.setattr(qat, "finetune", spy_qat)
    notes: list[str] = []

    class Notes(Progress):
        def note(self, text: str) -> None:
            notes.append(text)

    preset = PRESETS["fast"]
    opts = EncodeOptions(preset="fast", threads=1)
    out = ratefit.run([ratefit.Start(arch, tr.init_weights(arch, rng))], samples,
                      lambda net, w, surface=True, trial=True: ratefit.grid_metrics(net, w, grid),
                      preset, opts, rng, Notes(), _size, spurious=spurious)
    n = len(samples.train_x)
    added = len(far) * int(min(8, np.ceil(0.005 * n / len(far))))
    # the float fit, then the extra epochs and the QAT run on the points with the part added
    assert asked == [str(arch)]
    assert fits[:3] == [(preset.final_epochs, n), (ratefit.SPURIOUS_EPOCHS, n + added),
                        (-1, n + added)]  # (QAT trains through train.train too)
    assert all(size == n + added for _, size in fits[2:])
    assert any("2 spurious part(s), 40 voxel centres" in t for t in notes)
    assert out.chosen is not None


@pytest.mark.parametrize("fallback", [0.9, 0.52])
def test_a_network_far_under_the_fallback_is_not_trained_against_spurious_parts(
        encoder, monkeypatch, fallback: float) -> None:
    """A float fit whose estimated IoU is ABANDON_GAP under the fallback's threshold ends
    rate control: no spurious-part decode, no QAT run, GaveUp with its float IoU."""
    from occcodec.encoder import qat, ratefit
    from occcodec.encoder import train as tr
    from occcodec.encoder.presets import PRESETS
    from occcodec.encoder.sampling import make_samples
    from occcodec.progress import Progress

    grid = _ball()
    rng = np.random.default_rng(0)
    samples = make_samples(grid, rng)
    arch = parse_arch("pe1,8:relu")
    asked: list[str] = []

    def spurious(net, weights):
        asked.append(str(net))
        return None

    def no_qat(*a, **k):
        raise AssertionError("a QAT run")

    monkeypatch.setattr(qat, "finetune", no_qat)

    def score(net, w, surface=True, trial=True):
        return {"iou": 0.5, "accuracy": 0.9, "params": net.params}

    with pytest.raises(GaveUp) as gave:
        ratefit.run([ratefit.Start(arch, tr.init_weights(arch, rng))], samples, score,
                    PRESETS["fast"], EncodeOptions(preset="fast", threads=1), rng,
                    Progress(), _size, spurious=spurious, fallback_below=fallback)
    assert gave.value.best == 0.5  # the float IoU, not the ceiling
    far = 0.5 + ratefit.CEILING_SLACK < fallback - ratefit.ABANDON_GAP
    assert far == (fallback == 0.9)
    assert asked == ([] if far else [str(arch)])
