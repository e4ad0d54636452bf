"""Low-bit weights on real meshes: fp16 vs post-training vs quantization-aware low bits.

    nice -n 10 python tests/benchmarks/lowbit_sweep.py [-o DIR] [--shapes spot.obj nut.ply]
        [--resolution 128] [--preset default] [--epochs 10]

Each shape is encoded by today's pipeline (``encode()``, one thread); its fp16 weights are
the float starting point. Then, all measured by the numpy decoder on the encoded grid after
``occcodec.format.lowbit`` quantization:

* ``ptqB``: post-training quantization, B bits on every layer;
* ``ptq8/bbN``: 8-bit weights with N-bit biases (where bias precision stops mattering);
* ``qatB``: ``--epochs`` of quantization-aware fine-tuning at B bits everywhere;
* ``qat8+4``, ``qat8+3``: 8 bits on the first layer (fed by the encoding), 4 or 3 after;
* ``greedy``: QAT at 8 bits on the first layer and 6 after, :func:`qat.allocate_bits` down
  to the target (fp16 IoU minus ``--tolerance``), then QAT again at the chosen bits.

Bytes are the weight payload only (fp16: 2 per parameter; low bit: ``payload_bytes``).
Seconds are each variant's own time (fine-tune + allocation + measurement) on a shared
2-core machine. ``results.json`` and ``results.md`` in ``-o`` are rewritten after each shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec import decoder
from occcodec.encoder.pipeline import EncodeOptions, encode
from occcodec.format import lowbit
from occcodec.shapes.inputs import load_shape

SHAPES = ("spot.obj", "nut.ply", "pinion.off", "cactus.off", "ant.ply", "woody.obj")


def sweep_shape(path: Path, a: argparse.Namespace) -> dict[str, Any]:
    from occcodec.encoder import qat
    from occcodec.encoder.sampling import make_samples

    t0 = time.perf_counter()
    res = encode(path, EncodeOptions(preset=a.preset, resolution=a.resolution, threads=1))
    coded = decoder.load(res.data)
    arch, weights = coded.header.arch, coded.weights
    grid = np.asarray(load_shape(path, a.resolution).occupancy, dtype=bool)
    fp16_iou = float(res.header["metrics"]["iou"])
    row: dict[str, Any] = {"shape": path.name, "arch": str(arch), "params": arch.params,
                           "encode_s": round(time.perf_counter() - t0, 1), "variants": []}
    n = len(arch.layer_dims())

    def add(name: str, bits: list[int], w: Any, t: float, bias_bits: int = lowbit.BIAS_BITS,
            **extra: Any) -> None:
        raw = lowbit.quantize(w, bits, bias_bits)
        iou = qat.measure(arch, raw, bits, grid, bias_bits)
        row["variants"].append({"name": name, "bits": bits, "bytes": len(raw), "iou": iou,
                                "seconds": round(time.perf_counter() - t, 1), **extra})
        print(f"  {name:10s} {bits} {len(raw):6d} B  IoU {iou * 100:.2f} %", flush=True)

    row["variants"].append({"name": "fp16", "bits": [16] * n, "bytes": 2 * arch.params,
                            "iou": fp16_iou, "seconds": 0.0})
    print(f"{path.name}: {arch} ({arch.params} params), fp16 IoU {fp16_iou * 100:.2f} %")
    for b in (8, 6, 5, 4):
        add(f"ptq{b}", [b] * n, weights, time.perf_counter())
    for bb in (6, 8, 12):
        add(f"ptq8/bb{bb}", [8] * n, weights, time.perf_counter(), bias_bits=bb)
    samples = make_samples(grid, np.random.default_rng(a.seed))

    def qat_run(name: str, bits: list[int]) -> Any:
        t = time.perf_counter()
        fit = qat.finetune(arch, weights, samples, bits, a.epochs, np.random.default_rng(a.seed))
        add(name, bits, fit.weights, t)
        return fit.weights

    for b in (6, 5, 4):
        qat_run(f"qat{b}", [b] * n)
    qat_run("qat8+4", [8] + [4] * (n - 1))
    qat_run("qat8+3", [8] + [3] * (n - 1))
    t = time.perf_counter()
    start = [8] + [6] * (n - 1)
    w1 = qat.finetune(arch, weights, samples, start, a.epochs, np.random.default_rng(a.seed))
    alloc = qat.allocate_bits(arch, w1.weights, grid, fp16_iou - a.tolerance, start)
    w2 = qat.finetune(arch, w1.weights, samples, alloc.bits, a.epochs,
                      np.random.default_rng(a.seed + 1))
    add("greedy", alloc.bits, w2.weights, t, alloc_evals=alloc.evaluations,
        alloc_s=round(alloc.seconds, 1))
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    names = [v["name"] for v in rows[0]["variants"]] if rows else []
    lines = ["| shape (params) | " + " | ".join(names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for r in rows:
        cells = [f"{v['iou'] * 100:.2f} % / {v['bytes']} B" for v in r["variants"]]
        lines.append(f"| {r['shape']} {r['arch']} ({r['params']}) | " + " | ".join(cells) + " |")
    if rows:
        mean = [(np.mean([r["variants"][i]["iou"] for r in rows]),
                 np.mean([r["variants"][i]["bytes"] for r in rows]),
                 np.mean([r["variants"][i]["seconds"] for r in rows]))
                for i in range(len(names))]
        lines.append("| **mean** | " + " | ".join(f"{i * 100:.2f} % / {b:.0f} B / {s:.0f} s"
                                                 for i, b, s in mean) + " |")
        lines.append("")
        lines += [f"- {r['shape']}: greedy bits {r['variants'][-1]['bits']}, "
                  f"{r['variants'][-1]['alloc_evals']} grid evaluations in "
                  f"{r['variants'][-1]['alloc_s']} s; encode {r['encode_s']} s" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("lowbit-sweep"))
    ap.add_argument("--meshes", type=Path, default=Path("/work/shared/meshes"))
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES))
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--tolerance", type=float, default=0.005, help="greedy IoU below fp16")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    a.output.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in a.shapes:
        rows.append(sweep_shape(a.meshes / name, a))
        (a.output / "results.json").write_text(json.dumps(rows, indent=1))
        (a.output / "results.md").write_text(markdown(rows))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
