"""The bench's report: ``results.csv`` (one row per shape and method) and ``results.md``
(settings, mean / median per method, size counts against occcodec, per-shape rows, the
methods' notes taken from :data:`~occcodec.tools.bench.baselines.BASELINES`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import platform
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from occcodec.tools.bench.baselines import BASELINES, Occcodec, by_name, curve
from occcodec.tools.bench.context import CSV_FIELDS, BenchSettings

__all__ = ["count_sentence", "csv_text", "markdown", "md_cell", "methods_present", "ordered",
           "size_counts", "summary", "target_counts", "values", "write_text"]

OCC = Occcodec.name
_ORDER = {b.name: k for k, b in enumerate(BASELINES)}


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by shape (in run order), then by method in :data:`BASELINES` order; methods no
    longer in it (rows of an older report) come last, by name. Stable: several rows of one
    method on one shape keep their order."""
    first: dict[str, int] = {}
    for r in rows:
        first.setdefault(r["shape"], len(first))
    def rank(method: str) -> int:  # an occcodec @T% row sorts with occcodec
        return _ORDER.get(method, _ORDER.get(curve(method), len(_ORDER)))

    return sorted(rows, key=lambda r: (first[r["shape"]], rank(r["method"]), r["method"]))


def csv_text(rows: Iterable[dict[str, Any]]) -> str:
    """``results.csv``: :data:`CSV_FIELDS` as columns, rows in :func:`ordered` order."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    w.writeheader()
    for row in ordered(list(rows)):
        w.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def write_text(path: Path, text: str) -> None:
    """Replace a report file atomically (the run owns its report directory)."""
    from occcodec.fsutil import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"), force=True)


def values(rows: list[dict[str, Any]], method: str, key: str) -> list[float]:
    """The figure ``key`` of every row of ``method`` that has it."""
    return [float(r[key]) for r in rows if r["method"] == method and r.get(key) is not None]


def methods_present(rows: list[dict[str, Any]]) -> list[str]:
    """The methods that have rows, in report order."""
    return list(dict.fromkeys(r["method"] for r in ordered(rows)))



#: (column title, CSV key, number format) of the summary table.
_SUMMARY = (
    ("bytes", "bytes", ",.0f"),
    ("params", "params", ",.0f"),
    ("IoU %", "iou", ".3f"),
    ("voxel CD-L2", "voxel_chamfer", ".3g"),
    ("voxel CD (vox)", "voxel_chamfer_vox", ".3f"),
    ("surface CD (vox)", "surface_chamfer_vox", ".3f"),
    ("surface H95 (vox)", "surface_hausdorff95_vox", ".3f"),
    ("normal cons.", "normal_consistency", ".4f"),
    ("encode s", "encode_s", ".2f"),
    ("decode s", "decode_s", ".3f"),
)


def _rules(rows: list[dict[str, Any]]) -> str:
    """The reference rules the rows used, in words (see ``context.RULE_TEXT``)."""
    from occcodec.tools.bench.context import RULE_TEXT

    used = [u for u in RULE_TEXT if any(r.get("reference_rule") == u for r in rows)]
    return "; ".join(f"{RULE_TEXT[u]} ({u})" for u in used) or RULE_TEXT["encoder"]


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: shape count, failures, and the mean and median of each summary figure."""
    out = []
    for m in methods_present(rows):
        mine = [r for r in rows if r["method"] == m]
        rec: dict[str, Any] = {"method": m, "shapes": sum(r["bytes"] is not None for r in mine),
                               "failed": sum(r["bytes"] is None for r in mine)}
        for _, key, _ in _SUMMARY:
            vals = values(rows, m, key)
            if key == "iou":
                vals = [v * 100 for v in vals]
            rec[key] = ((statistics.fmean(vals), statistics.median(vals)) if vals else None)
        out.append(rec)
    return out


def size_counts(rows: list[dict[str, Any]], method: str = OCC) -> list[dict[str, Any]]:
    """For each other method: on how many shapes ``method`` is smaller, and the size ratios.

    ``ratio`` is other bytes / ``method`` bytes per shape (above 1: ``method`` is smaller);
    the median, minimum and maximum over the shapes both methods finished.
    """
    mine = {r["shape"]: r["bytes"] for r in rows if r["method"] == method and r["bytes"]}
    out = []
    for other in methods_present(rows):
        if other == method:
            continue
        ratios = [r["bytes"] / mine[r["shape"]] for r in rows
                  if r["method"] == other and r["bytes"] and r["shape"] in mine]
        if ratios:
            out.append({"other": other, "shapes": len(ratios),
                        "smaller": sum(x > 1.0 for x in ratios),
                        "median": statistics.median(ratios), "min": min(ratios),
                        "max": max(ratios)})
    return out


def count_sentence(c: dict[str, Any]) -> str:
    """One :func:`size_counts` record as a sentence."""
    return (f"occcodec is smaller than {c['other']} in {c['smaller']} of {c['shapes']} shapes; "
            f"median size ratio {c['other']} / occcodec = {c['median']:.2f} (range "
            f"{c['min']:.2f} to {c['max']:.2f}; above 1: occcodec is smaller)")


def _note(method: str) -> str:
    b = by_name(method)
    return b.note if b is not None else "not a method of this occcodec (an older report's row)"


