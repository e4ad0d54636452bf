"""Merge ``occcodec bench`` reports: rows of later reports replace a shape's rows (not a test).

Usage: python tests/benchmarks/merge_reports.py OUT_DIR BASE_REPORT NEWER_REPORT [...]

For re-measuring a few shapes after a change that affects only them: every shape of a newer
report replaces that shape's rows in the base report; results.csv, results.md and the plots
are written anew into OUT_DIR from the merged rows. The command recorded in results.md is
the full bench, which gives these rows when the change left the other shapes' files
byte-identical (check that before merging).
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path
from typing import Any

from occcodec.tools import bench


def _value(field: str, text: str) -> Any:
    if text == "":
        return None
    if field in ("shape", "method", "file", "arch", "note", "grid", "reference_rule"):
        return text
    if field == "target_reached":
        return text == "True"
    number = float(text)
    return int(number) if field in ("bytes", "params", "input_bytes") else number


def read_rows(report: Path) -> list[dict[str, Any]]:
    with open(report / "results.csv", newline="") as fh:
        return [{k: _value(k, v) for k, v in row.items()} for row in csv.DictReader(fh)]


def main(argv: list[str]) -> int:
    out, base, *newer = (Path(a) for a in argv)
    rows = read_rows(base)
    for report in newer:
        fresh = read_rows(report)
        shapes = {r["shape"] for r in fresh}
        rows = sorted([r for r in rows if r["shape"] not in shapes] + fresh,
                      key=lambda r: r["shape"])
    out.mkdir(parents=True, exist_ok=True)
    settings = bench.BenchSettings()
    command = next(line for line in (base / "results.md").read_text().splitlines()
                   if line.startswith("Command: ")).removeprefix("Command: `").rstrip("` ")
    written, note = bench.plots(rows, out)
    notes = [note] if note else []
    notes.append("merged report: " + ", ".join(
        f"{sorted({r['shape'] for r in read_rows(p)})} from a later run" for p in newer))
    (out / "results.csv").write_text(bench.csv_text(rows))
    text = bench.markdown(rows, settings, notes, command, written)
    # the settings line as the base run printed it (resolution, threads, ...), not defaults
    base_line = next((line for line in (base / "results.md").read_text().splitlines()
                      if re.match(r"\d+ shapes at ", line)), None)
    if base_line is not None:
        count = len({r["shape"] for r in rows})
        text = re.sub(r"^\d+ shapes at .*$", f"{count} shapes at " +
                      base_line.split(" shapes at ", 1)[1], text, count=1, flags=re.M)
    (out / "results.md").write_text(text)
    print(f"wrote {out}: {len({r['shape'] for r in rows})} shapes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
