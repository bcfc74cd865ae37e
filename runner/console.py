"""Lines for people: a start and an end line per task as it happens, the tasks'
own output (mode `stream`: live, prefixed; `group`: one block per task when it
ends; `quiet`: none), each command echoed before its output (`build $ make`;
a step's where the process layer's record of steps says it started), the plan
of --dry-run, and the closing report. Plain text
that reads well in a CI log; colour only when asked for (a terminal without
NO_COLOR, by default); on a terminal, a status area at the bottom.

The console is the scheduler's listener and its pump: the loop calls `poll`
at least every `poll_interval_s`, and the console reads what the running tasks
wrote to their log files since (see `output`).

A closed output (`taskrun ... | head -1`) silences the console; the run goes on.
Every line goes through the run's `Masker` (secret values never print). In
GitHub Actions (`github=True`), task output the console echoes (streamed,
grouped, or the failed tasks' last lines) is fenced with
`::stop-commands::TOKEN` ... `::TOKEN::` (a fresh random token per run), so a
task cannot issue workflow commands (`::add-mask::`, `::error::`, `##[...]`);
taskrun's own lines, its folds and annotations, are written outside the fence.
"""

from __future__ import annotations

import codecs
import json
import os
import shlex
import sys
import time
import uuid
from typing import TextIO

from .durations import format_duration
from .model import AttemptResult, AttemptSpec, Plan, PlannedTask, Status, TaskResult, status_counts
from .secrets import NO_MASK, Masker
from .output import (CHUNK, LogFollower, fold_end, fold_start, gitlab_section_id, read_tail_bytes, render,
                     render_chunk, task_color)

STREAM_POLL_S = 0.05  # how often the running tasks' logs are read in `stream` mode
REPORT_TAIL_LINES = 10  # lines of a failed task's output in the closing report

_COLORS = {"ok": "32", "fail": "31", "warn": "33", "dim": "2", "bold": "1"}


def want_color(stream: TextIO, choice: str = "auto") -> bool:
    """`--color always|never` wins; then NO_COLOR (off), FORCE_COLOR (on); then: is it a terminal."""
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


def is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


_SECOND: list = [None, ""]  # the last whole second shown, and its text


def clock(ts: float | None = None) -> str:
    whole = int(time.time() if ts is None else ts)
    if whole != _SECOND[0]:
        _SECOND[0], _SECOND[1] = whole, time.strftime("%H:%M:%S", time.localtime(whole))
    return _SECOND[1]


def describe_attempt(result: AttemptResult) -> str:
    """`exit 0 in 5.02s`, `signal SIGKILL in 1.00s`, `timed out after 30s` ..."""
    where = f" on {result.worker}" if result.worker else ""
    if result.exit_code is None and result.signal is None:  # it never ended on its own: a worker was lost
        return f"({result.reason}){where}"
    step = result.failing_step
    if step is not None:  # the step that ended the attempt: `exit 2 in 0.31s at step 2 (lint)`
        where = f" at step {step.index} ({step.label})" + where
    if result.pid is None:
        return f"exit {result.exit_code} ({result.reason}){where}"
    if result.timed_out:
        ended = f"signal {result.signal}" if result.signal else f"exit {result.exit_code}"
        how = f"{result.reason}; {ended} at {result.duration_s:.2f}s"
    elif result.exit_code is None:
        how = f"signal {result.signal} in {result.duration_s:.2f}s"
    else:
        how = f"exit {result.exit_code} in {result.duration_s:.2f}s"
    if result.stray_killed:
        how += f", {result.stray_killed} leftover process(es) killed"
    return how + where


