"""``occcodec encode INPUT [-o OUT.occ]``: one shape into one ``.occ`` file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from occcodec.cli.options import add_encode_options, emit, encode_kwargs
from occcodec.errors import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``encode`` to the subparsers."""
    p = sub.add_parser("encode", help="compress one mesh or voxel grid into a .occ file")
    p.add_argument("input", help="mesh (.obj .stl .ply .off .glb .gltf) or voxels (.npz .binvox)")
    p.add_argument("-o", "--output", help="output .occ (default: the input's name with .occ)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_encode_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Encode, then write the file atomically."""
    from occcodec.api import encode_result
    from occcodec.fsutil import atomic_write_bytes, check_input_file, check_output_path
    from occcodec.progress import RichProgress, StageClock

    out = Path(args.output) if args.output else Path(args.input).with_suffix(".occ")
    if out.suffix.lower() != ".occ":
        raise UsageError(f"output {str(out)!r} must end in .occ")
    # The input first (a missing input is the first thing to fix), then the output, both
    # before minutes of training.
    check_input_file(args.input)
    check_output_path(out, args.force)
    progress = StageClock(RichProgress(quiet=args.quiet))
    try:
        res = encode_result(args.input, progress=progress, **encode_kwargs(args))
    finally:
        progress.close()
    progress.note(f"time by stage: {progress.summary()}")
    if args.max_bytes is not None and len(res.data) > args.max_bytes:  # never silently
        raise UsageError(f"the encoder made {len(res.data):,} bytes, over --max-bytes "
                         f"{args.max_bytes:,}: nothing written")
    atomic_write_bytes(out, res.data, force=args.force)
    if res.note:  # rate control kept the closest result: say so, even with -q
        print(f"warning: {res.note}", file=sys.stderr)
    m = res.header["metrics"]
    what = "lossless grid (grid mode)" if res.arch is None else res.label
    record = {"output": str(out), "bytes": len(res.data), "arch": res.label,
              "params": m["params"], "iou": m["iou"], "accuracy": m["accuracy"],
              "seconds": round(res.seconds, 2), "device": res.device,
              "fill": res.header["fill"], "quant": res.header["quant"],
              "candidates": res.candidates, "note": res.note or None,
              "trials": res.header.get("trials"),
              "stage_seconds": {k: round(v, 2) for k, v in progress.seconds.items()}}
    emit(args.json, record, f"wrote {out}: {len(res.data):,} bytes, {what} "
         f"({m['params']:,} params), IoU {m['iou'] * 100:.2f} %, {res.seconds:.1f} s on "
         f"{res.device}")
    return 0
