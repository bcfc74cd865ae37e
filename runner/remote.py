"""One attempt on a machine of a cluster: the side that runs next to the command.

Model:
- Each worker process has one launcher: a process of its own (`python -m
  runner.remote`, started at its first attempt) that runs the attempts it is
  sent on `backends.LocalBackend`, the local pool itself. So the timeout and the
  SIGTERM -> grace -> SIGKILL ladder act on the worker's machine, next to the
  process group, exactly as they do locally; and, the launcher being a
  subreaper like a local run, what a command leaves behind is adopted by it and
  found by the attempt's id at the cost of a local run (a worker is not a
  subreaper: it would have to scan every process of the machine at each end).
  The worker's thread running the attempt waits for its result, polls the stop
  check every `poll_s` and passes a stop on ("stop", or "force": no grace); a
  stop check that fails (the scheduler out of reach) is a stop.
- Should the worker die (killed, out of memory), the launcher's input closes
  and it stops every attempt it runs with the ladder, then exits: no command
  outlives the worker running it. Should the launcher die, the worker stops
  what it ran by their attempt ids (SIGTERM, SIGKILL after their grace) and
  fails those attempts; the next attempt starts a new launcher.
- Logs: the runner puts a marker file holding the run's token in its log
  folder. When the worker sees that folder with that marker (a shared
  filesystem), the command writes straight into it, as a local run does.
  Otherwise it writes into a private temporary folder on the worker, and the
  output travels back with the result: the last `LOG_CAP` bytes of each stream,
  after a line saying how much was cut (and the record of a task's steps, its
  offsets moved to match). The runner writes it into its log files.
- The command's folder (`cwd`) must exist on the worker at the same path;
  otherwise the attempt fails with exit 127 and a reason naming the worker.

Standard library, `model`, `proc` and (in the launcher) `backends` only: this
is what a worker imports.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

from .model import AttemptResult, AttemptSpec
from .proc import read_end, reap_orphans, terminate

MARKER = ".taskrun-client"  # in the run's log folder: the run's token, so a worker can tell it shares the folder
LOG_CAP = 8 * 1024 * 1024  # bytes of each stream sent back when the log folder is not shared
GROUP_POLL_S = 0.05  # how often the groups of a launcher that died are checked during their grace
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
    try:
        result = LAUNCHER.run(local, should_stop, poll_s)
        reason = result.reason
        if result.pid is None and reason and reason.startswith("working directory"):
            reason += f" on {host} (a worker needs the task's folder at the same path: use a shared filesystem)"
        result = dataclasses.replace(result, worker=worker, host=host, reason=reason)
        if scratch is None:
            return RemoteOutcome(result=result)
        stdout, stderr = read_capped(local.stdout_path, LOG_CAP), read_capped(local.stderr_path, LOG_CAP)
        return RemoteOutcome(result=result, stdout=stdout, stderr=stderr,
                             steps=_rebased_steps(local, (len(stdout), len(stderr))))
    finally:
        if scratch is not None:
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


# --- the launcher ---------------------------------------------------------------------
# Frames both ways: a 4-byte length, then a pickle. To the launcher: ("start", key, spec),
# ("stop", key, reason, force). From it: ("started", key, pid, grace), ("done", key, result).

_FRAME = struct.Struct("!I")


def _write_frame(stream, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)) + data)
    stream.flush()


def _read_frame(stream):
    """The next message, or None at the end of the stream."""
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    return pickle.loads(stream.read(_FRAME.unpack(head)[0]))


@dataclasses.dataclass(slots=True, eq=False)
class _Waiter:
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    result: AttemptResult | None = None
    leader: tuple[int, float] | None = None  # (pid, grace) once its command started


class Launcher:
    """The worker's side: start the launcher process when needed, send it attempts, hand each
    result to the thread waiting for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._out: dict[int, _Waiter] = {}  # sent to that process and not back yet
        self._keys = itertools.count(1)

    def run(self, spec: AttemptSpec, should_stop, poll_s: float) -> AttemptResult:
        """Run `spec` in the launcher and wait for its end, polling `should_stop` every `poll_s`
        (the first time `poll_s` after the start: a shorter command never pays for a poll).
        Whatever ends the wait, the attempt's ladder runs to its end before this returns."""
        key, waiter = next(self._keys), _Waiter()
        self._send(("start", key, spec), waiter)
        forced = False
        try:
            while not waiter.done.wait(poll_s):
                if not forced:
                    forced = self._poll_stop(key, should_stop)
        finally:
            if not waiter.done.is_set():
                self._send(("stop", key, "cancelled: its worker stopped waiting for it", False))
                waiter.done.wait()
        return waiter.result

    def _poll_stop(self, key: int, should_stop) -> bool:
        """Pass a stop on, if there is one; whether it was forced (nothing more to pass on)."""
        try:
            stop, reason = should_stop(), "cancelled"
        except Exception as exc:  # noqa: BLE001 - whatever broke, nobody can tell this attempt to go on
            stop, reason = True, f"cancelled: its stop check failed ({type(exc).__name__}{f': {exc}' if str(exc) else ''})"
        if stop:
            self._send(("stop", key, reason, stop == "force"))
        return stop == "force"

    def _send(self, message, waiter: _Waiter | None = None) -> None:
        with self._lock:
            if self._proc is None:
                self._start()
            if waiter is not None:
                self._out[message[1]] = waiter
            try:
                _write_frame(self._proc.stdin, message)
            except (OSError, ValueError):  # it died: its reader fails what was sent to it
                pass

    def _start(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "runner.remote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a signal to the worker's group must not reach it (and its ladders) first
            env={**os.environ, "PYTHONPATH": _HOME + os.pathsep + os.environ.get("PYTHONPATH", "")},
        )
        self._out = {}
        threading.Thread(target=self._read, args=(self._proc, self._out), name="taskrun-launcher",
                         daemon=True).start()

    def _read(self, proc: subprocess.Popen, out: dict[int, _Waiter]) -> None:
        """Hand results to their waiters until the launcher's output ends. If it ends with
        attempts out, the launcher died: stop their process groups with the ladder, fail them."""
        while (message := _read_frame(proc.stdout)) is not None:
            waiter = out.get(message[1])
            if waiter is None:
                continue
            if message[0] == "started":
                waiter.leader = (message[2], message[3])
            else:
                del out[message[1]]
                waiter.result = message[2]
                waiter.done.set()
        with self._lock:
            if self._proc is proc:
                self._proc = None  # the next attempt starts another
            lost = list(out.values())
            out.clear()
        _stop_groups(dict(w.leader for w in lost if w.leader is not None))
        now = time.time()
        for waiter in lost:
            waiter.result = AttemptResult(exit_code=None, signal=None, timed_out=False, pid=None, started_at=now,
                                          finished_at=now, duration_s=0.0,
                                          reason=f"the launcher process on the worker ended (exit {proc.wait()})")
            waiter.done.set()