class Console:
    """The listener that prints (and the pump that follows the logs); also prints
    the plan and the closing report.

    `mode`: stream | group | quiet. `ci`: "github" | "gitlab" | None, for folded
    group blocks. `live`: draw the status area (a terminal only).
    """

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None, width: int = 0,
                 mode: str = "stream", ci: str | None = None, live: bool = False, total: int = 0,
                 remote: bool = False, masker: Masker = NO_MASK, github: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.masker = masker
        self._fence = uuid.uuid4().hex if github else None  # the stop-commands token
        self._fenced = False  # task output is being echoed: workflow commands are off
        self.remote = remote  # attempts start on a cluster: their pid is not known here
        self.color = want_color(self.stream) if color is None else color
        self.width = width
        self.mode = mode
        self.ci = ci
        self.total = total
        self._want_live = live
        self._live = None
        self._raw = getattr(self.stream, "buffer", None)
        self._encoding = getattr(self.stream, "encoding", None) or "utf-8"
        self._utf8 = codecs.lookup(self._encoding).name == "utf-8"
        # (task, attempt) -> [(follower, prefix), (follower, prefix)] for stdout and stderr
        self._followed: dict[tuple[str, int], list[tuple[LogFollower, bytes]]] = {}
        self._echo: dict[tuple[str, int], _Echo] = {}  # (task, attempt) -> its commands to echo
        self._pending: dict[str, tuple[int, list[tuple[LogFollower, bytes]]]] = {}  # group: block awaiting its header
        self._backlog = False
        self._running: dict[str, float] = {}  # task -> monotonic start of its attempt
        self._ended = 0
        self._failed = 0

    # -- output ----------------------------------------------------------------

    def paint(self, text: str, style: str) -> str:
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if self.color else text

    def write(self, text: str) -> None:
        """Write console text (whole lines) and flush it."""
        self.write_bytes(text.encode("utf-8", "replace"))

    def write_bytes(self, data: bytes) -> None:
        """Write console text as UTF-8 bytes (whole lines) and flush it."""
        self.write_pieces([data])

    def write_output(self, pieces: list) -> None:
        """Echo task output (UTF-8 buffers, together whole lines): fenced in GitHub Actions."""
        if self._fence and not self._fenced and self.stream is not None:
            self._fenced = True
            pieces = [f"::stop-commands::{self._fence}\n".encode(), *pieces]
        self._write(pieces)

    def unfence(self) -> None:
        """Let workflow commands work again (before taskrun's own lines, and at the end)."""
        if self._fenced:
            self._fenced = False
            self._write([f"::{self._fence}::\n".encode()])

    def write_pieces(self, pieces: list) -> None:
        """Write console text given as UTF-8 buffers (together whole lines), in one system call."""
        if self._fenced:
            pieces = [f"::{self._fence}::\n".encode(), *pieces]
            self._fenced = False
        self._write(pieces)

    def _write(self, pieces: list) -> None:
        if self.stream is None:
            return
        if self.masker:
            pieces = [self.masker.mask_bytes(b"".join(pieces))]
        try:
            if self._live is not None:
                self._live.write(b"".join(pieces).decode("utf-8", "replace"))
            elif self._raw is not None and self._utf8:
                self._raw.flush()  # nothing may stay behind in Python's buffer
                _writev(self._raw.fileno(), pieces)
            else:
                text = b"".join(pieces).decode("utf-8", "replace")
                if self._raw is not None:
                    self._raw.write(text.encode(self._encoding, "replace"))
                    self._raw.flush()
                else:
                    self.stream.write(text)
                    self.stream.flush()
        except (BrokenPipeError, ValueError, OSError):
            self.stream = None  # the reader went away; the run and its record go on

    def line(self, text: str = "") -> None:
        self.write(text + "\n")

    def name(self, name: str, *, color: bool = True) -> str:
        padded = name.ljust(self.width)
        return f"\x1b[{task_color(name)}m{padded}\x1b[0m" if self.color and color else padded

    def prefix(self, name: str, stderr: bool) -> bytes:
        """`build | ` before a line of stdout, `build ! ` before a line of stderr."""
        mark = self.paint("!", "fail") if stderr else "|"
        return f"{self.name(name)} {mark} ".encode()

    # -- the live area -----------------------------------------------------------

    def _start_live(self) -> None:
        if self._want_live and self._live is None and self.stream is not None:
            self._want_live = False  # once
            from .live import LiveArea

            self._live = LiveArea(self.stream, color=self.color, status=self._status)

    def _status(self) -> tuple[str, list[tuple[str, float, str | None]]]:
        progress = f"{self._ended}/{self.total} done, {len(self._running)} running"
        if self._failed:
            progress += f", {self._failed} failed"
        return progress, [(n, t, task_color(n)) for n, t in self._running.items()]

    def _changed(self) -> None:
        if self._live is not None:
            self._live.changed()

    def close(self) -> None:
        """Erase the status area (idempotent); the console stays usable."""
        self.unfence()
        live, self._live = self._live, None
        self._want_live = False
        if live is not None:
            try:
                live.close()
            except (BrokenPipeError, ValueError, OSError):
                self.stream = None

    # -- the pump ------------------------------------------------------------------

    @property
    def poll_interval_s(self) -> float | None:
        if self._backlog:
            return 0.0
        if self.mode == "stream" and self._followed:
            return STREAM_POLL_S
        if self._live is not None:
            return 0.1
        return None

    def follow(self, spec: AttemptSpec) -> None:
        """An attempt started: its log files are to be followed (not in quiet mode)."""
        if self.mode == "quiet":
            return
        self._followed[(spec.task, spec.attempt)] = [
            (LogFollower(spec.stdout_path), self.prefix(spec.task, False)),
            (LogFollower(spec.stderr_path), self.prefix(spec.task, True)),
        ]
        if spec.steps_path is not None:  # each step's start is announced there (see `_Echo`)
            self._echo[(spec.task, spec.attempt)] = _Echo(spec.task, LogFollower(spec.steps_path))

    def poll(self) -> None:
        """Print what the running tasks wrote since the last poll (stream mode)."""
        if self.mode == "stream" and self.stream is not None:
            backlog = False
            for key, files in self._followed.items():
                echo = self._echo.get(key)
                bounds = self._echo_due(key, echo, files) if echo is not None else None
                for i, (follower, prefix) in enumerate(files):
                    limit = CHUNK if bounds is None else min(CHUNK, bounds[i] - follower.offset)
                    if limit <= 0:
                        continue
                    carry, data, end, more = follower.read(limit)
                    if end:
                        self.write_output(render_chunk(carry, data, end, prefix))
                    cut = follower.take_cut()
                    if cut:
                        self.write_output([render(cut, prefix)])
                    backlog = backlog or more
            self._backlog = backlog
        if self._live is not None:
            self._live.refresh()

    def _drain(self, files: list[tuple[LogFollower, bytes]], echo: _Echo | None = None) -> None:
        if echo is not None:
            self._echo_due(None, echo, files)
            if echo.marks is not None:
                echo.marks.close()
        for follower, prefix in files:
            if self.stream is None:  # nobody reads the console any more
                follower.close()
                continue
            for carry, data, end in follower.drain():
                self.write_output(render_chunk(carry, data, end, prefix))

    def _block(self, header: str, files: list[tuple[LogFollower, bytes]], task: str, attempt: int,
               ok: bool) -> None:
        """Group mode: the header, then the attempt's stdout, then its stderr (step by step, each
        after its command, for a task with steps); folded in CI."""
        echo = self._echo.pop((task, attempt), None)
        if echo is None and not any(_size(f.path) for f, _ in files):
            self.line(header)
            for f, _ in files:
                f.close()
            return
        now = time.time()
        section = gitlab_section_id(task, attempt)
        if self.ci:
            self.write(fold_start(self.ci, header, section, now, collapsed=ok))
        else:
            self.line(header)
        self._drain(files, echo)
        self.write(fold_end(self.ci, section, time.time()))

    # -- the listener ----------------------------------------------------------

    def task_started(self, task: PlannedTask, attempt: int, pid: int | None) -> None:
        self._start_live()
        self._plan_echo(task, attempt)
        extra = f", attempt {attempt} of {task.spec.retries + 1}" if attempt > 1 else ""
        if pid is None and not self.remote:
            return  # it could not start: its end line says why
        self._running[task.name] = time.monotonic()
        self._changed()
        where = "sent to the cluster" if pid is None else f"pid {pid}"
        self.line(f"{clock()} start {self.name(task.name)} ({where}{extra})")

    def attempt_ended(self, task: PlannedTask, attempt: int, result: AttemptResult,
                      retry_in_s: float | None) -> None:
        self._running.pop(task.name, None)
        self._changed()
        files = self._followed.pop((task.name, attempt), None)
        if files and self.mode == "stream":
            self._drain(files, self._echo.pop((task.name, attempt), None))  # every line before its end line
        if retry_in_s is None:
            if files and self.mode == "group":
                self._pending[task.name] = (attempt, files)
            return
        word = "timeout" if result.timed_out else "failed"
        header = (f"{clock()} retry {self.name(task.name, color=not self.ci)} {self.paint(word, 'warn')}"
                  f" {describe_attempt(result)}; attempt {attempt + 1} of {task.spec.retries + 1}"
                  f" in {format_duration(retry_in_s)}")
        if files and self.mode == "group":
            self._block(header, files, task.name, attempt, ok=False)
        else:
            self.line(header)

    def task_ended(self, result: TaskResult) -> None:
        self._ended += 1
        self._changed()
        status = result.status
        if status in (Status.FAILED, Status.TIMEOUT):
            self._failed += 1
        if not result.attempts or (status is Status.CANCELLED and not result.last.cancelled):
            word = "skip " if status is Status.SKIPPED else "cancel"
            self.line(f"{clock()} {word} {self.name(result.name)} {self.paint(status.value, 'warn')} ({result.reason})")
            return
        style = "ok" if status is Status.SUCCESS else ("warn" if result or status is Status.CANCELLED else "fail")
        label = "ok" if status is Status.SUCCESS else status.value.upper()
        if result.allow_failure and status in (Status.FAILED, Status.TIMEOUT):
            label += " (allowed)"
        pending = self._pending.pop(result.name, None)
        if pending is None:
            self.line(f"{clock()} done  {self.name(result.name)} {self.paint(label, style)} {describe_attempt(result.last)}")
            return
        # A folded block's title is shown by the CI as it is: no colour there.
        color, self.color = self.color, self.color and not self.ci
        header = f"{clock()} done  {self.name(result.name)} {self.paint(label, style)} {describe_attempt(result.last)}"
        self.color = color
        self._block(header, pending[1], result.name, pending[0], ok=status is Status.SUCCESS)

    # -- commands echoed --------------------------------------------------------------

    def _plan_echo(self, task: PlannedTask, attempt: int) -> None:
        """What to echo of an attempt being followed: its command, at the start of its logs; or
        each step's, where the process layer's record of steps says the step started."""
        key = (task.name, attempt)
        if task.silent or key not in self._followed:
            self._echo.pop(key, None)
            return
        if task.steps:
            if key in self._echo:
                self._echo[key].shown = [s.shown for s in task.steps]
            return
        from .plan import shown_command

        self._echo[key] = _Echo(task.name, None, [shown_command(task.spec.cmd)], [(1, 0, 0)])

    def _echo_due(self, key, echo: _Echo, files: list[tuple[LogFollower, bytes]]) -> list[int] | None:
        """Echo the commands whose start is known, each after the output written before it.
        Returns how far the logs may be read now (their sizes before the record was read: any
        later output may belong to a step whose start is not read yet), or None: no limit."""
        bounds = None
        if echo.marks is not None:
            bounds = [_size(f.path) for f, _ in files]
            echo.read_marks()
        for step, *offsets in echo.due:
            for (follower, prefix), offset in zip(files, offsets):
                for carry, data, end in follower.upto(offset):
                    self.write_output(render_chunk(carry, data, end, prefix))
            # With the output it introduces: in GitHub Actions, inside the fence against workflow commands.
            self.write_output([self._echo_line(echo.task, echo.shown[step - 1] if step <= len(echo.shown) else "")
                               .encode("utf-8", "replace")])
        echo.due.clear()
        if echo.marks is None and key is not None:
            del self._echo[key]  # nothing more to announce: the logs are read as usual
        return bounds

    def _echo_line(self, task: str, command: str) -> str:
        """`build $ go build ./...`; the lines of a multi-line command after the first get `>`,
        as a shell's continuation prompt."""
        name = self.name(task)
        lines = command.rstrip("\n").splitlines() or [""]
        head = f"{name} {self.paint('$', 'dim')} "
        more = f"{name} {self.paint('>', 'dim')} "
        return head + lines[0] + "".join(f"\n{more}{line}" for line in lines[1:]) + "\n"

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
            if t.spec.resources:
                retries += "  resources " + ",".join(f"{k}={v:g}" for k, v in t.spec.resources)
            self.line(f"{i:>4}. {name.ljust(width)}  timeout {format_duration(t.timeout_s):<7} needs {needs}{retries}")
            pad = " " * (width + 8)
            shown = [s.shown for s in t.steps] or [t.spec.cmd if isinstance(t.spec.cmd, str) else shlex.join(t.spec.cmd)]
            for cmd in shown:
                self.line(f"{pad}$ " + f"\n{pad}  ".join(cmd.rstrip("\n").splitlines()))
        if estimated is not None:
            self.line(f"estimated makespan {estimated.makespan_s:.2f}s on pool {plan.pool}"
                      f" (from {estimated.known} of {len(plan)} recorded durations)")
            self.line(f"critical path {estimated.critical_s:.2f}s: {' -> '.join(estimated.critical_path)}")

    def report(self, plan: Plan, results: list[TaskResult], *, duration_s: float,
               summary_path: str | None) -> None:
        """The table, the root cause, each unsuccessful task's last lines, the verdict."""
        self.close()
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
        cause = root_cause(plan, results)
        if cause:
            self.line()
            self.line(self.paint(cause, "fail"))
        for r in results:
            if r.status is not Status.SUCCESS and r.attempts:
                self._failure_tail(r)
        counts = status_counts(results)
        words = {"success": "succeeded", "failed": "failed", "timeout": "timed out",
                 "skipped": "skipped", "cancelled": "cancelled"}
        parts = [f"{counts[s]} {words[s]}" for s in words if counts.get(s)]
        self.line()
        self.line(f"{', '.join(parts) or 'nothing to run'} in {duration_s:.2f}s (pool {plan.pool})")
        if summary_path:
            self.line(f"summary: {summary_path}")

    def _failure_tail(self, r: TaskResult) -> None:
        """`build failed: exit 2 in 0.01s`, its log, and its last stderr lines (stdout's if stderr is empty)."""
        label = r.status.value + (" (allowed)" if r.allow_failure and r.status is not Status.CANCELLED else "")
        self.line()
        self.line(f"{self.name(r.name).rstrip()} {self.paint(label, 'warn' if r else 'fail')}: {describe_attempt(r.last)}")
        path = r.stderr_path
        tail = read_tail_bytes(path, REPORT_TAIL_LINES)
        if not tail and r.stdout_path:
            stdout_tail = read_tail_bytes(r.stdout_path, REPORT_TAIL_LINES)
            if stdout_tail:
                path, tail = r.stdout_path, stdout_tail
        if path is None:
            return
        count = tail.count(b"\n")
        self.line(f"  log: {path}" + (f" (last {count} line{'s' if count > 1 else ''})" if count else " (empty)"))
        if tail:
            self.write_output([render(tail, b"  | ")])
            self.unfence()


