"""One exception hierarchy for everything a user can get wrong.

The CLI turns any :class:`OccError` into one line on stderr and a non-zero exit code, so
every message here must say what is wrong and what to do about it.
"""

from __future__ import annotations


class OccError(Exception):
    """Base class of every error occcodec reports to a user."""

    exit_code = 1


class InputError(OccError):
    """An input path or its contents cannot be used (missing, empty, not a shape, ...)."""

    exit_code = 2


class UsageError(OccError):
    """An option or combination of options is invalid."""

    exit_code = 2


class OutputError(OccError):
    """An output cannot be written (exists without --force, missing directory, ...)."""

    exit_code = 3


class FormatError(OccError):
    """A .occ file is malformed: wrong magic, truncated, failed checksum, bad header."""

    exit_code = 4


class VersionError(FormatError):
    """A .occ file was written by a newer major version of the format."""


class LimitError(OccError):
    """A file or request needs more work or memory than the configured limits allow.

    Not a format error: the file may be valid. The message names the limit and the
    ``--limit NAME=VALUE`` option that raises it.
    """

    exit_code = 5


class QualityError(OccError):
    """The encoder could not capture the shape: the decoded file would not be the shape.

    Raised instead of writing a file that decodes to nothing (or to a fraction of the
    shape); the message says what was measured and what to try.
    """

    exit_code = 1
