"""``occcodec batch``: compress a directory tree, resumably; ``decode`` of a directory.

How a batch runs
----------------
1. **Plan.** IN_DIR is walked recursively in sorted order (hidden files and folders, and
   OUT_DIR when it lies inside IN_DIR, are left out). A supported input ``a/b/c.obj`` becomes
   ``OUT_DIR/a/b/c.occ``; when two inputs of a folder share a stem (``c.obj`` and ``c.stl``)
   both keep their extension instead (``c.obj.occ``, ``c.stl.occ``), so a name never depends
   on which of them came first. Other files are listed once and recorded as skipped.
2. **Resume.** An existing ``.occ`` that parses, records the input's SHA-256 and exactly
   this run's encode options is up to date and skipped. An unreadable one, or one made from
   another input or other options, is re-encoded and replaced. ``--force`` re-encodes all.
   Failed inputs have no ``.occ``, so every rerun retries them.
3. **Run.** Each shape is encoded in a fresh worker (see :mod:`occcodec.batch.workers`) by
   :func:`occcodec.encoder.encode`, the code of ``occcodec encode``. Only this process
   writes into OUT_DIR, each ``.occ`` atomically (temporary file, then rename).
4. **Record.** ``OUT_DIR/manifest.jsonl`` holds one JSON record per input, sorted by path.
   It is rewritten atomically after every shape, so after a crash or Ctrl-C it is a
   complete, parseable snapshot; records of earlier runs are kept until replaced.

Threads: with ``--jobs N`` each worker gets ``max(1, cores // N)`` threads (``--threads``:
its scoring decodes; TensorFlow trains on one) unless ``--threads`` is given; ``--jobs 1``
uses ``encode``'s default (one per core). The files equal those of ``occcodec encode`` with
the same options whatever the thread count.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from occcodec.batch.plan import (
    MANIFEST,
    Item,
    check_existing,
    classify,
    new_record,
    plan,
    read_manifest,
    remove_temporaries,
    write_manifest,
)
from occcodec.batch.view import BatchView
from occcodec.batch.workers import Engine, Event, InlineEngine, Job, LocalEngine
from occcodec.errors import InputError, OccError, OutputError, UsageError

#: Memory one encoding worker needs (TensorFlow alone takes ~0.7 GiB): caps the default --jobs.
#: Measured peaks: 1.1 GB for the mug at 128^3; 2.3-3.2 GB for five meshes at 512^3
#: (``tests/benchmarks/results/encode-512/2026-12-03.md``), hence :data:`WORKER_BYTES_FINE`
#: above 128^3.
WORKER_BYTES = 3 << 29
WORKER_BYTES_FINE = 7 << 29
#: Environment of every worker: quiet TensorFlow; let several workers share one GPU.
WORKER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}

__all__ = ["MANIFEST", "available_memory", "check_existing", "decode_directory",
           "encode_tree", "plan", "prepare_dirs", "print_summary", "resolve_jobs",
           "worker_bytes"]


def worker_bytes(resolution: int) -> int:
    """The memory one worker is given at ``--resolution``."""
    return WORKER_BYTES if resolution <= 128 else WORKER_BYTES_FINE


def resolve_jobs(jobs: int | None, threads: int, cores: int, memory: int | None,
                 per_worker: int = WORKER_BYTES) -> tuple[int, int]:
    """(jobs, threads per job) for ``--jobs`` and ``--threads`` (0: default); ``memory``
    (free bytes) caps the default jobs at ``per_worker`` each."""
    if jobs is None:  # one job per core, each one thread, as far as memory allows:
        # TensorFlow trains on one thread anyway (measured on 2 cores: mug + spot at 128^3
        # in 61.9 s as two jobs of one thread, 102.6 s as one job of two; the same files)
        jobs = max(1, cores)
        if memory:
            jobs = max(1, min(jobs, memory // per_worker))
    if not threads:
        threads = cores if jobs == 1 else max(1, cores // jobs)
    return jobs, threads


def available_memory() -> int | None:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None

# ------------------------------------------------------------------------------- run


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a scheduler, ``kill``) stops a batch as cleanly as Ctrl-C does."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def run_jobs(engine: Engine, jobs: list[Job], view: BatchView,
             on_event: Any) -> None:
    """Feed ``jobs`` to ``engine`` and hand every finished one to ``on_event``.

    On any exception (KeyboardInterrupt included) the engine is closed, which stops the
    running workers, and the jobs cut short get their temporary files removed.
    """
    pending = deque(jobs)
    running: set[int] = set()
    try:
        while pending or running:
            while pending and len(running) < engine.slots:
                job = pending.popleft()
                view.started(job.id, job.rel)
                try:
                    engine.start(job)
                except OSError as exc:  # e.g. an input vanished before a Ray upload
                    on_event(Event(job, "failed", reply={"status": "failed",
                                                         "error": f"cannot start: {exc}"}))
                    continue
                running.add(job.id)
            for ev in engine.poll(0.25):
                if ev.kind == "stage":
                    view.stage(ev.job.id, ev.text)
                elif ev.kind == "advance":
                    view.advance(ev.job.id, ev.text)
                else:
                    running.discard(ev.job.id)
                    on_event(ev)
    finally:
        for job in engine.close():
            remove_temporaries(Path(job.dst))


def make_engine(name: str, jobs: int, threads: int, address: str | None,
                jobs_given: bool, log_dir: str) -> Engine:
    if name == "ray":
        from occcodec.batch.workers import RayEngine

        return RayEngine(address, threads, jobs if jobs_given else None, WORKER_ENV)
    if address:
        raise UsageError("--address needs --engine ray")
    return LocalEngine(jobs, WORKER_ENV, log_dir)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


def summarize(records: list[dict[str, Any]], encoded: int, seconds: float,
              extra: dict[str, Any]) -> dict[str, Any]:
    """Totals over this run's records; IoU and parameters over every shape with a ``.occ``."""
    have = [r for r in records if r["status"] in ("ok", "skipped") and r.get("occ_bytes")]
    ious = [r["iou"] for r in have if isinstance(r.get("iou"), (int, float))]
    params = [r["params"] for r in have if isinstance(r.get("params"), int)]
    counts = {"ok": 0, "up_to_date": 0, "failed": 0, "not_shapes": 0}
    for r in records:
        if r["status"] == "skipped":
            counts["up_to_date" if r.get("occ_bytes") else "not_shapes"] += 1
        else:
            counts[r["status"]] += 1
    in_bytes = sum(r["input_bytes"] or 0 for r in have)
    occ_bytes = sum(r["occ_bytes"] or 0 for r in have)
    return {**counts, **extra,
            "input_bytes": in_bytes, "occ_bytes": occ_bytes,
            "ratio": round(in_bytes / occ_bytes, 2) if occ_bytes else None,
            "mean_iou": sum(ious) / len(ious) if ious else None,
            "mean_params": sum(params) / len(params) if params else None,
            "seconds": round(seconds, 2),
            "shapes_per_hour": round(encoded * 3600 / seconds, 1) if encoded and seconds else None}