class _Echo:
    """The commands of one attempt to echo: `due` holds (step, stdout offset, stderr offset) of
    those whose start is known and not yet echoed; `marks` follows the process layer's record
    of steps (None for a task with one command, echoed at the start of its logs)."""

    __slots__ = ("task", "marks", "shown", "due")

    def __init__(self, task: str, marks: LogFollower | None, shown: list[str] | None = None,
                 due: list[tuple[int, int, int]] | None = None) -> None:
        self.task = task
        self.marks = marks
        self.shown = shown or []
        self.due = due or []

    def read_marks(self) -> None:
        while True:
            carry, data, end, more = self.marks.read()
            for line in (carry + bytes(data[:end])).splitlines():
                try:
                    mark = json.loads(line)
                    self.due.append((int(mark["step"]), int(mark["stdout"]), int(mark["stderr"])))
                except (ValueError, KeyError, TypeError):
                    continue  # not a line taskrun wrote
            if not more:
                return


def _writev(fd: int, pieces: list) -> None:
    """All of `pieces`, also when the system call writes only part of them."""
    views = [memoryview(p) for p in pieces if len(p)]
    while views:
        written = os.writev(fd, views)
        while views and written >= len(views[0]):
            written -= len(views[0])
            views.pop(0)
        if views and written:
            views[0] = views[0][written:]


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def root_cause(plan: Plan, results: list[TaskResult]) -> str | None:
    """`root cause: build failed (exit 2 in 0.01s); because of it 2 skipped (test, deploy), 1 cancelled (lint)`,
    naming the first failure (by end time), when other tasks were skipped or cancelled because of it."""
    failures = [r for r in results if r.status in (Status.FAILED, Status.TIMEOUT) and not r and r.attempts]
    if not failures:
        return None
    first = min(failures, key=lambda r: r.last.finished_at)
    by_name = {r.name: r for r in results}
    dependents: dict[str, list[str]] = {}
    for t in plan.tasks:
        for need in t.spec.needs:
            dependents.setdefault(need, []).append(t.name)
    # skipped because of it: every skipped task that needs it through skipped tasks only
    downstream: set[str] = set()
    stack = [first.name]
    while stack:
        for name in dependents.get(stack.pop(), ()):
            if name not in downstream and name in by_name and by_name[name].status is Status.SKIPPED:
                downstream.add(name)
                stack.append(name)
    skipped = [r.name for r in results if r.name in downstream]
    cancelled = [r.name for r in results if r.status is Status.CANCELLED and plan.fail_fast
                 and (r.reason or "").startswith(f"fail_fast: '{first.name}'")]
    if not skipped and not cancelled:
        return None
    parts = [f"{len(names)} {word} ({_names(names)})" for names, word in ((skipped, "skipped"), (cancelled, "cancelled"))
             if names]
    verb = "timed out" if first.status is Status.TIMEOUT else "failed"
    return f"root cause: {first.name} {verb} ({describe_attempt(first.last)}); because of it {', '.join(parts)}"


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
