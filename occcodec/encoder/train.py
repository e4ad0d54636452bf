"""TensorFlow training of one occupancy MLP: compiled steps, Adam, best checkpoint.

Only the encoder imports this module (decoding never needs TensorFlow). Weights are
initialised in numpy from the run's seed, batches are shuffled by numpy from the same seed,
and each epoch runs as one TensorFlow graph call, so one machine with one thread count gives the
same weights on every run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from occcodec.encoder.sampling import Samples
from occcodec.encoder.tf import tf
from occcodec.errors import UsageError
from occcodec.format.arch import Arch
from occcodec.format.network import Weights

#: A forward-pass transform of one dense layer: (index, kernel, bias) -> (kernel, bias).
LayerFn = Callable[[int, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]]
#: Compile training steps with XLA (see Trainer.__init__ for the measurement behind False).
JIT = os.environ.get("OCCCODEC_XLA") == "1"


def init_weights(arch: Arch, rng: np.random.Generator) -> Weights:
    """Glorot-uniform kernels, zero biases, drawn from ``rng``."""
    out: Weights = []
    for fan_in, fan_out in arch.layer_dims():
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
        out.append((kernel, np.zeros(fan_out, np.float32)))
    return out


def _tf_encode(x: tf.Tensor, levels: int) -> tf.Tensor:
    if levels == 0:
        return x
    feats = [x]
    for k in range(levels):
        arg = x * float(np.pi * 2.0**k)
        feats += [tf.sin(arg), tf.cos(arg)]
    return tf.concat(feats, axis=1)


def _tf_swish(x: tf.Tensor) -> tf.Tensor:
    # Written out rather than tf.nn.silu so that the graph, and so the trained bytes, stay
    # those of every file made so far.
    return x * tf.sigmoid(x)


#: The hidden activations by id: the TensorFlow twin of ``occcodec.format.network``'s
#: numpy table (same keys, same values within 1e-6: ``tests/test_tables.py``).
TF_ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "relu": tf.nn.relu,
    "elu": tf.nn.elu,
    "swish": _tf_swish,
}


def tf_activation(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The TensorFlow function of the activation id ``name``.

    Raises
    ------
    UsageError
        On an unknown id (never a fallback: the decoder would evaluate another network).
    """
    try:
        return TF_ACTIVATIONS[name]
    except KeyError:
        raise UsageError(f"unknown activation {name!r}: use "
                         f"{', '.join(TF_ACTIVATIONS)}") from None


