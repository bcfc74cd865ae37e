"""One attempt of one command, from spawn to the last process of its tree.

Model:
- The command starts in its own session (so its own process group, pgid == pid),
  stdin from /dev/null, stdout and stderr written straight to log files. No pipe
  connects it to the runner, so a grandchild that keeps its output open can
  never hang the runner, and the logs survive whatever happens to the runner.
- The runner watches the group leader through a pidfd and learns its status with
  WNOWAIT, leaving it unreaped (a zombie keeps its pid and so its group id from
  being recycled) until the rest of the group is gone.
- Stopping (timeout, cancel, or processes left behind by a command that exited)
  is one ladder: SIGTERM to the group (with SIGCONT, so a stopped process runs
  its cleanup at once), SIGKILL after the grace period, then wait for the group
  to be empty, then reap the leader.
- When the runner is a child subreaper, processes orphaned by the command are
  adopted by it; those that escaped the group with setsid are recognised by the
  TASKRUN_ATTEMPT_ID they inherited and stopped with the group. A process that
  is not a subreaper (a Dask worker) looks for them by that id among all
  processes.
- An attempt of a task with steps (`spec.steps`) runs several commands in turn:
  each step starts once the previous one's group is empty and its output is in
  the logs, with the same environment, folder, log files and one deadline for
  them all; the ladder stops whichever step runs, and a stop starts no further
  step. Before each step starts, a line with the logs' sizes then is appended
  to `spec.steps_path`, so a reader can tell which output is whose.
- Only when the attempt has secret values to mask (`spec.mask`), its stdout and
  stderr are pipes instead: the runner reads them, masks them line by line and
  writes the log files itself. Once the group is empty the pipes get a bounded
  drain (`DRAIN_S`): a process that escaped every sweep and keeps them open
  delays the end of the attempt by that much, never more.

Standard library, `model` and `secrets` only: a distributed worker imports this module.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import itertools
import json
import os
import selectors
import shutil
import signal
import struct
import threading
import time
from dataclasses import dataclass, field

from .model import AttemptResult, AttemptSpec, StepResult
from .secrets import LineMasker, masker_for

ATTEMPT_ID_VAR = "TASKRUN_ATTEMPT_ID"
_ATTEMPT_PREFIX = ATTEMPT_ID_VAR.encode() + b"="
PR_SET_CHILD_SUBREAPER = 36
STRAY_POLL_S = 0.02  # how often a group being stopped is checked for members
UNSURE_S = 0.25  # how long an adopted child whose environment cannot be read holds an ended attempt
KILL_WAIT_S = 5.0  # after SIGKILL, how long to wait for the group to vanish (D state)
DRAIN_S = 1.0  # after the group is empty, how long output pipes may stay open
# The longest single wait. epoll and poll take their timeout in milliseconds in a C int
# (about 24.8 days; Python raises OverflowError beyond), and durations go up to 366 days:
# a longer deadline is reached in several waits, each loop re-checking what is due.
MAX_WAIT_S = 24 * 3600.0
READ_CHUNK = 1 << 18
_SELF = str(os.getpid())
_ATTEMPT_SEQ = itertools.count(1)


def clamp_wait(timeout_s: float | None) -> float | None:
    """A timeout for one select(): not negative, at most `MAX_WAIT_S`; None (no deadline) stays None."""
    return None if timeout_s is None else min(max(0.0, timeout_s), MAX_WAIT_S)


def become_subreaper() -> bool:
    """Adopt the orphans of our commands (Linux), so none escapes the sweep."""
    global _SUBREAPER
    if not _SUBREAPER:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            _SUBREAPER = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _SUBREAPER = False
    return _SUBREAPER


# sched_setattr(2) by architecture: x86_64's own number, and the generic table's.
_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274, "riscv64": 274, "loongarch64": 274}
_SCHED_FLAG_RESET_ON_FORK = 0x01
DISPATCH_SLICE_NS = 100_000  # the shortest time slice Linux grants (its default is about 3 ms)


def ask_short_slices() -> bool:
    """Ask Linux (6.12 on, EEVDF) to run the runner's loop in short time slices, so that, woken
    by a task's end, it gets a processor soon instead of waiting behind the running commands: on a
    busy machine that wait is most of the time between one task's end and the next one's start.
    The commands are not affected: the request is reset in every process the runner starts
    (SCHED_RESET_ON_FORK), so they run with the default slice, policy and nice value. Asked only
    where that reset changes nothing else (the normal policy, a nice value of 0 or more: a
    negative one would be reset to 0 for the commands). Earlier kernels accept it and ignore it;
    anything refused leaves the runner as it was. Whether it was granted."""
    number = _SCHED_SETATTR.get(os.uname().machine)
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        if number is None or os.sched_getscheduler(0) != os.SCHED_OTHER or nice < 0:
            return False
        import ctypes

        # struct sched_attr (version 1): size, policy, flags, nice, priority, runtime, deadline,
        # period, util_min, util_max
        attr = ctypes.create_string_buffer(struct.pack("IIQiIQQQII", 56, os.SCHED_OTHER, _SCHED_FLAG_RESET_ON_FORK,
                                                       nice, 0, DISPATCH_SLICE_NS, 0, 0, 0, 0))
        return ctypes.CDLL(None, use_errno=True).syscall(number, 0, attr, 0) == 0
    except (OSError, AttributeError):
        return False


_CHILDREN: list[int] = [0, -1]  # (pid, fd): this process's own list of children, kept open


def own_children() -> set[int]:
    """Pids of this process's children (its own and adopted ones), from /proc."""
    if threading.active_count() == 1:  # one thread (the loop's case): one list, read with one call
        try:
            return _read_children(_children_fd())
        except OSError:
            pass
    pids: set[int] = set()
    try:
        tids = os.listdir("/proc/self/task")  # threads each have their own list
    except OSError:
        return pids
    for tid in tids:
        try:
            fd = os.open(f"/proc/self/task/{tid}/children", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            pids |= _read_children(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    return pids


def _children_fd() -> int:
    """The main thread's list of children, opened once per process (it is read at every wake
    where a task ended; a read from its start lists them anew)."""
    if _CHILDREN[0] != os.getpid():
        _CHILDREN[:] = [os.getpid(), os.open(f"/proc/self/task/{os.getpid()}/children", os.O_RDONLY | os.O_CLOEXEC)]
    return _CHILDREN[1]


def _read_children(fd: int) -> set[int]:
    data = b""
    while chunk := os.pread(fd, 65536, len(data)):
        data += chunk
    return set(map(int, data.split()))


def children_left() -> set[int]:
    """This process's children other than the leaders of unfinished attempts: what commands
    left behind (adopted, as a subreaper). Read once after the ends seen in one wake, it
    answers for all of them (`Attempt.on_exit`)."""
    return own_children() - _LIVE_LEADERS


def _stat(pid: str) -> tuple[bytes, int, int] | None:
    """(state, ppid, pgrp) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[1]), int(fields[2])
    except (OSError, IndexError, ValueError):
        return None


def carriers(var: str, values=None) -> dict[int, bytes]:
    """Live processes (zombies excluded) whose environment sets `var` (to one of
    `values`, when given): pid -> the value. Commands inherit the variables
    taskrun sets, so this finds a run's or an attempt's processes wherever they
    went, out of their group included."""
    prefix = var.encode() + b"="
    me = os.getpid()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        st = _stat(entry)
        if st is None or st[0] in (b"Z", b"X"):
            continue
        value = _env_value(entry, prefix)
        if value is not None and (values is None or value in values):
            found[int(entry)] = value
    return found


def signal_all(pids, sig: int) -> None:
    """Send `sig` to each pid; those gone or not ours are skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def read_end(path: str | None, max_bytes: int) -> tuple[bytes, int] | None:
    """The last `max_bytes` of a file, and the file's size; None when unreadable."""
    if path is None:
        return None
    try:
        if os.stat(path).st_size == 0:  # most logs: one stat answers, at the end of thousands of tasks
            return b"", 0
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, max_bytes, max(0, size - max_bytes)), size
    except OSError:
        return None
    finally:
        os.close(fd)


def last_lines(path: str | None, lines: int, max_bytes: int = 16 * 1024) -> bytes | None:
    """The last `lines` lines of a log, within its last `max_bytes` (a line cut by
    that bound is left out), as the bytes stand in the file; None when unreadable."""
    end = read_end(path, max_bytes)
    if end is None:
        return None
    data, size = end
    if size > max_bytes:
        data = data[data.find(b"\n") + 1:]
    if lines <= 0:
        return b""
    pos = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        pos = data.rfind(b"\n", 0, pos)
        if pos < 0:
            return data
    return data[pos + 1:]


def _environ(pid: str) -> bytes | None:
    """A process's environment as /proc gives it (NUL-separated); None if it is gone.
    Empty for a moment in every exec (between the new image's mapping and its stack being
    set up) and while a process exits: an empty one says nothing about whose it is."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read()
    except OSError:
        return None


def _env_value(pid: str, prefix: bytes) -> bytes | None:
    """The value of one variable (`prefix` is `NAME=`) in a process's environment."""
    return _value_in(_environ(pid), prefix)


def _value_in(environ: bytes | None, prefix: bytes) -> bytes | None:
    for item in (environ or b"").split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):]
    return None


