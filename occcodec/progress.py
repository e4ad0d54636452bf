"""Progress reporting: the encoder calls a :class:`Progress`; the CLI shows it with rich."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichBar


class Progress:
    """Silent base: every hook is optional."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage starts (voxelize, reference, grid, setup, sample, search, train,
        quantize)."""

    def advance(self, text: str = "") -> None:
        """One unit of the current stage is done (a candidate, an epoch)."""

    def note(self, text: str) -> None:
        """A line worth keeping in the log (the fill mode picked, the device)."""

    def close(self) -> None:
        """Stop any live display."""


class RichProgress(Progress):
    """A live bar on stderr: stage, k of n, and the last candidate's or epoch's figures."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.bar = RichBar(TextColumn("[bold]{task.description:<10}"), BarColumn(),
                           TextColumn("{task.completed}/{task.total}"),
                           TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                           console=self.console, transient=True, disable=quiet)
        self.task: Any = None
        # A live bar only on a terminal; logs and pipes get the notes alone.
        self.live = not quiet and self.console.is_terminal
        self.started = False

    def stage(self, name: str, total: int | None = None) -> None:
        if not self.live:
            return
        if not self.started:
            self.bar.start()
            self.started = True
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(name, total=total or 1, info="")

    def advance(self, text: str = "") -> None:
        if self.task is not None:
            self.bar.update(self.task, advance=1, info=text)

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self.started:
            self.bar.stop()
            self.started = False


class StageClock(Progress):
    """Forwards every hook to ``inner`` and adds up the wall seconds of each stage by name.

    A stage lasts from its :meth:`stage` call to the next one (or to :meth:`close`); a name
    that comes back (``train`` for each fit) adds up. The time before the first stage
    (reading the input, making its frame) is ``load``. Scoring runs inside the stage it
    follows: a fit's decode and measurement count to ``train`` or ``quantize``.
    """

    def __init__(self, inner: Progress) -> None:
        self.inner = inner
        self.seconds: dict[str, float] = {}
        self._name: str | None = "load"
        self._since = time.perf_counter()

    def _stop(self) -> float:
        now = time.perf_counter()
        if self._name is not None:
            self.seconds[self._name] = self.seconds.get(self._name, 0.0) + now - self._since
            self._name = None
        return now

    def stage(self, name: str, total: int | None = None) -> None:
        self._name, self._since = name, self._stop()
        self.inner.stage(name, total)

    def advance(self, text: str = "") -> None:
        self.inner.advance(text)

    def note(self, text: str) -> None:
        self.inner.note(text)

    def close(self) -> None:
        self._stop()
        self.inner.close()

    def summary(self) -> str:
        """``"load 0.4 s, sample 20.1 s, ..."`` in the order the stages first came."""
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
