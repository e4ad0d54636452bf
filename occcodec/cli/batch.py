"""``occcodec batch IN_DIR -o OUT_DIR``: every shape under a directory, resumably."""

from __future__ import annotations

import argparse
import json
from typing import Any

from occcodec.cli.options import add_encode_options, encode_options, int_range
from occcodec.errors import UsageError


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``batch`` to the subparsers."""
    p = sub.add_parser(
        "batch", help="compress every shape under a directory (resumable)",
        description="Encode every mesh or voxel file under IN_DIR into OUT_DIR, mirroring "
                    "the tree. Reruns skip shapes whose .occ is up to date and retry failed ones.")
    p.add_argument("input", metavar="IN_DIR", help="directory to walk (recursively)")
    p.add_argument("-o", "--output", metavar="OUT_DIR", required=True,
                   help="output directory (created); gets the .occ files and manifest.jsonl")
    p.add_argument("-j", "--jobs", type=int_range(1, 1024, "jobs"), metavar="N",
                   help="shapes encoded at once (default: one per core, as memory allows); "
                        "each gets cores/N threads unless --threads is given")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local worker processes (default) or tasks on a Ray cluster")
    p.add_argument("--address", metavar="ADDR",
                   help="Ray cluster address (default: RAY_ADDRESS, a running local cluster, "
                        "or a new local one)")
    p.add_argument("--force", action="store_true", help="re-encode shapes that are up to date")
    p.add_argument("--json", action="store_true",
                   help="print the summary and records as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    add_encode_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    """Exit 0 when nothing failed, 1 otherwise (130 on Ctrl-C)."""
    from occcodec.batch.run import (
        available_memory,
        encode_tree,
        prepare_dirs,
        print_summary,
        resolve_jobs,
        worker_bytes,
    )
    from occcodec.encoder.pipeline import default_threads
    from occcodec.fsutil import check_writable_dir

    if args.engine == "ray":
        from occcodec.batch.workers import import_ray

        import_ray()  # fail in one line, before any work, when the extra is missing
    elif args.address:
        raise UsageError("--address needs --engine ray")
    cores, memory = default_threads(), available_memory()
    jobs, threads = resolve_jobs(args.jobs, args.threads, cores, memory,
                                 worker_bytes(args.resolution))
    note = "" if args.jobs or args.engine == "ray" else (
        f"; default --jobs for {cores} core(s)"
        + (f" and {memory / 2**30:.0f} GiB free" if memory else ""))
    opts = encode_options(args, threads).resolved()  # bad options: now, not per shape
    src, dst = prepare_dirs(args.input, args.output)
    check_writable_dir(dst)  # a read-only output fails now, not after the first encode
    records, summary = encode_tree(src, dst, opts, jobs=jobs, threads=threads,
                                   engine=args.engine, address=args.address, force=args.force,
                                   quiet=args.quiet,
                                   jobs_given=args.jobs is not None, jobs_note=note)
    failures = [r for r in records if r["status"] == "failed"]
    if args.json:
        print(json.dumps({"summary": summary, "records": records}, indent=2))
    else:
        print_summary(summary, failures, f"occcodec batch {src} -> {dst}")
    return 1 if failures else 0