def group_members(pgid: int, attempt_id: str, leader: int, *, anywhere: bool = False,
                  unsure: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Live processes of an attempt other than its leader: (its process group,
    escapees). An escapee left the group (setsid) but carries the attempt's id in
    its environment; it is looked for among our adopted children, or, with
    `anywhere`, among all processes (a costlier scan, for the moments a stop
    starts and escalates). Adopted children whose environment could not be read
    (in the middle of an exec, or exiting) are added to `unsure`, to be looked at again."""
    me = os.getpid()
    want = attempt_id.encode()
    members, escapees = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == leader:
            continue
        st = _stat(entry)
        if st is None or st[0] in (b"Z", b"X"):
            continue
        if st[2] == pgid:
            members.append(int(entry))
        elif anywhere or st[1] == me:
            environ = _environ(entry)
            if environ:
                if _value_in(environ, _ATTEMPT_PREFIX) == want:
                    escapees.append(int(entry))
            elif unsure is not None and st[1] == me and environ is not None:
                unsure.append(int(entry))
    return members, escapees


def signal_name(num: int) -> str:
    """`SIGTERM`; a real-time signal as `SIGRTMIN+3`, the way kill -l names it."""
    try:
        return signal.Signals(num).name
    except ValueError:
        if signal.SIGRTMIN < num < signal.SIGRTMAX:
            return f"SIGRTMIN+{num - signal.SIGRTMIN}"
        return f"SIG{num}"


def _send(pids: list[int], pgid: int | None, sig: int) -> None:
    """Signal a process group, then single processes; the gone and the foreign are skipped."""
    if pgid is not None:
        try:
            os.killpg(pgid, sig)
        except OSError:  # gone, or (EPERM) the id now belongs to someone else
            pass
    signal_all(pids, sig)


def terminate(pids, pgid: int | None = None) -> None:
    """The first rung of every stop ladder: SIGTERM, then SIGCONT. A stopped
    process (SIGSTOP, Ctrl-Z) keeps a SIGTERM pending until it runs again: without
    the SIGCONT its cleanup would never run and the whole grace would pass."""
    pids = list(pids)
    _send(pids, pgid, signal.SIGTERM)
    _send(pids, pgid, signal.SIGCONT)


@dataclass(slots=True, eq=False)
class Attempt:
    """A running attempt; a small state machine driven by `on_exit` and `tick`."""

    spec: AttemptSpec
    pid: int | None = None
    pidfd: int | None = None
    result: AttemptResult | None = None
    started_at: float = 0.0
    _t0: float = 0.0  # monotonic start
    _deadline: float | None = None  # monotonic: when the timeout fires
    _kill_at: float | None = None  # monotonic: when SIGKILL follows SIGTERM
    _give_up_at: float | None = None  # monotonic: stop waiting for an unkillable group
    _status: tuple[int | None, str | None] | None = None  # (exit code, signal) once the leader ended
    _ended_mono: float = 0.0
    _timed_out: bool = False
    _cancelled: bool = False
    _reason: str | None = None
    _poll_at: float | None = None  # monotonic: next check of a group being emptied
    _termed: set[int] = field(default_factory=set)  # escapees already sent SIGTERM
    _strays: set[int] = field(default_factory=set)
    outputs: dict[int, _Sink] = field(default_factory=dict)  # pipe read end -> where it goes (masked runs)
    on_close_fd: object = None  # called with a pipe's fd before it is closed (to unregister it)
    write_error: OSError | None = None  # a log file could not be written (disk full ...)
    _final: AttemptResult | None = None  # the result, once only the pipes' drain is left
    _id: str = ""
    _drain_until: float | None = None
    _step: int = 0  # the step running (an index into spec.steps)
    _step_t0: float = 0.0  # monotonic start of the step
    _step_results: list = field(default_factory=list)  # the StepResult of each step that ended
    _halted: str | None = None  # why it was stopped from outside (timeout, cancel): no further step starts
    _unstarted: AttemptResult | None = None  # the current step could not start: how it failed
    on_spawn: object = None  # called with the attempt when a later step's process started (to watch its fds)

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def ended(self) -> bool:
        """The leader's end has been seen (the group may still be being emptied)."""
        return self._status is not None

    @property
    def attempt_id(self) -> str:
        # Unique among this process's attempts: a Dask worker runs attempts of several runs,
        # which may share task names, and finds escapees by this id among all processes.
        if not self._id:
            self._id = f"{self.spec.task}#{self.spec.attempt}@{_SELF}.{next(_ATTEMPT_SEQ)}"
        return self._id

    @property
    def argv(self) -> tuple[str, ...]:
        """The command running now: the current step's, or the attempt's only one."""
        return self.spec.steps[self._step].argv if self.spec.steps else self.spec.argv

    @property
    def cwd(self) -> str:
        """The current command's folder: the attempt's, unless its step names another."""
        return (self.spec.steps[self._step].cwd if self.spec.steps else None) or self.spec.cwd

    def start(self) -> None:
        self.started_at = time.time()
        self._t0 = self._step_t0 = time.monotonic()
        self._spawn()
        if self._unstarted is not None:
            self.result = self._step_over(self._take_unstarted())

    def _spawn(self) -> None:
        """Start the current command: the only one, or the current step (recorded first)."""
        spec = self.spec
        if spec.steps:
            self._record_step_start()
        env = dict(spec.env)
        env[ATTEMPT_ID_VAR] = self.attempt_id
        pipes: list[int] = []
        try:
            if spec.interactive:
                note_uncaptured(spec)
            elif spec.mask:
                pipes = self._open_pipes()
            self.pid = spawn(self.argv, env, self.cwd, spec.stdout_path, spec.stderr_path,
                             pipes=(pipes[1], pipes[3]) if pipes else None, interactive=spec.interactive)
        except OSError as exc:
            self._close_outputs()
            self._fail_to_start(exc, env)
            return
        finally:
            for fd in pipes[1::2]:  # the write ends now live in the command only
                os.close(fd)
        self.pidfd = os.pidfd_open(self.pid)
        if spec.timeout_s is not None:
            self._deadline = self._t0 + spec.timeout_s  # one deadline for all the steps

    def _open_pipes(self) -> list[int]:
        """Two pipes for the command's output and the two log files they are copied to, masked."""
        masker = masker_for(self.spec.mask)
        fds: list[int] = []
        try:
            for path in (self.spec.stdout_path, self.spec.stderr_path):
                r, w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
                fds += [r, w]
                os.set_blocking(w, True)  # the command sees an ordinary blocking pipe
                log = os.open(path, _LOG_FLAGS | os.O_CLOEXEC, 0o600)
                self.outputs[r] = _Sink(log, path, LineMasker(masker))
        except OSError:
            for fd in fds:
                os.close(fd)
            for sink in self.outputs.values():
                os.close(sink.fd)
            self.outputs.clear()
            raise
        return fds

    def on_output(self, fd: int) -> None:
        """A pipe is readable: copy what is there to its log, masked; close it at EOF."""
        sink = self.outputs.get(fd)
        if sink is None:
            return
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._store(sink, sink.masker.feed(data))
            return
        self._close_output(fd)
        self._maybe_done()

    def _store(self, sink: _Sink, data: bytes) -> None:
        if not data or sink.failed:
            return
        try:
            while data:
                data = data[os.write(sink.fd, data):]
        except OSError as exc:
            sink.failed = True  # keep reading (the command must not block), stop writing
            if self.write_error is None:
                exc.filename = exc.filename or sink.path
                self.write_error = exc

    def _close_output(self, fd: int) -> None:
        sink = self.outputs.pop(fd)
        self._store(sink, sink.masker.flush())
        if self.on_close_fd is not None:
            self.on_close_fd(fd)
        os.close(fd)
        os.close(sink.fd)

    def _close_outputs(self) -> None:
        for fd in list(self.outputs):
            self._close_output(fd)

    def _drain_outputs(self) -> None:
        """Read what the pipes hold now, then close them: the drain's time is up."""
        for fd in list(self.outputs):
            sink = self.outputs[fd]
            for _ in range(64):  # bounded: a writer may keep filling the pipe
                try:
                    data = os.read(fd, READ_CHUNK)
                except OSError:
                    break
                if not data:
                    break
                self._store(sink, sink.masker.feed(data))
        self._close_outputs()

    def _maybe_done(self) -> None:
        if self._final is not None and not self.outputs:
            final, self._final = self._final, None
            self.result = self._step_over(final) if self.spec.steps else final

    # -- steps: one attempt, several commands in turn ------------------------------

    def _record_step_start(self) -> None:
        """Append the step's start to `spec.steps_path`, with the sizes of the logs then: the
        console echoes the step's command between the previous step's output and its own."""
        spec, step = self.spec, self.spec.steps[self._step]
        if spec.steps_path is None:
            return
        sizes = []
        for path in (spec.stdout_path, spec.stderr_path):
            try:
                sizes.append(os.stat(path).st_size)
            except OSError:
                sizes.append(0)
        line = json.dumps({"step": self._step + 1, "cmd": step.shown, "name": step.name, "stdout": sizes[0],
                           "stderr": sizes[1], "started_at": round(time.time(), 6)}, ensure_ascii=False)
        data = masker_for(spec.mask).mask_bytes(line.encode() + b"\n")
        try:
            fd = os.open(spec.steps_path, _LOG_FLAGS | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)  # one write: a reader sees the whole line or none of it
            finally:
                os.close(fd)
        except OSError as exc:
            if self.write_error is None:
                exc.filename = exc.filename or spec.steps_path
                self.write_error = exc

    def _step_over(self, ended: AttemptResult) -> AttemptResult | None:
        """The current step ended (`ended` says how, timed as the attempt so far): record it, then
        start the next step, or return the attempt's result when this was the last one or it
        ends the attempt (it failed without allow_failure, timed out, or was stopped)."""
        while True:
            step = self.spec.steps[self._step]
            now_mono = time.monotonic()
            step_start = self.started_at + (self._step_t0 - self._t0)
            self._step_results.append(StepResult(
                index=self._step + 1, cmd=step.shown, name=step.name, allow_failure=step.allow_failure,
                exit_code=ended.exit_code, signal=ended.signal, pid=ended.pid, started_at=step_start,
                finished_at=ended.finished_at, duration_s=round(max(0.0, ended.finished_at - step_start), 6),
                reason=ended.reason, stray_killed=ended.stray_killed))
            failed = not ended and not step.allow_failure
            if failed or ended.timed_out or ended.cancelled or self._step + 1 == len(self.spec.steps):
                return self._steps_result(ended, failed)
            if self._halted or (self._deadline is not None and now_mono >= self._deadline):
                return self._steps_result(ended, failed, cut=True)  # steps are left, but none may start
            self._step += 1
            self._step_t0 = now_mono
            self._next_step_state()
            self._spawn()
            if self._unstarted is not None:
                ended = self._take_unstarted()
                continue
            _LIVE_LEADERS.add(self.pid)
            if self.on_spawn is not None:
                self.on_spawn(self)
            return None

    def _take_unstarted(self) -> AttemptResult:
        ended, self._unstarted = self._unstarted, None
        return ended

    def _next_step_state(self) -> None:
        self.pid = self.pidfd = None
        self._status = self._kill_at = self._give_up_at = self._poll_at = None
        self._drain_until = None
        self._reason = None
        self._termed = set()
        self._strays = set()

    def _steps_result(self, ended: AttemptResult, failed: bool, *, cut: bool = False) -> AttemptResult:
        """The attempt's result: the failing step's exit code or signal (0 when every step that
        had to succeed did), the whole attempt's times, every step's record. `cut`: stopped
        (cancelled, or out of time) between two steps."""
        steps = tuple(self._step_results)
        ok = not (failed or ended.timed_out or ended.cancelled or cut)
        reason, timed_out, cancelled = ended.reason, ended.timed_out, ended.cancelled
        if cut and self._halted:
            reason, cancelled = self._halted, True
        elif cut:
            reason, timed_out = f"timed out after {self.spec.timeout_s:g}s, before step {len(steps) + 1}", True
        return dataclasses.replace(
            ended, exit_code=0 if ok else ended.exit_code, signal=None if ok else ended.signal,
            timed_out=timed_out, cancelled=cancelled, reason=reason,
            stray_killed=sum(r.stray_killed for r in steps), steps=steps,
            failed_step=None if ok or cut else len(steps))

    def _fail_to_start(self, exc: OSError, env: dict[str, str]) -> None:
        spec = self.spec
        if isinstance(exc, FileNotFoundError) and exc.filename == self.cwd:
            code, reason = 127, f"working directory not found: {self.cwd}"
        elif isinstance(exc, NotADirectoryError) and exc.filename == self.cwd:
            code, reason = 127, f"working directory is not a folder: {self.cwd}"
        elif not os.path.isdir(os.path.dirname(spec.stdout_path) or "."):
            code, reason = 126, f"cannot open the log files in {os.path.dirname(spec.stdout_path)}"
        else:
            code, reason = exec_failure(exc, self.argv, env, self.cwd)
        now = time.time()
        failed = AttemptResult(
            exit_code=code, signal=None, timed_out=False, pid=None, started_at=self.started_at,
            finished_at=now, duration_s=round(now - self.started_at, 6), reason=reason,
        )
        if spec.steps:
            self._unstarted = failed  # the step loop records it and goes on, or ends the attempt
        else:
            self.result = failed

    # -- driven by the loop ---------------------------------------------------

    def on_exit(self) -> None:
        """The leader's pidfd became readable: take its status, keep it unreaped; then settle.
        (A loop that sees several ends at once calls `see_exit`, then `settle` each with one
        `children_left()`.)"""
        if self.see_exit():
            self.settle()

    def see_exit(self) -> bool:
        """Take the leader's status (kept unreaped), if it has ended: whether it had."""
        info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        if info is None:  # spurious wakeup
            return False
        self._ended_mono = time.monotonic()
        if info.si_code == os.CLD_EXITED:
            self._status = (info.si_status, None)
        else:
            self._status = (None, signal_name(info.si_status))
        return True

    def settle(self, left: set[int] | None = None) -> None:
        """After the leader ended: finish now, or stop what it left behind first. `left`:
        `children_left()` read after the end was seen, by whoever saw several ends at once."""
        members, escapees, unsure = [], [], []
        if self._may_have_members(left):
            # Not a subreaper (a Dask worker): escapees were adopted by someone else, look everywhere.
            members, escapees = group_members(self.pid, self.attempt_id, self.pid,
                                              anywhere=not _SUBREAPER, unsure=unsure)
        if self._kill_at is not None and self._give_up_at is None:
            # Escapees adopted since the stop began have not had their SIGTERM yet.
            fresh = [p for p in escapees if p not in self._termed]
            terminate(fresh)
            self._termed.update(fresh)
            self._strays.update(fresh)  # escaping the group makes a process a stray
        members += escapees
        if not members:
            if unsure and time.monotonic() < self._ended_mono + UNSURE_S:
                # An adopted child caught in an exec may be this attempt's escapee: look again.
                self._poll_at = time.monotonic() + STRAY_POLL_S
                return
            self._finish()
            return
        self._poll_at = time.monotonic() + STRAY_POLL_S
        if self._kill_at is None:
            # The leader ended by itself: what is left was left behind. Members found
            # while a stop is under way got its SIGTERM and may be dying: they count
            # as left behind only if they are still there for the SIGKILL.
            self._strays.update(members)
            self.stop(reason=self._reason)
        elif self._give_up_at is not None and time.monotonic() >= self._give_up_at:
            self._finish()

    def _may_have_members(self, left: set[int] | None = None) -> bool:
        # Fast path (a few microseconds instead of a /proc scan): once the leader
        # is dead, every survivor of its tree was adopted by us (subreaper) or
        # lives under such an adoptee, so no child of ours other than a running
        # leader means an empty group.
        if self._kill_at is not None or not _SUBREAPER:
            return True
        return bool(children_left() if left is None else left)

    def stop(self, *, reason: str | None, timed_out: bool = False, cancelled: bool = False,
             force: bool = False) -> None:
        """Start (or hurry) the ladder: SIGTERM now, SIGKILL after the grace period."""
        if self.done or self.pid is None:
            return
        if self._final is not None:  # only the drain is left
            if (timed_out or cancelled) and self._halted is None:
                self._halted = reason or "cancelled"  # ... and no further step
            if force:
                self._drain_until = time.monotonic()
                self.tick()
            return
        now = time.monotonic()
        if (timed_out or cancelled) and self._halted is None:
            self._halted = reason or "cancelled"  # no further step starts
        if self._status is None and not self._leader_exited():
            # Only a stop that reaches a running command decides its outcome: one that
            # ended on its own meanwhile (say, failed as fail_fast stops the rest) keeps it.
            self._timed_out |= timed_out
            self._cancelled |= cancelled
            if reason and (self._reason is None or timed_out or cancelled):
                self._reason = reason
        if self._kill_at is None:
            self._kill_at = now + self.spec.kill_grace_s
            _, escapees = group_members(self.pid, self.attempt_id, self.pid, anywhere=True)
            self._termed.update(escapees)
            self._strays.update(escapees)  # escaping the group makes a process a stray
            terminate(escapees, self.pid)
        if force and self._kill_at > now:
            self._kill_at = now
        self.tick()

    def _leader_exited(self) -> bool:
        """Whether the leader has ended, its end seen by the loop or not yet."""
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True

    def next_attention(self) -> float | None:
        """Monotonic time at which `tick` must run, if any."""
        if self.done:
            return None
        if self._final is not None:
            return self._drain_until
        times = [t for t in (self._deadline if self._kill_at is None else None,
                             self._kill_at if self._give_up_at is None else None,
                             self._poll_at if self._status is not None else None) if t is not None]
        return min(times) if times else None

    def tick(self) -> None:
        """Advance deadlines: fire the timeout, the SIGKILL, re-check a draining group."""
        if self.done or self.pid is None:
            return
        now = time.monotonic()
        if self._final is not None:
            if now >= self._drain_until:
                self._drain_outputs()
                self._maybe_done()
            return
        if self._kill_at is None and self._deadline is not None and now >= self._deadline:
            self.stop(reason=f"timed out after {self.spec.timeout_s:g}s", timed_out=True)
            return
        if self._kill_at is not None and now >= self._kill_at and self._give_up_at is None:
            self._give_up_at = now + KILL_WAIT_S
            members, escapees = group_members(self.pid, self.attempt_id, self.pid, anywhere=True)
            self._strays.update(members + escapees)
            _send(escapees, self.pid, signal.SIGKILL)
        if self._status is not None:
            self.settle()

    def _finish(self) -> None:
        code, sig = self._status
        try:
            os.waitpid(self.pid, 0)  # the group is empty: now the leader may go
        except ChildProcessError:
            pass
        if self.pidfd is not None:
            os.close(self.pidfd)
        _LIVE_LEADERS.discard(self.pid)
        ended = self.started_at + (self._ended_mono - self._t0)
        reason = self._reason
        if self._strays and not (self._timed_out or self._cancelled):
            reason = reason or f"stopped {len(self._strays)} process(es) the command left running"
        self._final = AttemptResult(
            exit_code=code, signal=sig, timed_out=self._timed_out, pid=self.pid,
            started_at=self.started_at, finished_at=ended,
            duration_s=round(self._ended_mono - self._t0, 6), reason=reason,
            cancelled=self._cancelled, stray_killed=len(self._strays),
        )
        self._drain_until = time.monotonic() + DRAIN_S
        self._maybe_done()


def exec_failure(exc: OSError, argv: tuple[str, ...], env: dict[str, str], cwd: str) -> tuple[int, str]:
    """Exit code and reason of a command exec refused: 127 when something it needs
    is missing, 126 when it is there but cannot run; the reason names the cause
    (the program, its interpreter, a directory, the size of the environment)."""
    name = argv[0]
    program = exc.filename if isinstance(exc.filename, str) else name
    path = os.path.join(cwd, program)
    if exc.errno == errno.ENOENT:
        # A bare name is a PATH lookup that found nothing; a path that exists names a missing interpreter.
        interpreter = _interpreter(path) if "/" in program and os.path.exists(path) else None
        if interpreter is None:
            return 127, f"command not found: {name}"
        return 127, f"bad interpreter {interpreter} in {name}: not found"
    if exc.errno == errno.EACCES:
        if os.path.isdir(path):
            return 126, f"is a directory: {name}"
        interpreter = _interpreter(path) if os.access(path, os.X_OK) else None
        if interpreter is not None and os.path.isdir(interpreter):
            return 126, f"bad interpreter {interpreter} in {name}: is a directory"
        if interpreter is not None and not os.access(interpreter, os.X_OK):
            return 126, f"bad interpreter {interpreter} in {name}: permission denied"
        return 126, f"permission denied: {exc.filename or name}"
    if exc.errno == errno.ENOEXEC:
        return 126, f"not an executable: {name}"
    if exc.errno == errno.E2BIG:
        return 126, _too_big(argv, env)
    return 126, f"could not start: {exc.strerror or exc}"


def _interpreter(path: str) -> str | None:
    """The program a file needs to be run: its `#!` interpreter, or an ELF file's
    loader (PT_INTERP); None when it names none or cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            if head.startswith(b"#!"):
                words = head[2:].split(b"\n", 1)[0].split()
                return os.fsdecode(words[0]) if words else None
            if head[:4] != b"\x7fELF" or len(head) < 64:
                return None
            wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(order + ("Q" if wide else "I"), head, 0x20 if wide else 0x1C)
            size, count = struct.unpack_from(order + "HH", head, 0x36 if wide else 0x2A)
            for i in range(min(count, 64)):
                f.seek(phoff + i * size)
                entry = f.read(size)
                if struct.unpack_from(order + "I", entry)[0] == 3:  # PT_INTERP
                    offset, length = (struct.unpack_from(order + "QxxxxxxxxxxxxxxxxQ", entry, 8) if wide
                                      else struct.unpack_from(order + "IxxxxxxxxI", entry, 4))
                    f.seek(offset)
                    return os.fsdecode(f.read(min(length, 4096)).split(b"\0")[0])
    except (OSError, struct.error, IndexError):
        pass
    return None


def _too_big(argv: tuple[str, ...], env: dict[str, str]) -> str:
    """Why exec found the command line or the environment too big (E2BIG): one
    string over the kernel's limit per string, or all of them over ARG_MAX."""
    per_string = 32 * os.sysconf("SC_PAGESIZE")  # Linux's MAX_ARG_STRLEN
    args = [len(os.fsencode(a)) + 1 for a in argv]
    variables = {k: len(os.fsencode(k)) + len(os.fsencode(v)) + 2 for k, v in env.items()}
    longest_var = max(variables, key=variables.get, default=None)
    if longest_var is not None and variables[longest_var] > per_string:
        return (f"environment too big for exec: the variable {longest_var} is {variables[longest_var]} bytes "
                f"(at most {per_string} per variable)")
    longest_arg = max(range(len(args)), key=args.__getitem__)
    if args[longest_arg] > per_string:
        return (f"arguments too big for exec: argument {longest_arg} is {args[longest_arg]} bytes "
                f"(at most {per_string} per argument)")
    env_size, args_size = sum(variables.values()), sum(args)
    limit = os.sysconf("SC_ARG_MAX")
    if env_size >= args_size:
        return (f"environment too big for exec: {env_size} bytes in {len(variables)} variables, with {args_size} "
                f"bytes of arguments (at most about {limit} in all)")
    return (f"arguments too big for exec: {args_size} bytes in {len(args)} arguments, with {env_size} bytes "
            f"of environment (at most about {limit} in all)")


@dataclass(slots=True, eq=False)
class _Sink:
    """Where one output pipe of a masked attempt goes."""

    fd: int
    path: str
    masker: LineMasker
    failed: bool = False


# Per process, like the kernel state they mirror: whether this process adopts
# orphans, and the leaders of its attempts not yet finished (children of ours
# that are not strays).
_SUBREAPER = False
_LIVE_LEADERS: set[int] = set()


_HOME: int | None = None
_CHDIR_LOCK = threading.Lock()
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
# Every disposition goes back to its default in the command, whatever the runner
# inherited or set: Python ignores SIGPIPE and SIGXFSZ, and a parent may have
# ignored others (nohup, a background job). Caught signals are reset by exec anyway.
_SIGDEF = tuple(set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP})


