"""Where attempts run. The scheduler needs only this much of a backend:

    start(key, spec) -> pid or None     begin an attempt (None: it could not start)
    wait(timeout_s, writable_fd)         block until some attempt ended, or the
                     -> [(key, result)]  timeout passed, or the wake fd was written,
                                         or `writable_fd` (if any) can be written
    stop(key, ...) / stop_all(...)       begin the SIGTERM -> grace -> SIGKILL ladder
    close()                              sweep what is left (nothing should be)

`LocalBackend` runs every attempt as a child of this process and watches all of
them with one selector over their pidfds: no thread, no polling interval, and a
deadline costs nothing until it fires.
"""

from __future__ import annotations

import heapq
import itertools
import os
import selectors
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager

from .errors import UsageError
from .model import AttemptResult, AttemptSpec
from .proc import Attempt, ask_short_slices, become_subreaper, children_left, clamp_wait, launch, reap_orphans


FDS_PER_SLOT = 2  # a running attempt holds its pidfd; spawning briefly holds one more
FDS_PER_MASKED_SLOT = 6  # ... and, when output is masked, two pipes and two log files
FDS_RESERVE = 64  # the runner's own: std streams, selector, wake pipe, event log, /proc reads, summary


def ensure_fd_room(slots: int, per_slot: int) -> None:
    """Make sure `slots` attempts can run at once within the open-file limit, before any starts.

    The soft limit is raised (up to the hard one) when needed; beyond the hard
    limit the run is refused with the pool that would fit."""
    import resource

    try:
        open_now = len(os.listdir("/proc/self/fd"))
    except OSError:
        open_now = 16
    needed = open_now + FDS_RESERVE + slots * per_slot
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    fits = max(0, (hard - open_now - FDS_RESERVE) // per_slot)
    raise UsageError(f"a pool of {slots} needs about {needed} open files, but this process may open only {hard} "
                     f"(ulimit -n); use --pool {fits} or less, or raise the limit (ulimit -n {needed})"
                     if fits else
                     f"a pool of {slots} needs about {needed} open files, but this process may open only {hard} "
                     f"(ulimit -n); raise the limit (ulimit -n {needed})")


class LocalBackend:
    name = "local"

    def __init__(self, wake_fd: int | None = None, *, slots: int = 1, masked: bool = False) -> None:
        ensure_fd_room(slots, FDS_PER_MASKED_SLOT if masked else FDS_PER_SLOT)
        self.write_errors: list[OSError] = []
        become_subreaper()
        ask_short_slices()
        self._sel = selectors.DefaultSelector()
        self._attempts: dict[Hashable, Attempt] = {}
        self._done: list[tuple[Hashable, AttemptResult]] = []
        self._due: list[tuple[float, int, Hashable, Attempt]] = []  # heap: when attempts need a tick
        self._noted: dict[Hashable, float] = {}  # the time each attempt has in `_due`
        self._seq = itertools.count()  # ties in `_due` never compare keys or attempts
        self._wake_fd = wake_fd
        if wake_fd is not None:
            self._sel.register(wake_fd, selectors.EVENT_READ, None)

    def start(self, key: Hashable, spec: AttemptSpec) -> int | None:
        attempt = launch(spec)
        if attempt.done:
            self._done.append((key, attempt.result))
            return None
        self._attempts[key] = attempt
        self._watch(key, attempt)
        attempt.on_close_fd = self._sel.unregister
        attempt.on_spawn = lambda a: self._watch(key, a)  # each later step has its own process
        self._due_at(key, attempt)
        return attempt.pid

    def _watch(self, key: Hashable, attempt: Attempt) -> None:
        self._sel.register(attempt.pidfd, selectors.EVENT_READ, key)
        for fd in attempt.outputs:
            self._sel.register(fd, selectors.EVENT_READ, _Output(key))

    def _due_at(self, key: Hashable, attempt: Attempt) -> None:
        """Note when the attempt next needs a `tick` (an entry made stale by a later change is
        skipped when it comes up: `_next_due`)."""
        at = attempt.next_attention()
        if at is not None and self._noted.get(key) != at:
            self._noted[key] = at
            heapq.heappush(self._due, (at, next(self._seq), key, attempt))

    def _current(self, at: float, key: Hashable, attempt: Attempt) -> bool:
        """Whether an entry of `_due` still stands: its attempt runs and was not noted again since."""
        return self._attempts.get(key) is attempt and self._noted.get(key) == at

    def _next_due(self) -> float | None:
        """The earliest time an attempt needs a `tick`, stale entries dropped."""
        due = self._due
        while due:
            at, _, key, attempt = due[0]
            if self._current(at, key, attempt):
                return at
            heapq.heappop(due)
        return None

    @property
    def running(self) -> int:
        return len(self._attempts)

    def stop(self, key: Hashable, *, reason: str, cancelled: bool = True, force: bool = False) -> None:
        self._take_events(0.0, drain_wake=False)  # a command that has ended keeps its own result
        attempt = self._attempts.get(key)
        if attempt is not None:
            attempt.stop(reason=reason, cancelled=cancelled, force=force)
            self._collect(key, attempt)

    def stop_all(self, *, reason: str, force: bool = False) -> None:
        self._take_events(0.0, drain_wake=False)  # a command that has ended keeps its own result
        # Every group gets its SIGTERM now, so all share one grace period.
        for key, attempt in list(self._attempts.items()):
            attempt.stop(reason=reason, cancelled=True, force=force)
            self._collect(key, attempt)

    def wait(self, timeout_s: float | None, writable_fd: int | None = None) -> list[tuple[Hashable, AttemptResult]]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if writable_fd is None:  # the common case, at every wake: no context to enter
            return self._wait(deadline)
        with watching_writable(self._sel, writable_fd):
            return self._wait(deadline)

    def _wait(self, deadline: float | None) -> list[tuple[Hashable, AttemptResult]]:
        while not self._done:
            if not self._attempts and deadline is None and self._wake_fd is None:
                break
            wake = self._next_due()
            if deadline is not None:
                wake = deadline if wake is None else min(wake, deadline)
            woken = self._take_events(clamp_wait(wake - time.monotonic()) if wake is not None else None)
            if woken or (deadline is not None and time.monotonic() >= deadline):
                break
        done, self._done = self._done, []
        return done

    def _take_events(self, timeout_s: float | None, *, drain_wake: bool = True) -> bool:
        """One select(): copy output, see exits, advance deadlines. True if the wake fd was written
        or the console's reader can take more. Only the attempts with an event, or whose time
        has come, are looked at: a wake costs the same whatever the pool."""
        woken = False
        touched: dict[Hashable, Attempt] = {}
        ended: list[Attempt] = []
        for sel_key, _ in self._sel.select(timeout_s):
            key = sel_key.data
            if key is WRITABLE:  # back to the loop, which writes what waits
                woken = True
                continue
            if key is None:
                if drain_wake:  # left for the next wait otherwise, so that it returns at once
                    drain_wakeups(sel_key.fd)
                    woken = True
                continue
            if isinstance(key, _Output):
                attempt = touched[key.key] = self._attempts[key.key]
                attempt.on_output(sel_key.fd)
                continue
            attempt = touched[key] = self._attempts[key]
            self._sel.unregister(attempt.pidfd)
            if attempt.see_exit():
                ended.append(attempt)
        if ended:  # one look at our children, after every end of this wake was seen, answers for all
            left = children_left()
            for attempt in ended:
                attempt.settle(left)
        now = time.monotonic()
        due = self._due
        while due and due[0][0] <= now + 0.0005:
            at, _, key, attempt = heapq.heappop(due)
            if self._current(at, key, attempt):
                del self._noted[key]
                touched[key] = attempt
        for key, attempt in touched.items():
            wake_at = attempt.next_attention()
            if wake_at is not None and wake_at <= now + 0.0005:
                attempt.tick()
            self._collect(key, attempt)
        return woken

    def _collect(self, key: Hashable, attempt: Attempt) -> None:
        """After the attempt was driven: collect it if done, else note when it next needs a tick."""
        # An attempt is done only after its leader's exit was seen, and its
        # pidfd was unregistered then (before it was closed).
        if self._attempts.get(key) is not attempt:
            return
        if attempt.done:
            del self._attempts[key]
            self._noted.pop(key, None)
            if attempt.write_error is not None:
                self.write_errors.append(attempt.write_error)
            self._done.append((key, attempt.result))
        else:
            self._due_at(key, attempt)

    def close(self) -> None:
        reap_orphans()
        self._sel.close()


WRITABLE = object()  # selector data of the descriptor a wait was asked to watch for writing


@contextmanager
def watching_writable(sel: selectors.BaseSelector, fd: int | None) -> Iterator[None]:
    """For one wait of a backend: `fd` (the console's reader, None for none) wakes it when it
    can be written, so what waits for that reader is written between waits."""
    if fd is None:
        yield
        return
    sel.register(fd, selectors.EVENT_WRITE, WRITABLE)
    try:
        yield
    finally:
        sel.unregister(fd)


class _Output(tuple):
    """Selector data of an output pipe of a masked attempt: the attempt's key."""

    def __new__(cls, key: Hashable):
        return super().__new__(cls, (key,))

    @property
    def key(self) -> Hashable:
        return self[0]


def drain_wakeups(fd: int) -> None:
    """Empty the non-blocking pipe a signal handler writes to, to wake the loop."""
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass
