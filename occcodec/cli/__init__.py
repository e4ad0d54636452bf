"""The command line: the only package that parses arguments.

:func:`main` (in :mod:`occcodec.cli.main`) dispatches to one module per subcommand
(``encode``, ``decode``, ``info``, ``batch``, ``eval``, ``bench``, ``render``), each a thin
``run(args)`` over the library; :mod:`occcodec.cli.options` holds what they share.
"""

from occcodec.cli.main import main

__all__ = ["main"]
