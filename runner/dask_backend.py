"""Attempts on a Dask cluster, behind the same interface as the local pool.

Model:
- Each attempt is one Dask task with its own key (`taskrun-TOKEN-TASK-N`),
  submitted impure so a retry really runs again, with the task's `resources`.
  It runs `run_on_worker`, which runs the command with `proc`'s ladder on the
  worker, next to the process (Dask cannot interrupt a running function).
- One `distributed.Variable` per attempt carries the word between the two
  sides. The runner sets it to "stop" or "force" to stop the attempt; the
  worker polls it while the command runs (and checks it before starting, so a
  queued attempt of a stopped run returns without starting). At the start the
  worker sets it to where it runs: should that worker die, Dask would run the
  task again elsewhere; the second start finds the record and reports the
  attempt failed, naming the lost worker, instead of running the command twice
  (taskrun's `retries`, not Dask's, decide what runs again).
- Should taskrun go away, its client's tasks are released; a worker stops an
  attempt whose task it no longer holds, so nothing keeps running.
- After a stop the runner waits for the attempts to come back (their grace plus
  `STOP_MARGIN_S`); what has not come back by then is cancelled and reported
  as such.
- Future callbacks (a Dask thread) write to a pipe; `wait` selects on it and on
  the wake fd the signal handler writes to.

`distributed` is imported only by `connect` and on workers: `taskrun --version`
and local runs never load it. The worker side of this module imports the
standard library, `model`, `proc` and `remote` only.
"""

from __future__ import annotations

import os
import secrets
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, replace

from .backends import drain_wakeups
from .errors import ExecutorError
from .model import AttemptResult, AttemptSpec
from .remote import MARKER, RemoteOutcome, run_remote

STOP_MARGIN_S = 10.0  # after a stop: how long past the grace to wait for a worker's answer
INSTALL_HINT = "pip install 'taskrun[dask]'"


def connect(address: str, timeout_s: float):
    """A Dask client connected to `address`, or ExecutorError with one line saying why not."""
    try:
        import distributed
    except ImportError:
        raise ExecutorError(f"the dask executor needs the 'distributed' package: {INSTALL_HINT}") from None
    from .durations import format_duration

    from distributed.comm import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:  # a bad address fails here, before a client exists (a half-made one hangs on its way out)
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except (ValueError, TypeError) as exc:
        raise ExecutorError(f"the scheduler address {address!r} is not valid: {_short(exc)} (use one such as tcp://10.0.0.5:8786)") from None
    try:
        return distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {address} within {format_duration(timeout_s)}"
            f" ({_short(exc)}): start it with `dask scheduler`, check --scheduler, or raise --connect-timeout"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ExecutorError(f"the scheduler address {address!r} is not valid: {_short(exc)} (use one such as tcp://10.0.0.5:8786)") from None


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --- the worker side ---------------------------------------------------------------


def run_on_worker(spec: AttemptSpec, name: str, token: str) -> RemoteOutcome:
    """One attempt, on a Dask worker (see the module's model)."""
    from distributed import Variable, get_worker  # a Dask worker has it by definition

    worker = get_worker()
    address, host = worker.address, socket.gethostname()
    word = Variable(name)
    key = worker.get_current_task()
    said = _read(word)
    if isinstance(said, (list, tuple)):  # it started before, on a worker that is gone
        lost, lost_host, started_at = said[0], said[1], float(said[2])
        now = time.time()
        return RemoteOutcome(result=AttemptResult(
            exit_code=None, signal=None, timed_out=False, pid=None, started_at=started_at, finished_at=now,
            duration_s=round(now - started_at, 6), worker=lost, host=lost_host,
            reason=f"the worker {lost} on {lost_host} was lost while it ran this attempt"))
    if said in ("stop", "force"):
        now = time.time()
        return RemoteOutcome(result=AttemptResult(
            exit_code=None, signal=None, timed_out=False, pid=None, started_at=now, finished_at=now,
            duration_s=0.0, cancelled=True, worker=address, host=host, reason="cancelled before it started"))
    word.set([address, host, time.time()])

    def should_stop():
        ts = worker.state.tasks.get(key)
        if ts is None or ts.state not in ("executing", "long-running"):
            return True  # released: taskrun went away, or cancelled its task
        said = _read(word)
        return said if said in ("stop", "force") else False

    return run_remote(spec, token, should_stop=should_stop, worker=address, host=host)


