"""Files in and out: one input check, one atomic writer, one file hash.

Inputs: :func:`check_input_file` is the one test that a path names an existing, readable,
non-empty regular file (the decoder, the voxel readers and the mesh loader all use it), and
:func:`read_input_bytes` reads one with the same messages.

Outputs: never overwrite without ``force``, never leave a half-written file. Every writer
in occcodec goes through :func:`atomic_output`: the data is written to a temporary file in
the destination directory and renamed over the target only when complete.
:func:`atomic_write_bytes` and :func:`atomic_open` are its two usual shapes (bytes in hand;
a writer that wants a file object).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from occcodec.errors import InputError, OutputError

#: What a user is asked for when a path is a directory or not a regular file.
_DEFAULT_KIND = "a mesh or voxel file"


def check_input_file(path: str | os.PathLike[str], kind: str = _DEFAULT_KIND) -> Path:
    """Check that ``path`` is an existing, readable, non-empty regular file.

    ``kind`` names what the user should give instead of a directory (e.g. ``"a .occ file"``).

    Raises
    ------
    InputError
        If the path is missing, a directory, not a regular file, unreadable or empty.
    """
    p = Path(path)
    where = f"input {str(p)!r}"
    if not p.exists():
        raise InputError(f"{where} does not exist: check the path")
    if p.is_dir():
        raise InputError(f"{where} is a directory: give {kind}")
    if not p.is_file():
        raise InputError(f"{where} is not a regular file: give {kind}")
    try:
        # Opening is the only reliable readability test (os.access lies for root and ACLs).
        with open(p, "rb") as fh:
            first = fh.read(1)
    except OSError as exc:
        raise InputError(f"{where} cannot be read ({_reason(exc)}): check its permissions"
                         ) from None
    if not first:
        raise InputError(f"{where} is empty (0 bytes): give a non-empty file")
    return p


def read_input_bytes(path: str | os.PathLike[str], kind: str = _DEFAULT_KIND) -> bytes:
    """The whole content of an input file, checked as :func:`check_input_file`.

    Raises
    ------
    InputError
        As :func:`check_input_file`, or if the read fails or finds the file emptied.
    """
    p = check_input_file(path, kind)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"input {str(p)!r} cannot be read ({_reason(exc)})") from None
    if not data:  # emptied between the check and the read
        raise InputError(f"input {str(p)!r} is empty (0 bytes): give a non-empty file")
    return data


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (``hashlib.file_digest``: buffered, no Python loop).

    Raises
    ------
    OSError
        If the file cannot be opened or read (callers check inputs first).
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_writable_dir(directory: str | os.PathLike[str]) -> Path:
    """Check that files can be created in ``directory`` by creating and removing a probe.

    Creating a file is the only reliable test: ``os.access`` is wrong for root, ACLs,
    read-only mounts and pseudo file systems such as ``/proc`` (which list as directories
    but refuse new files). Every command that writes calls this (through
    :func:`check_output_path`) before any work, so an unwritable target fails in a second,
    not after minutes of training.

    Raises
    ------
    OutputError
        If ``directory`` is missing, not a directory, or refuses a new file.
    """
    d = Path(directory) if str(directory) else Path(".")
    if not d.is_dir():
        raise OutputError(f"output directory {str(d)!r} does not exist: create it first")
    try:
        fd, probe = tempfile.mkstemp(prefix=".occcodec-probe-", suffix=".tmp", dir=d)
    except OSError as exc:
        raise OutputError(f"output directory {str(d)!r} is not writable ({_reason(exc)}): "
                          "choose another output or fix its permissions") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return d


def check_output_path(path: str | os.PathLike[str], force: bool) -> Path:
    """Validate that ``path`` can be written: its directory takes a new file
    (:func:`check_writable_dir`), it is not a directory, and it exists only with ``force``.

    Raises
    ------
    OutputError
        If the parent directory does not exist or is not writable, the path is a directory,
        or the file exists and ``force`` is false.
    """
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"output {str(p)!r} is a directory: give a file name")
    if p.exists() and not force:
        raise OutputError(f"output {str(p)!r} already exists: use --force to overwrite it")
    check_writable_dir(p.parent if str(p.parent) else Path("."))
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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], force: bool = False) -> Iterator[IO[bytes]]:
    """Yield a binary file object whose content becomes ``path`` atomically on success.

    The data is flushed and fsynced before the rename, so after a crash the target holds
    either its old content or the complete new one.

    Raises
    ------
    OutputError
        As :func:`check_output_path`.
    """
    with atomic_output(path, force) as tmp, open(tmp, "wb") as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`).

    Raises
    ------
    OutputError
        As :func:`check_output_path`.
    """
    with atomic_open(path, force) as fh:
        fh.write(data)
    return Path(path)