def print_summary(s: dict[str, Any], failures: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left", min_width=len(title))
    t.add_column(style="bold")
    t.add_column(justify="right")
    rows = [("encoded", f"{s['ok']:,}"), ("up to date (skipped)", f"{s['up_to_date']:,}"),
            ("failed", f"{s['failed']:,}"), ("not shapes (skipped)", f"{s['not_shapes']:,}"),
            ("input bytes", _fmt_bytes(s["input_bytes"])),
            (".occ bytes", _fmt_bytes(s["occ_bytes"])),
            ("ratio", f"{s['ratio']:,.1f} : 1" if s["ratio"] else "-"),
            ("mean IoU", f"{s['mean_iou'] * 100:.2f} %" if s["mean_iou"] is not None else "-"),
            ("mean parameters", f"{s['mean_params']:,.0f}" if s["mean_params"] else "-"),
            ("time", f"{s['seconds']:,.1f} s"),
            ("throughput", f"{s['shapes_per_hour']:,.1f} shapes/hour"
             if s["shapes_per_hour"] else "-"),
            ("workers", f"{s['jobs']} x {s['threads']} thread(s), {s['engine']} engine")]
    for k, v in rows:
        t.add_row(k, v)
    console = Console()
    console.print(t)
    if failures:
        f = Table(title="failed", title_justify="left")
        f.add_column("input")
        f.add_column("reason", overflow="fold")
        for r in failures:
            f.add_row(r["path"], r["error"] or "")
        console.print(f)

def _ok_line(rec: dict[str, Any]) -> str:
    return (f"ok {rec['path']}: {rec['occ_bytes']:,} B ({rec['ratio']:,.0f}:1), "
            f"{rec['params']:,} params, IoU {rec['iou'] * 100:.2f} %, {rec['seconds']:.1f} s")

class _Recorder:
    """Takes each finished encode: writes its ``.occ``, its record, the manifest, the view."""

    def __init__(self, items: list[Item], records: dict[str, dict[str, Any]],
                 manifest: Path, view: BatchView) -> None:
        self.items, self.records, self.manifest, self.view = items, records, manifest, view
        self.encoded = 0

    def __call__(self, ev: Event) -> None:
        from occcodec.fsutil import atomic_write_bytes

        it, reply = self.items[ev.job.id], ev.reply
        if ev.kind == "done":
            assert it.dst is not None
            try:
                it.dst.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(it.dst, reply["data"], force=True)
            except (OccError, OSError) as exc:
                reply = {"status": "failed", "error": f"cannot write {it.out_rel}: {exc}"}
        if reply["status"] == "ok":
            self.encoded += 1
            rec = new_record(it, "ok", occ_bytes=len(reply["data"]),
                             occ_sha256=hashlib.sha256(reply["data"]).hexdigest(),
                             params=reply["params"],
                             iou=reply["iou"], arch=reply["arch"],
                             seconds=round(reply["seconds"], 2), device=reply["device"],
                             **it.record)
            line = _ok_line(rec)
        else:
            rec = new_record(it, "failed", error=reply["error"], **it.record)
            line = f"failed {it.rel}: {reply['error']}"
        self.records[it.rel] = rec
        write_manifest(self.manifest, self.records)
        self.view.finished(ev.job.id, rec["status"] == "ok", line)


def encode_tree(in_dir: Path, out_dir: Path, options: Any, *, jobs: int, threads: int,
                engine: str = "local", address: str | None = None, force: bool = False,
                quiet: bool = False, jobs_given: bool = True, jobs_note: str = ""
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Encode every supported input under ``in_dir`` into ``out_dir``.

    ``options`` is an :class:`~occcodec.encoder.EncodeOptions` whose ``threads`` is set.
    Returns (this run's records in path order, summary).

    Raises
    ------
    KeyboardInterrupt
        After stopping the workers and saving the manifest; the next run resumes.
    """
    from occcodec.shapes.inputs import SUPPORTED_EXTENSIONS

    t0 = time.perf_counter()
    record = options.resolved().record()
    found, others = plan(in_dir, out_dir, SUPPORTED_EXTENSIONS, ".occ")
    manifest_path = out_dir / MANIFEST
    remove_temporaries(manifest_path)
    previous = read_manifest(manifest_path)
    known = {it.rel for it in found + others}  # inputs gone from IN_DIR are not reported
    records = {r: rec for r, rec in previous.items() if r in known}
    view = BatchView(0, "encode", quiet)
    if others:
        more = f" and {len(others) - 8} more" if len(others) > 8 else ""
        view.print(f"skipping {len(others)} file(s) that are not shapes: "
                   f"{', '.join(it.rel for it in others[:8])}{more}")
    for it in others:
        records[it.rel] = new_record(it, "skipped", note=f"not a supported input "
                                     f"({Path(it.rel).suffix or 'no extension'})")
    settled, todo = classify(found, previous, record, force)
    records.update(settled)
    write_manifest(manifest_path, records)

    job_list = [Job(i, "encode", it.rel, str(it.src), str(it.dst), record)
                for i, it in enumerate(todo)]
    view.total = len(job_list)
    view.overall.update(view.task, total=max(1, len(job_list)))
    recorder = _Recorder(todo, records, manifest_path, view)
    log_dir = tempfile.mkdtemp(prefix="occcodec-batch-")
    try:
        eng = make_engine(engine, jobs, threads, address, jobs_given, log_dir)
        up = sum(1 for r in settled.values() if r["status"] == "skipped")
        view.print(f"batch: {len(found)} shape(s) under {in_dir}: {up} up to date, "
                   f"{len(todo)} to encode, {eng.slots} at a time x {threads} "
                   f"thread(s) each ({engine} engine{jobs_note})")
        with sigterm_as_interrupt(), view:
            run_jobs(eng, job_list, view, recorder)
    except KeyboardInterrupt:
        view.print(f"interrupted: {view.done} of {len(job_list)} shape(s) finished; "
                   f"{MANIFEST} is up to date: rerun the same command to resume")
        raise
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    mine = [records[it.rel] for it in sorted(found + others, key=lambda i: i.rel)]
    summary = summarize(mine, recorder.encoded, time.perf_counter() - t0,
                        {"jobs": eng.slots, "threads": threads, "engine": engine})
    return mine, summary


def prepare_dirs(in_dir: str, out_dir: str) -> tuple[Path, Path]:
    src, dst = Path(in_dir), Path(out_dir)
    if not src.exists():
        raise InputError(f"{in_dir!r} does not exist: check the path")
    if not src.is_dir():
        raise InputError(f"{in_dir!r} is not a directory: use 'occcodec encode' for one file")
    if dst.exists() and not dst.is_dir():
        raise OutputError(f"output {out_dir!r} is a file: give a directory")
    try:
        dst.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {out_dir!r}: {exc.strerror or exc}") from None
    return src, dst


def decode_directory(in_dir: str, out_dir: str, fmt: str, resolution: int | None = None,
                     force: bool = False, jobs: int = 1, quiet: bool = False,
                     as_json: bool = False) -> int:
    """Decode every ``.occ`` under ``in_dir`` to ``out_dir`` as ``fmt``, mirroring the tree.

    An output newer than its ``.occ`` is up to date and skipped unless ``force``; files
    that are not ``.occ`` are listed once and skipped. With ``jobs`` > 1 the files are
    decoded in worker processes, else in this one. Returns the exit code: 0 when nothing
    failed, 1 otherwise.

    Raises
    ------
    UsageError
        If ``fmt`` is not an output format.
    InputError, OutputError
        If ``in_dir`` is not a directory or ``out_dir`` cannot be created.
    KeyboardInterrupt
        After stopping the workers; outputs already written are kept.
    """
    from occcodec.decoder import MESH_OUTPUTS, VOXEL_OUTPUTS

    suffix = "." + fmt.lower().lstrip(".")
    if suffix not in MESH_OUTPUTS + VOXEL_OUTPUTS:
        raise UsageError(f"cannot write {fmt!r}: use one of "
                         f"{', '.join(s[1:] for s in MESH_OUTPUTS + VOXEL_OUTPUTS)}")
    if resolution is not None:
        from occcodec.shapes.frame import check_decode_resolution

        check_decode_resolution(resolution)
    t0 = time.perf_counter()
    src, dst = prepare_dirs(in_dir, out_dir)
    found, others = plan(src, dst, frozenset({".occ"}), suffix)
    view = BatchView(0, "decode", quiet)
    if others:
        view.print(f"skipping {len(others)} file(s) that are not .occ: "
                   + ", ".join(it.rel for it in others[:8]) + (" ..." if len(others) > 8 else ""))
    records: dict[str, dict[str, Any]] = {}
    for it in others:
        records[it.rel] = {"path": it.rel, "output": None, "status": "skipped",
                           "note": "not a .occ file", "error": None}
    todo: list[Item] = []
    for it in found:
        assert it.dst is not None
        remove_temporaries(it.dst)
        with contextlib.suppress(OSError):
            if not force and it.dst.stat().st_mtime >= it.src.stat().st_mtime:
                records[it.rel] = {"path": it.rel, "output": it.out_rel, "status": "skipped",
                                   "note": "up to date", "error": None,
                                   "out_bytes": it.dst.stat().st_size}
                continue
        todo.append(it)
    by_id = dict(enumerate(todo))
    view.total = len(todo)
    view.overall.update(view.task, total=max(1, len(todo)))
    done = 0

    def on_event(ev: Event) -> None:
        nonlocal done
        it, reply = by_id[ev.job.id], ev.reply
        rec: dict[str, Any] = {"path": it.rel, "output": it.out_rel, "status": reply["status"],
                               "note": None, "error": reply.get("error")}
        if reply["status"] == "ok":
            done += 1
            rec.update(reply["counts"], out_bytes=reply["out_bytes"],
                       seconds=round(reply["seconds"], 3))
            what = ", ".join(f"{v:,} {k}" for k, v in reply["counts"].items())
            line = f"ok {it.rel} -> {it.out_rel}: {what}"
        else:
            line = f"failed {it.rel}: {reply['error']}"
        records[it.rel] = rec
        view.finished(ev.job.id, reply["status"] == "ok", line)

    job_list = []
    for i, it in by_id.items():
        assert it.dst is not None
        it.dst.parent.mkdir(parents=True, exist_ok=True)
        job_list.append(Job(i, "decode", it.rel, str(it.src), str(it.dst),
                            {"resolution": resolution}))
    log_dir = tempfile.mkdtemp(prefix="occcodec-decode-")
    engine: Engine = InlineEngine() if jobs <= 1 else LocalEngine(jobs, WORKER_ENV, log_dir)
    try:
        with sigterm_as_interrupt(), view:
            run_jobs(engine, job_list, view, on_event)
    except KeyboardInterrupt:
        view.print(f"interrupted: {done} of {len(job_list)} file(s) decoded; rerun to finish")
        raise
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)
    rows = [records[k] for k in sorted(records)]
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "skipped", "failed")}
    secs = time.perf_counter() - t0
    summary = {**counts, "out_bytes": sum(r.get("out_bytes") or 0 for r in rows),
               "seconds": round(secs, 2),
               "files_per_hour": round(done * 3600 / secs, 1) if done and secs else None}
    failures = [r for r in rows if r["status"] == "failed"]
    if as_json:
        print(json.dumps({"summary": summary, "records": rows}, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        title = f"occcodec decode {src} -> {dst}"
        t = Table(title=title, show_header=False, title_justify="left", min_width=len(title))
        t.add_column(style="bold")
        t.add_column(justify="right")
        for k, v in (("decoded", f"{counts['ok']:,}"), ("skipped", f"{counts['skipped']:,}"),
                     ("failed", f"{counts['failed']:,}"),
                     ("output bytes", _fmt_bytes(summary["out_bytes"] or 0)),
                     ("time", f"{secs:,.1f} s")):
            t.add_row(k, v)
        Console().print(t)
        for r in failures:
            print(f"failed {r['path']}: {r['error']}")
    return 1 if failures else 0
