"""Measure rate control shape by shape (not a test; issue 10).

Usage::

    nice -n 10 python tests/benchmarks/rate_sweep.py MESH [MESH ...] [--threads 1]
        [--preset default] [--resolution 128] [--quant auto] [--target-iou T]
        [--max-bytes N] [--seed 0] [--out results.md]

Encodes each mesh in one process with the given options and prints a Markdown table: file
bytes, IoU on the encoded grid (measured at encode time by the decoder's code), parameters,
bits per layer, encode seconds, the network and how many plans were trained; then mean and
median rows and the load average before and after. Timings on a shared machine are only
comparable within one run: record the load beside them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.encoder.pipeline import EncodeOptions, encode
from occcodec.fsutil import atomic_write_bytes


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("meshes", nargs="+")
    p.add_argument("--preset", default="default")
    p.add_argument("--resolution", type=int, default=128)
    p.add_argument("--quant", default="auto")
    p.add_argument("--target-iou", type=float)
    p.add_argument("--max-bytes", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    opts = EncodeOptions(preset=args.preset, resolution=args.resolution, quant=args.quant,
                         seed=args.seed, threads=args.threads, target_iou=args.target_iou,
                         max_bytes=args.max_bytes)
    lines = [f"options: {opts.resolved().record()}; load average before: {_load()}", "",
             "| shape | bytes | IoU % | params | bits | seconds | network | plans trained |",
             "|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    rows = []
    for mesh in args.meshes:
        t0 = time.perf_counter()
        res = encode(mesh, opts)
        secs = time.perf_counter() - t0
        m = res.header["metrics"]
        bits = res.header.get("bits", res.header.get("quant"))
        trials = len(res.header.get("trials", []))
        rows.append((len(res.data), m["iou"], m["params"], secs))
        line = (f"| {Path(mesh).name} | {len(res.data):,} | {m['iou'] * 100:.2f} | "
                f"{m['params']:,} | {bits} | {secs:.1f} | {res.arch} | {trials} |")
        if res.note:
            line += f" note: {res.note}"
        print(line, flush=True)
        lines.append(line)
    nbytes, ious, params, secs = (list(c) for c in zip(*rows, strict=True))
    mean = (f"| **mean** | {statistics.mean(nbytes):,.0f} | {statistics.mean(ious) * 100:.2f}"
            f" | {statistics.mean(params):,.0f} | | {statistics.mean(secs):.1f} | | |")
    median = (f"| **median** | {statistics.median(nbytes):,.0f} | "
              f"{statistics.median(ious) * 100:.2f} | {statistics.median(params):,.0f} | | "
              f"{statistics.median(secs):.1f} (max {max(secs):.1f}) | | |")
    tail = [mean, median,
            "", f"load average after: {_load()}"]
    print("\n".join(tail), flush=True)
    if args.out:
        atomic_write_bytes(Path(args.out), ("\n".join(lines + tail) + "\n").encode(),
                           force=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
