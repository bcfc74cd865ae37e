"""One attempt on a machine of a cluster: the side that runs next to the command.

Model:
- `run_remote` runs the attempt with `proc.run_attempt`, so the timeout and the
  SIGTERM -> grace -> SIGKILL ladder act on the worker, next to the process
  group, exactly as they do locally, setsid escapees included (found by their
  attempt id). The ladder runs to its end whatever ends the wait, and a stop
  check that fails (the scheduler out of reach) is a stop.
- Logs: the runner puts a marker file holding the run's token in its log
  folder. When the worker sees that folder with that marker (a shared
  filesystem), the command writes straight into it, as a local run does.
  Otherwise it writes into a private temporary folder on the worker, and the
  output travels back with the result: the last `LOG_CAP` bytes of each stream,
  after a line saying how much was cut (and the record of a task's steps, its
  offsets moved to match). The runner writes it into its log files.
- The command's folder (`cwd`) must exist on the worker at the same path;
  otherwise the attempt fails with exit 127 and a reason naming the worker.
- A watchdog process per worker process holds a pipe from it and knows every
  attempt running there, told before its command starts. Should the worker die
  (killed, out of memory), the pipe closes and the watchdog stops those
  attempts' processes (SIGTERM, then SIGKILL after their grace), so no command
  outlives the worker running it.

Standard library, `model` and `proc` only: this is what a worker imports.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .model import AttemptResult, AttemptSpec
from .proc import ATTEMPT_ID_VAR, Attempt, carriers, read_end, run_attempt, signal_all, terminate

MARKER = ".taskrun-client"  # in the run's log folder: the run's token, so a worker can tell it shares the folder
LOG_CAP = 8 * 1024 * 1024  # bytes of each stream sent back when the log folder is not shared
WATCHDOG_POLL_S = 0.05
_HOME = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `runner` was imported from


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RemoteOutcome:
    """What a worker sends back: the result, and the output when it could not
    be written into the run's log folder (None when it was)."""

    result: AttemptResult
    stdout: bytes | None = None
    stderr: bytes | None = None
    steps: bytes | None = None  # the record of steps' starts, offsets rebased to the output sent


def shares_folder(folder: str, token: str) -> bool:
    """Whether `folder` here is the runner's log folder (it holds the runner's marker)."""
    try:
        with open(os.path.join(folder, MARKER), encoding="utf-8") as f:
            return f.read().strip() == token
    except (OSError, UnicodeDecodeError):
        return False


def read_capped(path: str, cap: int = LOG_CAP) -> bytes:
    """The file's bytes; past `cap`, its last `cap` bytes after a line saying what was cut."""
    data, size = read_end(path, cap) or (b"", 0)
    if size <= cap:
        return data
    return f"[taskrun: the first {size - cap} bytes of this output were cut; the last {cap} follow]\n".encode() + data


