"""Measure the default preset against the paper's budget on a few shapes (not a test).

Usage: python tests/benchmarks/paper_vs_default.py MESH [MESH ...] [--out results.md]

Runs ``occcodec encode`` with ``--preset default`` and ``--preset paper`` on each mesh, in this
order, in one process, and prints a Markdown table of IoU, parameters, bytes and seconds,
with the speed ratio paper/default. Record the machine's load beside the figures: timings
on a shared machine are only comparable within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from occcodec.encoder.pipeline import EncodeOptions, encode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", nargs="+")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="TensorFlow threads (default: all)")
    ap.add_argument("--out", help="also write the table to this Markdown file")
    args = ap.parse_args(argv)
    rows = ["| shape | preset | arch | params | IoU % | .occ bytes | encode s | load avg |",
            "|---|---|---|---|---|---|---|---|"]
    times: dict[tuple[str, str], float] = {}
    for mesh in args.meshes:
        for preset in ("default", "paper"):
            t0 = time.perf_counter()
            res = encode(mesh, EncodeOptions(preset=preset, resolution=args.resolution,
                                             threads=args.threads))
            secs = time.perf_counter() - t0
            times[(mesh, preset)] = secs
            m = res.header["metrics"]
            load = os.getloadavg()[0]
            rows.append(f"| {Path(mesh).name} | {preset} | {res.arch} | {m['params']} | "
                        f"{m['iou'] * 100:.2f} | {len(res.data)} | {secs:.1f} | {load:.1f} |")
            print(rows[-1], flush=True)
    for mesh in args.meshes:
        ratio = times[(mesh, "paper")] / times[(mesh, "default")]
        rows.append(f"\n{Path(mesh).name}: paper/default encode time = {ratio:.1f}x")
    text = "\n".join(rows)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
