"""Neural architecture search (METHOD.md section 3): an LSTM controller trained by REINFORCE.

The controller emits one token per decision: optionally an input encoding first (the
``default`` preset offers positional encodings; the ``paper`` preset does not), then up to
six hidden layers, each a (width, activation) token out of 33, or "end". Each sampled network
is trained briefly, starting from a weight bank shared between candidates (one-shot: the
kernel between two consecutive layers is shared by every candidate with the same position
and shape), and rewarded by ``(accuracy - 0.98) + (7553 - params) / 21121``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
from dataclasses import dataclass

import numpy as np

from occcodec.format.arch import ACTIVATIONS, LARGEST_PARAMS, MAX_HIDDEN, NI_PARAMS, WIDTHS, Arch, Layer
from occcodec.format.network import Weights
from occcodec.encoder.sampling import Samples
from occcodec.encoder.tf import tf
from occcodec.encoder.train import init_weights, train

LAYER_TOKENS: tuple[Layer, ...] = tuple(Layer(w, a) for w in WIDTHS for a in ACTIVATIONS)


def reward(accuracy: float, params: int, acc_weight: float = 1.0) -> float:
    """The paper's size-aware reward; ``acc_weight`` > 1 trades size for fidelity.

    With the paper's weight of 1, 1 % of accuracy is worth only 211 parameters, so short
    candidate fits (which under-estimate every network's accuracy) steer the search to
    networks of a few hundred parameters and about 95 % IoU.
    """
    return acc_weight * (accuracy - 0.98) + (NI_PARAMS - params) / LARGEST_PARAMS


@dataclass
class Candidate:
    arch: Arch
    accuracy: float
    reward: float
    weights: Weights


class Controller:
    """LSTM(100) policy over token sequences; sampling draws from a numpy generator."""

    def __init__(self, encodings: Sequence[int], seed: int, lr: float = 5e-3, hidden: int = 100,
                 end_bias: float = 0.0):
        tf.keras.utils.set_random_seed(seed)
        self.encodings = list(encodings)
        self.cell = tf.keras.layers.LSTMCell(hidden)
        n_tokens = 1 + len(self.encodings) + len(LAYER_TOKENS) + 1
        self.embed = tf.keras.layers.Embedding(n_tokens, hidden)
        self.enc_head = tf.keras.layers.Dense(max(1, len(self.encodings)))
        # The last layer token is "end". A positive end_bias shortens the initial sample:
        # with none, P(end) is 1/34 per step and nearly every first network has 6 layers.
        self.layer_head = tf.keras.layers.Dense(len(LAYER_TOKENS) + 1)
        self.layer_head.build((None, hidden))
        bias = np.zeros(len(LAYER_TOKENS) + 1, np.float32)
        bias[-1] = end_bias
        self.layer_head.bias.assign(bias)
        self.opt = tf.keras.optimizers.Adam(lr)
        self.hidden = hidden
        self.baseline: float | None = None

    def _steps(self, choices: list[int] | None, rng: np.random.Generator | None,
               max_layers: int) -> tuple[list[int], tf.Tensor]:
        """Run the policy, sampling (choices None) or scoring given choices; return log p."""
        state = [tf.zeros((1, self.hidden)), tf.zeros((1, self.hidden))]
        token = tf.constant([0])
        logp = tf.constant(0.0)
        out: list[int] = []
        n_dec = (1 if self.encodings else 0) + max_layers
        for step in range(n_dec):
            h, state = self.cell(self.embed(token), state)
            is_enc = bool(self.encodings) and step == 0
            logits = (self.enc_head if is_enc else self.layer_head)(h)[0]
            first_layer = step == (1 if self.encodings else 0)
            if not is_enc and first_layer:  # at least one hidden layer: no "end" yet
                logits = tf.concat([logits[:-1], [-1e9]], axis=0)
            logprobs = tf.nn.log_softmax(logits)
            if choices is None:
                probs = np.exp(logprobs.numpy().astype(np.float64))
                c = int(rng.choice(len(probs), p=probs / probs.sum()))  # type: ignore[union-attr]
            else:
                c = choices[step]
            out.append(c)
            logp += logprobs[c]
            end = not is_enc and c == len(LAYER_TOKENS)
            if end:
                break
            offset = 1 if is_enc else 1 + len(self.encodings)
            token = tf.constant([offset + c])
        return out, logp

    def sample(self, rng: np.random.Generator, max_layers: int = MAX_HIDDEN) -> tuple[Arch, list[int]]:
        choices, _ = self._steps(None, rng, max_layers)
        return self.decode(choices), choices

    def decode(self, choices: list[int]) -> Arch:
        levels = self.encodings[choices[0]] if self.encodings else 0
        layer_choices = choices[1:] if self.encodings else choices
        layers = tuple(LAYER_TOKENS[c] for c in layer_choices if c < len(LAYER_TOKENS))
        return Arch(layers, levels)

    def update(self, batch: list[tuple[list[int], float]], max_layers: int = MAX_HIDDEN) -> None:
        """One REINFORCE step on a round's (choices, reward) pairs, with a moving baseline."""
        rewards = np.array([r for _, r in batch])
        if self.baseline is None:
            self.baseline = float(rewards.mean())
        with tf.GradientTape() as tape:
            loss = tf.constant(0.0)
            for (choices, r) in batch:
                _, logp = self._steps(choices, None, max_layers)
                loss += -logp * float(r - self.baseline)
            loss /= len(batch)
        variables = (self.cell.trainable_variables + self.embed.trainable_variables
                     + self.enc_head.trainable_variables + self.layer_head.trainable_variables)
        self.opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.baseline = 0.8 * self.baseline + 0.2 * float(rewards.mean())


class WeightBank:
    """Shared weights keyed by (layer position, fan_in, fan_out)."""

    def __init__(self) -> None:
        self.store: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def initial(self, arch: Arch, rng: np.random.Generator) -> Weights:
        fresh = init_weights(arch, rng)
        return [self.store.get((i, *k.shape), (k, b))  # type: ignore[misc]
                for i, (k, b) in enumerate(fresh)]

    def put(self, weights: Weights) -> None:
        for i, (k, b) in enumerate(weights):
            self.store[(i, *k.shape)] = (k, b)


@dataclass
class SearchBudget:
    rounds: int
    per_round: int
    epochs: int
    encodings: tuple[int, ...]
    max_params: int | None
    lr: float
    subsample: float
    end_bias: float = 0.0
    acc_weight: float = 1.0


def search(samples: Samples, budget: SearchBudget, rng: np.random.Generator, seed: int,
           on_candidate: Callable[[int, int, Candidate], None] | None = None,
           on_epoch: Callable[[int, float, float], None] | None = None) -> list[Candidate]:
    """Run the controller for ``budget.rounds`` rounds; return every trained candidate."""
    ctrl = Controller(budget.encodings, seed, end_bias=budget.end_bias)
    bank = WeightBank()
    results: list[Candidate] = []
    seen: dict[str, Candidate] = {}
    total = budget.rounds * budget.per_round
    sub = _subsample(samples, budget.subsample, rng)
    k = 0
    for _ in range(budget.rounds):
        batch = []
        for _ in range(budget.per_round):
            arch, choices = ctrl.sample(rng)
            for _retry in range(20):  # resample networks over the size cap
                if budget.max_params is None or arch.params <= budget.max_params:
                    break
                arch, choices = ctrl.sample(rng)
            if budget.max_params is not None and arch.params > budget.max_params:
                batch.append((choices, reward(0.0, arch.params, budget.acc_weight)))  # teach the cap, train nothing
                k += 1
                continue
            key = str(arch)
            if key in seen:  # the same network again: reuse its score, train nothing
                cand = seen[key]
            else:
                res = train(arch, bank.initial(arch, rng), sub, budget.epochs, rng,
                            lr=budget.lr, keep_best=True, on_epoch=on_epoch)
                bank.put(res.weights)
                cand = Candidate(arch, res.best_val_acc,
                                 reward(res.best_val_acc, arch.params, budget.acc_weight),
                                 res.weights)
                seen[key] = cand
                results.append(cand)
            batch.append((choices, cand.reward))
            k += 1
            if on_candidate:
                on_candidate(k, total, cand)
        ctrl.update(batch)
    return results


def _subsample(samples: Samples, fraction: float, rng: np.random.Generator) -> Samples:
    """A random share of the training set (validation kept whole) for quick candidate fits."""
    if fraction >= 1.0:
        return samples
    n = len(samples.train_x)
    idx = np.sort(rng.choice(n, size=max(1, int(n * fraction)), replace=False))
    return dataclasses.replace(samples, train_x=samples.train_x[idx],
                               train_y=samples.train_y[idx])
