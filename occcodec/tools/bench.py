"""``occcodec bench``: occcodec against the baselines a user would otherwise pick, per shape.

For every shape of a directory, on the same voxel grid (the encoder's voxelization):

=================  ============================================================================
``occcodec``       ``occcodec encode`` with the chosen preset (the ``.occ`` file as written)
``NI 8x32``        the NI baseline: a fixed MLP of 8 hidden ReLU layers of 32 (7,553
                   parameters) trained exactly as occcodec's final network (same samples,
                   initialiser, epochs, learning rate, best-checkpoint rule, quantization),
                   from scratch instead of from the search's weights, packed in a real ``.occ``
                   (NI, Davies et al. 2020, fitted a signed distance; here it is an occupancy
                   classifier, as in the paper this project reproduces)
``zstd grid``      the grid bit-packed (8 voxels a byte, C order) as one zstd frame at level 19:
                   lossless. The blob holds the voxels only, not the grid shape or the frame
                   (which a ``.occ`` carries in its header)
``Draco q11/q14``  the mesh's positions and triangles (no normals, UVs or colours) compressed
                   by Draco (DracoPy) with 11 and 14 bits of position quantization at
                   compression level 7 (``draco_encoder``'s default); decoded back and
                   voxelized in the reference's frame with the reference's fill for the
                   voxel figures (meshes only)
``occcodec paper`` ``--preset paper`` (the published budget), with ``--with-paper``
=================  ============================================================================

Each row gives the bytes of the file written under ``REPORT_DIR`` (so a row can be checked
against ``ls -l``), parameters, voxel IoU/accuracy/precision/recall, the boundary-voxel
Chamfer distances, the surface Chamfer distance against the reference mesh (meshes only) and
encode and decode seconds. Encode seconds start from the input file for occcodec and NI (the
encoder's own total: load, voxelize, sample, search, train, quantize), include the
voxelization for the zstd grid, and count only the compression of the loaded mesh for Draco.
Decode seconds go from the file's bytes to a voxel grid (occcodec, NI, zstd) or a mesh (Draco).

DracoPy and matplotlib are optional (``pip install occcodec[bench]``): without them the Draco
rows or the plots are skipped with a note.
"""

from __future__ import annotations

import dataclasses

import argparse
import csv
import importlib
import io
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.format.arch import NI_PARAMS, Arch, Layer
from occcodec.encoder.pipeline import EncodeOptions  # imports TensorFlow only inside encode()
from occcodec.errors import InputError, OccError, OutputError

__all__ = [
    "CSV_FIELDS",
    "METHODS",
    "NI_ARCH",
    "BenchSettings",
    "add_bench_parser",
    "bench",
    "cmd_bench",
    "list_shapes",
]

OCC, NI, ZSTD, DRACO11, DRACO14, PAPER = (
    "occcodec", "NI 8x32", "zstd grid", "Draco q11", "Draco q14", "occcodec paper")
METHODS: tuple[str, ...] = (OCC, NI, ZSTD, DRACO11, DRACO14, PAPER)
#: The NI baseline network. ReLU: the activation of the NI paper's MLP.
NI_ARCH = Arch(tuple(Layer(32, "relu") for _ in range(8)))
assert NI_ARCH.params == NI_PARAMS
ZSTD_LEVEL = 19
DRACO_BITS = {DRACO11: 11, DRACO14: 14}
#: The default of Draco's own command-line encoder. Level 10 changed sizes by -5 to +10 %
#: on shared meshes (and never the geometry, which the quantization alone decides).
DRACO_LEVEL = 7

