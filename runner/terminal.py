"""What a run asks of the terminal before anything starts: the `confirm:` questions,
and a terminal for `interactive:` tasks.

Both are settled before the backend is made, so a refusal (no terminal, a Dask
executor for an interactive task) or a "no" runs nothing. The questions are
asked on the controlling terminal (/dev/tty), else on stdin when it is one, in
file order, one per task; the default answer is no.
"""

from __future__ import annotations

import os

from .errors import UsageError
from .model import Plan

YES = ("y", "yes")


def _names(tasks) -> str:
    return ", ".join(repr(t.name) for t in tasks)


def refuse_interactive(plan: Plan, executor_kind: str, *, summary_on_stdout: bool = False) -> None:
    """Interactive tasks need taskrun's own terminal: stdin must be one, they run locally, and
    stdout is theirs (not the summary's: their output would corrupt it)."""
    interactive = [t for t in plan.tasks if t.spec.interactive]
    if not interactive:
        return
    one = len(interactive) == 1
    what, need = ("task", "needs") if one else ("tasks", "need")
    if executor_kind != "local":
        raise UsageError(f"interactive {what} {_names(interactive)} {need} taskrun's terminal and "
                         f"{'runs' if one else 'run'} on the local executor only, not on {executor_kind}: "
                         f"run {'it' if one else 'them'} with --executor local")
    if summary_on_stdout:
        raise UsageError(f"interactive {what} {_names(interactive)} {'writes' if one else 'write'} to taskrun's "
                         "stdout, where the summary "
                         "goes (-o -): write the summary to a file")
    if not os.isatty(0):
        raise UsageError(f"interactive {what} {_names(interactive)} {need} a terminal, and stdin is not one; "
                         "nothing ran (run taskrun from a terminal, or leave them out with --skip)")


def open_terminal() -> tuple[int, int, bool] | None:
    """(fd to read, fd to write, whether to close them) of the terminal, or None without one."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        return fd, fd, True
    except OSError:
        pass
    if os.isatty(0):
        return 0, 2, False
    return None


def read_line(fd: int) -> str | None:
    """One line typed on the terminal, without its newline; None at the end of input."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return None
        data += chunk
    return data.decode("utf-8", "replace").strip()


def confirm_plan(plan: Plan, *, yes: bool) -> str | None:
    """Ask each task's `confirm:` question; None when every answer is yes, else the reason the
    run is cancelled. Without a terminal (and without --yes) a UsageError names the tasks."""
    asking = [t for t in plan.tasks if t.spec.confirm is not None]
    if not asking or yes:
        return None
    terminal = open_terminal()
    if terminal is None:
        what = "task asks" if len(asking) == 1 else "tasks ask"
        raise UsageError(f"{what} for confirmation ({_names(asking)}) and there is no terminal to ask on; "
                         "nothing ran (answer yes with --yes)")
    read_fd, write_fd, close = terminal
    try:
        for t in asking:
            os.write(write_fd, f"taskrun: {t.name}: {t.spec.confirm} [y/N] ".encode("utf-8", "replace"))
            answer = read_line(read_fd)
            if answer is None:  # end of input: no answer, the default; end the prompt's line
                os.write(write_fd, b"\n")
            if (answer or "").lower() not in YES:
                return f"not confirmed: {t.name!r} asked {t.spec.confirm!r}, the answer was {answer or 'no'!r}"
    finally:
        if close:
            os.close(read_fd)
    return None