def batch_size(n_samples: int, largest: int = 16384) -> int:
    """``largest`` (the preset's batch; the paper's 16384 gives about 64 steps a pass at
    128^3), or ``n_samples // 64`` for smaller sets, so that an epoch is at least about 64
    Adam steps."""
    return int(min(largest, max(32, n_samples // 64), max(1, n_samples)))


def cosine_lr(epoch: int, epochs: int, lr: float, final_lr: float) -> float:
    """Learning rate of ``epoch`` (0-based) of ``epochs``: a half cosine from ``lr`` at the
    first epoch down to ``final_lr`` at the last; a single epoch runs at ``lr``."""
    if epochs <= 1:
        return lr
    frac = epoch / (epochs - 1)
    return float(final_lr + 0.5 * (lr - final_lr) * (1.0 + np.cos(np.pi * frac)))


@dataclass
class TrainResult:
    weights: Weights
    best_val_acc: float
    epochs_run: int


class Trainer:
    """Trains one architecture; the compiled functions are built once per instance."""

    def __init__(self, arch: Arch, weights: Weights, lr: float = 1e-3, batch: int = 16384,
                 layer_fn: LayerFn | None = None):
        self.arch = arch
        self.batch = batch
        # Maps (layer index, kernel, bias) to what the forward pass uses: the hook for
        # quantization-aware training (encoder/qat.py); None trains the float weights.
        self.layer_fn = layer_fn
        self.vars = [(tf.Variable(k), tf.Variable(b)) for k, b in weights]
        flat = [v for pair in self.vars for v in pair]
        self.flat = flat
        self.m = [tf.Variable(tf.zeros_like(v)) for v in flat]
        self.v = [tf.Variable(tf.zeros_like(v)) for v in flat]
        self.t = tf.Variable(0.0)
        self.lr = tf.Variable(lr, dtype=tf.float32)
        # One graph call per epoch (a while loop over the batches). XLA (jit_compile=True)
        # was measured here at 3-5 s of compilation per network and no faster per epoch for
        # these tiny MLPs on 2 cores, and a search compiles a dozen networks: so no XLA.
        self._epoch = tf.function(self._epoch_impl, jit_compile=JIT, reduce_retracing=True)
        self._predict = tf.function(self._logits, jit_compile=JIT, reduce_retracing=True)

    def _layer(self, index: int) -> tuple[tf.Tensor, tf.Tensor]:
        k, b = self.vars[index]
        return (k, b) if self.layer_fn is None else self.layer_fn(index, k, b)

    def _logits(self, x: tf.Tensor) -> tf.Tensor:
        h = _tf_encode(x, self.arch.pe_levels)
        for i, layer in enumerate(self.arch.layers):
            k, b = self._layer(i)
            h = tf_activation(layer.activation)(tf.matmul(h, k) + b)
        k, b = self._layer(len(self.arch.layers))
        return (tf.matmul(h, k) + b)[:, 0]

    def _epoch_impl(self, xb: tf.Tensor, yb: tf.Tensor) -> tf.Tensor:
        """One pass over pre-batched data (steps, batch, 3); returns the mean loss."""
        steps = tf.shape(xb)[0]
        beta1, beta2, eps = 0.9, 0.999, 1e-7

        def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                z = self._logits(xb[i])
                loss = tf.reduce_mean(
                    tf.nn.sigmoid_cross_entropy_with_logits(labels=yb[i], logits=z))
            grads = tape.gradient(loss, self.flat)
            self.t.assign_add(1.0)
            c1 = 1.0 - tf.pow(beta1, self.t)
            c2 = 1.0 - tf.pow(beta2, self.t)
            for var, g, m, v in zip(self.flat, grads, self.m, self.v, strict=True):
                m.assign(beta1 * m + (1 - beta1) * g)
                v.assign(beta2 * v + (1 - beta2) * tf.square(g))
                var.assign_sub(self.lr * (m / c1) / (tf.sqrt(v / c2) + eps))
            return i + 1, total + loss

        _, total = tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), 0.0))
        return total / tf.cast(steps, tf.float32)

    def run_epoch(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> float:
        """One shuffled pass; the last partial batch is dropped (the next shuffle differs)."""
        batch = batch_size(len(x), self.batch)
        steps = max(1, len(x) // batch)
        order = rng.permutation(len(x))[: steps * batch]
        xb = x[order].reshape(steps, -1, 3)
        yb = y[order].reshape(steps, -1)
        return float(self._epoch(tf.constant(xb), tf.constant(yb)))

    def accuracy(self, x: np.ndarray, y: np.ndarray, chunk: int = 1 << 18) -> float:
        correct = 0
        for s in range(0, len(x), chunk):
            z = self._predict(tf.constant(x[s : s + chunk])).numpy()
            correct += int(np.count_nonzero((z > 0) == (y[s : s + chunk] > 0.5)))
        return correct / max(len(x), 1)

    def get_weights(self) -> Weights:
        return [(k.numpy().copy(), b.numpy().copy()) for k, b in self.vars]

    def set_weights(self, weights: Weights) -> None:
        for (kv, bv), (k, b) in zip(self.vars, weights, strict=True):
            kv.assign(k)
            bv.assign(b)


def train(arch: Arch, weights: Weights, samples: Samples, epochs: int, rng: np.random.Generator,
          lr: float = 1e-3, batch: int = 16384, keep_best: bool = True,
          on_epoch: Callable[[int, float, float], None] | None = None,
          eval_every: int = 1, final_lr: float | None = None,
          layer_fn: LayerFn | None = None) -> TrainResult:
    """Train ``epochs`` passes; return the best-validation-accuracy checkpoint when asked.

    With ``final_lr`` the learning rate follows a cosine from ``lr`` down to ``final_lr``
    over the epochs (per epoch); otherwise it stays at ``lr``. ``layer_fn`` (see
    :class:`Trainer`) changes the forward pass, validation included.
    """
    tr = Trainer(arch, weights, lr=lr, batch=batch, layer_fn=layer_fn)
    best_acc, best = -1.0, tr.get_weights()
    for epoch in range(epochs):
        if final_lr is not None:
            tr.lr.assign(cosine_lr(epoch, epochs, lr, final_lr))
        loss = tr.run_epoch(samples.train_x, samples.train_y, rng)
        last = epoch == epochs - 1
        if (epoch + 1) % eval_every == 0 or last:
            acc = tr.accuracy(samples.val_x, samples.val_y)
            if acc > best_acc:
                best_acc = acc
                if keep_best:
                    best = tr.get_weights()
            if on_epoch:
                on_epoch(epoch + 1, loss, acc)
    return TrainResult(best if keep_best else tr.get_weights(), best_acc, epochs)
