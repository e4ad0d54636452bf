"""Measure ``--preset paper`` against ``--preset default`` shape by shape (not a test).

Usage::

    python tests/benchmarks/paper_vs_default.py MESH [MESH ...] [--threads 1]
        [--resolution 128] [--presets default,paper] [--seed 0] [--out results.md]

Encodes each mesh with each preset, in this order, in one process, and prints a Markdown
table of network, parameters, IoU, ``.occ`` bytes and encode seconds per preset, followed
by, per shape:

- the published figures when the mesh is one of the original code's shapes (its file stem is
  a key of :data:`PUBLISHED`), with the paper preset's parameter ratio and IoU difference;
- whether ``default`` beats ``paper`` in IoU and in bytes, and the encode-time ratio.

Record the machine's load beside the figures (the table has a load-average column): timings on
a shared machine are only comparable within one run. ``--preset paper`` takes about 20 CPU
minutes per shape at 128^3 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.encoder.pipeline import PRESETS, EncodeOptions, encode
from occcodec.fsutil import atomic_output

#: The original code's per-shape results at 128^3 (``cscvlab/VoxelReconstruction-NAS``,
#: ``RESULTS/reconstruction_results/<set>/<id>/result.txt``): network, parameters, IoU %.
PUBLISHED: dict[str, tuple[str, int, float]] = {
    "41729": ("56:relu,48:relu,48:elu,48:elu,28:swish", 9065, 92.25),
    "42268": ("28:relu,16:relu,24:elu,16:elu,8:elu,8:swish", 1601, 99.57),
    "47564": ("8:swish,48:relu,28:elu,24:elu,16:relu,16:elu", 3221, 93.18),
    "51017": ("24:elu,64:relu,48:relu,48:swish,56:elu,32:elu", 11769, 74.80),
    "68648": ("28:relu,48:relu,8:swish,28:swish,28:elu,40:elu", 4161, 99.97),
    "318045": ("40:relu,40:relu,48:relu,48:elu,32:elu,48:elu", 9321, 97.49),
    "1ed012d3232de232473f10e6caaeca56": ("32:elu,48:relu,64:relu,24:relu,56:relu,28:swish",
                                         9433, 94.51),
    "91cf38c4b99d75374fa746d16faad4f5": ("32:elu,20:relu,20:relu,64:relu,16:relu,16:elu",
                                         3881, 96.10),
    "c5d0dd7a7b44b079a76ffc04f04676cb": ("32:relu,12:elu,40:relu,48:relu,20:elu,8:relu",
                                         4169, 96.77),
}


@dataclass
class Row:
    shape: str
    preset: str
    arch: str
    params: int
    iou: float
    bytes: int
    seconds: float
    load: float


def measure(mesh: str, preset: str, args: argparse.Namespace) -> Row:
    """One encode; the IoU is the file's own (after quantization, by the decoder's code)."""
    t0 = time.perf_counter()
    res = encode(mesh, EncodeOptions(preset=preset, resolution=args.resolution,
                                     threads=args.threads, seed=args.seed))
    secs = time.perf_counter() - t0
    m = res.header["metrics"]
    return Row(Path(mesh).name, preset, str(res.arch), int(m["params"]), m["iou"] * 100,
               len(res.data), secs, os.getloadavg()[0])


def row_line(r: Row) -> str:
    return (f"| {r.shape} | {r.preset} | {r.arch} | {r.params:,} | {r.iou:.2f} | "
            f"{r.bytes:,} | {r.seconds:.1f} | {r.load:.1f} |")


def verdicts(rows: list[Row]) -> list[str]:
    """Per shape: the published figures, and default against paper."""
    lines: list[str] = []
    for shape in dict.fromkeys(r.shape for r in rows):
        by = {r.preset: r for r in rows if r.shape == shape}
        pub = PUBLISHED.get(Path(shape).stem)
        paper, default = by.get("paper"), by.get("default")
        if pub and paper:
            lines.append(f"- {shape}: published {pub[0]} ({pub[1]:,} params, IoU {pub[2]:.2f} %)"
                         f"; paper preset {paper.params / pub[1]:.2f}x the parameters, "
                         f"IoU {paper.iou - pub[2]:+.2f} points")
        if paper and default:
            lines.append(f"- {shape}: default beats paper in IoU: "
                         f"{'yes' if default.iou > paper.iou else 'NO'} "
                         f"({default.iou - paper.iou:+.2f} points); in bytes: "
                         f"{'yes' if default.bytes < paper.bytes else 'NO'} "
                         f"({default.bytes:,} vs {paper.bytes:,}); encode time paper/default "
                         f"{paper.seconds / default.seconds:.1f}x")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("meshes", nargs="+")
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="threads per encode (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--presets", default="default,paper", help="comma-separated, in run order")
    ap.add_argument("--out", help="also write the table to this Markdown file")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--force", action="store_true", help="overwrite --out / --json")
    args = ap.parse_args(argv)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        ap.error(f"unknown preset(s) {', '.join(unknown)}: use {', '.join(PRESETS)}")
    head = ["| shape | preset | network | params | IoU % | .occ bytes | encode s | load avg |",
            "|---|---|---|---:|---:|---:|---:|---:|"]
    print("\n".join(head), flush=True)
    rows: list[Row] = []
    for mesh in args.meshes:
        for preset in presets:
            rows.append(measure(mesh, preset, args))
            print(row_line(rows[-1]), flush=True)
    text = "\n".join([*head, *map(row_line, rows), "", *verdicts(rows)])
    print("\n" + "\n".join(verdicts(rows)))
    if args.out:
        with atomic_output(args.out, force=args.force) as tmp:
            tmp.write_text(text + "\n")
    if args.json:
        with atomic_output(args.json, force=args.force) as tmp:
            tmp.write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
