"""Resource limits: the work a file may make a reader do, checked before anything is allocated.

A small file can declare a big job: 33 KB of header naming 63 layers of 4,096 units, or 663
bytes naming a 1024^3 grid. The format allows such files (``formats/occ-v1.md`` section
6.2: any width in 1..4096, any layer count), so refusing them is a reader's *budget*, not a
format error: :class:`~occcodec.errors.LimitError` names the limit and how to raise it.

========== ============ =====================================================================
limit      default      what it bounds
========== ============ =====================================================================
``file``   64 MiB       bytes of a ``.occ`` file read (and of any section)
``params`` 1,000,000    parameters of a network (occcodec writes at most a few ten thousand)
``grid``   1024         voxels along any axis of a grid decoded
``work``   2e12         multiply-adds of one decode: parameters x points evaluated (a dense
                        512^3 decode of a 7,000-parameter network is 9.4e11, about a minute
                        on 2 cores)
``memory`` 4 GiB        bytes of the arrays one dense decode holds at once
========== ============ =====================================================================

The command line raises a limit with ``--limit NAME=VALUE`` (before or after the command);
the Python API with :func:`raised`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from occcodec.errors import LimitError

__all__ = ["Limits", "check", "current", "parse_assignment", "raised"]


@dataclass(frozen=True)
class Limits:
    """The budget of one process (see the module's table)."""

    file: int = 64 << 20
    params: int = 1_000_000
    grid: int = 1024
    work: int = 2 * 10**12
    memory: int = 4 << 30


_current = Limits()

_UNITS = {"file": "bytes", "params": "parameters", "grid": "voxels per axis",
          "work": "multiply-adds", "memory": "bytes"}


def current() -> Limits:
    """The limits in force."""
    return _current


@contextlib.contextmanager
def raised(**changes: int) -> Iterator[Limits]:
    """Run a block under other limits, e.g. ``with raised(grid=2048, memory=16 << 30):``."""
    global _current
    before = _current
    _current = dataclasses.replace(_current, **changes)
    try:
        yield _current
    finally:
        _current = before


def set_limits(**changes: int) -> Limits:
    """Change the process's limits for good (the CLI's ``--limit``); returns the new ones."""
    global _current
    _current = dataclasses.replace(_current, **changes)
    return _current


def parse_assignment(text: str) -> tuple[str, int]:
    """``"params=2000000"`` -> ``("params", 2000000)``; ``1e12`` and ``4GiB``-free ints only.

    Raises
    ------
    LimitError
        If the name is unknown or the value is not a positive integer.
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or name not in _UNITS:
        raise LimitError(f"--limit {text!r}: use NAME=VALUE with NAME one of "
                         f"{', '.join(_UNITS)}")
    try:
        number = int(float(value)) if "e" in value.lower() else int(value)
    except ValueError:
        raise LimitError(f"--limit {text!r}: {value!r} is not a number") from None
    if number < 1:
        raise LimitError(f"--limit {text!r}: the value must be positive")
    return name, number


def check(name: str, needed: int, what: str, hint: str = "") -> None:
    """Raise :class:`LimitError` if ``needed`` exceeds limit ``name``.

    ``what`` says what needs it ("decoding 1024x1024x1024 voxels"); ``hint`` an alternative
    to raising the limit ("or decode at a lower --resolution").
    """
    limit = getattr(_current, name)
    if needed > limit:
        extra = f", {hint}" if hint else ""
        raise LimitError(f"{what} needs {needed:,} {_UNITS[name]}, above the {name} limit of "
                         f"{limit:,} (raise it with --limit {name}=N{extra})")
