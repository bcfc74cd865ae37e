"""Lines for people: a start and an end line per task as it happens, the plan of
--dry-run, and the closing table. Plain text that reads well in a CI log;
colour only when asked for (a terminal without NO_COLOR, by default).

A closed output (`taskrun ... | head -1`) silences the console; the run goes on.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from typing import TextIO

from .durations import format_duration
from .model import AttemptResult, Plan, PlannedTask, Status, TaskResult

_COLORS = {"ok": "32", "fail": "31", "warn": "33", "dim": "2", "bold": "1"}


def want_color(stream: TextIO, choice: str = "auto") -> bool:
    if choice in ("always", "never"):
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def clock(ts: float | None = None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(time.time() if ts is None else ts))


def describe_attempt(result: AttemptResult) -> str:
    """`exit 0 in 5.02s`, `signal SIGKILL in 1.00s`, `timed out after 30s` ..."""
    if result.pid is None:
        return f"exit {result.exit_code} ({result.reason})"
    if result.timed_out:
        ended = f"signal {result.signal}" if result.signal else f"exit {result.exit_code}"
        how = f"{result.reason}; {ended} at {result.duration_s:.2f}s"
    elif result.exit_code is None:
        how = f"signal {result.signal} in {result.duration_s:.2f}s"
    else:
        how = f"exit {result.exit_code} in {result.duration_s:.2f}s"
    if result.stray_killed:
        how += f", {result.stray_killed} leftover process(es) killed"
    return how


class Console:
    """The listener that prints; also prints the plan and the closing report."""

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None,
                 width: int = 0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.color = want_color(self.stream) if color is None else color
        self.width = width

    # -- output ----------------------------------------------------------------

    def paint(self, text: str, style: str) -> str:
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if self.color else text

    def line(self, text: str = "") -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.stream = None  # the reader went away; the run and its record go on

    def name(self, name: str) -> str:
        return name.ljust(self.width)

    # -- the listener ----------------------------------------------------------

    def task_started(self, task: PlannedTask, attempt: int, pid: int | None) -> None:
        extra = f", attempt {attempt} of {task.spec.retries + 1}" if attempt > 1 else ""
        if pid is None:
            return  # it could not start: its end line says why
        self.line(f"{clock()} start {self.name(task.name)} (pid {pid}{extra})")

    def attempt_ended(self, task: PlannedTask, attempt: int, result: AttemptResult,
                      retry_in_s: float | None) -> None:
        if retry_in_s is None:
            return
        word = "timeout" if result.timed_out else "failed"
        self.line(f"{clock()} retry {self.name(task.name)} {self.paint(word, 'warn')} {describe_attempt(result)};"
                  f" attempt {attempt + 1} of {task.spec.retries + 1} in {format_duration(retry_in_s)}")

    def task_ended(self, result: TaskResult) -> None:
        status = result.status
        if not result.attempts or (status is Status.CANCELLED and not result.last.cancelled):
            word = "skip " if status is Status.SKIPPED else "cancel"
            self.line(f"{clock()} {word} {self.name(result.name)} {self.paint(status.value, 'warn')} ({result.reason})")
            return
        style = "ok" if status is Status.SUCCESS else ("warn" if result or status is Status.CANCELLED else "fail")
        label = "ok" if status is Status.SUCCESS else status.value.upper()
        if result.allow_failure and status in (Status.FAILED, Status.TIMEOUT):
            label += " (allowed)"
        self.line(f"{clock()} done  {self.name(result.name)} {self.paint(label, style)} {describe_attempt(result.last)}")

    # -- plan and report ---------------------------------------------------------

    def show_plan(self, plan: Plan, estimated=None) -> None:
        """The plan in order of readiness; with history, in the order the run will start them."""
        self.line(f"plan for {plan.taskfile.path}: {len(plan)} task(s), pool {plan.pool}"
                  f"{', fail_fast' if plan.fail_fast else ''}")
        by_name = {t.name: t for t in plan.tasks}
        width = max((len(n) for n in plan.order), default=4)
        order = plan.order
        if estimated is not None:
            from .plan import readiness_order

            order = readiness_order([t.spec for t in plan.tasks], estimated.priority)
        for i, name in enumerate(order, start=1):
            t = by_name[name]
            needs = ", ".join(t.spec.needs) or "-"
            retries = f"  retries {t.spec.retries}" if t.spec.retries else ""
            self.line(f"{i:>4}. {name.ljust(width)}  timeout {format_duration(t.timeout_s):<7} needs {needs}{retries}")
            cmd = t.spec.cmd if isinstance(t.spec.cmd, str) else shlex.join(t.spec.cmd)
            pad = " " * (width + 8)
            self.line(f"{pad}$ " + f"\n{pad}  ".join(cmd.rstrip("\n").splitlines()))
        if estimated is not None:
            self.line(f"estimated makespan {estimated.makespan_s:.2f}s on pool {plan.pool}"
                      f" (from {estimated.known} of {len(plan)} recorded durations)")
            self.line(f"critical path {estimated.critical_s:.2f}s: {' -> '.join(estimated.critical_path)}")

    def report(self, plan: Plan, results: list[TaskResult], *, duration_s: float,
               summary_path: str | None) -> None:
        rows = [("task", "status", "exit", "time", "tries")]
        for r in results:
            last = r.last
            code = "-" if last is None else (str(last.exit_code) if last.exit_code is not None else str(last.signal))
            secs = "-" if last is None else f"{last.duration_s:.2f}s"
            rows.append((r.name, r.status.value, code, secs, str(len(r.attempts))))
        widths = [max(len(row[i]) for row in rows) for i in range(5)]
        self.line()
        for row in rows:
            self.line("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        counts: dict[str, int] = {}
        for r in results:
            counts[r.status.value] = counts.get(r.status.value, 0) + 1
        words = {"success": "succeeded", "failed": "failed", "timeout": "timed out",
                 "skipped": "skipped", "cancelled": "cancelled"}
        parts = [f"{counts[s]} {words[s]}" for s in words if counts.get(s)]
        self.line(f"{', '.join(parts) or 'nothing to run'} in {duration_s:.2f}s (pool {plan.pool})")
        if summary_path:
            self.line(f"summary: {summary_path}")