CSV_FIELDS: tuple[str, ...] = (
    "shape", "method", "file", "bytes", "params", "iou", "accuracy", "precision", "recall",
    "voxel_chamfer", "voxel_chamfer_vox", "voxel_hausdorff_vox", "surface_chamfer",
    "surface_chamfer_vox", "surface_hausdorff_vox", "encode_s", "decode_s", "input_bytes",
    "arch", "note",
)
#: One line per method for the report.
METHOD_NOTES = {
    OCC: "occcodec encode (search + final training), the .occ file as written",
    NI: "8 hidden ReLU layers of 32 (7,553 params), trained like occcodec's final network "
        "from scratch (same samples, epochs, learning rate, best checkpoint, quantization), "
        "in a real .occ",
    ZSTD: f"the grid bit-packed (8 voxels a byte) in one zstd frame at level {ZSTD_LEVEL}; "
          "lossless; holds the voxels only (no grid shape or frame)",
    DRACO11: f"Draco (DracoPy), 11-bit positions, compression level {DRACO_LEVEL}, positions "
             "and triangles only; decoded and voxelized in the reference's frame",
    DRACO14: "as Draco q11 with 14-bit positions",
    PAPER: "occcodec encode --preset paper (the published search and training budget)",
}
_COLORS = {OCC: "#1f77b4", NI: "#ff7f0e", ZSTD: "#2ca02c", DRACO11: "#d62728",
           DRACO14: "#9467bd", PAPER: "#8c564b"}


@dataclass
class BenchSettings:
    """What a bench run does: occcodec's encode options plus the bench's own switches."""

    encode: EncodeOptions = dataclasses.field(default_factory=EncodeOptions)
    with_paper: bool = False
    force: bool = False
    quiet: bool = False
    surface_points: int = 100_000

    def encode_options(self, preset: str | None = None) -> EncodeOptions:
        """Encode options for occcodec; for ``preset="paper"`` without ``--arch`` and
        ``--max-params``, which would change the published search."""
        if preset == "paper":
            return dataclasses.replace(self.encode, preset="paper", arch=None, max_params=None)
        return dataclasses.replace(self.encode, preset=preset or self.encode.preset)


@dataclass
class BenchResult:
    rows: list[dict[str, Any]]
    notes: list[str]
    report_dir: Path
    files: list[Path] = field(default_factory=list)
    #: Shapes that could not be loaded plus methods that failed on a shape.
    failures: int = 0


# ----------------------------------------------------------------------------- helpers


