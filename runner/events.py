"""The run's append-only record: `events.jsonl` in the run's log folder.

One JSON object per line (schemas/events.schema.json): `run_start`, then
`task_start` (with the pid and the pool slot), `attempt_end`, `task_end` as they happen, and
`run_end` last. Each line goes to the kernel with one write(2) on an O_APPEND
file the moment it is known, so a runner killed by SIGKILL leaves every line it
had written, each one complete; only a power loss can lose the last lines (no
fsync per line: at thousands of tasks it would cost more than the tasks).

The file is created fresh (O_EXCL, O_NOFOLLOW, mode 0600) in the run's folder.
If a write fails (disk full), the log stops there, the run goes on, and the
error is kept in `error` for the session to report. If the file is deleted
while the run goes on (`deleted()`, checked after each attempt), the log goes
on in a fresh file at the same path (`reopen`), which starts again with the
`run_start` line, its `log_lost` saying why the lines before are missing.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

from .model import AttemptResult, PlannedTask, TaskResult
from .secrets import NO_MASK, Masker
from .summary import iso

EVENTS_NAME = "events.jsonl"
FORMAT_VERSION = 1


_quote = json.encoder.encode_basestring  # json.dumps(text, ensure_ascii=False), without its dispatch


def _value(value) -> str:
    """A value as json.dumps(value, ensure_ascii=False) writes it; the scalars of every line
    directly (a second dict and json.dumps per line cost tens of microseconds a task)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value, ensure_ascii=False)


class EventLog:
    """A listener that appends one line per event to `events.jsonl`."""

    def __init__(self, log_dir: Path, *, masker: Masker = NO_MASK) -> None:
        self.path = Path(log_dir) / EVENTS_NAME
        self.masker = masker
        self.error: OSError | None = None
        self.log_dir = Path(log_dir)
        self._fd: int | None = None
        self._start: dict | None = None
        self._open()

    def _open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW
                               | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self.error = exc

    def deleted(self) -> bool:
        """Whether the file being written was deleted: its lines would reach nobody."""
        try:
            return self._fd is not None and os.fstat(self._fd).st_nlink == 0
        except OSError:
            return False

    def reopen(self, why: str) -> None:
        """Go on in a fresh file at the same path, from the `run_start` line again (`log_lost`: why)."""
        self.close()
        if self.error is None:  # a log stopped by a failed write stays stopped
            self._open()
            if self._start is not None:
                self._write({**self._start, "log_lost": why})

    def _write(self, record: dict) -> None:
        """One line: `event` first, then `ts`, then the rest in order, each value as
        json.dumps writes it (the secrets in the written fields masked)."""
        record = self.masker.mask_written(record)
        parts = [f'{{"event": {_value(record["event"])}, "ts": "{iso(time.time())}"']
        for key, value in record.items():
            if key != "event":  # keys are taskrun's own names: nothing to escape
                parts.append(f', "{key}": {_value(value)}')
        parts.append("}\n")
        self._emit("".join(parts))

    def _emit(self, line: str) -> None:
        if self._fd is None:
            return
        data = line.encode("utf-8")
        try:
            while data:
                data = data[os.write(self._fd, data):]
        except OSError as exc:
            self.error = exc
            self.close()

    # -- the run ------------------------------------------------------------------

    def run_started(self, *, run_id: str, file: str, pool: int, tasks: int, argv: tuple[str, ...],
                    summary_path: str | None) -> None:
        self._start = {"event": "run_start", "version": FORMAT_VERSION, "run_id": run_id, "pid": os.getpid(),
                       "file": file, "pool": pool, "tasks": tasks, "command": list(argv),
                       "log_dir": str(self.log_dir), "summary": summary_path}
        self._write(dict(self._start))

    def run_ended(self, *, status: str, exit_code: int, duration_s: float, counts: dict[str, int],
                  reason: str | None) -> None:
        self._write({"event": "run_end", "status": status, "exit_code": exit_code,
                     "duration_s": round(duration_s, 3), "counts": counts, "reason": reason})

    # -- the listener ---------------------------------------------------------------

    # Three lines a task, each written as a string directly, in the key order and the value
    # forms of `_write`: no dict to build and take apart again.

    def task_started(self, task: PlannedTask, attempt: int, pid: int | None, slot: int) -> None:
        self._emit(f'{{"event": "task_start", "ts": "{iso(time.time())}", "task": {_quote(task.name)}, '
                   f'"attempt": {_value(attempt)}, "pid": {_value(pid)}, "kill_grace_s": {_value(task.kill_grace_s)}, '
                   f'"slot": {_value(slot)}}}\n')

    def attempt_ended(self, task: PlannedTask, attempt: int, result: AttemptResult,
                      retry_in_s: float | None) -> None:
        r = result
        self._emit(f'{{"event": "attempt_end", "ts": "{iso(time.time())}", "task": {_quote(task.name)}, '
                   f'"attempt": {_value(attempt)}, "pid": {_value(r.pid)}, "exit_code": {_value(r.exit_code)}, '
                   f'"signal": {_value(r.signal)}, "timed_out": {_value(r.timed_out)}, '
                   f'"cancelled": {_value(r.cancelled)}, "started_at": {_value(iso(r.started_at))}, '
                   f'"finished_at": {_value(iso(r.finished_at))}, "duration_s": {_value(round(r.duration_s, 6))}, '
                   f'"stray_killed": {_value(r.stray_killed)}, "reason": {_value(self.masker.mask_obj(r.reason))}, '
                   f'"retry_in_s": {_value(retry_in_s)}}}\n')

    def task_ended(self, result: TaskResult) -> None:
        last = result.last
        self._emit(f'{{"event": "task_end", "ts": "{iso(time.time())}", "task": {_quote(result.name)}, '
                   f'"status": {_quote(result.status.value)}, '
                   f'"exit_code": {_value(last.exit_code if last is not None else None)}, '
                   f'"attempts": {_value(len(result.attempts))}, "reason": {_value(self.masker.mask_obj(result.reason))}}}\n')

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError:
                pass


def read_events(path: str | os.PathLike[str]) -> list[dict]:
    """The complete lines of an event log (a line cut short by a crash is left out)."""
    events = []
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                events.append(json.loads(raw))
            except ValueError:
                continue
    return events
