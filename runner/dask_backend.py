"""Attempts on a Dask cluster, behind the same interface as the local pool.

Model:
- Each attempt is one Dask task with its own key (`taskrun-TOKEN-TASK-N`),
  submitted impure so a retry really runs again, with the task's `resources`.
  It runs `run_on_worker`, which runs the command with `proc`'s ladder on the
  worker's machine, in the worker's launcher (`remote`), next to the process
  (Dask cannot interrupt a running function).
- One `distributed.Variable` per attempt carries the word between the two
  sides. The runner sets it to "go" as it sends the attempt, then to "stop" or
  "force" to stop it, each word after the one before has landed, never waiting
  for them. Its words go out on `WORD_LANES` lanes, one word in flight on
  each: every word in flight holds a connection of its own to the scheduler,
  and a run that sends thousands of attempts at once would otherwise open one
  for each. An attempt keeps its lane, so its words land in order. The worker
  polls it while the command runs (and waits for its
  first word before starting, so a queued attempt of a stopped run returns
  without starting). At the start the
  worker sets it to where it runs: should that worker die, Dask would run the
  task again elsewhere; the second start finds the record and reports the
  attempt failed, naming the lost worker, instead of running the command twice
  (taskrun's `retries`, not Dask's, decide what runs again).
- Should taskrun go away, its client's tasks are released; a worker stops an
  attempt whose task it no longer holds, so nothing keeps running. A worker
  also stops its attempts when it is closing or its stop check fails (the
  scheduler out of reach for `STOP_CHECK_S`), and runs the kill ladder to its
  end whatever ended the wait (`remote.run_remote`).
- A lost worker: the scheduler's "remove-worker" event (it comes as soon as the
  worker's connection closes; a worker that hangs, after the scheduler's
  `worker-ttl`) names the tasks it was processing. An attempt that had started
  there (its Variable says so) fails at once with `lost_worker`'s reason and
  its Dask task is cancelled, so Dask does not run it again: taskrun's
  `retries` decide.
- A lost scheduler: the client's connection closed (seen within `CHECK_S`), or
  no answer to a probe sent every `PROBE_S` within `PROBE_TIMEOUT_S`. `lost`
  says why; the attempts out there end `cancelled` with that reason (their
  workers stop the commands themselves), the scheduler stops the run, and the
  session exits 3.
- An attempt with a timeout that no worker answers for (no free worker, or it
  hangs) is given up after its timeout, grace and `STOP_MARGIN_S` since it was
  sent: no wait is unbounded but that of an attempt with no timeout for a free
  worker.
- After a stop the runner waits for the attempts to come back (their grace plus
  `STOP_MARGIN_S`); what has not come back by then is cancelled and reported
  as such.
- The outcome comes back with the news of the attempt's end: the worker sends
  it as an event on the topic named after taskrun's client (which the
  scheduler forgets with the client), ahead of its task's end on the same
  stream, so the runner need not fetch it, a round trip through the scheduler
  to the worker. An outcome over `PUSH_MAX_BYTES` (output sent back because
  the log folder is not shared) is fetched as the Dask task's result.
- The outcomes, the futures' ends (both on the client's event loop; an end
  whose outcome came first says nothing more) and scheduler events write to a
  pipe; `wait` selects on it and on the wake fd the signal handler writes to.
- distributed's own log lines stay off the console (`TASKRUN_DEBUG=1` keeps
  them): taskrun says what happened in its own words.

`distributed` is imported only by `connect` and on workers: `taskrun --version`
and local runs never load it. The worker side of this module imports the
standard library, `model`, `proc` and `remote` only.
"""

from __future__ import annotations

import os
import pickle
import secrets
import selectors
import socket
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, replace

from .backends import WRITABLE, drain_wakeups, watching_writable
from .errors import ExecutorError
from .model import AttemptResult, AttemptSpec
from .proc import clamp_wait
from .remote import MARKER, RemoteOutcome, run_remote

