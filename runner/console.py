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

The console never waits for its reader: it writes through a `channel.Channel`
(a descriptor that never blocks; what the reader has not taken yet is written
when the loop wakes and it is writable: `writable_fd`). While the reader has not
taken everything, the console reads no more of the running tasks' logs, and
what it has to say waits, in order, in a backlog (`_later`): its own lines as
bytes, and the rest of an ended attempt's logs as a paused reader, rendered
chunk by chunk as the reader takes them (the logs keep everything, so a slow
but live reader loses nothing). The backlog is bounded (`LATER_BYTES` of lines,
`LATER_LOGS` logs): lines that find it full are dropped, the rest of a log that
finds it full is counted and dropped, and one marker line says how many. From
`close()` on (the closing report) nothing is dropped; the exit waits for the
backlog as for the channel (see `channel`). A closed output (`taskrun ... |
head -1`) silences the console; the run goes on.
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
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

from . import channel
from .durations import format_duration
from .errors import show_path
from .model import AttemptResult, AttemptSpec, Plan, PlannedTask, Status, TaskResult, status_counts
from .secrets import NO_MASK, Masker
from .output import (CHUNK, LogFollower, fold_end, fold_start, gitlab_section_id, read_tail_bytes, render,
                     render_chunk, task_color)

STREAM_POLL_S = 0.05  # how often the running tasks' logs are read in `stream` mode
REPORT_TAIL_LINES = 10  # lines of a failed task's output in the closing report
FOLD_AFTER_ROWS = 20  # a larger run's table folds its plain successes into one line
LATER_BYTES = 1 << 20  # bytes of lines waiting for a slow reader before lines are dropped
LATER_LOGS = 8  # ended attempts' logs waiting for a slow reader before the next ones are dropped
DROP_MARK = "[... {} line{} not shown: the console was not read in time; the run's logs have them all]\n"

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


