"""The batch's live display on stderr: an overall bar and one line per running worker.

On a terminal it is a rich live view (finished shapes scroll above it); elsewhere (a log
file, CI, a pipe) it prints one plain line per shape started and finished, so a log shows
what ran. ``quiet`` shows nothing.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class BatchView:
    """Shows ``total`` shapes being processed; ``verb`` names the work (encode, decode)."""

    def __init__(self, total: int, verb: str, quiet: bool = False,
                 console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.quiet = quiet
        self.live_mode = not quiet and self.console.is_terminal
        self.total, self.done, self.failed = total, 0, 0
        # A long speed window: shapes take tens of seconds, rich's default 30 s is too short.
        self.overall = Progress(TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[failed]}"), TextColumn("ETA"),
                                TimeRemainingColumn(), TimeElapsedColumn(),
                                console=self.console, speed_estimate_period=3600)
        self.workers = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                TextColumn("[cyan]{task.fields[stage]}"),
                                TextColumn("[dim]{task.fields[info]}"), TimeElapsedColumn(),
                                console=self.console)
        self.task = self.overall.add_task(verb, total=max(total, 1), failed="")
        self.rows: dict[int, Any] = {}
        self.live: Live | None = None

    def __enter__(self) -> BatchView:
        if self.live_mode:
            self.live = Live(Group(self.overall, self.workers), console=self.console,
                             transient=True, refresh_per_second=4)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def print(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False, markup=False, soft_wrap=True)

    def started(self, job_id: int, rel: str) -> None:
        if self.live_mode:
            self.rows[job_id] = self.workers.add_task(rel, total=None, stage="start", info="")
        else:
            self.print(f"start {rel}")

    def stage(self, job_id: int, name: str) -> None:
        if job_id in self.rows:
            self.workers.update(self.rows[job_id], stage=name, info="")

    def advance(self, job_id: int, text: str) -> None:
        if job_id in self.rows:
            self.workers.update(self.rows[job_id], info=text[:60])

    def finished(self, job_id: int, ok: bool, line: str) -> None:
        """A shape is done (ok or failed); ``line`` is kept in the scrollback."""
        if job_id in self.rows:
            self.workers.remove_task(self.rows.pop(job_id))
        self.done += 1
        self.failed += 0 if ok else 1
        self.overall.update(self.task, advance=1,
                            failed=f"[red]{self.failed} failed" if self.failed else "")
        self.print(f"[{self.done}/{self.total}] {line}")
