"""The loop that runs a plan: a DAG over a pool of N slots.

A task becomes ready when everything it needs has succeeded (or failed with
`allow_failure`); ready tasks start in priority order (file order by default)
while a slot is free. The loop then blocks in the backend until an attempt
ends, a retry is due, or a stop is requested. A failed attempt with retries
left is started again after its delay; a task that finally fails makes every
task that needs it, directly or not, `skipped`. A stop (fail_fast, or a signal)
starts nothing new, marks what did not start `cancelled` and stops what runs;
`abort` (an error of taskrun's own) does the same at once, and still records
what each attempt returns.

`when:` makes a task a finalizer. `always`: ready once every need has ended,
whatever its outcome; `on_failure`: the same, then it runs only if a task it
needs, directly or not, failed or timed out (not allowed to), else it is
`skipped` by condition (`TaskResult.by_condition`: no failure of the run; what
needs it is skipped the same way). A stop (fail_fast, a first signal) leaves
finalizers pending or running: they start when their needs have ended, and
the loop ends after them; a second signal skips those not started and stops
the rest at once.

Resources declared by the file (`TaskFile.resources`) are locks of a
capacity: a task starts only while its units fit beside those held by the
running tasks; ready tasks that do not fit wait, later ones that fit start.
An interactive task starts only when nothing runs, and nothing starts while
it runs.

A ready task with a condition or up-to-date checks first goes through the
`gate`, holding its slot: it runs, or ends `skipped` (a false condition, which
skips what needs it without failing the run) or `up_to_date` (which counts as
success for what needs it). The gate's verdicts come back from its threads
through `wake` (without one, the wait is capped while checks are out).

Each attempt runs in a slot, 0..pool-1: the lowest free one when it starts,
free again when it ends (an attempt waiting for its retry delay holds none).
A gate check holds a slot too, as it counts against the pool, and gives it back
with its verdict; the attempt that follows takes the lowest free one then. An
interactive task starts only when nothing runs, so it is in slot 0. The slot
goes to the listener with the start and is stamped on the `AttemptResult`, on
every backend: the record says which track of the pool each attempt used.

The backend and the listener are given, never imported: the same loop drives
the local pool and a distributed one. An optional pump (the console following
the log files) is told of each attempt that starts, caps every wait at its
`poll_interval_s`, has it end when its `writable_fd` can be written (console
output waiting for a slow reader) and is polled after each wake.
"""

from __future__ import annotations

import heapq
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .model import AttemptResult, AttemptSpec, Plan, PlannedTask, Status, TaskResult

FAILED_ANYHOW = (Status.FAILED, Status.TIMEOUT)

if TYPE_CHECKING:
    from .gate import Gate, Verdict

CHECK_POLL_S = 0.02  # the longest wait while checks are out, for a scheduler given no `wake`


def log_paths(log_dir: Path, task: str, attempt: int) -> tuple[str, str]:
    """Flat files in the run's folder: `build.stdout`, then `build~2.stdout` for a retry
    (and `build.steps` beside them for a task with steps). `~` cannot occur in a task
    name, so no two tasks' files can collide."""
    stem = f"{log_dir}/{task}" if attempt == 1 else f"{log_dir}/{task}~{attempt}"
    return f"{stem}.stdout", f"{stem}.stderr"


class Listener(Protocol):
    def task_started(self, task: PlannedTask, attempt: int, pid: int | None, slot: int) -> None: ...

    def attempt_ended(self, task: PlannedTask, attempt: int, result: AttemptResult,
                      retry_in_s: float | None) -> None: ...

    def task_ended(self, result: TaskResult) -> None: ...


class Pump(Protocol):
    """Work the loop does between waits, e.g. printing what running tasks wrote."""

    @property
    def poll_interval_s(self) -> float | None: ...  # the longest wait allowed now; None: no limit

    @property
    def writable_fd(self) -> int | None: ...  # wake when this can be written; None: no such wish

    def follow(self, spec: AttemptSpec) -> None: ...  # an attempt was started

    def poll(self) -> None: ...


