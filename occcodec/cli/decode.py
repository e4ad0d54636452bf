"""``occcodec decode IN.occ -o OUT``: a mesh or voxels from one file, or a whole tree."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from occcodec.cli.options import emit, fraction, int_range
from occcodec.decoder import SPECK_FRACTION
from occcodec.errors import UsageError
from occcodec.shapes.frame import MAX_DECODE_RESOLUTION, MIN_DECODE_RESOLUTION


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``decode`` to the subparsers."""
    p = sub.add_parser("decode", help="rebuild a mesh or voxels from a .occ file (or a tree)")
    p.add_argument("input", help=".occ file, or a directory of them")
    p.add_argument("-o", "--output", required=True,
                   help="output; the extension picks it: .ply .obj .stl .off .glb (mesh), "
                        ".npz .binvox (voxels); for a directory input, an output directory")
    p.add_argument("--resolution", metavar="R",
                   type=int_range(MIN_DECODE_RESOLUTION, MAX_DECODE_RESOLUTION, "resolution"),
                   help="decode at another resolution (longest axis); default: as encoded")
    p.add_argument("--drop-specks", type=fraction, default=SPECK_FRACTION, metavar="FRACTION",
                   help="drop mesh components smaller than FRACTION of the largest's volume "
                        f"(default {SPECK_FRACTION:g}; 0 keeps every component)")
    p.add_argument("--refine-steps", type=int_range(0, 16, "refine steps"), default=None,
                   metavar="N",
                   help="steps that move each mesh vertex to the network's own crossing on "
                        "its edge (default 3; 0: marching cubes alone, faster)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    g = p.add_argument_group("directory input (decode every .occ under it into -o OUT_DIR)")
    g.add_argument("--format", metavar="EXT",
                   help="output format of every file: ply (default), obj, stl, off, glb, npz, "
                        "binvox")
    g.add_argument("-j", "--jobs", type=int_range(1, 1024, "jobs"), default=1, metavar="N",
                   help="files decoded at once in worker processes (default 1: in this one)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return p


def run(args: argparse.Namespace) -> int:
    """Decode one file (the output's extension picks the format) or a directory."""
    from occcodec import decoder

    if Path(args.input).is_dir():
        from occcodec.batch.run import decode_directory
        from occcodec.fsutil import check_writable_dir

        out = Path(args.output)
        # an existing output folder must take files; a new one is made (or refused) next
        if out.is_dir():
            check_writable_dir(out)

        return decode_directory(args.input, args.output, args.format or "ply", args.resolution,
                                args.force, jobs=args.jobs, quiet=args.quiet,
                                as_json=args.json)
    if args.format:
        raise UsageError("--format is for a directory input; for one file the output's "
                         "extension picks the format")
    t0 = time.perf_counter()
    coded = decoder.read(args.input)
    counts = decoder.write_output(coded, args.output, args.resolution, args.force,
                                  drop_specks=args.drop_specks,
                                  refine_steps=args.refine_steps)
    secs = time.perf_counter() - t0
    record = {"output": args.output, **counts, "seconds": round(secs, 3)}
    what = ", ".join(f"{v:,} {k}" for k, v in counts.items())
    emit(args.json, record, f"wrote {args.output}: {what} in {secs:.2f} s")
    return 0