def columns(stream: TextIO | None) -> int:
    """The width to draw in: $COLUMNS when set (as `shutil` reads it), else the terminal's, else 80."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if is_terminal(stream):
        try:
            return os.get_terminal_size(stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            pass
    return 80


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
        self._fence = os.urandom(16).hex() if github else None  # the stop-commands token
        self._fenced = False  # task output is being echoed: workflow commands are off
        self.remote = remote  # attempts start on a cluster: their pid is not known here
        self.color = want_color(self.stream) if color is None else color
        self.width = width
        self.mode = mode
        self.ci = ci
        self.total = total
        self._want_live = live
        self._live = None
        self._encoding = getattr(self.stream, "encoding", None) or "utf-8"
        self._utf8 = codecs.lookup(self._encoding).name == "utf-8"
        self._out = channel.for_stream(self.stream)
        self._out.source = self._pump
        self._later: deque[list | _Rest] = deque()  # what waits for the reader, in order
        self._later_bytes = 0
        self._later_logs = 0
        self._dropped = 0  # lines dropped for a slow reader, not yet reported
        self._closing = False  # the closing report: nothing is dropped any more
        # (task, attempt) -> [(follower, prefix), (follower, prefix)] for stdout and stderr
        self._followed: dict[tuple[str, int], list[tuple[LogFollower, bytes]]] = {}
        self._echo: dict[tuple[str, int], _Echo] = {}  # (task, attempt) -> its commands to echo
        self._pending: dict[str, tuple[int, list[tuple[LogFollower, bytes]]]] = {}  # group: block awaiting its header
        self._backlog = False
        self._read_at = 0.0  # monotonic: when the running tasks' logs were last read
        self._running: dict[str, float] = {}  # task -> monotonic start of its attempt
        self._ended = 0
        self._failed = 0

    # -- output ----------------------------------------------------------------

    def paint(self, text: str, style: str) -> str:
        return f"\x1b[{_COLORS[style]}m{text}\x1b[0m" if self.color else text

    def write(self, text: str, *, keep: bool = False) -> None:
        """Write console text (whole lines); `keep`: never dropped (markers that open or close something)."""
        self.write_pieces([text.encode("utf-8", "replace")], keep=keep)

    def write_bytes(self, data: bytes) -> None:
        """Write console text as UTF-8 bytes (whole lines)."""
        self.write_pieces([data])

    def write_output(self, pieces: list) -> None:
        """Echo task output (UTF-8 buffers, together whole lines): fenced in GitHub Actions."""
        self._fence_output()
        self._write(pieces)

    def _fence_output(self) -> None:
        if self._fence and not self._fenced and self.stream is not None:
            self._fenced = True
            self._write([f"::stop-commands::{self._fence}\n".encode()], keep=True)

    def unfence(self) -> None:
        """Let workflow commands work again (before taskrun's own lines, and at the end)."""
        if self._fenced:
            self._fenced = False
            self._write([f"::{self._fence}::\n".encode()], keep=True)

    def write_pieces(self, pieces: list, *, keep: bool = False) -> None:
        """Write console text given as UTF-8 buffers (together whole lines), in one system call."""
        self.unfence()
        self._write(pieces, keep=keep)

    def _write(self, pieces: list, *, keep: bool = False) -> None:
        """The one way in: out now when the reader has taken everything, else into the
        backlog, or dropped (counted) when the backlog is full."""
        if self.stream is None:
            return
        pieces = self._encode(pieces)
        if not self._later and not self._out.pending:
            self._emit(self._marked(pieces))
            return
        size = sum(map(len, pieces))
        if not (keep or self._closing) and self._later_bytes + size > LATER_BYTES:
            self._dropped += sum(bytes(p).count(b"\n") for p in pieces)
            return
        pieces = self._marked(pieces)
        self._later.append(pieces)
        self._later_bytes += sum(map(len, pieces))

    def _encode(self, pieces: list) -> list:
        if self.masker:
            pieces = [self.masker.mask_bytes(b"".join(pieces))]
        if not self._utf8:
            pieces = [b"".join(pieces).decode("utf-8", "replace").encode(self._encoding, "replace")]
        return pieces

    def _marked(self, pieces: list) -> list:
        """`pieces`, after the line that counts what was dropped before them, if anything was."""
        if not self._dropped:
            return pieces
        n, self._dropped = self._dropped, 0
        return [DROP_MARK.format(n, "" if n == 1 else "s").encode(), *pieces]

    def _emit(self, pieces: list) -> None:
        """To the channel (on a terminal, through the status area, which writes to it)."""
        if self._live is not None:
            self._live.write(b"".join(pieces).decode(self._encoding, "replace"))
        else:
            self._out.write(pieces)
        if self._out.closed:
            self._silence()

    def _silence(self) -> None:
        """The reader went away; the run and its record go on."""
        self.stream = None
        for item in self._later:
            if isinstance(item, _Rest):
                item.follower.close()
        self._later.clear()
        self._later_bytes = self._later_logs = 0

    def _pump(self) -> None:
        """Hand the backlog to the channel while the reader has taken everything: the
        channel never holds more than one item (a rendered chunk is at most `CHUNK` of log)."""
        while self._later and self.stream is not None and not self._out.pending:
            item = self._later[0]
            if isinstance(item, _Rest):
                chunk = next(item.chunks, None)
                if chunk is None:
                    self._later.popleft()
                    self._later_logs -= 1
                else:
                    self._emit(self._encode(render_chunk(*chunk, item.prefix)))
                continue
            self._later.popleft()
            self._later_bytes -= sum(map(len, item))
            self._emit(item)

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

            self._live = LiveArea(_ChannelText(self._out, self.stream, self._encoding), color=self.color,
                                  status=self._status)

    def _status(self) -> tuple[str, list[tuple[str, float, str | None]]]:
        progress = f"{self._ended}/{self.total} done, {len(self._running)} running"
        if self._failed:
            progress += f", {self._failed} failed"
        return progress, [(n, t, task_color(n)) for n, t in self._running.items()]

    def _changed(self) -> None:
        if self._live is not None:
            self._live.changed()

    def close(self) -> None:
        """Erase the status area (idempotent); the console stays usable, and from now on
        keeps every line (the closing report), after the count of those it dropped."""
        self._closing = True
        self.unfence()
        live, self._live = self._live, None
        self._want_live = False
        if live is not None:
            live.close()
        if self._dropped:
            self._write([])
        self._pump()

    # -- the pump ------------------------------------------------------------------

    @property
    def poll_interval_s(self) -> float | None:
        if self._backlog and not self._out.pending and not self._later:
            return 0.0
        if self.mode == "stream" and self._followed:
            if self.stream is None or self._out.pending or self._later:  # no read now: nothing falls due
                return STREAM_POLL_S
            return max(0.0, self._read_at + STREAM_POLL_S - time.monotonic())
        if self._live is not None:
            return 0.1
        return None

    def follow(self, spec: AttemptSpec) -> None:
        """An attempt started: its log files are to be followed (not in quiet mode)."""
        if self.mode == "quiet" or spec.interactive:  # its output goes to the terminal, not to its logs
            return
        self._followed[(spec.task, spec.attempt)] = [
            (LogFollower(spec.stdout_path), self.prefix(spec.task, False)),
            (LogFollower(spec.stderr_path), self.prefix(spec.task, True)),
        ]
        if spec.steps_path is not None:  # each step's start is announced there (see `_Echo`)
            self._echo[(spec.task, spec.attempt)] = _Echo(spec.task, LogFollower(spec.steps_path))

    @property
    def writable_fd(self) -> int | None:
        """The descriptor whose writability should wake the loop: console output waits for it."""
        return self._out.writable_fd if self.stream is not None else None

    def poll(self) -> None:
        """Write what waits for the reader; then, once it took all, print what the running
        tasks wrote since the last poll (stream mode) and redraw the status area."""
        self._out.flush()
        if self._out.closed:
            self._silence()
        self._pump()
        self._backlog = self._backlog and self.stream is not None
        now = time.monotonic()
        # Every STREAM_POLL_S, not at every wake: a wake per ended task would read every running log.
        due = self._backlog or now >= self._read_at + STREAM_POLL_S
        if due and self.mode == "stream" and self.stream is not None and not self._out.pending and not self._later:
            self._read_at = now
            backlog = False
            for key, files in self._followed.items():
                echo = self._echo.get(key)
                bounds = self._echo_due(key, echo, files) if echo is not None else None
                for i, (follower, prefix) in enumerate(files):
                    limit = CHUNK if bounds is None else min(CHUNK, bounds[i] - follower.offset)
                    if limit <= 0:
                        continue
                    carry, data, end, more = follower.read(limit, now)
                    if end:
                        self.write_output(render_chunk(carry, data, end, prefix))
                    cut = follower.take_cut()
                    if cut:
                        self.write_output([render(cut, prefix)])
                    backlog = backlog or more
            self._backlog = backlog
        if self._live is not None and not self._out.pending:
            self._live.refresh()

    def _drain(self, files: list[tuple[LogFollower, bytes]], echo: _Echo | None = None) -> None:
        """The rest of an ended attempt's logs (after the echo of each of its steps' commands that
        is still due): now, or into the backlog, chunk by chunk as the reader takes them;
        counted and dropped when the backlog holds too many logs."""
        if echo is not None:
            self._echo_due(None, echo, files)
            if echo.marks is not None:
                echo.marks.close()
        for follower, prefix in files:
            if self.stream is None:  # nobody reads the console any more
                follower.close()
                continue
            chunks = follower.drain()
            while self.stream is not None and not self._later and not self._out.pending:
                chunk = next(chunks, None)
                if chunk is None:
                    break
                self.write_output(render_chunk(*chunk, prefix))
            else:  # the reader is behind: the rest waits in the backlog, or is counted
                if self.stream is None:
                    follower.close()
                elif self._later_logs >= LATER_LOGS and not self._closing:
                    self._dropped += sum(data.count(b"\n", 0, end) for _, data, end in chunks)
                else:
                    self._fence_output()
                    self._later.append(_Rest(follower, prefix, chunks))
                    self._later_logs += 1

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
            self.write(fold_start(self.ci, header, section, now, collapsed=ok), keep=True)
        else:
            self.line(header)
        self._drain(files, echo)
        self.write(fold_end(self.ci, section, time.time()), keep=True)

    # -- the listener ----------------------------------------------------------

    def task_started(self, task: PlannedTask, attempt: int, pid: int | None, slot: int) -> None:
        if task.spec.interactive:  # the terminal is the task's now: no status area drawn over it
            self._want_live = False
            live, self._live = self._live, None
            if live is not None:
                live.close()
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
            word = {Status.CANCELLED: "cancel", Status.FAILED: "fail "}.get(status, "skip ")
            style = {Status.UP_TO_DATE: "ok", Status.FAILED: "fail"}.get(status, "warn")
            self.line(f"{clock()} {word} {self.name(result.name)} {self.paint(status.value, style)} ({result.reason})")
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

    def show_plan(self, plan: Plan, estimated=None, notes: dict[str, str] | None = None) -> None:
        """The plan in order of readiness; with history, in the order the run will start them.
        `notes`: a line for a task (whether it is up to date, its condition). Written at once
        (100,000 tasks are 200,000 lines), never dropped: it is what --dry-run is asked for."""
        lines: list[str] = []
        add = lines.append
        add(f"plan for {show_path(plan.taskfile.path)}: {len(plan)} task(s), pool {plan.pool}"
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
            for word, on in ((f"when {t.spec.when}", t.spec.when != "on_success"), ("confirm", t.spec.confirm),
                             ("interactive", t.spec.interactive)):
                retries += f"  {word}" if on else ""
            add(f"{i:>4}. {name.ljust(width)}  timeout {format_duration(t.timeout_s):<7} needs {needs}{retries}")
            pad = " " * (width + 8)
            shown = [s.shown for s in t.steps] or [t.spec.cmd if isinstance(t.spec.cmd, str) else shlex.join(t.spec.cmd)]
            for cmd in shown:
                add(f"{pad}$ " + f"\n{pad}  ".join(cmd.rstrip("\n").splitlines()))
            for label, value in _planned_context(t, plan.taskfile.folder):
                add(f"{pad}{label} {value}")
            if notes and name in notes:
                add(f"{pad}{notes[name]}")
        for name, capacity in plan.taskfile.resources:
            holders = [t.name for t in plan.tasks if name in dict(t.spec.resources)]
            if holders:
                add(f"resource {name}: capacity {capacity:g}, held by {_names(holders)}"
                    f"{' (one at a time)' if capacity < 2 else ''}")
        if estimated is not None:
            add(f"estimated makespan {estimated.makespan_s:.2f}s on pool {plan.pool}"
                f" (from {estimated.known} of {len(plan)} recorded durations)")
            add(f"critical path {estimated.critical_s:.2f}s: {' -> '.join(estimated.critical_path)}")
        self.write("".join(line + "\n" for line in lines), keep=True)

    def report(self, plan: Plan, results: list[TaskResult], *, duration_s: float,
               summary_path: str | None) -> None:
        """The table (what did not succeed first; past `FOLD_AFTER_ROWS` tasks the plain
        successes folded into one line), a root cause line per failure that others
        paid for, each unsuccessful task's last lines, the verdict."""
        self.close()
        done = (Status.SUCCESS, Status.UP_TO_DATE)
        unsuccessful = [r for r in results if r.status not in done]
        succeeded = [r for r in results if r.status in done]
        folded = []
        if len(results) > FOLD_AFTER_ROWS:  # a flaky success stays in sight: it may fail next time
            folded = [r for r in succeeded if len(r.attempts) <= 1]
            succeeded = [r for r in succeeded if len(r.attempts) > 1]
        rows = [(("task", None), ("status", None), ("exit", None), ("time", None), ("tries", None))]
        rows += [((r.name, None), _status_cell(r), (_exit_cell(r), None), (_time_cell(r), None),
                  (str(len(r.attempts)), None)) for r in unsuccessful + succeeded]
        widths = [max(len(row[i][0]) for row in rows) for i in range(5)]
        table = ["\n"]  # written at once: a write per row costs a system call per task of a large run
        for row in rows:
            cells = []
            for i, ((text, style), width) in enumerate(zip(row, widths)):
                padding = " " * (width - len(text))
                text = self.paint(text, style) if style else text
                cells.append(text + padding if i < 2 else padding + text)
            table.append("  ".join(cells).rstrip() + "\n")
        if folded:
            table.append(f"{len(folded)} more succeeded\n")
        self.write("".join(table))
        causes = root_causes(plan, results)
        if causes:
            self.line()
            for cause in causes:
                self.line(self.paint(cause, "fail"))
        for r in results:
            if r.status is not Status.SUCCESS and r.attempts:
                self._failure_tail(r)
        counts = status_counts(results)
        words = {"success": "succeeded", "up_to_date": "up to date", "failed": "failed", "timeout": "timed out",
                 "skipped": "skipped", "cancelled": "cancelled"}
        parts = [f"{counts[s]} {words[s]}" for s in words if counts.get(s)]
        if all(results):
            verdict = "ok"
        elif any(r.status in (Status.FAILED, Status.TIMEOUT, Status.SKIPPED) and not r for r in results):
            verdict = "fail"
        else:  # stopped by a signal, nothing failed
            verdict = "warn"
        self.line()
        self.line(self.paint(f"{', '.join(parts) or 'nothing to run'} in {duration_s:.2f}s (pool {plan.pool})", verdict))
        if summary_path:
            self.line(f"summary: {show_path(summary_path)}")

    def show_timeline(self, summary: dict) -> None:
        """--timeline, after the closing report: the run drawn as text in the console's width."""
        from .runview import build_view
        from .timeline import render_timeline

        self.line()
        for text in render_timeline(build_view(summary), width=columns(self.stream), paint=self.paint):
            self.line(text)

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
        self.line(f"  log: {show_path(path)}" + (f" (last {count} line{'s' if count > 1 else ''})" if count else " (empty)"))
        if tail:
            self.write_output([render(tail, b"  | ")])
            self.unfence()


@dataclass(slots=True)
class _Rest:
    """The rest of an ended attempt's log, waiting in the backlog: a paused `LogFollower.drain`."""

    follower: LogFollower
    prefix: bytes
    chunks: Iterator[tuple[bytes, bytes, int]]


class _ChannelText:
    """The status area's text file: what Rich writes goes to the console's channel whole
    (Rich writes only when the console let a line through, or the channel is empty)."""

    def __init__(self, out: channel.Channel, stream: TextIO, encoding: str) -> None:
        self._out, self._stream, self.encoding = out, stream, encoding

    def write(self, text: str) -> int:
        self._out.write([text.encode(self.encoding, "replace")])
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()


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


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _status_cell(r: TaskResult) -> tuple[str, str]:
    """(text, style): `success (flaky, 2 tries)`, `failed (allowed)`, ..."""
    if r.status is Status.UP_TO_DATE:
        return r.status.value, "ok"
    if r.status is Status.SUCCESS:
        return (f"success (flaky, {len(r.attempts)} tries)", "warn") if len(r.attempts) > 1 else ("success", "ok")
    if r.status in (Status.FAILED, Status.TIMEOUT):
        return (f"{r.status.value} (allowed)", "warn") if r.allow_failure else (r.status.value, "fail")
    return r.status.value, "warn"


def _exit_cell(r: TaskResult) -> str:
    last = r.last
    if last is None or (last.exit_code is None and last.signal is None):  # never ended here (a lost worker)
        return "-"
    return str(last.exit_code) if last.exit_code is not None else str(last.signal)


def _time_cell(r: TaskResult) -> str:
    """The last attempt's time; after retries, the time of all attempts too."""
    if r.last is None:
        return "-"
    text = f"{r.last.duration_s:.2f}s"
    if len(r.attempts) > 1:
        text += f" (total {sum(a.duration_s for a in r.attempts):.2f}s)"
    return text


def root_causes(plan: Plan, results: list[TaskResult]) -> list[str]:
    """One line per failure that other tasks paid for, in the order the failures ended:
    `root cause: build failed (exit 2 in 0.01s); because of it 2 skipped (test, deploy), 1 cancelled (lint)`.
    A task skipped because of it needs it through skipped tasks only; a task cancelled
    because of it was cancelled by fail_fast on it."""
    failures = sorted((r for r in results if r.status in (Status.FAILED, Status.TIMEOUT) and not r and r.attempts),
                      key=lambda r: r.last.finished_at)
    by_name = {r.name: r for r in results}
    dependents: dict[str, list[str]] = {}
    for t in plan.tasks:
        for need in t.spec.needs:
            dependents.setdefault(need, []).append(t.name)
    lines = []
    for failure in failures:
        downstream: set[str] = set()
        stack = [failure.name]
        while stack:
            for name in dependents.get(stack.pop(), ()):
                if name not in downstream and name in by_name and by_name[name].status is Status.SKIPPED:
                    downstream.add(name)
                    stack.append(name)
        skipped = [r.name for r in results if r.name in downstream]
        cancelled = [r.name for r in results if r.status is Status.CANCELLED and plan.fail_fast
                     and (r.reason or "").startswith(f"fail_fast: '{failure.name}'")]
        if not skipped and not cancelled:
            continue
        parts = [f"{len(names)} {word} ({_names(names)})"
                 for names, word in ((skipped, "skipped"), (cancelled, "cancelled")) if names]
        verb = "timed out" if failure.status is Status.TIMEOUT else "failed"
        how = describe_attempt(failure.last)
        how = how if how.startswith("(") else f"({how})"  # a lost worker's reason comes in parentheses already
        lines.append(f"root cause: {failure.name} {verb} {how}; "
                     f"because of it {', '.join(parts)}")
    return lines


def _names(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def _planned_context(task, folder: str) -> list[tuple[str, str]]:
    """What else the dry run shows of a task, when there is something: the variables its
    templates read, its environment (the console masks secrets), its folder if not the file's."""
    out = []
    if task.spec.used_vars:
        out.append(("vars", " ".join(f"{k}={shlex.quote(v)}" for k, v in task.spec.used_vars)))
    if task.env:
        out.append(("env ", " ".join(f"{k}={shlex.quote(v)}" for k, v in task.env)))
    if task.cwd != folder:
        out.append(("cwd ", show_path(task.cwd)))
    return out