@functools.lru_cache(maxsize=1024)
def _which(name: str, path: str, cwd: str) -> str:
    found = shutil.which(name, path=path)
    if found is None:
        raise FileNotFoundError(errno.ENOENT, "command not found", name)
    return found


UNCAPTURED = "taskrun: output not captured: this task is interactive, its output went to the terminal\n"


def note_uncaptured(spec: AttemptSpec) -> None:
    """An interactive attempt's logs say why they hold nothing else."""
    for path in (spec.stdout_path, spec.stderr_path):
        fd = os.open(path, _LOG_FLAGS | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, UNCAPTURED.encode())
        finally:
            os.close(fd)


def spawn(argv: tuple[str, ...], env: dict[str, str], cwd: str, stdout_path: str, stderr_path: str,
          pipes: tuple[int, int] | None = None, interactive: bool = False) -> int:
    """Start a command in a new session, stdin from /dev/null, output appended to two files
    (or, with `pipes`, written to these two fds); `interactive`: with the runner's own stdin,
    stdout and stderr (its terminal; a session of its own all the same, so the stop ladder
    reaches its whole group).

    posix_spawn (vfork + exec in glibc) is the cheapest way to start a process
    from Python, and reports exec errors as OSError. It cannot change folder,
    so the runner steps into `cwd` around the call when it is not the runner's own
    folder (the loop is single-threaded, and relative paths of its own are resolved
    before the run).
    """
    actions = [] if interactive else [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    if interactive:
        pass
    elif pipes is None:
        actions += [(os.POSIX_SPAWN_OPEN, 1, stdout_path, _LOG_FLAGS, 0o600),
                    (os.POSIX_SPAWN_OPEN, 2, stderr_path, _LOG_FLAGS, 0o600)]
    else:
        actions += [(os.POSIX_SPAWN_DUP2, pipes[0], 1), (os.POSIX_SPAWN_DUP2, pipes[1], 2)]
    global _HOME
    with _CHDIR_LOCK:  # a Dask worker starts commands from several threads; the folder is per process
        if _HOME is None:  # the runner's own folder, to come back to (O_PATH: needs no read permission)
            _HOME = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # Most commands run in the runner's own folder: then there is no folder to step into
        # (getcwd is one call; a folder renamed or deleted since no longer matches, and is stepped into).
        try:
            here = os.getcwd() == cwd
        except OSError:
            here = False
        try:
            if not here:
                try:
                    os.chdir(cwd)
                except OSError as exc:
                    exc.filename = cwd
                    raise
            program = argv[0] if "/" in argv[0] else _which(argv[0], env.get("PATH", os.defpath), cwd)
            return os.posix_spawn(program, argv, env, file_actions=actions, setsid=True,  # own group, so a timeout
                                  setsigdef=_SIGDEF, setsigmask=())                     # reaches grandchildren too
        finally:
            if not here:
                os.fchdir(_HOME)


def launch(spec: AttemptSpec, before_spawn=None) -> Attempt:
    """Start an attempt; if it could not start, `done` is already true.
    `before_spawn(attempt)` runs just before the command starts (its `attempt_id` is fixed)."""
    attempt = Attempt(spec)
    if before_spawn is not None:
        before_spawn(attempt)
    attempt.start()
    if attempt.pid is not None:
        _LIVE_LEADERS.add(attempt.pid)
    return attempt


def reap_orphans() -> int:
    """Reap adopted children that have exited; kill and reap those still alive
    that belong to no running attempt. Returns how many were killed."""
    killed = 0
    for pid in own_children() - _LIVE_LEADERS:
        st = _stat(str(pid))
        if st is not None and st[0] not in (b"Z", b"X"):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return killed


def run_attempt(spec: AttemptSpec, should_stop=lambda: False, *, poll_s: float = 0.1,
                on_start=None) -> AttemptResult:
    """Run one attempt to its end, blocking (for workers that run one at a time).

    `should_stop` is polled every `poll_s` seconds, the first time `poll_s` after
    the start (a command shorter than that never pays for a poll); a true value
    stops the attempt with the usual ladder and reports it as cancelled, and
    "force" skips what is left of the grace period. A stop check that raises
    (the cluster that could say "go on" is out of reach) counts as a stop.
    `on_start(attempt)` runs just before the command starts: its `attempt_id`,
    which the command's processes will carry, is fixed; its pid is not known yet.
    Whatever ends the wait (an exception included), the ladder runs to its end
    before this returns or raises: no command outlives the call.
    """
    attempt = launch(spec, on_start)
    if attempt.done:
        return attempt.result
    try:
        _drive(attempt, should_stop, poll_s)
    finally:
        if not attempt.done:
            attempt.stop(reason="cancelled: its worker stopped waiting for it", cancelled=True)
            _drive(attempt, None, poll_s)
    return attempt.result


def _drive(attempt: Attempt, should_stop, poll_s: float) -> None:
    """Wait for the attempt's end, ticking its ladder and polling `should_stop` (None: no polls)."""
    next_poll = time.monotonic() + poll_s if should_stop is not None else None
    with selectors.DefaultSelector() as sel:
        if attempt._status is None:
            sel.register(attempt.pidfd, selectors.EVENT_READ, None)
        for fd in attempt.outputs:
            sel.register(fd, selectors.EVENT_READ, fd)
        attempt.on_close_fd = sel.unregister

        def watch_step(a: Attempt) -> None:  # a later step started: its own pidfd (and pipes)
            sel.register(a.pidfd, selectors.EVENT_READ, None)
            for fd in a.outputs:
                sel.register(fd, selectors.EVENT_READ, fd)

        attempt.on_spawn = watch_step
        try:
            while not attempt.done:
                now = time.monotonic()
                wake = [t for t in (attempt.next_attention(), next_poll) if t is not None]
                for key, _ in sel.select(clamp_wait(min(wake) - now) if wake else None):
                    if key.data is not None:
                        attempt.on_output(key.data)
                    elif attempt._status is None:
                        sel.unregister(attempt.pidfd)
                        attempt.on_exit()
                if next_poll is not None and not attempt.done and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + poll_s
                    _poll_stop(attempt, should_stop)
                attempt.tick()
        finally:
            attempt.on_close_fd = attempt.on_spawn = None


def _poll_stop(attempt: Attempt, should_stop) -> None:
    try:
        stop, reason = should_stop(), "cancelled"
    except Exception as exc:  # noqa: BLE001 - whatever broke, nobody can tell this attempt to go on
        stop, reason = True, f"cancelled: its stop check failed ({type(exc).__name__}{f': {exc}' if str(exc) else ''})"
    if stop:
        attempt.stop(reason=reason, cancelled=True, force=stop == "force")
