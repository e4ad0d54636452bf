"""``occcodec eval REFERENCE X.occ``: how close a decoded file is to its original."""

from __future__ import annotations

import argparse
import json
from typing import Any

from occcodec.cli.options import int_range, print_table
from occcodec.shapes.frame import MAX_DECODE_RESOLUTION, MIN_DECODE_RESOLUTION
from occcodec.tools.evaluate import SURFACE_POINTS


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``eval`` to the subparsers."""
    p = sub.add_parser(
        "eval", help="measure a .occ file against its original mesh or voxel grid",
        description="Voxel IoU/accuracy/precision/recall on the encoded grid, the Chamfer "
                    "distance between boundary voxels, and the Chamfer distance between the "
                    "decoded and the reference surfaces (see the README for exact definitions).")
    p.add_argument("reference", help="the original mesh or voxel grid (.npz .binvox)")
    p.add_argument("coded", help="the .occ file")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--errors", metavar="PLY",
                   help="write the misclassified voxels as a coloured PLY point cloud "
                        "(red: missing, blue: spurious)")
    p.add_argument("--points", type=int_range(1, None, "points"), default=SURFACE_POINTS,
                   metavar="N",
                   help=f"points sampled per surface for the surface Chamfer "
                        f"(default {SURFACE_POINTS:,})")
    p.add_argument("--seed", type=int_range(0, None, "seed"), default=0,
                   help="surface sampling seed (default 0)")
    p.add_argument("--resolution", metavar="R",
                   type=int_range(MIN_DECODE_RESOLUTION, MAX_DECODE_RESOLUTION, "resolution"),
                   help="measure at R voxels on the long side: the file decoded at R against "
                        "the mesh's winding-number inside at the R-grid's voxel centres, and "
                        "the decoded mesh at R against the original surface (default: the "
                        "encoded grid against the encoder's voxelization)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --errors file")
    return p


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x * 100:.3f} %"


def _num(x: Any, fmt: str = ".4g") -> str:
    return "inf" if x is None else format(x, fmt)


def _text_rows(rec: dict[str, Any]) -> list[tuple[str, str]]:
    from occcodec.decoder import GRID_SCHEME

    v, vc, s = rec["voxel"], rec["voxel_chamfer"], rec["surface"]
    rows = [
        ("reference", f"{rec['reference']}  ({rec['reference_kind']}, "
                      f"{'x'.join(map(str, rec['grid']))} {rec['fill']})"),
        ("coded", f"{rec['coded']}  ({rec['bytes']:,} bytes, " + (
            "grid mode: the grid, coded losslessly)" if rec["arch"] == GRID_SCHEME else
            f"{rec['arch']}, {rec['params']:,} params, {rec['quant']})")),
        ("reference grid", rec["rule"]),
        ("IoU", _pct(v["iou"])),
        ("accuracy", _pct(v["accuracy"])),
        ("precision", _pct(v["precision"])),
        ("recall", _pct(v["recall"])),
        ("voxels", f"{v['tp']:,} both, {v['fn']:,} missing, {v['fp']:,} spurious"),
        ("voxel Chamfer-L2", f"{_num(vc['chamfer'])} (normalised units^2, grid spans [-1, 1])"),
        ("voxel Chamfer", f"{_num(vc['chamfer_voxels'], '.3f')} voxels mean, Hausdorff "
                          f"{_num(vc['hausdorff_voxels'], '.3g')} voxels"),
    ]
    if s is not None:
        rows += [
            ("surface Chamfer-L1", f"{_num(s['chamfer'])} units = "
                                   f"{_num(s['chamfer_voxels'], '.3f')} voxels"),
            ("surface Hausdorff", f"{_num(s['hausdorff'])} units = "
                                  f"{_num(s['hausdorff_voxels'], '.3g')} voxels"),
            ("Hausdorff 95 %", f"{_num(s['hausdorff_95'])} units = "
                               f"{_num(s['hausdorff_95_voxels'], '.3g')} voxels"),
            ("normal consistency", _num(s["normal_consistency"], ".4f")),
            ("surface", f"decoded mesh vs {rec['reference_surface']}, "
                        f"{s['n_points']:,} points each"),
        ]
    if "errors" in rec:
        e = rec["errors"]
        rows.append(("errors", f"{e['path']}: {e['missing']:,} missing (red), "
                               f"{e['spurious']:,} spurious (blue)"))
    return rows


def run(args: argparse.Namespace) -> int:
    """Run ``occcodec eval``: table (or JSON) on stdout, notes on stderr."""
    from occcodec.tools.evaluate import evaluate

    rec = evaluate(args.reference, args.coded, errors=args.errors, force=args.force,
                   n_points=args.points, seed=args.seed, resolution=args.resolution)
    if args.json:
        print(json.dumps(rec, indent=2))
        return 0
    from rich.console import Console

    print_table(f"{rec['coded']} against {rec['reference']}", _text_rows(rec))
    err = Console(stderr=True)
    for note in rec["notes"]:
        err.print(f"note: {note}", highlight=False)
    return 0
