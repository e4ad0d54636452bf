"""The bench run: every baseline of :data:`~occcodec.tools.bench.baselines.BASELINES` on
every shape of a folder, the report rewritten after each shape."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occcodec.errors import InputError, OccError, OutputError, UsageError
from occcodec.tools.bench.baselines import Baseline, choices, methods
from occcodec.tools.bench.context import BenchSettings, Context, Ref, make_row
from occcodec.tools.bench.plots import plots
from occcodec.tools.bench.report import csv_text, markdown, write_text

__all__ = ["BenchResult", "bench", "list_shapes"]


@dataclass
class BenchResult:
    """What a run wrote: its rows, its notes, the report's files, how many things failed."""

    rows: list[dict[str, Any]]
    notes: list[str]
    report_dir: Path
    files: list[Path] = field(default_factory=list)
    #: Shapes that could not be loaded plus methods that failed on a shape.
    failures: int = 0


def _available(module: str) -> bool:
    """Whether an optional dependency imports (``False`` when missing or broken)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


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


def _describe(row: dict[str, Any]) -> str:
    if row["bytes"] is None:
        return f"  {row['method']:<22} [red]{row['note']}[/]"
    iou = "" if row["iou"] is None else f"IoU {row['iou'] * 100:7.3f} %"
    return (f"  {row['method']:<22} {row['bytes']:>9,} B  {iou}  "
            f"enc {row['encode_s']:6.1f} s  dec {row['decode_s']:5.2f} s")


class _Runner:
    """Runs the chosen baselines on one shape after another."""

    def __init__(self, report: Path, settings: BenchSettings, log: Callable[[str], None]):
        self.ctx = Context(report, settings)
        self.log = log
        self.notes: list[str] = []
        self.failures = 0
        self.baselines = self._usable(methods(settings))

    def _usable(self, chosen: list[Baseline]) -> list[Baseline]:
        """The chosen baselines whose optional modules import; one note per missing one."""
        missing = {m for b in chosen for m in b.requires if not _available(m)}
        for module in sorted(missing):
            users = [b for b in chosen if module in b.requires]
            self.notes.append(
                f"{module} is not installed: the {', '.join(b.name for b in users)} rows are "
                f"skipped ({users[0].install_hint})")
        return [b for b in chosen if not missing.intersection(b.requires)]

    def load(self, path: Path, name: str) -> Ref:
        from occcodec.shapes.inputs import load_shape

        enc = self.ctx.settings.encode
        t0 = time.perf_counter()
        shape = load_shape(path, resolution=enc.resolution, fill=enc.fill)
        grid = np.asarray(shape.occupancy, dtype=bool)
        mesh = shape.mesh if shape.source_kind == "mesh" else None
        gf = shape.grid_frame
        rule = self.ctx.settings.rule() if mesh is not None else "given"
        ref = Ref(name, path, grid, mesh, tuple(float(c) for c in gf.center),  # type: ignore[arg-type]
                  float(gf.scale), shape.fill, 0.0, rule=rule)
        if rule == "centres":
            # The truth at the centres of the encoder's grid, in the encoder's frame (the
            # encoder's own truth for meshes): every method, occcodec included, meets it.
            ref.grid = ref.mesh_grid(mesh, gf.shape)
        ref.voxelize_s = time.perf_counter() - t0
        return ref

    def shape(self, path: Path, name: str) -> list[dict[str, Any]]:
        """All rows of one shape; a failing method becomes a row with its error as the note."""
        try:
            ref = self.load(path, name)
        except OccError as exc:
            self.failures += 1
            self.notes.append(f"{path.name}: skipped: {exc}")
            self.log(f"[red]{path.name}: skipped: {exc}[/]")
            return []
        todo = self.baselines
        if ref.mesh is None:
            todo = [b for b in todo if not b.meshes_only]
            self.notes.append(f"{path.name} is a voxel grid: no mesh-baseline rows and no "
                              "surface figures for it")
        done: dict[str, dict[str, Any]] = {}
        for b in todo:
            try:
                row = b.run(ref, self.ctx, done)
            except Exception as exc:
                self.failures += 1
                row = make_row(ref, b.name, None, note=f"failed: {type(exc).__name__}: {exc}")
                self.notes.append(f"{path.name} / {b.name}: {row['note']}")
            done[b.name] = row
            self.log(_describe(row))
        return list(done.values())


def _prepare(report: Path, force: bool) -> None:
    if report.exists() and not report.is_dir():
        raise OutputError(f"report {str(report)!r} is a file: give a directory")
    if report.is_dir() and any(report.iterdir()) and not force:
        raise OutputError(
            f"report directory {str(report)!r} is not empty: use --force to overwrite it")
    if not report.parent.is_dir():
        raise OutputError(f"directory {str(report.parent)!r} does not exist: create it first")
    report.mkdir(exist_ok=True)


def _check(settings: BenchSettings) -> None:
    """Fail on a bad option before minutes of work.

    Raises
    ------
    UsageError
        On invalid encode options or an unknown baseline name.
    """
    settings.encode_options().resolved()
    if settings.with_paper:
        settings.encode_options("paper").resolved()
    if settings.baselines is not None:
        unknown = [n for n in settings.baselines if n not in choices()]
        if unknown or not settings.baselines:
            raise UsageError(f"unknown baseline {', '.join(map(repr, unknown)) or '(none)'}: "
                             f"choose among {', '.join(choices())}")


def bench(directory: str | Path, report_dir: str | Path, settings: BenchSettings,
          log: Callable[[str], None] | None = None, command: str = "occcodec bench") -> BenchResult:
    """Run every chosen baseline on every shape of ``directory``; write the report; return
    its rows.

    ``results.csv`` and ``results.md`` are rewritten after each shape, so an interrupted
    run leaves a consistent partial report.

    Raises
    ------
    InputError
        If ``directory`` holds no supported input.
    OutputError
        If ``report_dir`` is not empty and ``settings.force`` is false.
    UsageError
        On invalid encode options or baseline names (checked before any work).
    """
    log = log or (lambda text: None)
    _check(settings)
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
        write_text(report / "results.csv", csv_text(rows))
        write_text(report / "results.md", markdown(rows, settings, runner.notes, command, []))
    written, note = plots(rows, report)
    if note:
        runner.notes.append(note)
    write_text(report / "results.md", markdown(rows, settings, runner.notes, command, written))
    files = [report / "results.csv", report / "results.md"] + [report / p for p in written]
    return BenchResult(rows, runner.notes, report, files, runner.failures)