class FanOut:
    """Several listeners as one: each event goes to each, in the order given."""

    def __init__(self, *listeners: Listener) -> None:
        self.listeners = listeners

    def task_started(self, task: PlannedTask, attempt: int, pid: int | None, slot: int) -> None:
        for listener in self.listeners:
            listener.task_started(task, attempt, pid, slot)

    def attempt_ended(self, task: PlannedTask, attempt: int, result: AttemptResult,
                      retry_in_s: float | None) -> None:
        for listener in self.listeners:
            listener.attempt_ended(task, attempt, result, retry_in_s)

    def task_ended(self, result: TaskResult) -> None:
        for listener in self.listeners:
            listener.task_ended(result)


class Backend(Protocol):
    def start(self, key: str, spec: AttemptSpec) -> int | None: ...

    def wait(self, timeout_s: float | None, writable_fd: int | None = None) -> list[tuple[str, AttemptResult]]: ...

    def stop(self, key: str, *, reason: str, cancelled: bool = True, force: bool = False) -> None: ...

    def stop_all(self, *, reason: str, force: bool = False) -> None: ...


@dataclass(slots=True)
class StopRequest:
    """Set from a signal handler; read by the loop after each wakeup."""

    signum: int | None = None
    count: int = 0
    reason: str | None = None

    def request(self, signum: int | None, reason: str) -> None:
        self.signum = signum if self.signum is None else self.signum
        self.reason = self.reason or reason
        self.count += 1


@dataclass(slots=True)
class _State:
    task: PlannedTask
    index: int
    waiting: int  # needs not yet satisfied
    dependents: list[str] = field(default_factory=list)
    attempts: list[AttemptResult] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    result: TaskResult | None = None
    slot: int | None = None  # the pool slot its attempt or its gate check holds while running
    verdict: Verdict | None = None  # the gate's, for a task with checks

    @property
    def running(self) -> bool:  # an attempt or a gate check under way: it holds a slot
        return self.slot is not None

    @property
    def finalizer(self) -> bool:  # `when: always` or `on_failure`: runs after its needs ended, even in a stop
        return self.task.spec.when != "on_success"


