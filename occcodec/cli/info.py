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


def _show(value: Any) -> str:
    """An informative header value as it is, whatever its type (the spec lets a reader
    ignore odd ones, so ``info`` shows them instead of refusing or crashing)."""
    if isinstance(value, bytes):
        return value.hex() if len(value) <= 64 else f"{value[:64].hex()}... ({len(value)} B)"
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):  # e.g. a NaN key or a deep nest: str() never fails
        return str(value)


def _jsonable(value: Any) -> Any:
    """``value`` with bytes as hex and every map key a string (msgpack allows bytes keys,
    JSON does not)."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _show(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _percent(value: Any, digits: int) -> str:
    """``99.123 %`` for a number, the value as it is otherwise (``True`` is not a number)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value * 100:.{digits}f} %"
    return "-" if value is None else _show(value)


def _pairs(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{_show(k)}={_show(v)}" for k, v in value.items())
    return "-" if value is None else _show(value)


def rows(rec: dict[str, Any]) -> list[tuple[str, str]]:
    """The table's rows; every informative key may hold any msgpack value."""
    from occcodec.decoder import GRID_SCHEME

    h = rec["header"]
    m = h.get("metrics")
    metrics = m if isinstance(m, dict) else {}
    grid = h.get("grid")
    out = [
        ("network", "none: the grid, coded losslessly (grid mode)" if rec["arch"] == GRID_SCHEME
         else f"{rec['arch']}  ->  1 sigmoid"),
        ("parameters", f"{rec['params']:,}"),
        ("quantization", _show(h.get("quant"))),
        ("grid", " x ".join(map(str, grid)) if isinstance(grid, list) else _show(grid)),
        ("fill", _show(h.get("fill"))),
        ("center, scale", f"{_show(h.get('center'))}, {_show(h.get('scale'))}"),
        ("IoU at encode", _percent(metrics.get("iou"), 3)),
        ("accuracy", _percent(metrics.get("accuracy"), 4)),
        ("encoder", _show(h.get("encoder"))),
        ("options", _pairs(h.get("options"))),
        ("sections", ", ".join(f"{k} {v} B" for k, v in rec["sections"].items())),
    ]
    if m is not None and not isinstance(m, dict):
        out.insert(6, ("metrics", _show(m)))
    if "frame" in h:  # format 2: the frame's precision; a file without META is stripped
        out.insert(6, ("frame", _show(h["frame"])))
        if "meta" not in rec["sections"]:
            out[7:11] = [("metadata", "none (stripped)")]
    return out


def run(args: argparse.Namespace) -> int:
    """Print the record as a table, or as JSON."""
    rec = info_record(args.input)
    if args.json:
        print(json.dumps(_jsonable(rec), indent=2))
        return 0
    print_table(f"{rec['file']}  (.occ {rec['format']}, {rec['bytes']:,} bytes)", rows(rec))
    return 0
