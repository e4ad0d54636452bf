"""``--preset paper`` follows the original code (issue 9): one test per rule.

The rules live in tables in ``occcodec/encoder/search.py``; these tests check each against
hand-made inputs whose answer is worked out here, and a tiny controller step with fixed seeds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from occcodec.format.arch import Arch, Layer, parse_arch

tf = pytest.importorskip("tensorflow")

from occcodec.encoder import pipeline
from occcodec.encoder import search as nas

#: TensorFlow starts with the thread count the CLI tests use (see conftest).
pytestmark = pytest.mark.usefixtures("tf_one_thread")


def cand(spec: str, accuracy: float, reward: float = 0.0) -> nas.Candidate:
    return nas.Candidate(parse_arch(spec), accuracy, reward, [])


# --- the final pick ---------------------------------------------------------------------

def test_accuracy_window_picks_the_smallest_network_near_the_most_accurate() -> None:
    # params: 32:relu,32:relu = 1217; 16:relu = 81; 24:relu = 121; 8:relu = 41; 56:relu = 281
    cands = [
        cand("32:relu,32:relu", 0.9900, reward=-0.5),  # the most accurate
        cand("24:relu", 0.9895, reward=0.1),           # within 0.001: smallest so far
        cand("56:relu", 0.9892, reward=0.0),           # within, larger
        cand("8:relu", 0.9885, reward=0.9),            # 0.0015 below: the walk stops here
        cand("16:relu", 0.9500, reward=0.2),
    ]
    assert nas.pick_accuracy_window(cands).arch == parse_arch("24:relu")
    # ours: the reward alone, which the size term dominates
    assert nas.pick_by_reward(cands).arch == parse_arch("8:relu")
    assert nas.FINAL_PICKS["accuracy-window"] is nas.pick_accuracy_window


def test_accuracy_window_keeps_the_original_walk_and_its_ties() -> None:
    # every candidate within the window: the walk stops before the last of the sorted list
    # (``while i < len(data) - 1``), so the smallest, being least accurate, is never picked
    cands = [cand("32:relu", 0.9990), cand("24:relu", 0.9988), cand("8:relu", 0.9985)]
    assert nas.pick_accuracy_window(cands).arch == parse_arch("24:relu")
    # a tie in size keeps the more accurate network
    cands = [cand("24:elu", 0.9990), cand("24:relu", 0.9985), cand("24:swish", 0.9989),
             cand("64:relu", 0.5)]
    assert nas.pick_accuracy_window(cands).arch == parse_arch("24:elu")
    # equal accuracies: the later candidate ranks first (np.argsort reversed)
    cands = [cand("24:elu", 0.99), cand("24:relu", 0.99), cand("64:relu", 0.5)]
    assert nas.pick_accuracy_window(cands).arch == parse_arch("24:relu")
    # a wider window reaches further down
    cands = [cand("32:relu", 0.99), cand("16:relu", 0.985), cand("24:relu", 0.98),
             cand("64:relu", 0.5)]
    assert nas.pick_accuracy_window(cands).arch == parse_arch("32:relu")
    assert nas.pick_accuracy_window(cands, window=0.02).arch == parse_arch("16:relu")
    assert nas.pick_accuracy_window(cands[:1]).arch == parse_arch("32:relu")
    with pytest.raises(ValueError):
        nas.pick_accuracy_window([])


# --- the accuracy that scores a candidate -----------------------------------------------

def test_epoch_weighted_accuracy() -> None:
    assert nas.epoch_weighted_accuracy([0.5, 1.0]) == pytest.approx((0.5 + 2.0) / 3)
    assert nas.epoch_weighted_accuracy([0.9]) == pytest.approx(0.9)
    assert nas.epoch_weighted_accuracy([0.7] * 40) == pytest.approx(0.7)
    # a linear climb e/40 over 40 epochs: sum(e^2) / (40 * sum(e)) = 81/120
    ramp = [e / 40 for e in range(1, 41)]
    assert nas.epoch_weighted_accuracy(ramp) == pytest.approx(81 / 120)
    # later epochs count more: the same values in the other order score lower
    assert nas.epoch_weighted_accuracy(ramp[::-1]) < nas.epoch_weighted_accuracy(ramp)
    assert nas.ACCURACY_RULES["best"](ramp) == 1.0
    with pytest.raises(ValueError):
        nas.epoch_weighted_accuracy([])


# --- the hybrid controller --------------------------------------------------------------

def test_hybrid_loss_adds_the_predictors_squared_error_with_weight_one() -> None:
    logp = tf.constant([-1.0, -2.0])
    rewards = tf.constant([0.5, 0.25])
    predicted = tf.constant([0.9, 0.8])
    measured = tf.constant([0.95, 0.7])
    reinforce = (1.0 * 0.5 + 2.0 * 0.25) / 2  # mean(-logp * reward), no baseline
    mse = (0.05**2 + 0.1**2) / 2
    total = float(nas.hybrid_loss(logp, rewards, predicted, measured))
    assert total == pytest.approx(reinforce + mse, rel=1e-6)
    assert float(nas.hybrid_loss(logp, rewards, predicted, measured, 0.0)) == \
        pytest.approx(reinforce, rel=1e-6)
    assert float(nas.hybrid_loss(logp, tf.zeros(2), predicted, measured)) == \
        pytest.approx(mse, rel=1e-6)


def _round(ctrl: nas.HybridController, seed: int, n: int = 3) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [ctrl.sample(rng)[1] for _ in range(n)]


def test_hybrid_controller_step_trains_both_heads() -> None:
    ctrl = nas.HybridController((), seed=3, epochs=3)
    seqs = _round(ctrl, 3)
    assert seqs == _round(nas.HybridController((), seed=3, epochs=3), 3)  # seeded: same samples

    # reward 0: only the predictor's error acts, and its prediction moves to the target
    before = [float(ctrl.score(s)[1]) for s in seqs]
    ctrl.update([(s, 0.0, 0.95) for s in seqs])
    after = [float(ctrl.score(s)[1]) for s in seqs]
    for b, a in zip(before, after, strict=True):
        assert abs(a - 0.95) < abs(b - 0.95)

    # predictor weight 0: REINFORCE alone raises the log-probability of a rewarded network
    ctrl = nas.HybridController((), seed=3, epochs=3, predictor_weight=0.0)
    good, bad = seqs[0], seqs[1]
    lp_good, lp_bad = float(ctrl.score(good)[0]), float(ctrl.score(bad)[0])
    ctrl.update([(good, 1.0, 0.0), (bad, -1.0, 0.0)])
    assert float(ctrl.score(good)[0]) > lp_good
    assert float(ctrl.score(bad)[0]) < lp_bad


def test_hybrid_controller_samples_as_the_original() -> None:
    ctrl = nas.HybridController((), seed=0)
    rng = np.random.default_rng(0)
    archs = [ctrl.sample(rng)[0] for _ in range(30)]
    assert all(1 <= len(a.layers) <= 6 for a in archs)  # at most 7 tokens with the output
    assert all(a.layers[0] != Layer(64, "elu") for a in archs)  # the original's dropout_id
    assert len({len(a.layers) for a in archs}) > 1
    assert nas.CONTROLLERS["hybrid"].distinct and not nas.CONTROLLERS["plain"].distinct


def test_a_controller_that_wants_distinct_networks_resamples_repeats() -> None:
    class Scripted(nas.Controller):
        def __init__(self, distinct: bool) -> None:
            self.distinct = distinct
            self.queue = ["24:relu", "24:relu", "8:elu"]

        def sample(self, rng: np.random.Generator, max_layers: int = 6) -> tuple[Arch, list[int]]:
            return parse_arch(self.queue.pop(0)), []

    seen = {"24:relu": cand("24:relu", 0.9)}
    rng = np.random.default_rng(0)
    assert str(nas._draw(Scripted(True), rng, None, seen)[0]) == "8:elu"
    assert str(nas._draw(Scripted(False), rng, None, seen)[0]) == "24:relu"


# --- one-shot sharing by layer pairs ----------------------------------------------------

def test_layer_pair_sharing_follows_the_original_bigrams() -> None:
    a = parse_arch("32:relu,16:elu")
    assert nas.layer_pair_keys(a) == [(("input", 3), (32, "relu")),
                                      ((32, "relu"), (16, "elu")),
                                      ((16, "elu"), (1, "sigmoid"))]
    rng = np.random.default_rng(0)
    bank = nas.WeightBank("layer-pair")
    trained = [(np.full(k.shape, i + 1.0, np.float32), b)
               for i, (k, b) in enumerate(bank.initial(a, rng))]
    bank.put(a, trained)
    b = parse_arch("8:swish,32:relu,16:elu")  # shares two pairs with a, at other positions
    start = bank.initial(b, rng)
    assert not np.any(start[0][0] == 1.0)  # input -> 8:swish: fresh
    assert not np.any(start[1][0] == 1.0)  # 8:swish -> 32:relu: fresh
    assert np.all(start[2][0] == 2.0) and np.all(start[3][0] == 3.0)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(bank.lookup(a), trained, strict=False))
    with pytest.raises(KeyError):
        bank.lookup(b)
    # ours shares by position and shape: nothing of b is banked
    ours = nas.WeightBank("position")
    ours.put(a, trained)
    assert not any(np.any(k == 2.0) for k, _ in ours.initial(b, rng))


# --- the presets ------------------------------------------------------------------------

def test_presets_name_known_rules_and_paper_uses_the_originals() -> None:
    for preset in pipeline.PRESETS.values():
        assert preset.reward_accuracy in nas.ACCURACY_RULES
        assert preset.controller in nas.CONTROLLERS
        assert preset.weight_sharing in nas.SHARING_KEYS
        assert preset.final_pick in nas.FINAL_PICKS
    paper = pipeline.PRESETS["paper"]
    assert (paper.reward_accuracy, paper.controller, paper.weight_sharing, paper.final_pick) \
        == ("epoch-weighted", "hybrid", "layer-pair", "accuracy-window")
    assert (paper.rounds, paper.per_round, paper.search_epochs, paper.final_epochs) \
        == (5, 6, 40, 250)
    assert (paper.search_lr, paper.final_lr, paper.acc_weight, paper.encodings) \
        == (1e-3, 1e-3, 1.0, ())
    for name in ("default", "fast"):
        ours = pipeline.PRESETS[name]
        assert (ours.reward_accuracy, ours.controller, ours.weight_sharing, ours.final_pick) \
            == ("best", "plain", "position", "reward")


@pytest.mark.slow
def test_paper_pipeline_end_to_end_on_a_reduced_budget(box_mesh_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's rules through encode() with a tiny budget: the network trained is the
    accuracy-window pick of the candidates the search reports, all of them distinct."""
    small = dataclasses.replace(pipeline.PRESETS["paper"], rounds=2, per_round=3,
                                search_epochs=2, final_epochs=3)
    monkeypatch.setitem(pipeline.PRESETS, "paper", small)
    res = pipeline.encode(box_mesh_path, pipeline.EncodeOptions(
        preset="paper", resolution=16, threads=1, seed=1))
    found = [cand(c["arch"], c["accuracy"]) for c in res.candidates]
    assert len(found) == 6 and len({str(c.arch) for c in found}) == 6
    assert res.arch == nas.pick_accuracy_window(found).arch
    assert all(c.arch.pe_levels == 0 for c in found)
    assert res.header["metrics"]["iou"] > 0.0