def _read(variable):
    try:
        return variable.get(timeout=0)
    except TimeoutError:  # not set
        return None


# --- the runner side -----------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Remote:
    """An attempt sent to the cluster and not yet back."""

    spec: AttemptSpec
    name: str  # the Dask key, also the name of its Variable
    future: object
    submitted_at: float
    stop_reason: str | None = None
    cancelled: bool = True
    forced: bool = False
    give_up_at: float | None = None  # monotonic: stop waiting for the worker's answer


class DaskBackend:
    name = "dask"

    def __init__(self, client, wake_fd: int | None = None) -> None:
        self._client = client
        self._token = secrets.token_hex(6)
        self._remotes: dict[Hashable, _Remote] = {}
        self._by_name: dict[str, Hashable] = {}
        self._done: list[tuple[Hashable, AttemptResult]] = []
        self._ended: deque[str] = deque()  # Dask keys whose future finished (appended by a Dask thread)
        self._markers: list[str] = []
        self._sel = selectors.DefaultSelector()
        self._pipe_r, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._pipe_r, selectors.EVENT_READ, "ended")
        self._wake_fd = wake_fd
        if wake_fd is not None:
            self._sel.register(wake_fd, selectors.EVENT_READ, "wake")
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return len(self._remotes)

    def start(self, key: Hashable, spec: AttemptSpec) -> int | None:
        self._mark_folder(os.path.dirname(spec.stdout_path))
        name = f"taskrun-{self._token}-{spec.task}-{spec.attempt}"
        future = self._client.submit(run_on_worker, spec, name, self._token, key=name, pure=False,
                                     resources=dict(spec.resources) or None)
        self._remotes[key] = _Remote(spec=spec, name=name, future=future, submitted_at=time.time())
        self._by_name[name] = key
        future.add_done_callback(self._on_done)
        return None  # the pid is known only on the worker

    def _mark_folder(self, folder: str) -> None:
        """Let workers that see this folder (a shared filesystem) write their logs into it."""
        if folder in self._markers:
            return
        path = os.path.join(folder, MARKER)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self._token + "\n")
        self._markers.append(folder)

    def _on_done(self, future) -> None:
        # A Dask thread: hand the key over, wake the loop.
        self._ended.append(future.key)
        try:
            os.write(self._pipe_w, b".")
        except OSError:
            pass

    def stop(self, key: Hashable, *, reason: str, cancelled: bool = True, force: bool = False) -> None:
        remote = self._remotes.get(key)
        if remote is None or (remote.stop_reason is not None and (remote.forced or not force)):
            return
        from distributed import Variable

        if remote.stop_reason is None:
            remote.stop_reason, remote.cancelled = reason, cancelled
        remote.forced |= force
        try:
            Variable(remote.name, client=self._client).set("force" if force else "stop")
        except Exception:  # the scheduler is out of reach: the wait below ends in a cancel
            pass
        grace = 0.0 if force else remote.spec.kill_grace_s
        remote.give_up_at = time.monotonic() + grace + STOP_MARGIN_S

    def stop_all(self, *, reason: str, force: bool = False) -> None:
        for key in list(self._remotes):
            self.stop(key, reason=reason, force=force)

    def wait(self, timeout_s: float | None) -> list[tuple[Hashable, AttemptResult]]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self._collect()
            self._give_up()
            if self._done or (not self._remotes and deadline is None and self._wake_fd is None):
                break
            wake = [r.give_up_at for r in self._remotes.values() if r.give_up_at is not None]
            if deadline is not None:
                wake.append(deadline)
            timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
            woken = False
            for sel_key, _ in self._sel.select(timeout):
                drain_wakeups(sel_key.fd)
                woken |= sel_key.data == "wake"
            if woken or (deadline is not None and time.monotonic() >= deadline):
                self._collect()
                break
        done, self._done = self._done, []
        return done

    def _collect(self) -> None:
        """Turn the futures that ended into results."""
        names = []
        while self._ended:
            names.append(self._ended.popleft())
        remotes = [(self._by_name.pop(n), n) for n in names if n in self._by_name]
        finished = [(k, self._remotes[k]) for k, _ in remotes if self._remotes[k].future.status == "finished"]
        by_key = self._gather(finished)
        for key, _name in remotes:
            remote = self._remotes.pop(key)
            outcome = by_key.get(key)
            result = self._result_of(remote, outcome)
            self._forget(remote)
            self._done.append((key, result))

    def _gather(self, finished: list[tuple[Hashable, _Remote]]) -> dict[Hashable, RemoteOutcome]:
        """The outcomes of finished futures, in one round trip; one by one if that fails."""
        if not finished:
            return {}
        try:
            return dict(zip((k for k, _ in finished), self._client.gather([r.future for _, r in finished])))
        except Exception:
            pass
        got = {}
        for key, remote in finished:
            try:
                got[key] = remote.future.result(timeout=STOP_MARGIN_S)
            except Exception:  # its data went with a worker, or the scheduler went away: a lost attempt
                pass
        return got

    def _result_of(self, remote: _Remote, outcome: RemoteOutcome | None) -> AttemptResult:
        if outcome is None:
            return self._failure(remote, self._why_lost(remote))
        result = outcome.result
        for data, path in ((outcome.stdout, remote.spec.stdout_path), (outcome.stderr, remote.spec.stderr_path),
                           (outcome.steps, remote.spec.steps_path)):
            if data is not None and path is not None:
                _write_log(path, data)
        if result.cancelled:
            result = replace(result, reason=remote.stop_reason or result.reason, cancelled=remote.cancelled)
        return result

    def _why_lost(self, remote: _Remote) -> str:
        future = remote.future
        if future.status == "error":
            try:
                exc = future.exception(timeout=STOP_MARGIN_S)
            except Exception as lost:  # the scheduler went away too
                exc = lost
            if type(exc).__name__ == "KilledWorker":
                where = getattr(getattr(exc, "last_worker", None), "address", None)
                return (f"the worker {where} was lost while it ran this attempt" if where else
                        "the worker running this attempt was lost") + " (Dask gave up on it: KilledWorker)"
            return f"the Dask task failed: {type(exc).__name__}: {_short(exc)}"
        if future.status == "finished":
            return "its result could not be fetched from the cluster (its worker or the scheduler went away)"
        return "the Dask scheduler dropped this attempt (was it restarted?)"

    def _failure(self, remote: _Remote, reason: str, *, cancelled: bool = False) -> AttemptResult:
        now = time.time()
        return AttemptResult(exit_code=None, signal=None, timed_out=False, pid=None,
                             started_at=remote.submitted_at, finished_at=now,
                             duration_s=round(now - remote.submitted_at, 6), reason=reason, cancelled=cancelled)

    def _give_up(self) -> None:
        """Attempts stopped long ago with no answer from a worker: cancel their Dask tasks."""
        now = time.monotonic()
        late = [k for k, r in self._remotes.items() if r.give_up_at is not None and r.give_up_at <= now]
        for key in late:
            remote = self._remotes.pop(key)
            self._by_name.pop(remote.name, None)
            self._client.cancel([remote.future], force=True)
            self._forget(remote)
            self._done.append((key, self._failure(
                remote, f"{remote.stop_reason}; no answer from the cluster in time: its Dask task was cancelled",
                cancelled=remote.cancelled)))

    def _forget(self, remote: _Remote) -> None:
        from distributed import Variable

        try:
            Variable(remote.name, client=self._client).delete()
        except Exception:  # the scheduler is gone: nothing left to clean up there
            pass

    def close(self) -> None:
        try:
            if self._remotes:
                self._client.cancel([r.future for r in self._remotes.values()], force=True)
            self._client.close(timeout=5)
        except Exception:
            pass
        for folder in self._markers:
            try:
                os.unlink(os.path.join(folder, MARKER))
            except OSError:
                pass
        self._sel.close()
        os.close(self._pipe_r)
        os.close(self._pipe_w)


def _write_log(path: str, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
    except OSError:
        pass
