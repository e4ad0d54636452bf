"""``occcodec render IN -o OUT.png``: a picture of a ``.occ`` file or a mesh, headless."""

from __future__ import annotations

import argparse
import json
from typing import Any

from occcodec.cli.options import int_range
from occcodec.shapes.frame import MAX_DECODE_RESOLUTION, MIN_DECODE_RESOLUTION

PIXELS = int_range(1, 16384, "pixels")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``render`` to the subparsers."""
    from occcodec.tools.render import UP_AXES, VIEWS

    p = sub.add_parser(
        "render", help="draw a .occ file (decoded) or a mesh to a PNG, headless",
        description="A shaded picture from a software rasteriser (no GPU, no display). "
                    "--compare MESH shows the original and the decoded .occ side by side.")
    p.add_argument("input", help=".occ file, mesh, or voxel grid (.npz .binvox)")
    p.add_argument("-o", "--output", required=True, help="output .png")
    p.add_argument("--view", choices=list(VIEWS), default="iso", help="camera (default iso)")
    p.add_argument("--up", choices=["auto", *UP_AXES], default="auto",
                   help="the shape's up axis (default auto: the file format's convention, y "
                        "for glTF, OBJ, PLY and OFF, z for STL, unless the shape is clearly "
                        "bottom-heavy along the other of y and z)")
    p.add_argument("--width", type=PIXELS, help="pixels (default 800, 1600 with --compare)")
    p.add_argument("--height", type=PIXELS, help="pixels (default 600, 700 with --compare)")
    p.add_argument("--compare", metavar="MESH",
                   help="render this original (mesh or voxel grid) beside the decoded .occ, "
                        "with IoU and sizes")
    p.add_argument("--resolution", metavar="R",
                   type=int_range(MIN_DECODE_RESOLUTION, MAX_DECODE_RESOLUTION, "resolution"),
                   help="decode the .occ at this resolution (longest axis; default: as encoded)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    """Run ``occcodec render``."""
    from occcodec.tools.pictures import render_file

    rec = render_file(args.input, args.output, view=args.view, up=args.up, width=args.width,
                      height=args.height, compare=args.compare, resolution=args.resolution,
                      force=args.force)
    if args.json:
        print(json.dumps(rec, indent=2))
    else:
        extra = f": {rec['caption']}" if "caption" in rec else ""
        print(f"wrote {rec['output']} ({rec['width']}x{rec['height']}, {rec['view']} view, "
              f"up {rec['up']}){extra}")
    return 0