def run_remote(spec: AttemptSpec, token: str, *, should_stop, worker: str, host: str,
               poll_s: float = 0.1) -> RemoteOutcome:
    """Run one attempt here, blocking; see the module's model."""
    shared = shares_folder(os.path.dirname(spec.stdout_path), token)
    scratch = None
    local = spec
    if not shared:
        scratch = tempfile.mkdtemp(prefix="taskrun-")
        local = dataclasses.replace(spec, stdout_path=os.path.join(scratch, "stdout"),
                                    stderr_path=os.path.join(scratch, "stderr"),
                                    steps_path=spec.steps_path and os.path.join(scratch, "steps"))
    started: list[Attempt] = []

    def on_start(attempt: Attempt) -> None:  # before the command exists: the worker may die any moment after
        started.append(attempt)
        WATCHDOG.register(attempt)

    try:
        result = run_attempt(local, should_stop, poll_s=poll_s, on_start=on_start)
    finally:
        for attempt in started:
            WATCHDOG.unregister(attempt)
    reason = result.reason
    if result.pid is None and reason and reason.startswith("working directory"):
        reason += f" on {host} (a worker needs the task's folder at the same path: use a shared filesystem)"
    result = dataclasses.replace(result, worker=worker, host=host, reason=reason)
    if scratch is None:
        return RemoteOutcome(result=result)
    try:
        stdout, stderr = read_capped(local.stdout_path, LOG_CAP), read_capped(local.stderr_path, LOG_CAP)
        return RemoteOutcome(result=result, stdout=stdout, stderr=stderr,
                             steps=_rebased_steps(local, (len(stdout), len(stderr))))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _rebased_steps(spec: AttemptSpec, sent: tuple[int, int]) -> bytes | None:
    """The record of the steps' starts, its log offsets moved to where those bytes stand in the
    output sent back (a log cut to its last `LOG_CAP` bytes starts with a note; earlier offsets
    go to just after it)."""
    if spec.steps_path is None:
        return None
    try:
        with open(spec.steps_path, "rb") as f:
            lines = f.read().splitlines()
        sizes = [os.stat(p).st_size for p in (spec.stdout_path, spec.stderr_path)]
    except OSError:
        return None
    out = []
    for line in lines:
        try:
            mark = json.loads(line)
        except ValueError:
            continue  # not a line the process layer wrote
        for key, size, length in zip(("stdout", "stderr"), sizes, sent):
            if size > LOG_CAP:  # cut (see `read_capped`): `length` is the note, then the last LOG_CAP bytes
                mark[key] = (length - LOG_CAP) + max(0, mark[key] - (size - LOG_CAP))
        out.append(json.dumps(mark, ensure_ascii=False).encode() + b"\n")
    return b"".join(out)


# --- the watchdog ---------------------------------------------------------------------


class Watchdog:
    """The worker's side: start the watchdog process once, tell it what runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "runner.remote"], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a signal to the worker's group must not reach it first
                    env={**os.environ, "PYTHONPATH": _HOME + os.pathsep + os.environ.get("PYTHONPATH", "")},
                )
            try:
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except OSError:
                pass

    # By the attempt's id, not a pid: each step of an attempt is a process of its own.
    def register(self, attempt: Attempt) -> None:
        self._send(f"+{attempt.spec.kill_grace_s} {attempt.attempt_id}\n")

    def unregister(self, attempt: Attempt) -> None:
        self._send(f"-{attempt.attempt_id}\n")


WATCHDOG = Watchdog()


def sweep(attempts: dict[bytes, float]) -> int:
    """Stop every process of these attempts (attempt id -> grace): SIGTERM, SIGKILL after the grace.
    Returns how many processes there were."""
    if not attempts:
        return 0
    ids = set(attempts)
    first = carriers(ATTEMPT_ID_VAR, ids)
    terminate(first)
    deadline = time.monotonic() + max(attempts[a] for a in set(first.values()) or ids)
    left = first
    while left and time.monotonic() < deadline:
        time.sleep(WATCHDOG_POLL_S)
        left = carriers(ATTEMPT_ID_VAR, ids)
    while left:
        signal_all(left, signal.SIGKILL)
        time.sleep(WATCHDOG_POLL_S)
        left = carriers(ATTEMPT_ID_VAR, ids)
    return len(first)


def watch(stream) -> None:
    """The watchdog process: read `+GRACE ID` / `-ID` lines (an attempt registered
    before its command starts, and unregistered once it is over) until the worker
    is gone (end of input), then stop whatever is still registered."""
    attempts: dict[bytes, float] = {}
    for line in stream:
        try:
            if line.startswith(b"+"):
                grace, attempt_id = line[1:].rstrip(b"\n").split(b" ", 1)
                attempts[attempt_id] = float(grace)
            elif line.startswith(b"-"):
                attempts.pop(line[1:].rstrip(b"\n"), None)
        except ValueError:
            continue
    sweep(attempts)


if __name__ == "__main__":
    for _sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(_sig, signal.SIG_IGN)  # only the end of its input ends it
    watch(sys.stdin.buffer)
