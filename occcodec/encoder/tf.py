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

from occcodec.errors import UsageError


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

_CONFIGURED: dict[str, int] = {}


def configure(threads: int) -> str:
    """Set TensorFlow's thread pools (once per process) and return the device used.

    The intra-op pool decides how reductions are split, so results depend on it: it is an
    explicit option recorded in each file.

    Raises
    ------
    UsageError
        If this process already configured a different thread count (TensorFlow fixes its
        pools at start-up, and a file must not claim a count it did not use).
    """
    if not _CONFIGURED:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _CONFIGURED["threads"] = threads
    elif _CONFIGURED["threads"] != threads:
        raise UsageError(f"this process already trains with {_CONFIGURED['threads']} "
                         f"thread(s); encode with --threads {threads} in a new process")
    with native_stderr_silenced():
        gpus = tf.config.list_physical_devices("GPU")
        tf.constant(0.0).numpy()  # start the runtime now, while its log lines are hidden
    return f"GPU:0 ({gpus[0].name})" if gpus else "CPU"


__all__ = ["configure", "native_stderr_silenced", "tf"]