LAUNCHER = Launcher()


def _stop_groups(leaders: dict[int, float]) -> None:
    """The ladder, by process group (leader pid -> grace): for the commands of a launcher that died."""
    for pid in leaders:
        terminate((), pid)
    deadline = time.monotonic() + max(leaders.values(), default=0.0)
    while time.monotonic() < deadline and any(_group_alive(pid) for pid in leaders):
        time.sleep(GROUP_POLL_S)
    for pid in leaders:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except OSError:
        return False


def serve(inp, out) -> None:
    """The launcher process: run the attempts sent on `inp` on the local pool, report on `out`.
    At the end of `inp` (the worker is gone), stop what still runs, with the ladder, and return."""
    from .backends import LocalBackend

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    inbox: deque = deque()

    def read() -> None:  # a thread: the pool's wait wakes on `wake_r` (and drains it)
        while True:
            message = _read_frame(inp)
            inbox.append(message)
            os.write(wake_w, b".")
            if message is None:
                return

    threading.Thread(target=read, daemon=True).start()
    pool = LocalBackend(wake_r)
    closing = False
    while not closing or pool.running:
        done = pool.wait(None)
        for key, result in done:
            if not closing:
                _write_frame(out, ("done", key, result))
        if done and not pool.running:
            reap_orphans()  # what a ladder killed, adopted: nothing of a running attempt is left to wait for
        while inbox:
            message = inbox.popleft()
            if message is None:
                closing = True
                pool.stop_all(reason="cancelled: its worker is gone")
            elif message[0] == "start" and not closing:
                spec = message[2]
                pid = pool.start(message[1], spec)
                if pid is not None:
                    _write_frame(out, ("started", message[1], pid, spec.kill_grace_s))
            elif message[0] == "stop":
                pool.stop(message[1], reason=message[2], cancelled=True, force=message[3])
    pool.close()


if __name__ == "__main__":
    for _sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(_sig, signal.SIG_IGN)  # only the end of its input ends it
    serve(sys.stdin.buffer, sys.stdout.buffer)
