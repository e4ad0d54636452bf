"""The bench's figures: rate-distortion and histograms, drawn with matplotlib's Agg canvas
(no pyplot, no display); colours from :data:`~occcodec.tools.bench.baselines.BASELINES`.

matplotlib is optional (the ``bench`` extra): without it :func:`plots` returns a note.
"""

from __future__ import annotations

import importlib
import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.tools.bench.baselines import by_name, curve
from occcodec.tools.bench.report import methods_present, values

__all__ = ["PLOTS", "colour", "plots", "rate_distortion"]

#: The PNG files a run with matplotlib writes (when there are figures to draw).
PLOTS = ("rate_distortion.png", "hist_iou.png", "hist_chamfer.png", "hist_surface_chamfer.png",
         "rate_surface.png")
_OTHER = "#7f7f7f"


def colour(method: str) -> str:
    """A method's colour (grey for a method no longer in :data:`BASELINES`)."""
    b = by_name(method)
    return b.colour if b is not None else _OTHER


def _histogram(rows: list[dict[str, Any]], methods: list[str], key: str, label: str,
               log_x: bool) -> Any:
    """Grouped-bar histogram of one figure over the shapes, one colour per method.

    On a log axis, zeros (a lossless method) and infinities (an empty decode) cannot be
    drawn: the legend counts them instead.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    series, labels, colors = [], [], []
    for m in methods:
        vals = values(rows, m, key)
        if not vals:
            continue
        if key == "iou":
            vals = [v * 100 for v in vals]
        shown = [v for v in vals if math.isfinite(v) and (v > 0 or not log_x)]
        hidden = len(vals) - len(shown)
        extra = f", {hidden} not drawn (0 or inf)" if hidden else ""
        mean = statistics.fmean(vals)
        series.append(shown)
        labels.append(f"{m}: mean {mean:.4g}{extra}")
        colors.append(colour(m))
    drawn = [v for vs in series for v in vs]
    if not drawn:
        return None
    lo, hi = min(drawn), max(drawn)
    if log_x:
        lo, hi = lo / 1.05, hi * 1.05
        bins = np.geomspace(lo, hi, 21)
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.add_subplot()
    ax.hist(series, bins=list(bins), histtype="bar", color=colors, label=labels, rwidth=0.9)
    if log_x:
        ax.set_xscale("log")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)
    ax.set_ylabel("shapes")
    ax.set_title(f"{label.split(' (')[0]} over {max(len(v) for v in series)} shapes")
    ax.legend(fontsize=8, loc="best")
    return fig


def _points(rows: list[dict[str, Any]], line: str, key: str = "iou"
            ) -> dict[str, list[tuple[float, float]]]:
    """The (bytes, figure) points per shape of the methods on one curve (``baselines.curve``:
    ``occcodec`` and its ``@T%`` rows), each shape's sorted by bytes; IoU in %, and only
    finite positive values of other figures (they go on a log axis)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if curve(r["method"]) != line or not r["bytes"] or r.get(key) is None:
            continue
        y = float(r[key]) * (100 if key == "iou" else 1)
        if key != "iou" and not (math.isfinite(y) and y > 0):
            continue
        out.setdefault(r["shape"], []).append((float(r["bytes"]), y))
    return {s: sorted(p) for s, p in out.items()}


def rate_distortion(rows: list[dict[str, Any]], key: str = "iou") -> Any:
    """Bytes (log) against IoU, or against ``key`` (``surface_chamfer_vox``: the surface
    Chamfer in voxel edges, log): one marker per row; the rows of one curve on a shape
    (occcodec at several targets, ``bench --targets``; decimate+draco at its two targets) are
    joined into one line per shape, in order of bytes, in the colour of the curve's first
    method. ``None`` when no row has the figure."""
    from matplotlib.figure import Figure

    lines = list(dict.fromkeys(curve(m) for m in methods_present(rows)))
    if not any(_points(rows, c, key) for c in lines):
        return None
    first = {c: next(m for m in methods_present(rows) if curve(m) == c) for c in lines}
    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot()
    curves = False
    for c in lines:
        per_shape = _points(rows, c, key)
        n = sum(len(p) for p in per_shape.values())
        if not n:
            continue
        label: str | None = f"{c} ({n})"
        for pts in per_shape.values():
            x, y = zip(*pts, strict=True)
            if len(pts) > 1:
                curves = True
                ax.plot(x, y, "-o", ms=4, lw=1.2, alpha=0.8, color=colour(first[c]),
                        label=label)
            else:
                ax.scatter(x, y, s=22, alpha=0.8, color=colour(first[c]), label=label)
            label = None  # one legend entry per method
    ax.set_xscale("log")
    ax.set_xlabel("bytes (log scale)")
    if key == "iou":
        ax.set_ylabel("voxel IoU (%)")
    else:
        ax.set_yscale("log")
        ax.set_ylabel("surface Chamfer (voxel edges, log scale; lower is better)")
    ax.set_title("Size against fidelity, " + (
        "one curve per shape where a method has several points" if curves
        else "one point per shape"))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def plots(rows: list[dict[str, Any]], report: Path) -> tuple[list[str], str | None]:
    """Rate-distortion and histograms as PNGs under ``report``; ``(file names, note)``."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return [], ("matplotlib is not installed: the plots are skipped "
                    "(pip install 'occcodec[bench]')")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from occcodec.fsutil import atomic_output

    methods = methods_present(rows)
    written = []

    def save(fig: Any, name: str) -> None:
        FigureCanvasAgg(fig)
        with atomic_output(report / name, force=True) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        written.append(name)

    save(rate_distortion(rows), PLOTS[0])
    fig = rate_distortion(rows, "surface_chamfer_vox")
    if fig is not None:
        save(fig, PLOTS[4])
    panels = (
        (PLOTS[1], "iou", "voxel IoU (%)", False),
        (PLOTS[2], "voxel_chamfer", "voxel Chamfer-L2 (normalised units, log scale)", True),
        (PLOTS[3], "surface_chamfer_vox", "surface Chamfer (voxel edges, log scale)", True),
    )
    for name, key, label, log_x in panels:
        fig = _histogram(rows, methods, key, label, log_x)
        if fig is not None:
            save(fig, name)
    return written, None