def md_cell(value: Any, fmt: str) -> str:
    """One number of a Markdown table: ``-`` when missing, ``inf`` when infinite."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return format(value, fmt)


def target_counts(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """Per method searched for a target IoU: (method, shapes reaching it, shapes tried)."""
    out = []
    for m in methods_present(rows):
        mine = [r for r in rows if r["method"] == m and r.get("target_iou") is not None]
        if mine:
            out.append((m, sum(bool(r["target_reached"]) for r in mine), len(mine)))
    return out


def _target_lines(rows: list[dict[str, Any]]) -> list[str]:
    counts = target_counts(rows)
    if not counts:
        return []
    return ["", "## Target IoU reached", ""] + [
        f"- {m}: on {k} of {n} shapes (the others report the most faithful setting found, "
        "marked TARGET MISSED)" for m, k, n in counts]


def markdown(rows: list[dict[str, Any]], settings: BenchSettings, notes: list[str],
             command: str, plots: list[str]) -> str:
    """The Markdown report: settings, summary (mean / median), size counts, per-shape rows."""
    shapes = sorted({r["shape"] for r in rows})
    lines = [
        "# occcodec bench",
        "",
        f"Command: `{command}`  ",
        (f"{len(shapes)} shapes at {settings.encode.resolution}^3, fill {settings.encode.fill}, "
        f"preset {settings.encode.preset}, {settings.encode.quant} weights, seed "
        f"{settings.encode.seed}, "
        f"{settings.encode_options().resolved().threads} thread(s) per encode; "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}."),
        "",
        "## Summary (mean / median over shapes)",
        "",
        "| method | shapes | " + " | ".join(t for t, _, _ in _SUMMARY) + " |",
        "|---|---:|" + "---:|" * len(_SUMMARY),
    ]
    for rec in summary(rows):
        cells = []
        for _, key, fmt in _SUMMARY:
            pair = rec[key]
            cells.append("-" if pair is None else
                         f"{md_cell(pair[0], fmt)} / {md_cell(pair[1], fmt)}")
        failed = f" ({rec['failed']} failed)" if rec["failed"] else ""
        lines.append(f"| {rec['method']} | {rec['shapes']}{failed} | " + " | ".join(cells) + " |")
    counts = size_counts(rows)
    if counts:
        lines += ["", "## Size: occcodec against each method", ""]
        lines += [f"- {count_sentence(c)}" for c in counts]
    lines += _target_lines(rows)
    lines += ["", "## Per shape", "",
              ("| shape | method | bytes | params | IoU % | voxel CD-L2 | voxel CD (vox) | "
              "surface CD | surface CD (vox) | H95 (vox) | H100 (vox) | normal cons. | "
              "encode s | decode s | note |"),
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in ordered(rows):
        iou = None if r["iou"] is None else r["iou"] * 100
        lines.append(
            f"| {r['shape']} | {r['method']} | {md_cell(r['bytes'], ',')} | "
            f"{md_cell(r['params'], ',')} | {md_cell(iou, '.3f')} | "
            f"{md_cell(r['voxel_chamfer'], '.3g')} | {md_cell(r['voxel_chamfer_vox'], '.3f')} | "
            f"{md_cell(r['surface_chamfer'], '.3g')} | "
            f"{md_cell(r['surface_chamfer_vox'], '.3f')} | "
            f"{md_cell(r['surface_hausdorff95_vox'], '.3f')} | "
            f"{md_cell(r['surface_hausdorff_vox'], '.3f')} | "
            f"{md_cell(r['normal_consistency'], '.4f')} | {md_cell(r['encode_s'], '.2f')} | "
            f"{md_cell(r['decode_s'], '.3f')} | {r['note'] or ''} |")
    lines += ["", "## Methods", ""] + [f"- {m}: {_note(m)}" for m in methods_present(rows)]
    lines += [
        "", "## Definitions", "",
        "- bytes: the size of the file under this report (`file` column of results.csv).",
        ("- IoU: voxel intersection over union against the reference grid: for a mesh, "
        + _rules(rows) + "; for a voxel input, its grid as given. Every method's grid is "
        "made from its decoded output by the same rule in the same frame."),
        ("- voxel CD-L2: mean squared distance from each boundary voxel centre of one grid to "
        "the nearest of the other, summed over both directions, in normalised units (the "
        "grid's longest side spans [-1, 1]); voxel CD (vox): the mean of the two one-sided "
        "mean distances, not squared, in voxel edges."),
        ("- surface CD: the mean of the two one-sided mean distances between points sampled "
        f"uniformly on the reference mesh and on the decoded surface ({settings.surface_points:,} "
        "each), in the mesh's units; (vox): divided by one voxel edge. H95 / H100: the "
        "larger of the two one-sided 95th percentiles / maxima of those distances. normal "
        "cons.: the mean, over both directions, of |cos| between the face normals at each "
        "sample and at its nearest sample on the other surface (1 = parallel)."),
        ("- target IoU: what a searched method had to reach on the shape (occcodec's IoU, or "
        "a fixed one); its bytes are the smallest file found at or above it."),
        "- encode s / decode s: wall-clock on this machine; see `occcodec bench --help`.",
    ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


