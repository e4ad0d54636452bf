"""What every subcommand shares: the one integer-range parser, the encode options, output.

Only :mod:`occcodec.cli` parses arguments; the library below it takes typed values.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["add_encode_options", "arch_spec", "emit", "encode_kwargs", "encode_options",
           "fraction", "int_range", "print_table", "unit_fraction"]


def int_range(lo: int, hi: int | None = None, what: str = "value") -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``lo..hi`` (``hi=None``: no upper bound).

    argparse turns the ``ArgumentTypeError`` into one usage line (exit 2).
    """

    def conv(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{what} {value} is outside {bound}")
        return value

    conv.__name__ = what  # argparse names the type in its messages
    return conv


def arch_spec(text: str) -> str:
    """An argparse ``type`` for ``--arch``: a non-empty spec (an empty one used to be taken
    for "search", silently)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            'is empty: give layers such as "pe4,24:swish,24:swish", or leave --arch out to '
            "search")
    return text


def fraction(text: str) -> float:
    """An argparse ``type``: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 1)")
    return value


def unit_fraction(what: str) -> Callable[[str], float]:
    """An argparse ``type``: a number in (0, 1]."""

    def conv(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not 0.0 < value <= 1.0:
            raise argparse.ArgumentTypeError(f"{what} {value} is outside (0, 1], e.g. 0.99")
        return value

    conv.__name__ = what
    return conv


def add_encode_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``encode``, ``batch`` and ``bench`` (one code path, the same bytes)."""
    from occcodec.encoder.presets import PRESETS
    from occcodec.encoder.rate import LOWBIT_QUANTS
    from occcodec.format.quant import SCHEMES
    from occcodec.shapes.frame import FILL_MODES, MAX_MESH_RESOLUTION, MIN_DIM

    lo, hi = MIN_DIM, MAX_MESH_RESOLUTION
    g = p.add_argument_group("encoding")
    g.add_argument("--preset", choices=list(PRESETS), default="default",
                   help="search budget: fast (previews), default, paper (the published method)")
    g.add_argument("--resolution", type=int_range(lo, hi, "resolution"), default=128,
                   metavar="R",
                   help="meshes: grid where fidelity is measured and decoded by default, "
                        f"{lo}..{hi} (default 128)")
    g.add_argument("--fill", choices=list(FILL_MODES), default="auto",
                   help="solid fills closed surfaces; shell keeps surface voxels (default auto)")
    g.add_argument("--quant", choices=[*LOWBIT_QUANTS, *SCHEMES], default="auto",
                   help="weights: auto (default: low-bit, bits chosen per shape; fp16 with "
                        "--preset paper), N = 3..8 "
                        "bits after an 8-bit first layer, or a v1 file's fp32/fp16/int8/"
                        "int8-layer")
    g.add_argument("--seed", type=int_range(0, 2**32 - 1, "seed"), default=0,
                   help="random seed; same input + seed = same file (default 0)")
    g.add_argument("--threads", type=int_range(1, 1024, "threads"), default=0, metavar="N",
                   help="CPU threads for the decodes that score candidates; TensorFlow trains on "
                        "one; the file does not depend on it (default: one per core)")
    g.add_argument("--arch", metavar="SPEC", type=arch_spec,
                   help='skip the search and train this network, e.g. "pe4,24:swish,24:swish"')
    g.add_argument("--max-params", type=int_range(20, 10**7, "max-params"), metavar="N",
                   help="cap the searched networks' parameter count")
    g.add_argument("--target-iou", type=unit_fraction("target-iou"), metavar="T",
                   help="the smallest file whose IoU on the encoded grid is at least T, "
                        "e.g. 0.99 (default: the preset's target)")
    g.add_argument("--max-bytes", type=int_range(1, 10**9, "max-bytes"), metavar="N",
                   help="the highest IoU in a file of at most N bytes (never more)")
    g.add_argument("--strip", action="store_true",
                   help="leave out the metadata (encoder, options, source hash, metrics)")
    g.add_argument("--mode", choices=("auto", "network", "grid"), default="auto",
                   help="auto: the network, or the lossless grid when its file is no larger "
                        "or the network misses the target (up to 256^3); network: always a "
                        "network; grid: always the lossless grid, no training (default auto)")


def encode_kwargs(args: argparse.Namespace, threads: int | None = None) -> dict[str, Any]:
    """The encode options of parsed arguments, by keyword (``threads`` overrides ``--threads``)."""
    return {"preset": args.preset, "resolution": args.resolution, "fill": args.fill,
            "quant": args.quant, "seed": args.seed,
            "threads": args.threads if threads is None else threads,
            "arch": args.arch, "max_params": args.max_params,
            "target_iou": args.target_iou, "max_bytes": args.max_bytes, "strip": args.strip,
            "mode": args.mode}


def encode_options(args: argparse.Namespace, threads: int | None = None) -> Any:
    """The :class:`~occcodec.encoder.pipeline.EncodeOptions` of parsed encode options."""
    from occcodec.encoder.presets import EncodeOptions

    return EncodeOptions(**encode_kwargs(args, threads))


def emit(as_json: bool, record: Any, text: str) -> None:
    """Print ``record`` as JSON (``--json``) or ``text`` for a person, on stdout."""
    print(json.dumps(record, indent=2, default=str) if as_json else text)


def print_table(title: str, rows: Iterable[tuple[str, str]]) -> None:
    """A two-column key/value table on stdout (rich), the layout of info, eval and friends."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column(style="bold")
    t.add_column()
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)
