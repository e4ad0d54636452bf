"""``occcodec info IN.occ``: the header, network, sizes and metrics; never evaluates the network."""

from __future__ import annotations

import argparse
import json
from typing import Any

from occcodec.cli.options import print_table


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``info`` to the subparsers."""
    p = sub.add_parser("info", help="show a .occ file's header, network, sizes and metrics")
    p.add_argument("input", help=".occ file")
    p.add_argument("--json", action="store_true", help="print as JSON")
    return p


def info_record(path: str) -> dict[str, Any]:
    """``occcodec info --json``'s record of the file at ``path``."""
    from occcodec import decoder

    return decoder.info_record(decoder.read(path), path)


def run(args: argparse.Namespace) -> int:
    """Print the record as a table, or as JSON."""
    rec = info_record(args.input)
    if args.json:
        print(json.dumps(rec, indent=2, default=str))
        return 0
    h = rec["header"]
    m = h.get("metrics", {})
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
    if "frame" in h:  # format 2: the frame's precision; a file without META is stripped
        rows.insert(6, ("frame", h["frame"]))
        if "meta" not in rec["sections"]:
            rows[7:11] = [("metadata", "none (stripped)")]
    print_table(f"{rec['file']}  (.occ {rec['format']}, {rec['bytes']:,} bytes)", rows)
    return 0
