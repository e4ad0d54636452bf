"""The one place occcodec imports TensorFlow: quietly, and with its thread pools configured.

Every other encoder module takes ``tf`` from here (``from occcodec.encoder.tf import tf``), so
the start-up silencing and the logger level are applied once, whichever module is imported
first. Nothing outside :mod:`occcodec.encoder` may import this module: decoding never needs
TensorFlow (``tests/test_no_tensorflow.py``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ runtime prints to fd 2 while it starts (CPU feature notes,
    "could not find cuda drivers"): absl logs those before TF_CPP_MIN_LOG_LEVEL applies.
    Python exceptions are unaffected; OCCCODEC_TF_LOGS=1 shows everything."""
    if os.environ.get("OCCCODEC_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
with native_stderr_silenced():
    import tensorflow as tf
# Retracing notes (one graph per candidate network is by design) are not a user's concern.
tf.get_logger().setLevel("ERROR")

#: TensorFlow's intra-op threads. One: measured on the 2-core reference machine, one epoch of
#: 1 M points took 0.74 s with one thread and 1.05 s with two for
#: ``pe6,20:elu,56:swish,16:swish,56:swish`` in batches of 1,024, and the same within 5 %
#: for ``pe4,32:swish,32:swish`` and in batches of 16,384: these products are too small to
#: split. The cores go to the decodes that score every candidate instead
#: (:func:`occcodec.sparse.workers`), and a file no longer depends on ``--threads``.
TRAIN_THREADS = 1

_CONFIGURED: dict[str, int] = {}


def configure() -> str:
    """Set TensorFlow's thread pools (once per process) and return the device used."""
    if not _CONFIGURED:
        tf.config.threading.set_intra_op_parallelism_threads(TRAIN_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _CONFIGURED["threads"] = TRAIN_THREADS
    with native_stderr_silenced():
        gpus = tf.config.list_physical_devices("GPU")
        tf.constant(0.0).numpy()  # start the runtime now, while its log lines are hidden
    return f"GPU:0 ({gpus[0].name})" if gpus else "CPU"


__all__ = ["configure", "native_stderr_silenced", "tf"]
