"""One exception root for everything taskrun reports to a user.

Each error carries the process exit code it stands for; the CLI catches
`TaskrunError` in one place and turns it into a message and that code.
A failing *task* is never an exception: it is a result with a status.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

EXIT_OK = 0
EXIT_TASKS_FAILED = 1  # a task of the plan failed, timed out or was skipped
EXIT_INVALID = 2  # the task file, the command line or the executor is unusable; nothing ran
EXIT_INTERNAL = 3  # taskrun itself failed (a bug, or results could not be written), or lost its Dask scheduler
EXIT_SIGHUP = 129
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class TaskrunError(Exception):
    """Base of every error taskrun reports; `exit_code` is what the process returns."""

    exit_code = EXIT_INTERNAL


class UsageError(TaskrunError):
    """The command line asks for something impossible (unknown task, bad flag value)."""

    exit_code = EXIT_INVALID


_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def show_path(path: str | os.PathLike) -> str:
    """A path as taskrun prints it: as it is, unless it holds a character that is not
    printable (a newline, an escape sequence, a byte that is not UTF-8); then quoted
    the way bash reads it back, `$'logs\\nold/build.stderr'`, so it stays on its line."""
    text = os.fspath(path)
    if text.isprintable():
        return text
    return "$'" + "".join(_escape(c) for c in text) + "'"


def _escape(c: str) -> str:
    if c in _ESCAPES:
        return _ESCAPES[c]
    if c.isprintable():
        return c
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8, kept by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One thing wrong with a task file, at a position (1-based line and column)."""

    line: int
    column: int
    path: str  # dotted key path, e.g. "tasks.build.timeout"; "" for the whole file
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{show_path(self.file)}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ExecutorError(TaskrunError):
    """The executor cannot be used (its package is missing, its scheduler is unreachable); nothing ran."""

    exit_code = EXIT_INVALID


class TaskFileError(TaskrunError):
    """The task file is invalid; holds every problem found, in file order (file by file,
    when an included file has problems too)."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.file, p))
        super().__init__("\n".join(str(p) for p in self.problems))


class OutputError(TaskrunError):
    """A result (summary, report) could not be written."""

    exit_code = EXIT_INTERNAL
