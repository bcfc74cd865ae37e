"""Where attempts run. The scheduler needs only this much of a backend:

    start(key, spec) -> pid or None     begin an attempt (None: it could not start)
    wait(timeout_s)  -> [(key, result)]  block until some attempt ended, or the
                                         timeout passed, or the wake fd was written
    stop(key, ...) / stop_all(...)       begin the SIGTERM -> grace -> SIGKILL ladder
    close()                              sweep what is left (nothing should be)

`LocalBackend` runs every attempt as a child of this process and watches all of
them with one selector over their pidfds: no thread, no polling interval, and a
deadline costs nothing until it fires.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Hashable

from .model import AttemptResult, AttemptSpec
from .proc import Attempt, become_subreaper, launch, reap_orphans


class LocalBackend:
    name = "local"

    def __init__(self, wake_fd: int | None = None) -> None:
        become_subreaper()
        self._sel = selectors.DefaultSelector()
        self._attempts: dict[Hashable, Attempt] = {}
        self._done: list[tuple[Hashable, AttemptResult]] = []
        self._wake_fd = wake_fd
        if wake_fd is not None:
            self._sel.register(wake_fd, selectors.EVENT_READ, None)

    def start(self, key: Hashable, spec: AttemptSpec) -> int | None:
        attempt = launch(spec)
        if attempt.done:
            self._done.append((key, attempt.result))
            return None
        self._attempts[key] = attempt
        self._sel.register(attempt.pidfd, selectors.EVENT_READ, key)
        return attempt.pid

    @property
    def running(self) -> int:
        return len(self._attempts)

    def stop(self, key: Hashable, *, reason: str, cancelled: bool = True, force: bool = False) -> None:
        attempt = self._attempts.get(key)
        if attempt is not None:
            attempt.stop(reason=reason, cancelled=cancelled, force=force)
            self._collect(key, attempt)

    def stop_all(self, *, reason: str, force: bool = False) -> None:
        # Every group gets its SIGTERM now, so all share one grace period.
        for key, attempt in list(self._attempts.items()):
            attempt.stop(reason=reason, cancelled=True, force=force)
            self._collect(key, attempt)

    def wait(self, timeout_s: float | None) -> list[tuple[Hashable, AttemptResult]]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._done:
            wake = [t for t in (a.next_attention() for a in self._attempts.values()) if t is not None]
            if deadline is not None:
                wake.append(deadline)
            if not self._attempts and deadline is None and self._wake_fd is None:
                break
            timeout = max(0.0, min(wake) - time.monotonic()) if wake else None
            woken = False
            for sel_key, _ in self._sel.select(timeout):
                key = sel_key.data
                if key is None:
                    _drain(sel_key.fd)
                    woken = True
                    continue
                attempt = self._attempts[key]
                self._sel.unregister(attempt.pidfd)
                attempt.on_exit()
            now = time.monotonic()
            for key, attempt in list(self._attempts.items()):
                wake_at = attempt.next_attention()
                if wake_at is not None and wake_at <= now + 0.0005:
                    attempt.tick()
                self._collect(key, attempt)
            if woken or (deadline is not None and time.monotonic() >= deadline):
                break
        done, self._done = self._done, []
        return done

    def _collect(self, key: Hashable, attempt: Attempt) -> None:
        # An attempt is done only after its leader's exit was seen, and its
        # pidfd was unregistered then (before it was closed).
        if attempt.done and self._attempts.get(key) is attempt:
            del self._attempts[key]
            self._done.append((key, attempt.result))

    def close(self) -> None:
        reap_orphans()
        self._sel.close()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass
