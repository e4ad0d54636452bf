"""Remake the README's bench table and comparison picture from the bundled samples.

    python tests/benchmarks/bench_readme.py [--work DIR] [--force]

Runs, through the CLI (the same code as the ``occcodec`` command)::

    occcodec bench samples -o WORK/bench-samples --preset default
    occcodec render WORK/bench-samples/occ/mug.occ --compare samples/mug.obj \\
        -o tests/benchmarks/results/compare.png --width 1200 --height 520

and copies the bench's ``results.md`` and plots into ``tests/benchmarks/results/bench-samples/`` (the encoded
files stay in WORK). Takes several minutes on 2 CPU cores. Not collected by pytest (the
file name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from occcodec.cli import main

#: The README picture must stay small enough to ship in the repository.
MAX_PNG_BYTES = 300_000


def run(*argv: object) -> None:
    code = main([str(a) for a in argv])
    if code != 0:
        raise SystemExit(f"occcodec {' '.join(map(str, argv))} exited with {code}")


def build(work: Path, force: bool) -> None:
    report = work / "bench-samples"
    run("bench", ROOT / "samples", "-o", report, "--preset", "default",
        *(["--force"] if force else []))
    docs = ROOT / "tests" / "benchmarks" / "results" / "bench-samples"
    docs.mkdir(parents=True, exist_ok=True)
    for item in report.iterdir():
        if item.suffix in (".md", ".png"):
            shutil.copy(item, docs / item.name)
    picture = ROOT / "tests" / "benchmarks" / "results" / "compare.png"
    run("render", report / "occ" / "mug.occ", "--compare", ROOT / "samples" / "mug.obj",
        "-o", picture, "--width", "1200", "--height", "520", "--force")
    size = picture.stat().st_size
    if size > MAX_PNG_BYTES:
        raise SystemExit(f"{picture} is {size:,} bytes, over {MAX_PNG_BYTES:,}")
    print(f"wrote {docs}/ and {picture} ({size:,} bytes)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, help="where the bench writes (default: a temp dir)")
    ap.add_argument("--force", action="store_true", help="reuse a non-empty --work report")
    a = ap.parse_args()
    if a.work:
        build(a.work, a.force)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            build(Path(tmp), a.force)
