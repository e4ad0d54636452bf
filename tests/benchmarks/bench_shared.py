"""The closing-note bench: every mesh of ../shared/meshes at 128^3, preset default.

    python tests/benchmarks/bench_shared.py [-o REPORT_DIR] [--with-paper] [--force]

The same as ``occcodec bench ../shared/meshes -o REPORT_DIR --preset default`` (plus the
options given); about 24 shapes x 3 to 5 minutes on 2 CPU cores, so it is a script, not a
test. ``results.csv`` and ``results.md`` are rewritten after every shape: an interrupted run
leaves the shapes it finished.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.cli import main

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="bench-shared", help="report folder")
    ap.add_argument("--meshes", type=Path, default=ROOT.parent / "shared" / "meshes")
    ap.add_argument("--with-paper", action="store_true")
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    argv = ["bench", str(a.meshes), "-o", a.output, "--preset", "default", "--resolution", "128"]
    argv += ["--with-paper"] * a.with_paper + ["--force"] * a.force
    sys.exit(main(argv))