def _optional(name: str) -> Any | None:
    """Import an optional dependency; ``None`` when it is missing or broken."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def list_shapes(directory: str | Path) -> tuple[list[Path], list[Path]]:
    """The supported input files directly in ``directory`` (sorted by name), and the others.

    Raises
    ------
    InputError
        If ``directory`` is not a directory or holds no supported input.
    """
    from occcodec.shapes.inputs import SUPPORTED_EXTENSIONS

    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{str(d)!r} is not a directory: give a folder of meshes or grids")
    files = sorted((p for p in d.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda p: p.name)
    ok = [p for p in files if p.suffix.lower() in SUPPORTED_EXTENSIONS]
    if not ok:
        raise InputError(f"{str(d)!r} holds no mesh or voxel file "
                         f"({', '.join(sorted(SUPPORTED_EXTENSIONS))})")
    return ok, [p for p in files if p not in ok]


def _names(paths: list[Path]) -> dict[Path, str]:
    """Output base names: the stem, or the whole file name where two stems collide."""
    stems = [p.stem for p in paths]
    return {p: p.stem if stems.count(p.stem) == 1 else p.name.replace(".", "_") for p in paths}


# ----------------------------------------------------------------------------- one shape


@dataclass
class _Ref:
    name: str
    path: Path
    grid: np.ndarray
    mesh: Any  # world-space trimesh, or None for a voxel input
    center: tuple[float, float, float]
    scale: float
    fill: str
    voxelize_s: float


def _row(ref: _Ref, method: str, figures: dict[str, Any] | None, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(CSV_FIELDS)
    row.update(shape=ref.path.name, method=method, input_bytes=ref.path.stat().st_size, note="")
    if figures is not None:
        v, vc, s = figures["voxel"], figures["voxel_chamfer"], figures["surface"]
        row.update(iou=v["iou"], accuracy=v["accuracy"], precision=v["precision"],
                   recall=v["recall"], voxel_chamfer=vc["chamfer"],
                   voxel_chamfer_vox=vc["chamfer_voxels"],
                   voxel_hausdorff_vox=vc["hausdorff_voxels"])
        if s is not None:
            row.update(surface_chamfer=s["chamfer"], surface_chamfer_vox=s["chamfer_voxels"],
                       surface_hausdorff_vox=s["hausdorff_voxels"])
    row.update(values)
    return row


class _Runner:
    """Runs the methods on one shape after another, writing every blob under the report."""

    def __init__(self, report: Path, settings: BenchSettings, log: Callable[[str], None]):
        self.report = report
        self.s = settings
        self.log = log
        self.notes: list[str] = []
        self.failures = 0
        self.draco = _optional("DracoPy")
        if self.draco is None:
            self.notes.append("DracoPy is not installed: the Draco rows are skipped "
                              "(pip install 'occcodec[bench]')")

    def _write(self, sub: str, name: str, data: bytes) -> tuple[Path, str]:
        from occcodec.fsutil import atomic_write_bytes

        path = self.report / sub / name
        path.parent.mkdir(exist_ok=True)
        atomic_write_bytes(path, data, force=self.s.force)
        return path, path.relative_to(self.report).as_posix()

    def _compare(self, ref: _Ref, grid: np.ndarray, mesh: Any) -> dict[str, Any]:
        from occcodec.tools.evaluate import compare

        return compare(ref.grid, grid, ref_mesh=ref.mesh,
                       pred_mesh=mesh if ref.mesh is not None else None, scale=ref.scale,
                       n_points=self.s.surface_points, seed=self.s.encode.seed)

    def load(self, path: Path, name: str) -> _Ref:
        from occcodec.shapes.inputs import load_shape

        t0 = time.perf_counter()
        shape = load_shape(path, resolution=self.s.encode.resolution, fill=self.s.encode.fill)
        secs = time.perf_counter() - t0
        grid = np.asarray(shape.occupancy, dtype=bool)
        mesh = shape.mesh if shape.source_kind == "mesh" else None
        return _Ref(name, path, grid, mesh, tuple(shape.center), float(shape.scale),
                    shape.fill, secs)

    def zstd(self, ref: _Ref) -> dict[str, Any]:
        import zstandard

        from occcodec.tools.evaluate import grid_mesh
        from occcodec.shapes.gridio import pack_bits

        t0 = time.perf_counter()
        blob = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(pack_bits(ref.grid))
        enc = ref.voxelize_s + time.perf_counter() - t0
        _, rel = self._write("zstd", f"{ref.name}.bits.zst", blob)
        t0 = time.perf_counter()
        bits = np.frombuffer(zstandard.ZstdDecompressor().decompress(blob), dtype=np.uint8)
        grid = np.unpackbits(bits, count=ref.grid.size).reshape(ref.grid.shape).astype(bool)
        dec = time.perf_counter() - t0
        mesh = grid_mesh(grid, ref.center, ref.scale) if ref.mesh is not None else None
        return _row(ref, ZSTD, self._compare(ref, grid, mesh), file=rel, bytes=len(blob),
                    encode_s=enc, decode_s=dec,
                    note="lossless; surface figures: marching cubes of the grid")

    def draco_row(self, ref: _Ref, method: str) -> dict[str, Any]:
        import trimesh

        bits = DRACO_BITS[method]
        verts = np.asarray(ref.mesh.vertices, dtype=np.float64)
        faces = np.asarray(ref.mesh.faces, dtype=np.uint32)
        t0 = time.perf_counter()
        blob = bytes(self.draco.encode(verts, faces, quantization_bits=bits,
                                       compression_level=DRACO_LEVEL))
        enc = time.perf_counter() - t0
        _, rel = self._write("draco", f"{ref.name}.q{bits}.drc", blob)
        t0 = time.perf_counter()
        decoded = self.draco.decode(blob)
        dec = time.perf_counter() - t0
        dv = np.asarray(decoded.points, dtype=np.float64).reshape(-1, 3)
        df = np.asarray(decoded.faces, dtype=np.int64).reshape(-1, 3)
        mesh = trimesh.Trimesh(dv, df, process=False)
        from occcodec.shapes.voxelize import voxelize_in_frame

        grid = voxelize_in_frame(mesh, ref.center, ref.scale, ref.grid.shape[0], ref.fill)
        return _row(ref, method, self._compare(ref, grid, mesh), file=rel, bytes=len(blob),
                    encode_s=enc, decode_s=dec,
                    note="decoded mesh voxelized in the reference's frame")

    def occ(self, ref: _Ref, method: str) -> dict[str, Any]:
        import trimesh

        from occcodec import decoder
        from occcodec.encoder.pipeline import encode
        from occcodec.progress import RichProgress

        progress = RichProgress(quiet=self.s.quiet)
        try:
            if method == NI:
                opts = dataclasses.replace(self.s.encode_options(), arch=str(NI_ARCH))
                res = encode(ref.path, opts, progress)
                sub = "ni"
            else:
                opts = self.s.encode_options("paper" if method == PAPER else None)
                res = encode(ref.path, opts, progress)
                sub = "paper" if method == PAPER else "occ"
        finally:
            progress.close()
        path, rel = self._write(sub, f"{ref.name}.occ", res.data)
        t0 = time.perf_counter()
        coded = decoder.read(path)
        grid = decoder.voxels(coded)
        dec = time.perf_counter() - t0
        mesh = None
        if ref.mesh is not None:
            mesh = trimesh.Trimesh(*decoder.mesh_arrays(coded), process=False)
        return _row(ref, method, self._compare(ref, grid, mesh), file=rel,
                    bytes=path.stat().st_size, params=coded.header.arch.params,
                    arch=str(coded.header.arch), encode_s=res.seconds, decode_s=dec,
                    note=f"on {res.device}")

    def methods(self, ref: _Ref) -> list[tuple[str, Callable[[], dict[str, Any]]]]:
        todo: list[tuple[str, Callable[[], dict[str, Any]]]] = [(ZSTD, lambda: self.zstd(ref))]
        if ref.mesh is not None and self.draco is not None:
            for m in (DRACO11, DRACO14):
                todo.append((m, lambda m=m: self.draco_row(ref, m)))  # type: ignore[misc]
        todo += [(OCC, lambda: self.occ(ref, OCC)), (NI, lambda: self.occ(ref, NI))]
        if self.s.with_paper:
            todo.append((PAPER, lambda: self.occ(ref, PAPER)))
        return todo

    def shape(self, path: Path, name: str) -> list[dict[str, Any]]:
        """All rows of one shape; a failing method becomes a row with its error as the note."""
        try:
            ref = self.load(path, name)
        except OccError as exc:
            self.failures += 1
            self.notes.append(f"{path.name}: skipped: {exc}")
            self.log(f"[red]{path.name}: skipped: {exc}[/]")
            return []
        if ref.mesh is None:
            self.notes.append(f"{path.name} is a voxel grid: no Draco rows and no surface "
                              "figures for it")
        rows = []
        for method, run in self.methods(ref):
            try:
                row = run()
            except Exception as exc:  # noqa: BLE001 - one method must not end a long run
                self.failures += 1
                row = _row(ref, method, None, note=f"failed: {type(exc).__name__}: {exc}")
                self.notes.append(f"{path.name} / {method}: {row['note']}")
            rows.append(row)
            self.log(_describe(row))
        return rows


def _describe(row: dict[str, Any]) -> str:
    if row["bytes"] is None:
        return f"  {row['method']:<14} [red]{row['note']}[/]"
    iou = "" if row["iou"] is None else f"IoU {row['iou'] * 100:7.3f} %"
    return (f"  {row['method']:<14} {row['bytes']:>9,} B  {iou}  "
            f"enc {row['encode_s']:6.1f} s  dec {row['decode_s']:5.2f} s")


# ----------------------------------------------------------------------------- reports


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows by shape (in run order), then by method in :data:`METHODS` order."""
    first: dict[str, int] = {}
    for r in rows:
        first.setdefault(r["shape"], len(first))
    return sorted(rows, key=lambda r: (first[r["shape"]], METHODS.index(r["method"])))