STOP_MARGIN_S = 10.0  # after a stop: how long past the grace to wait for a worker's answer
RPC_TIMEOUT_S = 5.0  # the longest the runner waits for one answer of the scheduler's
CHECK_S = 1.0  # while attempts are out: how often the connection to the scheduler is checked
PROBE_S = 5.0  # ... and how often the scheduler is asked for a sign of life
PROBE_TIMEOUT_S = 10.0  # ... which it must give within this, or it counts as lost
CLIENT_BATCH_S = 0.001  # the client's batching of its messages to the scheduler (distributed's: 10 ms)
WORD_LANES = 4  # the runner's words to the scheduler in flight at once (each holds a connection)
PUSH_MAX_BYTES = 16 * 1024  # an outcome this small (logs in a shared folder) comes back with the end's news
GATHER_TIMEOUT_S = 60.0  # the longest one fetch of finished attempts' results may take
PRESET_WAIT_S = 5.0  # on a worker: the longest it waits for the runner's first word to an attempt
STOP_CHECK_S = 10.0  # on a worker: the longest a stop check waits for the scheduler (longer: stop)
INSTALL_HINT = "pip install 'distributed>=2024.1' (the dask extra: pip install '.[dask]' in taskrun's folder)"


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
    _quiet_logging()
    try:
        return distributed.Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(
            f"cannot reach the Dask scheduler at {address} within {format_duration(timeout_s)}"
            f" ({_short(exc)}): start it with `dask scheduler`, check --scheduler, or raise --connect-timeout"
        ) from None
    except (ValueError, TypeError) as exc:
        raise ExecutorError(f"the scheduler address {address!r} is not valid: {_short(exc)} (use one such as tcp://10.0.0.5:8786)") from None


def _hurry(client) -> None:
    """The client sends its messages to the scheduler in batches, one at most every 10 ms: an
    attempt's submit would wait in that window behind any message of the last 10 ms (a release,
    the other slot's submit). taskrun sends a few messages per attempt: 1 ms is plenty of batching."""
    try:
        client.scheduler_comm.interval = CLIENT_BATCH_S
    except AttributeError:  # another distributed: its own pace
        pass


def _quiet_logging() -> None:
    """distributed logs its client's troubles (a lost scheduler: tracebacks) to stderr; taskrun
    reports them itself, in one line. TASKRUN_DEBUG=1 keeps them."""
    import logging

    if os.environ.get("TASKRUN_DEBUG"):
        return
    for name, log in list(logging.root.manager.loggerDict.items()):
        if isinstance(log, logging.Logger) and name.split(".")[0] in ("distributed", "tornado", "bokeh"):
            log.handlers[:] = [logging.NullHandler()]  # its configuration gave several their own stderr handler
            log.propagate = False


def lost_worker(address: str, host: str) -> str:
    """The reason of an attempt whose worker died under it (both sides that find one say this)."""
    return f"the worker {address} on {host} was lost while it ran this attempt"


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


# --- the worker side ---------------------------------------------------------------


def run_on_worker(spec: AttemptSpec, name: str, token: str, topic: str) -> RemoteOutcome:
    """One attempt, on a Dask worker (see the module's model)."""
    outcome = _run_on_worker(spec, name, token)
    data = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= PUSH_MAX_BYTES:
        from distributed import get_worker

        get_worker().log_event(topic, {"taskrun": name, "outcome": data})
    return outcome


