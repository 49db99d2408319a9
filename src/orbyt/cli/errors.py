"""`CliError`: an expected failure of a command, shown as one line (`orbyt: …`), exit 1."""

from __future__ import annotations


class CliError(Exception):
    """The message is the whole output: no traceback, no usage text."""

    exit_code = 1