class Scheduler:
    """Runs one plan once. `results()` is valid at any moment, so a summary can
    still be written if the loop is interrupted by an error of taskrun's own."""

    def __init__(self, plan: Plan, backend: Backend, listener: Listener | Sequence[Listener], *, log_dir: Path,
                 run_id: str, stop: StopRequest | None = None,
                 base_env: Mapping[str, str] | None = None,
                 priority: Mapping[str, float] | None = None, pump: Pump | None = None,
                 mask: tuple[str, ...] = (), wake: Callable[[], None] | None = None) -> None:
        self.plan = plan
        self.pump = pump
        self.backend = backend
        self.listener = FanOut(*listener) if isinstance(listener, (list, tuple)) else listener
        self.mask = mask  # secret values: the attempts' output is masked before it reaches the logs
        self.log_dir = log_dir
        self.run_id = run_id
        self.stop = stop or StopRequest()
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.stopping = False
        self.fail_fast_cause: str | None = None
        self._forced = False
        self._state = {t.name: _State(task=t, index=i, waiting=len(t.spec.needs))
                       for i, t in enumerate(plan.tasks)}
        for t in plan.tasks:
            for need in t.spec.needs:
                self._state[need].dependents.append(t.name)
        # Ready heap entries: (priority, file index, name). Higher priority first.
        prio = priority or {}
        self._key = {n: (-prio.get(n, 0.0), s.index) for n, s in self._state.items()}
        self._ready: list[tuple[tuple[float, int], str]] = []  # filled when the run starts (`_became_ready`)
        self._retries: list[tuple[float, int, str]] = []  # (monotonic due, index, name)
        self._free = list(range(plan.pool))  # a heap of the free slots: the lowest is taken first
        self._capacity = dict(plan.taskfile.resources)
        self._held = dict.fromkeys(self._capacity, 0.0)  # units held by the running attempts
        self._alone = False  # an interactive task runs: nothing else starts
        self._ended: deque[_State] = deque()  # ended tasks whose dependents are still to be told
        self._releasing = False
        self.wake = wake  # callable from any thread: makes the backend's wait return
        self._verdicts: deque[tuple[str, Verdict]] = deque()  # appended by the gate's threads
        self._checking = 0
        self._gate: Gate | None = None
        if any(t.spec.checked for t in plan.tasks):
            from .gate import Gate  # here: most plans have no checks, and it costs imports

            self._gate = Gate(plan, log_dir=log_dir, run_id=run_id, base_env=self.base_env, mask=mask,
                              stopping=lambda: "force" if self._forced else self.stopping)

    # -- the loop --------------------------------------------------------------

    def run(self) -> list[TaskResult]:
        for st in list(self._state.values()):
            if st.waiting == 0 and st.result is None:
                self._became_ready(st)
        while True:
            self._check_stop()
            self._start_ready()
            if not self._running and not self._ready and not self._retries:
                break
            timeout = None
            if self._retries:  # during a stop only a cleanup's retries are left
                timeout = max(0.0, self._retries[0][0] - time.monotonic())
            if self.pump is not None and (every := self.pump.poll_interval_s) is not None:
                timeout = every if timeout is None else min(timeout, every)
            if self._checking and self.wake is None:
                timeout = CHECK_POLL_S if timeout is None else min(timeout, CHECK_POLL_S)
            ended = self.backend.wait(timeout, self.pump.writable_fd if self.pump is not None else None)
            if self.pump is not None:
                self.pump.poll()
            for name, result in ended:
                self._attempt_ended(name, result)
            self._take_verdicts()
            self._promote_retries()
        self.stopping = self._forced = True  # what is left can never start now
        self._cancel_pending("the run was stopped")
        self._close_gate()
        return self.results()

    def abort(self, reason: str) -> None:
        """taskrun itself failed: stop every attempt at once and record what each returns,
        so a task that had ended keeps its own result; the rest are `cancelled`."""
        self.stopping = self._forced = True
        self.backend.stop_all(reason=reason, force=True)
        while self._running:
            for name, result in self.backend.wait(0.5):
                self._attempt_ended(name, result)
            self._take_verdicts()
        self._cancel_pending(reason)
        self._close_gate()

    def _check_stop(self) -> None:
        lost = getattr(self.backend, "lost", None)  # it can run nothing more (a Dask scheduler went away)
        if lost and not self.stopping:
            self.stop.request(None, lost)
        if self.stop.count and not self.stopping:
            self._begin_stop(self.stop.reason or "interrupted")
        if self.stop.count > 1 and not self._forced:
            self._forced = True  # a second signal: no more grace, and no cleanup starts
            self._skip_finalizers(f"not run: a second signal after {self.stop.reason or 'an interrupt'}")
            self.backend.stop_all(reason=self.stop.reason or "interrupted", force=True)

    def _begin_stop(self, reason: str) -> None:
        self.stopping = True
        self._cancel_pending(reason)
        finalizing = [n for n, st in self._state.items() if st.running and st.finalizer]
        if not finalizing:
            self.backend.stop_all(reason=reason)
            return
        for name, st in self._state.items():  # a cleanup already running goes on
            if st.running and not st.finalizer:
                self.backend.stop(name, reason=reason)

    @property
    def _running(self) -> int:
        """Attempts and gate checks under way: the slots taken."""
        return self.plan.pool - len(self._free)

    def _take_slot(self, st: _State) -> None:
        st.slot = heapq.heappop(self._free)

    def _free_slot(self, st: _State) -> int:
        slot, st.slot = st.slot, None
        heapq.heappush(self._free, slot)
        return slot

    def _may_start(self, st: _State) -> bool:
        return not self.stopping or (st.finalizer and not self._forced)

    def _start_ready(self) -> None:
        waiting = []  # ready, but their resources are held, or an interactive task must run alone
        while self._ready and self._running < self.plan.pool and not self._alone:
            entry = heapq.heappop(self._ready)
            st = self._state[entry[1]]
            if not self._may_start(st):
                continue
            if st.task.spec.interactive and self._running:
                waiting.append(entry)
                break  # it runs next, alone: nothing else starts meanwhile
            if not self._fits(st.task):
                waiting.append(entry)
                continue
            if self._gate is not None and st.verdict is None and st.task.spec.checked:
                self._check(st)  # holds its slot (not its resources) while the gate decides
            else:
                self._launch(st)
        for entry in waiting:
            heapq.heappush(self._ready, entry)

    def _units(self, task: PlannedTask) -> list[tuple[str, float]]:
        """The declared resources the task holds while it runs (undeclared ones are Dask worker resources)."""
        return [(k, n) for k, n in task.spec.resources if k in self._capacity]

    def _fits(self, task: PlannedTask) -> bool:
        return all(self._held[k] + n <= self._capacity[k] + 1e-9 for k, n in self._units(task))

    def _hold(self, task: PlannedTask, sign: float) -> None:
        for k, n in self._units(task):
            self._held[k] += sign * n
        if task.spec.interactive:
            self._alone = sign > 0

    # -- the gate ----------------------------------------------------------------

    def _check(self, st: _State) -> None:
        """Hand a ready task to the gate; it holds its slot until the verdict comes back."""
        name = st.task.name
        self._take_slot(st)
        self._checking += 1

        def done(verdict: Verdict) -> None:  # in a gate thread
            self._verdicts.append((name, verdict))
            if self.wake is not None:
                self.wake()

        self._gate.check(st.task, done)

    def _take_verdicts(self) -> None:
        while self._verdicts:
            name, verdict = self._verdicts.popleft()
            st = self._state[name]
            self._free_slot(st)
            self._checking -= 1
            st.verdict = verdict
            if verdict.status is None and self._may_start(st):
                # Ready again, checked: it starts as any ready task does, when its resources fit.
                heapq.heappush(self._ready, (self._key[name], name))
            elif verdict.status is None:
                self._finish(st, Status.CANCELLED, "the run was stopped")
            else:  # up to date, or skipped: its condition was false
                self._finish(st, verdict.status, verdict.reason, by_condition=verdict.status is Status.SKIPPED)

    def _close_gate(self) -> None:
        if self._gate is not None:
            self._gate.close()

    def _launch(self, st: _State) -> None:
        attempt = len(st.attempts) + 1
        task = st.task
        stdout_path, stderr_path = log_paths(self.log_dir, task.name, attempt)
        st.logs.append((stdout_path, stderr_path))
        env = dict(self.base_env)
        env.update(task.env)
        env.update(TASKRUN_TASK=task.name, TASKRUN_ATTEMPT=str(attempt), TASKRUN_RUN_ID=self.run_id)
        spec = AttemptSpec(
            task=task.name, attempt=attempt, argv=task.argv, env=tuple(env.items()), cwd=task.cwd,
            timeout_s=task.timeout_s, kill_grace_s=task.kill_grace_s,
            stdout_path=stdout_path, stderr_path=stderr_path, mask=self.mask,
            resources=tuple((k, n) for k, n in task.spec.resources if k not in self._capacity),
            steps=task.steps, steps_path=stdout_path.removesuffix(".stdout") + ".steps" if task.steps else None,
            interactive=task.spec.interactive,
        )
        self._take_slot(st)
        self._hold(task, +1)
        pid = self.backend.start(task.name, spec)
        if self.pump is not None:
            self.pump.follow(spec)
        self.listener.task_started(task, attempt, pid, st.slot)

    def _promote_retries(self) -> None:
        now = time.monotonic()
        while self._retries and self._retries[0][0] <= now:
            _, _, name = heapq.heappop(self._retries)
            heapq.heappush(self._ready, (self._key[name], name))

    def _attempt_ended(self, name: str, result: AttemptResult) -> None:
        st = self._state[name]
        result = replace(result, slot=self._free_slot(st))
        self._hold(st.task, -1)
        st.attempts.append(result)
        task = st.task
        retry = (not result and not result.cancelled and self._may_start(st)
                 and len(st.attempts) <= task.spec.retries)
        delay = task.spec.retry_delay_s if retry else None
        self.listener.attempt_ended(task, len(st.attempts), result, delay)
        if retry:
            heapq.heappush(self._retries, (time.monotonic() + delay, st.index, name))
            return
        if result:
            self._finish(st, Status.SUCCESS, None)
        elif result.cancelled:
            self._finish(st, Status.CANCELLED, result.reason or "cancelled")
        else:
            status = Status.TIMEOUT if result.timed_out else Status.FAILED
            self._finish(st, status, result.reason)

    def _finish(self, st: _State, status: Status, reason: str | None, *, by_condition: bool = False) -> None:
        st.result = TaskResult(
            name=st.task.name, status=status, allow_failure=st.task.spec.allow_failure,
            reason=reason, attempts=tuple(st.attempts), logs=tuple(st.logs[:len(st.attempts)]),
            by_condition=by_condition,
        )
        if st.verdict is not None:
            self._gate.ended(st.task, st.result, st.verdict)  # records the fingerprint, releases the lock
        self.listener.task_ended(st.result)
        self._ended.append(st)
        if not self._releasing:  # a loop, not recursion: an end can cascade down a chain of thousands
            self._releasing = True
            try:
                while self._ended:
                    self._release_dependents(self._ended.popleft())
            finally:
                self._releasing = False
        if status in FAILED_ANYHOW and not st.result:
            if self.plan.fail_fast and not self.stopping:
                self.fail_fast_cause = st.task.name
                self._begin_stop(f"fail_fast: '{st.task.name}' {'timed out' if status is Status.TIMEOUT else 'failed'}")

    def _release_dependents(self, ended: _State) -> None:
        """A task ended: what needs it is one need closer to ready; a finalizer counts every end,
        any other task only a success, and is skipped when a need failed or was skipped (by
        condition too, when the need was). A cancelled need leaves it to the stop that cancelled it."""
        result = ended.result
        satisfied = bool(result) and not result.by_condition
        word = "timed out" if result.status is Status.TIMEOUT else result.status.value
        if result.status is Status.SKIPPED:  # its own `if:` false, or skipped in turn
            word = ("was skipped (condition false)" if (result.reason or "").startswith("condition false")
                    else "was skipped")
        reason = f"needs '{ended.task.name}', which {word}"
        for d in ended.dependents:
            dep = self._state[d]
            if dep.result is not None or dep.running:
                continue
            if satisfied or dep.finalizer:
                dep.waiting -= 1
                if dep.waiting == 0:
                    self._became_ready(dep)
            elif result.status is not Status.CANCELLED:
                self._finish(dep, Status.SKIPPED, reason, by_condition=result.by_condition)

    def _became_ready(self, st: _State) -> None:
        """Every need has ended (succeeded, for a task that is not a finalizer)."""
        if not self._may_start(st):
            return  # cancelled with the rest of the stop
        if st.task.spec.when == "on_failure" and not self._a_need_failed(st):
            self._finish(st, Status.SKIPPED, "when: on_failure, and nothing it needs failed", by_condition=True)
            return
        heapq.heappush(self._ready, (self._key[st.task.name], st.task.name))

    def _a_need_failed(self, st: _State) -> bool:
        """Whether a task it needs, directly or not, failed or timed out (and was not allowed to)."""
        seen, stack = set(), list(st.task.spec.needs)
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            need = self._state[name]
            if need.result is not None and need.result.status in FAILED_ANYHOW and not need.result:
                return True
            stack.extend(need.task.spec.needs)
        return False

    def _cancel_pending(self, reason: str) -> None:
        """Every task not running and not ended (waiting, ready, or between retries): cancelled;
        but a finalizer that may still start (a stop that is not forced) stays pending."""
        self._ready = [e for e in self._ready if self._may_start(self._state[e[1]])]
        heapq.heapify(self._ready)
        self._retries = [e for e in self._retries if self._may_start(self._state[e[2]])]
        heapq.heapify(self._retries)
        for st in self._state.values():
            if st.result is None and not st.running and not self._may_start(st):
                self._finish(st, Status.CANCELLED, reason)

    def _skip_finalizers(self, reason: str) -> None:
        """A second signal: the finalizers that have not started are skipped."""
        for st in self._state.values():
            if st.result is None and not st.running and st.finalizer:
                self._finish(st, Status.SKIPPED, reason)
        self._cancel_pending(reason)

    def cancel_all(self, reason: str) -> list[TaskResult]:
        """Nothing runs (the run was not confirmed): every task `cancelled` with `reason`."""
        self.stopping = self._forced = True
        self._cancel_pending(reason)
        return self.results()

    # -- results ---------------------------------------------------------------

    def results(self) -> list[TaskResult]:
        """Every task of the plan in file order; one not finished is `cancelled`."""
        out = []
        for st in self._state.values():
            out.append(st.result if st.result is not None else TaskResult(
                name=st.task.name, status=Status.CANCELLED, allow_failure=st.task.spec.allow_failure,
                reason="taskrun stopped before this task ended", attempts=tuple(st.attempts),
                logs=tuple(st.logs[:len(st.attempts)])))
        return out