def _run_on_worker(spec: AttemptSpec, name: str, token: str) -> RemoteOutcome:
    """The attempt itself: its start claimed, its command run, its stop requests passed on."""
    from distributed import Variable, get_worker  # a Dask worker has it by definition
    from distributed.core import Status

    worker = get_worker()
    address, host = worker.address, socket.gethostname()
    word = Variable(name)
    key = worker.get_current_task()

    def held() -> bool:  # its task is still this worker's to run: taskrun has not gone away or cancelled it
        ts = worker.state.tasks.get(key)
        return ts is not None and ts.state in ("executing", "long-running")

    said, claimed = word.client.sync(_claim, word, [address, host, time.time()], held,
                                     callback_timeout=STOP_CHECK_S)
    if isinstance(said, (list, tuple)):  # it started before, on a worker that is gone
        lost, lost_host, started_at = said[0], said[1], float(said[2])
        now = time.time()
        return RemoteOutcome(result=AttemptResult(
            exit_code=None, signal=None, timed_out=False, pid=None, started_at=started_at, finished_at=now,
            duration_s=round(now - started_at, 6), worker=lost, host=lost_host, reason=lost_worker(lost, lost_host)))
    if not claimed:  # stopped, or taskrun gave up on it already
        now = time.time()
        return RemoteOutcome(result=AttemptResult(
            exit_code=None, signal=None, timed_out=False, pid=None, started_at=now, finished_at=now,
            duration_s=0.0, cancelled=True, worker=address, host=host, reason="cancelled before it started"))

    own: list[str] = []  # why the worker stopped the attempt without being asked, if it did

    def should_stop():
        if worker.status not in (Status.running, Status.paused, Status.closing_gracefully):
            own.append(f"the worker {address} was closing")  # it lost its scheduler, or is being shut down
            return True
        if not held():
            return True
        try:  # set since the start: a failure is the scheduler out of reach, and a stop
            said = word.get(timeout=0, callback_timeout=STOP_CHECK_S)
        except Exception as exc:
            own.append(f"the worker {address} could not reach the scheduler ({_short(exc)})")
            raise
        return said if said in ("stop", "force") else False

    outcome = run_remote(spec, token, should_stop=should_stop, worker=address, host=host)
    if own and outcome.result.cancelled:  # not a cancel of taskrun's: a failed attempt, retries apply
        outcome = replace(outcome, result=replace(outcome.result, cancelled=False, reason=f"stopped: {own[0]}"))
    return outcome


async def _claim(word, record: list, held) -> tuple[object, bool]:
    """The attempt's word, and whether it may start here: then `record` (where and when it
    starts) is its word from now on. One trip to the worker's event loop for both answers of
    the scheduler's."""
    try:  # the runner sets it before its task is sent (a word may land just after the task)
        said = await word.get(timeout=PRESET_WAIT_S, asynchronous=True)
    except TimeoutError:  # never set: a fresh attempt all the same
        said = None
    if isinstance(said, (list, tuple)) or said in ("stop", "force") or not held():
        return said, False
    await word.set(record, asynchronous=True)
    return said, True


# --- the runner side -----------------------------------------------------------------


@dataclass(slots=True, eq=False)
class _Remote:
    """An attempt sent to the cluster and not yet back."""

    spec: AttemptSpec
    name: str  # the Dask key, also the name of its Variable
    future: object
    submitted_at: float
    lane: int  # where its words go out (see `_say`)
    stop_reason: str | None = None
    cancelled: bool = True
    forced: bool = False
    give_up_at: float | None = None  # monotonic: stop waiting for the worker's answer
    timeout_at: float | None = None  # monotonic: past its timeout, grace and margin since it was sent


