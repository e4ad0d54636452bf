"""Where the shapes of a batch run: fresh local processes, in-process, or Ray tasks.

Every engine runs the same :func:`run_job` on a :class:`Job` and reports back
:class:`Event` s (a stage started, a unit advanced, the job finished or failed). The batch
driver (:mod:`occcodec.batch.run`) owns the queue, the display, the output files and the
manifest; an engine only runs jobs.

One process per shape, on every engine: TensorFlow fixes its thread pools once per process
(:func:`occcodec.encoder.tf.configure`) and a fresh process is what ``occcodec encode`` runs in,
so a batch gives the same bytes as ``encode`` with the same options and thread count. It also
isolates failures: a shape that crashes or exhausts memory takes only its own process down.
Encoded bytes come back to the driver, which alone writes into the output directory (so a
killed worker never leaves a partial ``.occ``, and a Ray cluster needs no shared disk).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, Protocol

from occcodec import heap
from occcodec.errors import OccError, UsageError
from occcodec.progress import Progress

RAY_MISSING = "the Ray engine needs the ray extra: pip install 'occcodec[ray]'"

#: Test hook: ``NAME`` or ``NAME@STAGE`` makes a local worker whose input file is named NAME
#: kill itself with SIGKILL when STAGE (default ``train``) starts, as the OOM killer would.
KILL_HOOK_ENV = "OCCCODEC_TEST_KILL_AT"

#: Seconds a worker gets to exit after SIGTERM before it is killed.
TERM_GRACE = 2.0


@dataclass
class Job:
    """One shape to process. ``kind`` is ``encode`` (returns bytes) or ``decode`` (writes dst)."""

    id: int
    kind: str
    rel: str
    src: str
    dst: str
    params: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    log: str | None = None


@dataclass
class Event:
    """``stage`` (text: name, total), ``advance`` (text), ``done`` or ``failed`` (reply)."""

    job: Job
    kind: str
    text: str = ""
    total: int | None = None
    reply: dict[str, Any] = field(default_factory=dict)


class Engine(Protocol):
    slots: int
    name: str

    def start(self, job: Job) -> None: ...
    def poll(self, timeout: float) -> list[Event]: ...
    def close(self) -> list[Job]: ...


# ----------------------------------------------------------------------------- the job


def failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "error": reason}


def run_job(job: Job, progress: Progress) -> dict[str, Any]:
    """Run one job in this process; never raises for a bad shape (returns a failed reply)."""
    try:
        if job.kind == "encode":
            return _encode(job, progress)
        if job.kind == "decode":
            return _decode(job, progress)
        raise ValueError(f"unknown job kind {job.kind!r}")
    except OccError as exc:
        return failed(str(exc))
    except MemoryError:
        return failed("out of memory: try a lower --resolution or fewer --jobs")
    except Exception as exc:  # a bug or a library crash on one shape must not stop the batch
        traceback.print_exc()  # into the worker's log
        return failed(f"internal error: {type(exc).__name__}: {exc}")


def _encode(job: Job, progress: Progress) -> dict[str, Any]:
    from occcodec.encoder.pipeline import EncodeOptions, encode

    res = encode(job.src, EncodeOptions(**job.params), progress)
    m = res.header["metrics"]
    return {"status": "ok", "data": res.data, "params": m["params"], "iou": m["iou"],
            "arch": res.label, "device": res.device, "seconds": res.seconds}


def _decode(job: Job, progress: Progress) -> dict[str, Any]:
    from occcodec import decoder

    t0 = time.perf_counter()
    progress.stage("read")
    coded = decoder.read(job.src)
    progress.stage("mesh" if Path(job.dst).suffix.lower() in decoder.MESH_OUTPUTS else "voxels")
    counts = decoder.write_output(coded, job.dst, job.params.get("resolution"), force=True)
    return {"status": "ok", "counts": counts, "out_bytes": os.path.getsize(job.dst),
            "seconds": time.perf_counter() - t0}


# ------------------------------------------------------------------- local processes


class _PipeProgress(Progress):
    """Forwards the encoder's stages to the driver; applies the test kill hook."""

    def __init__(self, conn: Connection, job: Job) -> None:
        self.conn, self.job = conn, job
        hook = os.environ.get(KILL_HOOK_ENV, "")
        name, _, stage = hook.partition("@")
        self.kill_at = (stage or "train") if name and name == Path(job.rel).name else None

    def stage(self, name: str, total: int | None = None) -> None:
        if name == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        self.conn.send(("stage", name, total))

    def advance(self, text: str = "") -> None:
        self.conn.send(("advance", text, None))


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the driver dies (no orphaned training)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(job: Job, conn: Connection) -> None:
    """Entry point of a spawned worker: run one job, send the reply, exit at once."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides when workers stop
    os.environ.update(job.env)
    heap.keep_freed_memory()  # a fresh process that ends after its job
    if job.log:  # TensorFlow's C++ logging writes to fd 2: keep it off the live display
        fd = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        reply = run_job(job, _PipeProgress(conn, job))
        conn.send(("result", "", reply))
    except (BrokenPipeError, EOFError, OSError):
        pass  # the driver is gone
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        # Skip interpreter teardown: TensorFlow's can take seconds or hang.
        os._exit(0)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _last_line(log: str | None) -> str:
    if not log:
        return ""
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, os.path.getsize(log) - 4096))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    lines = [ln.strip() for ln in lines if ln.strip()]
    return lines[-1][:300] if lines else ""


def death_reason(exitcode: int | None, log: str | None = None) -> str:
    """Why a worker process ended without a reply, in words a user can act on."""
    if exitcode is not None and exitcode < 0:
        sig = -exitcode
        hint = " (out of memory?)" if sig == signal.SIGKILL else ""
        why = f"worker killed by signal {sig} ({_signal_name(sig)}){hint}"
    else:
        why = f"worker exited with code {exitcode} without a result"
    last = _last_line(log)
    return f"{why}; its last output: {last}" if last and exitcode != -signal.SIGKILL else why


@dataclass
class _Running:
    job: Job
    proc: Any
    conn: Connection
    reply: dict[str, Any] | None = None
    eof: bool = False


class LocalEngine:
    """``slots`` fresh worker processes at a time (spawned: TensorFlow is not fork-safe)."""

    name = "local"

    def __init__(self, slots: int, env: dict[str, str] | None = None,
                 log_dir: str | None = None) -> None:
        self.slots = max(1, slots)
        self.env = dict(env or {})
        self.log_dir = log_dir
        self._ctx = mp.get_context("spawn")
        self._running: dict[int, _Running] = {}

    def start(self, job: Job) -> None:
        log = os.path.join(self.log_dir, f"{job.id}.log") if self.log_dir else None
        job = replace(job, env={**self.env, **job.env}, log=log)
        recv, send = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=_worker_main, args=(job, send), daemon=True,
                                 name=f"occcodec-worker-{job.id}")
        # An ignored SIGINT survives exec: a Ctrl-C at the terminal (sent to the whole
        # process group) reaches only the driver, which then stops the workers itself.
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            proc.start()
        finally:
            signal.signal(signal.SIGINT, old)
        send.close()
        self._running[job.id] = _Running(job, proc, recv)

    def _drain(self, run: _Running, events: list[Event]) -> None:
        try:
            while not run.eof and run.conn.poll():
                kind, text, extra = run.conn.recv()
                if kind == "result":
                    run.reply = extra
                elif kind == "stage":
                    events.append(Event(run.job, "stage", text, extra))
                else:
                    events.append(Event(run.job, "advance", text))
        except (EOFError, OSError):
            run.eof = True

    def poll(self, timeout: float) -> list[Event]:
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return []
        handles: list[Any] = []
        for run in self._running.values():
            handles += [run.proc.sentinel] + ([] if run.eof else [run.conn])
        wait(handles, timeout)
        events: list[Event] = []
        for run in list(self._running.values()):
            self._drain(run, events)
            if run.reply is None and run.proc.is_alive():
                continue
            # A reply arrives just before the process exits; a death without one is a kill.
            run.proc.join(TERM_GRACE)
            if run.proc.is_alive():
                run.proc.kill()
                run.proc.join()
            self._drain(run, events)
            reply = run.reply or failed(death_reason(run.proc.exitcode, run.job.log))
            events.append(Event(run.job, "done" if reply["status"] == "ok" else "failed",
                                reply=reply))
            run.conn.close()
            del self._running[run.job.id]
        return events

    def close(self) -> list[Job]:
        """Stop every running worker (SIGTERM, then SIGKILL); returns the jobs cut short."""
        runs = list(self._running.values())
        for run in runs:
            with contextlib.suppress(Exception):
                run.proc.terminate()
        deadline = time.monotonic() + TERM_GRACE
        for run in runs:
            run.proc.join(max(0.0, deadline - time.monotonic()))
            if run.proc.is_alive():
                run.proc.kill()
                run.proc.join()
            run.conn.close()
        self._running.clear()
        return [run.job for run in runs]


class InlineEngine:
    """Runs each job in this process, one at a time (decoding: fast, numpy only)."""

    name = "inline"
    slots = 1

    def __init__(self) -> None:
        self._job: Job | None = None

    def start(self, job: Job) -> None:
        self._job = job

    def poll(self, timeout: float) -> list[Event]:
        if self._job is None:
            time.sleep(min(timeout, 0.05))
            return []
        job, self._job = self._job, None
        reply = run_job(job, Progress())
        return [Event(job, "done" if reply["status"] == "ok" else "failed", reply=reply)]

    def close(self) -> list[Job]:
        job, self._job = self._job, None
        return [job] if job else []


# ------------------------------------------------------------------------------- Ray


def import_ray() -> Any:
    """The ``ray`` module, or a UsageError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