def _csv_text(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    w.writeheader()
    for row in _ordered(list(rows)):
        w.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    from occcodec.fsutil import atomic_write_bytes

    atomic_write_bytes(path, text.encode("utf-8"), force=True)  # the run owns its report


def _values(rows: list[dict[str, Any]], method: str, key: str) -> list[float]:
    return [float(r[key]) for r in rows if r["method"] == method and r.get(key) is not None]


def _methods_present(rows: list[dict[str, Any]]) -> list[str]:
    return [m for m in METHODS if any(r["method"] == m for r in rows)]


#: (column title, CSV key, number format) of the summary table.
_SUMMARY = (
    ("bytes", "bytes", ",.0f"),
    ("params", "params", ",.0f"),
    ("IoU %", "iou", ".3f"),
    ("voxel CD-L2", "voxel_chamfer", ".3g"),
    ("voxel CD (vox)", "voxel_chamfer_vox", ".3f"),
    ("surface CD (vox)", "surface_chamfer_vox", ".3f"),
    ("encode s", "encode_s", ".2f"),
    ("decode s", "decode_s", ".3f"),
)


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: shape count, failures, and the mean and median of each summary figure."""
    out = []
    for m in _methods_present(rows):
        mine = [r for r in rows if r["method"] == m]
        rec: dict[str, Any] = {"method": m, "shapes": sum(r["bytes"] is not None for r in mine),
                               "failed": sum(r["bytes"] is None for r in mine)}
        for _, key, _ in _SUMMARY:
            vals = _values(rows, m, key)
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
    for other in _methods_present(rows):
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


def _count_sentence(c: dict[str, Any]) -> str:
    return (f"occcodec is smaller than {c['other']} in {c['smaller']} of {c['shapes']} shapes; "
            f"median size ratio {c['other']} / occcodec = {c['median']:.2f} (range "
            f"{c['min']:.2f} to {c['max']:.2f}; above 1: occcodec is smaller)")


def _md_cell(value: Any, fmt: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return format(value, fmt)


def markdown(rows: list[dict[str, Any]], settings: BenchSettings, notes: list[str],
             command: str, plots: list[str]) -> str:
    """The Markdown report: settings, summary (mean / median), size counts, per-shape rows."""
    shapes = sorted({r["shape"] for r in rows})
    lines = [
        "# occcodec bench",
        "",
        f"Command: `{command}`  ",
        f"{len(shapes)} shapes at {settings.encode.resolution}^3, fill {settings.encode.fill}, "
        f"preset {settings.encode.preset}, {settings.encode.quant} weights, seed "
        f"{settings.encode.seed}, "
        f"{settings.encode_options().resolved().threads} TensorFlow thread(s); "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPU(s), "
        f"Python {platform.python_version()}.",
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
                         f"{_md_cell(pair[0], fmt)} / {_md_cell(pair[1], fmt)}")
        failed = f" ({rec['failed']} failed)" if rec["failed"] else ""
        lines.append(f"| {rec['method']} | {rec['shapes']}{failed} | " + " | ".join(cells) + " |")
    counts = size_counts(rows)
    if counts:
        lines += ["", "## Size: occcodec against each method", ""]
        lines += [f"- {_count_sentence(c)}" for c in counts]
    lines += ["", "## Per shape", "",
              "| shape | method | bytes | params | IoU % | voxel CD-L2 | voxel CD (vox) | "
              "surface CD | surface CD (vox) | encode s | decode s | note |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in _ordered(rows):
        iou = None if r["iou"] is None else r["iou"] * 100
        lines.append(
            f"| {r['shape']} | {r['method']} | {_md_cell(r['bytes'], ',')} | "
            f"{_md_cell(r['params'], ',')} | {_md_cell(iou, '.3f')} | "
            f"{_md_cell(r['voxel_chamfer'], '.3g')} | {_md_cell(r['voxel_chamfer_vox'], '.3f')} | "
            f"{_md_cell(r['surface_chamfer'], '.3g')} | "
            f"{_md_cell(r['surface_chamfer_vox'], '.3f')} | {_md_cell(r['encode_s'], '.2f')} | "
            f"{_md_cell(r['decode_s'], '.3f')} | {r['note'] or ''} |")
    lines += ["", "## Methods", ""] + [f"- {m}: {METHOD_NOTES[m]}" for m in _methods_present(rows)]
    lines += [
        "", "## Definitions", "",
        "- bytes: the size of the file under this report (`file` column of results.csv).",
        "- IoU: voxel intersection over union against the encoder's grid of the input.",
        "- voxel CD-L2: mean squared distance from each boundary voxel centre of one grid to "
        "the nearest of the other, summed over both directions, in normalised units (the "
        "grid's longest side spans [-1, 1]); voxel CD (vox): the mean of the two one-sided "
        "mean distances, not squared, in voxel edges.",
        "- surface CD: the mean of the two one-sided mean distances between points sampled "
        f"uniformly on the reference mesh and on the decoded surface ({settings.surface_points:,} "
        "each), in the mesh's units; (vox): divided by one voxel edge.",
        "- encode s / decode s: wall-clock on this machine; see `occcodec bench --help`.",
    ]
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


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
        vals = _values(rows, m, key)
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
        colors.append(_COLORS[m])
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
    ax.hist(series, bins=bins, histtype="bar", color=colors, label=labels, rwidth=0.9)
    if log_x:
        ax.set_xscale("log")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)
    ax.set_ylabel("shapes")
    ax.set_title(f"{label.split(' (')[0]} over {max(len(v) for v in series)} shapes")
    ax.legend(fontsize=8, loc="best")
    return fig


def plots(rows: list[dict[str, Any]], report: Path) -> tuple[list[str], str | None]:
    """Rate-distortion scatter and histograms as PNGs; ``(files, note)``.

    Uses matplotlib's Agg canvas directly (no pyplot, no display).
    """
    if _optional("matplotlib") is None:
        return [], ("matplotlib is not installed: the plots are skipped "
                    "(pip install 'occcodec[bench]')")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from occcodec.fsutil import atomic_output

    methods = _methods_present(rows)
    written = []

    def save(fig: Any, name: str) -> None:
        FigureCanvasAgg(fig)
        with atomic_output(report / name, force=True) as tmp:
            fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        written.append(name)

    fig = Figure(figsize=(7.0, 4.6))
    ax = fig.add_subplot()
    for m in methods:
        pts = [(r["bytes"], r["iou"] * 100) for r in rows
               if r["method"] == m and r["bytes"] and r["iou"] is not None]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.scatter(x, y, s=22, alpha=0.8, color=_COLORS[m], label=f"{m} ({len(pts)})")
    ax.set_xscale("log")
    ax.set_xlabel("bytes (log scale)")
    ax.set_ylabel("voxel IoU (%)")
    ax.set_title("Size against fidelity, one point per shape")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    save(fig, "rate_distortion.png")

    panels = (
        ("hist_iou.png", "iou", "voxel IoU (%)", False),
        ("hist_chamfer.png", "voxel_chamfer", "voxel Chamfer-L2 (normalised units, log scale)",
         True),
        ("hist_surface_chamfer.png", "surface_chamfer_vox",
         "surface Chamfer (voxel edges, log scale)", True),
    )
    for name, key, label, log_x in panels:
        fig = _histogram(rows, methods, key, label, log_x)
        if fig is not None:
            save(fig, name)
    return written, None


# ----------------------------------------------------------------------------- the run


def _prepare(report: Path, force: bool) -> None:
    if report.exists() and not report.is_dir():
        raise OutputError(f"report {str(report)!r} is a file: give a directory")
    if report.is_dir() and any(report.iterdir()) and not force:
        raise OutputError(
            f"report directory {str(report)!r} is not empty: use --force to overwrite it")
    if not report.parent.is_dir():
        raise OutputError(f"directory {str(report.parent)!r} does not exist: create it first")
    report.mkdir(exist_ok=True)


def bench(directory: str | Path, report_dir: str | Path, settings: BenchSettings,
          log: Callable[[str], None] | None = None, command: str = "occcodec bench") -> BenchResult:
    """Run every method on every shape of ``directory``; write the report; return its rows.

    ``results.csv`` and ``results.md`` are rewritten after each shape, so an interrupted
    run leaves a consistent partial report.

    Raises
    ------
    InputError
        If ``directory`` holds no supported input.
    OutputError
        If ``report_dir`` is not empty and ``settings.force`` is false.
    UsageError
        On invalid encode options (checked before any work).
    """
    log = log or (lambda text: None)
    settings.encode_options().resolved()  # fail on a bad option before minutes of work
    if settings.with_paper:
        settings.encode_options("paper").resolved()
    shapes, others = list_shapes(directory)
    report = Path(report_dir)
    _prepare(report, settings.force)
    runner = _Runner(report, settings, log)
    if others:
        runner.notes.append(f"not shapes, skipped: {', '.join(p.name for p in others)}")
    names = _names(shapes)
    rows: list[dict[str, Any]] = []
    for k, path in enumerate(shapes, 1):
        log(f"[bold]{k}/{len(shapes)} {path.name}[/]")
        rows += runner.shape(path, names[path])
        _write_text(report / "results.csv", _csv_text(rows))
        _write_text(report / "results.md", markdown(rows, settings, runner.notes, command, []))
    written, note = plots(rows, report)
    if note:
        runner.notes.append(note)
    _write_text(report / "results.md", markdown(rows, settings, runner.notes, command, written))
    files = [report / "results.csv", report / "results.md"] + [report / p for p in written]
    return BenchResult(rows, runner.notes, report, files, runner.failures)


# ---------------------------------------------------------------------------------- CLI


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``bench`` to the CLI's subparsers and return its parser."""
    from occcodec.cli import add_encode_options
    from occcodec.tools.evaluate import int_at_least

    p = subparsers.add_parser(
        "bench", help="compare occcodec with NI, a zstd grid and Draco on a folder of shapes",
        description="For every mesh or voxel grid in DIR (not recursive): occcodec, the NI "
                    "baseline (8x32 ReLU MLP, same training), the grid bit-packed with zstd -19 "
                    "and the mesh compressed by Draco at 11 and 14 bits; bytes, IoU, Chamfer "
                    "distances, seconds. Writes results.csv, results.md and PNG plots.")
    p.add_argument("directory", metavar="DIR", help="folder of meshes or voxel grids")
    p.add_argument("-o", "--output", metavar="REPORT_DIR", default="bench-report",
                   help="report folder (default ./bench-report); must be empty without --force")
    p.add_argument("--with-paper", action="store_true",
                   help="also run occcodec --preset paper (the published budget: slow)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty report folder")
    p.add_argument("--points", type=int_at_least(1), default=100_000, metavar="N",
                   help="points sampled per surface for the surface Chamfer (default 100,000)")
    p.add_argument("-q", "--quiet", action="store_true", help="no live progress")
    add_encode_options(p)
    return p


def _command_line(args: argparse.Namespace) -> str:
    """The command that reproduces a run, options spelled out (recorded in results.md)."""
    parts = ["occcodec", "bench", str(args.directory), "-o", str(args.output),
             "--preset", args.preset, "--resolution", str(args.resolution),
             "--fill", args.fill, "--quant", args.quant, "--seed", str(args.seed)]
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.arch:
        parts += ["--arch", repr(args.arch)]
    if args.max_params:
        parts += ["--max-params", str(args.max_params)]
    if args.with_paper:
        parts.append("--with-paper")
    return " ".join(parts)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``occcodec bench``: progress on stderr, a compact summary on stdout.

    Returns 0 when every method ran on every shape, 1 when something failed (the report
    says what).
    """
    from rich.console import Console
    from rich.table import Table

    err = Console(stderr=True)
    settings = BenchSettings(EncodeOptions(preset=args.preset, resolution=args.resolution,
                                           fill=args.fill, quant=args.quant, seed=args.seed,
                                           threads=args.threads, arch=args.arch,
                                           max_params=args.max_params),
                             args.with_paper, args.force, args.quiet, args.points)
    log = (lambda text: None) if args.quiet else (lambda text: err.print(text, highlight=False))
    res = bench(args.directory, args.output, settings, log, command=_command_line(args))
    t = Table(title=f"{res.report_dir / 'results.md'}", title_justify="left")
    for title in ("method", "shapes", "median bytes", "mean IoU %", "mean voxel CD-L2",
                  "mean surface CD (vox)", "mean encode s"):
        t.add_column(title, justify="left" if title == "method" else "right")
    for rec in summary(res.rows):
        def cell(key: str, fmt: str, which: int = 0) -> str:
            return "-" if rec[key] is None else _md_cell(rec[key][which], fmt)
        t.add_row(rec["method"], str(rec["shapes"]), cell("bytes", ",.0f", 1),
                  cell("iou", ".3f"), cell("voxel_chamfer", ".3g"),
                  cell("surface_chamfer_vox", ".3f"), cell("encode_s", ".1f"))
    Console().print(t)
    for c in size_counts(res.rows):
        print(_count_sentence(c))
    for note in res.notes:
        err.print(f"note: {note}", highlight=False)
    return 1 if res.failures else 0