class DaskBackend:
    name = "dask"

    def __init__(self, client, wake_fd: int | None = None) -> None:
        self._client = client
        self._address = client.scheduler.address
        self._token = secrets.token_hex(6)
        self.lost: str | None = None  # why nothing more can run here: the scheduler went away
        self._remotes: dict[Hashable, _Remote] = {}
        self._by_name: dict[str, Hashable] = {}
        self._done: list[tuple[Hashable, AttemptResult]] = []
        self._ended: deque[str] = deque()  # Dask keys whose future finished (appended by a Dask thread)
        self._gone: deque[tuple[str, tuple]] = deque()  # (worker, keys it was processing): workers removed
        self._markers: list[str] = []
        self._spent: list[_Remote] = []  # back, but their future and Variable not yet released (see `_forget`)
        self._lanes: list[tuple | None] = [None] * WORD_LANES  # (words queued, sender) each, on first use (`_say`)
        self._next_lane = 0
        self._sel = selectors.DefaultSelector()
        self._pipe_r, self._pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._sel.register(self._pipe_r, selectors.EVENT_READ, "ended")
        self._wake_fd = wake_fd
        if wake_fd is not None:
            self._sel.register(wake_fd, selectors.EVENT_READ, "wake")
        self._silent: str | None = None  # set (by a Dask thread) when the scheduler did not answer a probe
        self._probing = False
        self._probe_at = 0.0  # monotonic
        client.subscribe_topic("all", self._on_event)  # the scheduler says so when it removes a worker
        self._pushed: dict[str, bytes] = {}  # Dask key -> the outcome its worker sent (appended by a Dask thread)
        client.subscribe_topic(client.id, self._on_outcome)  # the scheduler forgets the topic with the client
        from distributed.client import done_callback  # the coroutine `Future.add_done_callback` runs

        self._done_callback = done_callback
        _hurry(client)

    @property
    def running(self) -> int:
        return len(self._remotes)

    def start(self, key: Hashable, spec: AttemptSpec) -> int | None:
        self._mark_folder(os.path.dirname(spec.stdout_path))
        name = f"taskrun-{self._token}-{spec.task}-{spec.attempt}"
        if self._check_scheduler():
            now = time.time()
            self._done.append((key, AttemptResult(exit_code=None, signal=None, timed_out=False, pid=None,
                                                  started_at=now, finished_at=now, duration_s=0.0,
                                                  cancelled=True, reason=self.lost)))
            return None
        lane, self._next_lane = self._next_lane, (self._next_lane + 1) % WORD_LANES
        self._say(lane, name, "go")
        future = self._client.submit(run_on_worker, spec, name, self._token, self._client.id, key=name, pure=False,
                                     resources=dict(spec.resources) or None)
        self._release_spent()
        remote = _Remote(spec=spec, name=name, future=future, submitted_at=time.time(), lane=lane)
        if spec.timeout_s is not None:  # the worker enforces it; this bounds an attempt no worker answers for
            remote.timeout_at = time.monotonic() + spec.timeout_s + spec.kill_grace_s + STOP_MARGIN_S
        self._remotes[key] = remote
        self._by_name[name] = key
        # On the client's loop, as the outcome is: `add_done_callback` would hand every end to a
        # thread of its own first (a thread switch an attempt, on the loop's critical path).
        self._client.loop.add_callback(self._done_callback, future, self._on_done)
        return None  # the pid is known only on the worker

    def _say(self, lane: int, name: str, word: str | None) -> None:
        """Set the attempt's Variable to `word` (None: delete it) once the words said before it on
        `lane` have landed, on the client's own thread: the words of a lane land one at a time, in
        the order said, and the loop never waits for the scheduler. Each word in flight is a call
        of its own, on a connection of its own (the client opens one for every call under way), so
        the lanes bound the connections a run opens, however many attempts it sends at once.
        The first word, "go", is said as the attempt is sent: the worker waits for a word before it
        claims the attempt, so it never asks for an unset Variable (an error the scheduler sends
        back with its traceback: milliseconds each)."""
        try:
            self._client.loop.asyncio_loop.call_soon_threadsafe(self._queue_word, lane, name, word)
        except (AttributeError, RuntimeError):  # the client's loop is closed: nobody to tell
            pass

    def _queue_word(self, lane: int, name: str, word: str | None) -> None:
        # The client's event loop: the lane's sender starts with its first word.
        import asyncio

        if self._lanes[lane] is None:
            queue: asyncio.Queue = asyncio.Queue()
            self._lanes[lane] = (queue, asyncio.ensure_future(self._send_words(queue)))
        self._lanes[lane][0].put_nowait((name, word))

    async def _send_words(self, queue) -> None:
        """One lane's sender, on the client's event loop, until `close`. A word that has not landed
        within RPC_TIMEOUT_S is given up, so that a lane never stalls behind it (a scheduler that
        hangs is found by the probe; a stop it never heard, by the give-up after the grace)."""
        import asyncio

        from distributed import Variable

        while True:
            name, word = await queue.get()
            try:
                variable = Variable(name, client=self._client)
                if word is None:
                    variable.delete()  # a message, no round trip
                else:
                    await asyncio.wait_for(variable.set(word, asynchronous=True), RPC_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - the scheduler or the client is gone: nobody to tell
                pass
            finally:
                queue.task_done()

    def _settle_words(self) -> None:
        """Before the client closes: the words still queued sent (the Variables' deletes among
        them: nothing else would remove those from the scheduler), within RPC_TIMEOUT_S unless
        the scheduler is lost; then the lanes' senders stopped."""
        import asyncio

        try:
            settled = asyncio.run_coroutine_threadsafe(self._words_sent(wait=self.lost is None),
                                                       self._client.loop.asyncio_loop)
            settled.result(timeout=RPC_TIMEOUT_S + 1.0)
        except Exception:  # noqa: BLE001 - the client's loop is gone: so are its senders
            pass

    async def _words_sent(self, wait: bool) -> None:
        # The client's event loop.
        import asyncio

        lanes = [lane for lane in self._lanes if lane is not None]
        try:
            if wait and lanes:
                await asyncio.wait_for(asyncio.gather(*(queue.join() for queue, _ in lanes)), RPC_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass
        finally:
            for _, sender in lanes:
                sender.cancel()

    def _mark_folder(self, folder: str) -> None:
        """Let workers that see this folder (a shared filesystem) write their logs into it."""
        if folder in self._markers:
            return
        path = os.path.join(folder, MARKER)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self._token + "\n")
        self._markers.append(folder)

    def _on_done(self, future) -> None:
        # The client's event loop: hand the key over and wake the loop, unless its outcome came
        # first (the common case: it woke the loop then) or the loop has it already.
        key = future.key
        if key in self._pushed or key not in self._by_name:
            return
        self._ended.append(key)
        self._wake()

    def _on_outcome(self, event) -> None:
        # The client's event loop: an attempt's outcome, which comes before its future's end.
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else None
        if isinstance(msg, dict) and msg.get("taskrun") in self._by_name:
            self._pushed[msg["taskrun"]] = msg["outcome"]
            self._ended.append(msg["taskrun"])
            self._wake()

    def _on_event(self, event) -> None:
        # A Dask thread: an event of the scheduler's; only a removed worker matters.
        msg = event[1] if isinstance(event, tuple) and len(event) == 2 else None
        if isinstance(msg, dict) and msg.get("action") == "remove-worker":
            self._gone.append((msg.get("worker"), tuple(msg.get("processing-tasks") or ())))
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._pipe_w, b".")
        except OSError:
            pass

    def stop(self, key: Hashable, *, reason: str, cancelled: bool = True, force: bool = False) -> None:
        remote = self._remotes.get(key)
        if remote is None or (remote.stop_reason is not None and (remote.forced or not force)):
            return
        if remote.stop_reason is None:
            remote.stop_reason, remote.cancelled = reason, cancelled
        remote.forced |= force
        self._say(remote.lane, remote.name, "force" if force else "stop")
        grace = 0.0 if force else remote.spec.kill_grace_s
        remote.give_up_at = time.monotonic() + grace + STOP_MARGIN_S

    def stop_all(self, *, reason: str, force: bool = False) -> None:
        for key in list(self._remotes):
            self.stop(key, reason=reason, force=force)

    def wait(self, timeout_s: float | None, writable_fd: int | None = None) -> list[tuple[Hashable, AttemptResult]]:
        self._release_spent()
        with watching_writable(self._sel, writable_fd):
            return self._wait(timeout_s)

    def _wait(self, timeout_s: float | None) -> list[tuple[Hashable, AttemptResult]]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if self._check_scheduler():
                self._drop_all()
            self._collect_lost_workers()
            self._collect()
            self._give_up()
            if self._done or (not self._remotes and deadline is None and self._wake_fd is None):
                break
            wake = [t for r in self._remotes.values() for t in (r.give_up_at, r.timeout_at) if t is not None]
            if self._remotes:  # the connection to the scheduler is checked this often
                self._probe()
                wake.append(time.monotonic() + CHECK_S)
            if deadline is not None:
                wake.append(deadline)
            timeout = clamp_wait(min(wake) - time.monotonic()) if wake else None
            woken = False
            for sel_key, _ in self._sel.select(timeout):
                if sel_key.data is not WRITABLE:
                    drain_wakeups(sel_key.fd)
                woken |= sel_key.data is WRITABLE or sel_key.data == "wake"
            if woken or (deadline is not None and time.monotonic() >= deadline):
                self._collect()
                break
        done, self._done = self._done, []
        return done

    # -- a lost scheduler, a lost worker ---------------------------------------------

    def _check_scheduler(self) -> bool:
        """Whether the scheduler is lost: its connection closed (the client reconnects, or gave up),
        or it did not answer a probe in time."""
        if self._client.status != "running":
            self._lose("its connection closed")
        elif self._silent is not None:
            self._lose(self._silent)
        return self.lost is not None

    def _lose(self, why: str) -> None:
        if self.lost is None:
            self.lost = f"lost the Dask scheduler at {self._address}: {why}"

    def _probe(self) -> None:
        """Ask the scheduler for a sign of life every PROBE_S, on the client's own thread: a scheduler
        that hangs with its connection open is noticed too, and the loop never blocks on it."""
        now = time.monotonic()
        if self._probing or now < self._probe_at:
            return
        self._probing, self._probe_at = True, now + PROBE_S
        self._client.loop.add_callback(self._ask_scheduler)

    async def _ask_scheduler(self) -> None:
        import asyncio

        try:
            await asyncio.wait_for(self._client.scheduler.identity(n_workers=0), PROBE_TIMEOUT_S)
        except asyncio.TimeoutError:
            self._silent = f"no answer within {PROBE_TIMEOUT_S:g}s"
        except Exception as exc:  # noqa: BLE001 - a closed connection is seen by the status check
            if self._client.status == "running":
                self._silent = _short(exc)
        finally:
            self._probing = False
        if self._silent is not None:
            self._wake()

    def _drop_all(self) -> None:
        """The scheduler is gone: every attempt out there ends here, cancelled. Their workers stop
        the commands themselves (their stop checks fail), and there is nobody left to ask."""
        self._ended.clear()
        self._by_name.clear()
        for key, remote in list(self._remotes.items()):
            self._done.append((key, self._failure(remote, self.lost, cancelled=True)))
        self._remotes.clear()

    def _collect_lost_workers(self) -> None:
        """Attempts that had started on a worker the scheduler removed: failed, and their Dask
        tasks cancelled (Dask would run them again; taskrun's retries decide)."""
        while self._gone:
            worker, names = self._gone.popleft()
            for name in names:
                key = self._by_name.get(name)
                if key is None:
                    continue
                remote = self._remotes[key]
                where = self._started_on(remote)
                if where is None or where[0] != worker:
                    continue  # it had not started there: Dask sends it to another worker
                del self._remotes[key], self._by_name[name]
                self._cancel(remote)
                self._forget(remote)
                self._done.append((key, self._lost_with(remote, where)))

    def _lost_with(self, remote: _Remote, where: tuple[str, str, float]) -> AttemptResult:
        """The result of an attempt whose worker died under it (`where` it had started)."""
        worker, host, started_at = where
        result = self._failure(remote, lost_worker(worker, host),
                               cancelled=remote.stop_reason is not None and remote.cancelled)
        return replace(result, started_at=started_at, worker=worker, host=host,
                       duration_s=round(result.finished_at - started_at, 6))

    def _started_on(self, remote: _Remote) -> tuple[str, str, float] | None:
        """(worker, host, start time) the attempt recorded when it started, if it did."""
        from distributed import Variable

        try:
            said = Variable(remote.name, client=self._client).get(timeout=0, callback_timeout=RPC_TIMEOUT_S)
        except Exception:  # not set: it never started
            return None
        if isinstance(said, (list, tuple)) and len(said) == 3:
            return str(said[0]), str(said[1]), float(said[2])
        return None

    # -- results ----------------------------------------------------------------------

    def _collect(self) -> None:
        """Turn the futures that ended into results."""
        names = []
        while self._ended:
            names.append(self._ended.popleft())
        remotes = [(self._by_name.pop(n), n) for n in names if n in self._by_name]
        pushed = {k: self._pushed.pop(n) for k, n in remotes if n in self._pushed}
        finished = [(k, self._remotes[k]) for k, _ in remotes
                    if k not in pushed and self._remotes[k].future.status == "finished"]
        by_key = self._gather(finished)
        by_key.update((k, pickle.loads(data)) for k, data in pushed.items())
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
        try:  # bounded: a scheduler that hangs must not hold the loop
            outcomes = self._client.sync(self._client._gather, [r.future for _, r in finished],
                                         callback_timeout=GATHER_TIMEOUT_S)
            return dict(zip((k for k, _ in finished), outcomes))
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
            lost = self._killed_worker(remote)
            if lost is not None:  # it had started there: the same as when the event comes first
                where = self._started_on(remote)
                if where is not None and where[0] == lost:
                    return self._lost_with(remote, where)
            reason = self._why_lost(remote)
            return self._failure(remote, reason, cancelled=reason == self.lost)
        result = outcome.result
        for data, path in ((outcome.stdout, remote.spec.stdout_path), (outcome.stderr, remote.spec.stderr_path),
                           (outcome.steps, remote.spec.steps_path)):
            if data is not None and path is not None:
                _write_log(path, data)
        if result.cancelled:
            result = replace(result, reason=remote.stop_reason or result.reason, cancelled=remote.cancelled)
        return result

    def _killed_worker(self, remote: _Remote) -> str | None:
        """The worker whose loss made Dask give up on the attempt (KilledWorker), if it did. The
        scheduler tells the client so before it says the worker was removed."""
        if remote.future.status != "error":
            return None
        try:
            exc = remote.future.exception(timeout=RPC_TIMEOUT_S)
        except Exception:  # noqa: BLE001 - the scheduler went away too
            return None
        if type(exc).__name__ != "KilledWorker":
            return None
        return getattr(getattr(exc, "last_worker", None), "address", None)

    def _why_lost(self, remote: _Remote) -> str:
        future = remote.future
        if future.status == "error":
            try:
                exc = future.exception(timeout=RPC_TIMEOUT_S)
            except Exception as lost:  # the scheduler went away too
                exc = lost
            if type(exc).__name__ == "KilledWorker":  # it had not started there, or the event was missed
                where = getattr(getattr(exc, "last_worker", None), "address", None) or "running it"
                return f"Dask gave up on this attempt after the worker {where} was lost (KilledWorker)"
            return f"the Dask task failed: {type(exc).__name__}: {_short(exc)}"
        if future.status == "cancelled":
            if not self._check_scheduler() and _cancel_reason(future) == "scheduler-connection-lost":
                self._lose("its connection closed")  # the client reconnected since: its attempts are gone all the same
            if self.lost is not None:
                return self.lost
            return "its Dask task was cancelled on the cluster, not by taskrun"
        return "its result could not be fetched from the cluster (its worker or the scheduler went away)"

    def _failure(self, remote: _Remote, reason: str, *, cancelled: bool = False,
                 timed_out: bool = False) -> AttemptResult:
        now = time.time()
        return AttemptResult(exit_code=None, signal=None, timed_out=timed_out, pid=None,
                             started_at=remote.submitted_at, finished_at=now,
                             duration_s=round(now - remote.submitted_at, 6), reason=reason, cancelled=cancelled)

    def _give_up(self) -> None:
        """Attempts stopped long ago, or past their timeout, with no answer from a worker: cancel
        their Dask tasks (a worker still running one stops it: its task was released)."""
        now = time.monotonic()
        for key, remote in list(self._remotes.items()):
            if remote.give_up_at is not None and remote.give_up_at <= now:
                result = self._failure(
                    remote, f"{remote.stop_reason}; no answer from the cluster in time: its Dask task was cancelled",
                    cancelled=remote.cancelled)
            elif remote.stop_reason is None and remote.timeout_at is not None and remote.timeout_at <= now:
                result = self._failure(
                    remote, f"timed out after {remote.spec.timeout_s:g}s: no answer from the cluster within its"
                            " timeout and grace (no free worker, or its worker hangs): its Dask task was cancelled",
                    timed_out=True)
            else:
                continue
            del self._remotes[key]
            self._by_name.pop(remote.name, None)
            self._cancel(remote)
            self._forget(remote)
            self._done.append((key, result))

    def _cancel(self, remote: _Remote) -> None:
        try:
            self._client.cancel([remote.future], force=True)
        except Exception:  # the scheduler is gone: so is the task
            pass

    def _forget(self, remote: _Remote) -> None:
        """Release the attempt's future and Variable, after the next submit: the client sends its
        messages in batches, and a release sent first would hold that submit back."""
        self._pushed.pop(remote.name, None)
        self._spent.append(remote)

    def _release_spent(self) -> None:
        spent, self._spent = self._spent, []
        if self.lost is not None:
            return
        for remote in spent:
            self._say(remote.lane, remote.name, None)

    def close(self) -> None:
        try:
            self._release_spent()
            if self._remotes and self.lost is None:
                self._client.cancel([r.future for r in self._remotes.values()], force=True)
            self._settle_words()
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


def _cancel_reason(future) -> str | None:
    """Why Dask cancelled a future (distributed's FutureCancelledError.reason), if it says."""
    try:
        future.result(timeout=RPC_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a cancelled future raises its reason
        return getattr(exc, "reason", None)
    return None


def _write_log(path: str, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as f:
            f.write(data)
    except OSError:
        pass
