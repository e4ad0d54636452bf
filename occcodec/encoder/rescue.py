"""The encoder's last check: never report success for a shape it did not capture.

A thin or tiny shape (a thin-walled open mug at 64^3, a knife blade) can train into a
network that predicts "empty" everywhere: with 1-2 % of the voxels occupied, "all empty" is
98 % accurate, and the short fits of ``--preset fast`` stop there. The file used to be
written anyway, with ``IoU 0.00 %`` printed as a success.

:func:`rescue` runs after the final fit. Below :data:`FAIL_IOU` it escalates, in order, and
keeps the best network measured (by the decoder's own code, after quantization):

1. the search's most accurate candidate (when it is not the one already trained), with
   :data:`MORE_EPOCHS` times the final fit's epochs;
2. :data:`RESCUE_ARCH`, a wider network with a positional encoding (thin walls need high
   frequencies), freshly initialised, with the same longer fit.

With ``--arch`` the user chose the network, so only the budget grows: the same network,
freshly initialised (another draw of the seed's generator), with the longer fit.

If the best is still below :data:`FAIL_IOU`, :class:`~occcodec.errors.QualityError` says what
was measured and what to try, and no file is written. Between :data:`FAIL_IOU` and
:data:`LOW_IOU` the file is written with a note that it is a rough approximation.

A shape that reaches :data:`FAIL_IOU` on the first fit never gets here, so its bytes do not
change (the escalation draws from the random generator only after the file's network is
settled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from occcodec.errors import QualityError
from occcodec.format.arch import Arch, parse_arch
from occcodec.progress import Progress

__all__ = ["FAIL_IOU", "LOW_IOU", "MORE_EPOCHS", "RESCUE_ARCH", "rescue"]

#: Below this IoU the encode fails: half the shape's voxels are wrong or missing, so the
#: file would not be the shape. (The shapes that triggered this measured 0.00 %; every
#: sample and ShapeNet shape in tests/benchmarks encodes above 85 % with --preset fast.)
FAIL_IOU = 0.5
#: Below this IoU (and at least :data:`FAIL_IOU`) the file is written with a note: the shape
#: is recognisable but rough (``--preset default`` retries below 97 %).
LOW_IOU = 0.9
#: The escalation's fits are this many times the preset's final fit.
MORE_EPOCHS = 4
#: The network tried last: wide enough for thin walls at 64..128^3 (a few thousand
#: parameters, still a small file).
RESCUE_ARCH = "pe4,32:swish,32:swish"

Fit = Callable[[Arch, Any, int], tuple[bytes, dict[str, Any]]]


def rescue(grid: np.ndarray, arch: Arch, raw: bytes, metrics: dict[str, Any], *, fit: Fit,
           candidate: Any, init: Callable[[Arch], Any], epochs: int, progress: Progress,
           fixed_arch: bool = False) -> tuple[Arch, bytes, dict[str, Any]]:
    """Return the network to store: the one given when it captured the shape, else the
    best of an escalation (see the module's docstring).

    ``fit(arch, weights, epochs)`` trains, quantizes and measures; ``candidate`` is the
    search's most accurate candidate (``None`` with ``--arch``); ``init(arch)`` gives fresh
    weights; ``fixed_arch`` (``--arch``) keeps the network and escalates the budget only.

    Raises
    ------
    QualityError
        If no network reaches :data:`FAIL_IOU`.
    """
    if metrics["iou"] >= FAIL_IOU:
        _note_low(metrics, progress)
        return arch, raw, metrics
    best = (arch, raw, metrics)
    tries: list[tuple[Arch, Callable[[], Any]]] = []
    if fixed_arch:
        tries.append((arch, lambda: init(arch)))
    else:
        if candidate is not None and candidate.arch != arch:
            tries.append((candidate.arch, lambda: candidate.weights))
        wide = parse_arch(RESCUE_ARCH)
        tries.append((wide, lambda: init(wide)))
    for net, start in tries:
        progress.note(f"IoU {best[2]['iou'] * 100:.2f} % is under {FAIL_IOU * 100:.0f} %: "
                      f"the shape was not captured; training {net} ({net.params} params) "
                      f"for {epochs * MORE_EPOCHS} epochs")
        raw2, metrics2 = fit(net, start(), epochs * MORE_EPOCHS)
        if metrics2["iou"] > best[2]["iou"]:
            best = (net, raw2, metrics2)
        if best[2]["iou"] >= FAIL_IOU:
            progress.note(f"kept {best[0]} (IoU {best[2]['iou'] * 100:.2f} %)")
            _note_low(best[2], progress)
            return best
    raise QualityError(_failure(grid, best[2]["iou"], fixed_arch))


def _note_low(metrics: dict[str, Any], progress: Progress) -> None:
    if metrics["iou"] < LOW_IOU:
        progress.note(f"low fidelity: IoU {metrics['iou'] * 100:.2f} % (under "
                      f"{LOW_IOU * 100:.0f} %): the file is a rough approximation; a higher "
                      "--resolution or --preset default captures more")


def _failure(grid: np.ndarray, iou: float, fixed_arch: bool) -> str:
    """The one-line failure: what was measured, why it may be, what to try."""
    occupied = int(np.count_nonzero(grid))
    share = occupied / grid.size
    why = ""
    if share < 1e-3:
        why = (f"; only {occupied} of {grid.size:,} voxels are occupied: the shape is tiny "
               "in its bounding box (a stray far-away vertex or triangle?)")
    return (f"could not capture the shape: the best network reached IoU {iou * 100:.2f} %, "
            f"under the {FAIL_IOU * 100:.0f} % floor, so no file was written{why}: try "
            + ("a larger --arch, or leave --arch out to search" if fixed_arch else
               "a higher --resolution, --preset default, or --fill shell for a thin open "
               "surface"))