class _QueueProgress(Progress):
    def __init__(self, queue: Any, job_id: int) -> None:
        self.queue, self.job_id = queue, job_id

    def stage(self, name: str, total: int | None = None) -> None:
        with contextlib.suppress(Exception):  # progress is best effort, never a failure
            self.queue.put_nowait((self.job_id, name, total))


def _ray_task(job: Job, data: bytes, queue: Any) -> dict[str, Any]:
    """A Ray task: the input travels as bytes, so the cluster needs no shared disk."""
    import ray

    os.environ.update(job.env)
    with tempfile.TemporaryDirectory(prefix="occcodec-") as tmp:
        src = Path(tmp) / Path(job.rel).name  # the same name: the extension picks the reader
        src.write_bytes(data)
        reply = run_job(replace(job, src=str(src)), _QueueProgress(queue, job.id))
    if reply["status"] != "ok":  # name the user's file, not this node's temporary copy
        reply["error"] = reply["error"].replace(str(src), job.src)
    else:
        reply["device"] = f"{reply['device']} on {ray.util.get_node_ip_address()}"
    return reply


class RayEngine:
    """Each job a Ray task of ``threads`` CPUs (and one GPU where the cluster has any)."""

    name = "ray"

    def __init__(self, address: str | None, threads: int, jobs: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        import occcodec

        ray = import_ray()
        self.ray = ray
        self.owns = not ray.is_initialized()
        if self.owns:
            # py_modules ships this occcodec to every node (Ray allows uploads only here), so
            # the cluster encodes with the driver's code; with a Ray the caller initialised,
            # the workers must import occcodec themselves.
            addr = None if address in (None, "", "auto") else address
            ray.init(address=addr, log_to_driver=False, logging_level="ERROR",
                     runtime_env={"py_modules": [str(Path(occcodec.__file__).parent)]})
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        biggest = max((n.get("Resources", {}).get("CPU", 0) for n in nodes), default=0)
        if threads > biggest:
            self.close()
            raise UsageError(f"--threads {threads} is more than the largest Ray node's "
                             f"{int(biggest)} CPUs: lower it")
        res = ray.cluster_resources()
        gpus = int(res.get("GPU", 0))
        fit = max(1, int(res.get("CPU", 1)) // threads)
        self.slots = jobs or (min(fit, gpus) if gpus else fit)
        self.gpus = gpus
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        # max_calls=1: one process per shape, as locally (see the module docstring).
        self.remote = ray.remote(
            num_cpus=threads, num_gpus=1 if gpus else 0, max_calls=1, max_retries=1,
            runtime_env={"env_vars": dict(env or {})})(_ray_task)
        self._refs: dict[Any, Job] = {}

    def start(self, job: Job) -> None:
        data = Path(job.src).read_bytes()
        self._refs[self.remote.remote(job, data, self.queue)] = job

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        by_id = {job.id: job for job in self._refs.values()}
        with contextlib.suppress(Exception):
            for job_id, name, total in self.queue.get_nowait_batch(self.queue.qsize()):
                if job_id in by_id:
                    events.append(Event(by_id[job_id], "stage", name, total))
        if not self._refs:
            time.sleep(min(timeout, 0.05))
            return events
        ready, _ = self.ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        for ref in ready:
            job = self._refs.pop(ref)
            try:
                reply = self.ray.get(ref)
            except Exception as exc:  # a crashed worker, a lost node, OOM: this shape only
                reply = failed(f"Ray task failed: {type(exc).__name__}: "
                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
            events.append(Event(job, "done" if reply["status"] == "ok" else "failed",
                                reply=reply))
        return events

    def close(self) -> list[Job]:
        jobs = list(getattr(self, "_refs", {}).values())
        for ref in list(getattr(self, "_refs", {})):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        self._refs = {}
        if self.owns:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
        return jobs

