"""Where the bytes of a v2 file go, on trained networks: overhead stripped and not, and zstd.

    nice -n 10 python tests/benchmarks/v2_overhead.py [--shapes samples/mug.obj ...]
        [--resolution 64] [--preset fast] [-o DIR]

Each shape is encoded by today's (v1) pipeline with one thread; its header's META
(encoder, source, options, metrics) and its weights are rewritten as v2 files:

* ``v1``: the v1 file's size, its HEAD and container bytes (everything but the weights);
* ``stripped`` / ``unstripped``: :func:`occcodec.format.v2.overhead` without and with the
  header's META (the candidates list is not stored, see ``formats/occ-v2.md`` 7);
* ``fp16``, ``lowbit 8/6/4``: the raw payload (post-training quantization; the low bit
  depths of the sweep in ``results/lowbit-sweep``) and its size as one zstd frame at level
  19 without checksum, as v1 stores weights: the difference is what compressing would save.

Results go to ``DIR/results.json`` and ``DIR/results.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import zstandard

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec import decoder
from occcodec.encoder.pipeline import EncodeOptions, encode
from occcodec.format import v2

SHAPES = ("samples/mug.obj", "samples/torus.ply", "samples/bracket.stl")


def zstd_size(raw: bytes) -> int:
    """Bytes of ``raw`` as v1 stores weights: one zstd frame, level 19, no checksum."""
    cctx = zstandard.ZstdCompressor(level=19, write_checksum=False, write_content_size=True)
    return len(cctx.compress(raw))


def measure(path: Path, a: argparse.Namespace) -> dict[str, Any]:
    res = encode(path, EncodeOptions(preset=a.preset, resolution=a.resolution, threads=1))
    coded = decoder.load(res.data)
    h = coded.header
    meta = v2.meta_from_v1(res.header)
    lean = v2.LeanHeader(h.grid, h.center, h.scale, h.fill, h.arch, v2.WeightsSpec("fp16"))
    wgts = coded.file.sections["WGTS"]
    row: dict[str, Any] = {
        "shape": path.name, "arch": str(h.arch), "params": h.arch.params,
        "v1_bytes": len(res.data), "v1_overhead": len(res.data) - (wgts - 16),
        "stripped": v2.overhead(lean), "unstripped": v2.overhead(lean, meta),
        "meta_bytes": v2.overhead(lean, meta) - v2.overhead(lean), "payloads": []}
    n = len(h.arch.layer_dims())
    for spec in (v2.WeightsSpec("fp16"), v2.WeightsSpec("lowbit", (8,) * n, 10),
                 v2.WeightsSpec("lowbit", (8,) + (6,) * (n - 1), 10),
                 v2.WeightsSpec("lowbit", (8,) + (4,) * (n - 1), 10)):
        raw = spec.quantize(coded.weights)
        row["payloads"].append({"spec": str(spec), "raw": len(raw), "zstd": zstd_size(raw),
                                "stripped_file": len(v2.pack(
                                    v2.LeanHeader(h.grid, h.center, h.scale, h.fill,
                                                  h.arch, spec), raw))})
    return row


def report(rows: list[dict[str, Any]]) -> str:
    lines = [("| shape | arch | params | v1 file | v1 overhead | v2 stripped | v2 unstripped "
              "| META |"), "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['shape']} | {r['arch']} | {r['params']} | {r['v1_bytes']} | "
              f"{r['v1_overhead']} | {r['stripped']} | {r['unstripped']} | {r['meta_bytes']} |"
              for r in rows]
    lines += ["", "| shape | payload | raw | zstd-19 | saved | stripped v2 file |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        for p in r["payloads"]:
            saved = p["raw"] - p["zstd"]
            lines.append(f"| {r['shape']} | {p['spec']} | {p['raw']} | {p['zstd']} | "
                         f"{saved} ({100 * saved / p['raw']:.1f} %) | {p['stripped_file']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES))
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("-o", "--out", default="tests/benchmarks/results/v2-overhead")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in a.shapes:
        rows.append(measure(Path(s), a))
        (out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
        (out / "results.md").write_text(report(rows))
        print(report(rows[-1:]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
