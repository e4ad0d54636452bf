"""The ``occcodec`` command line: ``main(argv)`` parses, dispatches and maps errors to exit codes.

Results go to stdout (``--json`` for machines); progress and notes go to stderr. Any
:class:`~occcodec.errors.OccError` becomes one line on stderr and a non-zero exit code; a
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from occcodec import __version__
from occcodec.errors import OccError, UsageError

# The subcommands' modules import their heavy dependencies (TensorFlow, trimesh, matplotlib)
# inside their functions, so importing them here keeps `occcodec --help` and decoding light.
from occcodec.batch.run import add_batch_parser, add_decode_dir_options, cmd_batch  # noqa: E402
from occcodec.batch.run import cmd_decode_directory  # noqa: E402
from occcodec.tools.bench import add_bench_parser, cmd_bench  # noqa: E402
from occcodec.tools.evaluate import add_eval_parser, cmd_eval  # noqa: E402
from occcodec.cli.render import add_render_parser, cmd_render  # noqa: E402

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one UsageError line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def conv(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{what} {value} is outside {lo}..{hi}")
        return value
    return conv


def add_encode_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``encode`` and ``batch`` (the same code path, the same bytes)."""
    from occcodec.encoder.pipeline import PRESETS
    from occcodec.format.quant import SCHEMES

    g = p.add_argument_group("encoding")
    g.add_argument("--preset", choices=list(PRESETS), default="default",
                   help="search budget: fast (previews), default, paper (the published budget)")
    g.add_argument("--resolution", type=int_in(16, 512, "resolution"), default=128,
                   metavar="R", help="voxel grid size for meshes, 16..512 (default 128)")
    g.add_argument("--fill", choices=["auto", "solid", "shell"], default="auto",
                   help="solid fills closed surfaces; shell keeps surface voxels (default auto)")
    g.add_argument("--quant", choices=list(SCHEMES), default="fp16",
                   help="weight precision (default fp16)")
    g.add_argument("--seed", type=int_in(0, 2**32 - 1, "seed"), default=0,
                   help="random seed; same input + seed + threads = same file (default 0)")
    g.add_argument("--threads", type=int_in(1, 1024, "threads"), default=0, metavar="N",
                   help="TensorFlow CPU threads; results depend on it (default: one per core)")
    g.add_argument("--arch", metavar="SPEC",
                   help='skip the search and train this network, e.g. "pe4,24:swish,24:swish"')
    g.add_argument("--max-params", type=int_in(20, 10**7, "max-params"), metavar="N",
                   help="cap the searched networks' parameter count")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="occcodec", description=(
        "Neural shape compression: a shape becomes a tiny occupancy network found by "
        "architecture search, stored in a small .occ file."))
    parser.add_argument("--version", action="version", version=f"occcodec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    enc = sub.add_parser("encode", help="compress one mesh or voxel grid into a .occ file")
    enc.add_argument("input", help="mesh (.obj .stl .ply .off .glb .gltf) or voxels (.npz .binvox)")
    enc.add_argument("-o", "--output", help="output .occ (default: the input's name with .occ)")
    enc.add_argument("--force", action="store_true", help="overwrite an existing output")
    enc.add_argument("--json", action="store_true", help="print the result as JSON")
    enc.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_encode_options(enc)

    dec = sub.add_parser("decode", help="rebuild a mesh or voxels from a .occ file (or a tree)")
    dec.add_argument("input", help=".occ file, or a directory of them")
    dec.add_argument("-o", "--output", required=True,
                     help="output; the extension picks it: .ply .obj .stl .off .glb (mesh), "
                          ".npz .binvox (voxels); for a directory input, an output directory")
    dec.add_argument("--resolution", type=int_in(16, 1024, "resolution"), metavar="R",
                     help="decode at another resolution (longest axis); default: as encoded")
    dec.add_argument("--force", action="store_true", help="overwrite an existing output")
    dec.add_argument("--json", action="store_true", help="print the result as JSON")
    add_decode_dir_options(dec)

    info = sub.add_parser("info", help="show a .occ file's header, network, sizes and metrics")
    info.add_argument("input", help=".occ file")
    info.add_argument("--json", action="store_true", help="print as JSON")
    add_batch_parser(sub)
    add_eval_parser(sub)
    add_bench_parser(sub)
    add_render_parser(sub)
    return parser


def _emit(args: argparse.Namespace, record: dict[str, Any], text: str) -> None:
    print(json.dumps(record, indent=2, default=str) if args.json else text)


def cmd_encode(args: argparse.Namespace) -> int:
    from occcodec.encoder.pipeline import EncodeOptions, encode
    from occcodec.fsutil import atomic_write_bytes, check_output_path
    from occcodec.progress import RichProgress

    out = Path(args.output) if args.output else Path(args.input).with_suffix(".occ")
    if out.suffix.lower() != ".occ":
        raise UsageError(f"output {str(out)!r} must end in .occ")
    check_output_path(out, args.force)  # fail before minutes of training, not after
    opts = EncodeOptions(preset=args.preset, resolution=args.resolution, fill=args.fill,
                         quant=args.quant, seed=args.seed, threads=args.threads,
                         arch=args.arch, max_params=args.max_params)
    progress = RichProgress(quiet=args.quiet)
    try:
        res = encode(args.input, opts, progress)
    finally:
        progress.close()
    atomic_write_bytes(out, res.data, force=args.force)
    m = res.header["metrics"]
    record = {"output": str(out), "bytes": len(res.data), "arch": str(res.arch),
              "params": m["params"], "iou": m["iou"], "accuracy": m["accuracy"],
              "seconds": round(res.seconds, 2), "device": res.device,
              "fill": res.header["fill"], "quant": res.header["quant"],
              "candidates": res.candidates}
    _emit(args, record, f"wrote {out}: {len(res.data):,} bytes, {res.arch} "
          f"({m['params']:,} params), IoU {m['iou'] * 100:.2f} %, {res.seconds:.1f} s on "
          f"{res.device}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    import time

    from occcodec import decoder

    if Path(args.input).is_dir():
        return cmd_decode_directory(args)
    if args.format:
        raise UsageError("--format is for a directory input; for one file the output's "
                         "extension picks the format")
    t0 = time.perf_counter()
    coded = decoder.read(args.input)
    counts = decoder.write_output(coded, args.output, args.resolution, args.force)
    secs = time.perf_counter() - t0
    record = {"output": args.output, **counts, "seconds": round(secs, 3)}
    what = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    _emit(args, record, f"wrote {args.output}: {what} in {secs:.2f} s")
    return 0


def info_record(path: str) -> dict[str, Any]:
    from occcodec import decoder

    coded = decoder.read(path)
    raw = dict(coded.header.raw)
    src = raw.get("source")
    if isinstance(src, dict) and isinstance(src.get("sha256"), bytes):
        raw["source"] = {**src, "sha256": src["sha256"].hex()}
    return {
        "file": path,
        "format": f"{coded.file.version[0]}.{coded.file.version[1]}",
        "bytes": coded.file.total_bytes,
        "sections": coded.file.sections,
        "skipped_sections": coded.file.skipped,
        "arch": str(coded.header.arch),
        "params": coded.header.arch.params,
        "header": raw,
    }


def cmd_info(args: argparse.Namespace) -> int:
    rec = info_record(args.input)
    if args.json:
        print(json.dumps(rec, indent=2, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    h = rec["header"]
    m = h.get("metrics", {})
    t = Table(title=f"{rec['file']}  (.occ {rec['format']}, {rec['bytes']:,} bytes)",
              show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    rows = [
        ("network", f"{rec['arch']}  ->  1 sigmoid"),
        ("parameters", f"{rec['params']:,}"),
        ("quantization", str(h.get("quant"))),
        ("grid", " x ".join(map(str, h.get("grid", [])))),
        ("fill", str(h.get("fill"))),
        ("center, scale", f"{h.get('center')}, {h.get('scale')}"),
        ("IoU at encode", f"{m.get('iou', float('nan')) * 100:.3f} %"),
        ("accuracy", f"{m.get('accuracy', float('nan')) * 100:.4f} %"),
        ("encoder", str(h.get("encoder"))),
        ("options", ", ".join(f"{k}={v}" for k, v in h.get("options", {}).items())),
        ("sections", ", ".join(f"{k} {v} B" for k, v in rec["sections"].items())),
    ]
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "encode": cmd_encode,
    "decode": cmd_decode,
    "info": cmd_info,
    "batch": cmd_batch,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "render": cmd_render,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, non-zero on any error)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help(sys.stderr)
            return 2
        return COMMANDS[args.command](args)
    except OccError as exc:
        if debug:
            raise
        print(f"occcodec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        print("occcodec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if debug:
            raise
        print("occcodec: error: out of memory: try a lower --resolution", file=sys.stderr)
        return 1
    except Exception as exc:  # the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"occcodec: internal error: {type(exc).__name__}: {exc} "
              "(rerun with --debug for the traceback and report it)", file=sys.stderr)
        return EXIT_INTERNAL
