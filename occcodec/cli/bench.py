"""``occcodec bench DIR``: occcodec beside the baselines users would pick, on a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from occcodec.cli.options import add_encode_options, encode_options, int_range, unit_fraction


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``bench`` to the subparsers."""
    from occcodec.tools.bench.baselines import choices
    from occcodec.tools.bench.context import REFERENCE_RULES

    p = sub.add_parser(
        "bench", help="compare occcodec with NI-arch, grid coders, Draco and decimation+Draco "
                      "on a folder of shapes",
        description="For every mesh or voxel grid in DIR (not recursive): occcodec, NI-arch "
                    "(NI's 8x32 ReLU architecture trained under occcodec's budget and sampler, "
                    "not the NI paper's training), the grid bit-packed with zstd -19, the grid "
                    "by the context coder (when installed), the mesh compressed by Draco at 11 "
                    "and 14 bits, and decimated + Draco at occcodec's IoU and at 99 %; bytes, "
                    "IoU, Chamfer distances, surface Hausdorff 95/100 and normal consistency "
                    "against the mesh, seconds. Writes results.csv, results.md and PNG "
                    "plots.")
    p.add_argument("directory", metavar="DIR", help="folder of meshes or voxel grids")
    p.add_argument("-o", "--output", metavar="REPORT_DIR", default="bench-report",
                   help="report folder (default ./bench-report); must be empty without --force")
    p.add_argument("--with-paper", action="store_true",
                   help="also run occcodec --preset paper (the published budget: slow)")
    p.add_argument("--force", action="store_true", help="overwrite a non-empty report folder")
    p.add_argument("--points", type=int_range(1, None, "points"), default=100_000, metavar="N",
                   help="points sampled per surface for the surface Chamfer (default 100,000)")
    p.add_argument("--baselines", nargs="+", choices=choices(), metavar="NAME",
                   help="run only these methods (default: all): " + ", ".join(choices()))
    p.add_argument("--reference", choices=REFERENCE_RULES, default="auto",
                   help="the grid every method is measured against, for meshes: 'encoder' "
                        "(the encoder's conservative voxelization), 'centres' (the mesh's "
                        "winding-number inside at the voxel centres, the encoder's own truth "
                        "for meshes); 'auto' (default): centres")
    p.add_argument("--targets", nargs="+", type=unit_fraction("--targets"), default=(),
                   metavar="T",
                   help="also encode with --target-iou T for each T (e.g. 0.97 0.99): rows "
                        "'occcodec @T%%', drawn with occcodec's row as one rate-distortion "
                        "curve per shape")
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
    if args.target_iou is not None:
        parts += ["--target-iou", f"{args.target_iou:g}"]
    if args.max_bytes is not None:
        parts += ["--max-bytes", str(args.max_bytes)]
    if args.strip:
        parts.append("--strip")
    if args.targets:
        parts += ["--targets", *(f"{t:g}" for t in args.targets)]
    if args.reference != "auto":
        parts += ["--reference", args.reference]
    if args.with_paper:
        parts.append("--with-paper")
    if args.baselines:
        parts += ["--baselines", *(repr(b) if " " in b else b for b in args.baselines)]
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Run ``occcodec bench``: progress on stderr, a compact summary on stdout.

    Returns 0 when every method ran on every shape, 1 when something failed (the report
    says what).
    """
    from rich.console import Console
    from rich.table import Table

    from occcodec.fsutil import check_writable_dir
    from occcodec.tools.bench import BenchSettings, bench
    from occcodec.tools.bench.report import (
        count_sentence,
        md_cell,
        size_counts,
        summary,
    )
    from occcodec.tools.bench.runner import list_shapes

    # the inputs first, then the report folder (or the folder it will be made in), both
    # before the first encode
    list_shapes(args.directory)
    report = Path(args.output)
    check_writable_dir(report if report.is_dir() else report.parent)
    err = Console(stderr=True)
    settings = BenchSettings(encode_options(args), args.with_paper, args.force, args.quiet,
                             args.points,
                             baselines=tuple(args.baselines) if args.baselines else None,
                             reference=args.reference,
                             targets=tuple(dict.fromkeys(args.targets)))
    log = (lambda text: None) if args.quiet else (lambda text: err.print(text, highlight=False))
    res = bench(args.directory, args.output, settings, log, command=_command_line(args))
    t = Table(title=f"{res.report_dir / 'results.md'}", title_justify="left")
    for title in ("method", "shapes", "median bytes", "mean IoU %", "mean voxel CD-L2",
                  "mean surface CD (vox)", "mean encode s"):
        t.add_column(title, justify="left" if title == "method" else "right")
    for rec in summary(res.rows):
        def cell(key: str, fmt: str, which: int = 0, rec: dict[str, Any] = rec) -> str:
            return "-" if rec[key] is None else md_cell(rec[key][which], fmt)
        t.add_row(rec["method"], str(rec["shapes"]), cell("bytes", ",.0f", 1),
                  cell("iou", ".3f"), cell("voxel_chamfer", ".3g"),
                  cell("surface_chamfer_vox", ".3f"), cell("encode_s", ".1f"))
    Console().print(t)
    for c in size_counts(res.rows):
        print(count_sentence(c))
    for note in res.notes:
        err.print(f"note: {note}", highlight=False)
    return 1 if res.failures else 0
