"""Safe file output: never overwrite without ``force``, never leave a half-written file.

Every writer in occcodec goes through :func:`atomic_output`: the data is written to a
temporary file in the destination directory and renamed over the target only when complete.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from occcodec.errors import OutputError


def check_output_path(path: str | os.PathLike[str], force: bool) -> Path:
    """Validate that ``path`` can be written.

    Raises
    ------
    OutputError
        If the parent directory does not exist, the path is a directory, or the file exists
        and ``force`` is false.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {str(parent)!r} does not exist: create it first")
    if p.is_dir():
        raise OutputError(f"output {str(p)!r} is a directory: give a file name")
    if p.exists() and not force:
        raise OutputError(f"output {str(p)!r} already exists: use --force to overwrite it")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the target's suffix so that writers choosing a format by
    extension (trimesh's exporters) pick the right one. On any exception the temporary file
    is removed and the target is untouched.

    Raises
    ------
    OutputError
        As :func:`check_output_path`.
    """
    target = check_output_path(path, force)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent or "."
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates 0600; give the output the permissions a plain open() would.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield tmp
        if not force and target.exists():
            raise OutputError(f"output {str(target)!r} appeared while writing: use --force")
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, force) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)
