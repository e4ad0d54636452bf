"""Where the bytes of written v2 files go: weight payload, and overhead with and without META.

    python tests/benchmarks/occ_overhead.py FILE.occ [FILE.occ ...]

For each v2 file: its size, the payload (weights, or a grid-mode file's coded grid), the
overhead as written (everything but the payload) and the overhead and size the same file
would have stripped (``--strip``: no META; the same payload), computed by
:func:`occcodec.format.v2.overhead` and checked by packing it. v1 files are
listed and skipped. Prints a Markdown table, then min / mean / max of both overheads.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.format import v2


def main(paths: list[str]) -> int:
    print("| file | bytes | payload | overhead | stripped overhead | stripped bytes |")
    print("|---|---:|---:|---:|---:|---:|")
    kept, stripped, sizes = [], [], []
    for path in paths:
        data = Path(path).read_bytes()
        if not v2.is_v2(data):
            print(f"| {Path(path).name} | {len(data):,} | v1 file | | |")
            continue
        lean, payload, _, _ = v2.unpack(data)
        bare = v2.overhead(lean, None, len(payload))  # a grid-mode payload's count varint
        assert len(v2.pack(lean, payload, None)) == len(payload) + bare
        over = len(data) - len(payload)
        kept.append(over)
        stripped.append(bare)
        sizes.append(len(payload) + bare)
        print(f"| {Path(path).name} | {len(data):,} | {len(payload):,} | {over} | {bare} "
              f"| {len(payload) + bare:,} |")
    if kept:
        for name, xs in (("as written", kept), ("stripped", stripped)):
            print(f"\noverhead {name}: min {min(xs)}, mean {statistics.mean(xs):.1f}, "
                  f"max {max(xs)} bytes over {len(xs)} files")
        print(f"\nfile bytes stripped: mean {statistics.mean(sizes):,.0f}, median "
              f"{statistics.median(sizes):,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
