"""runner.schedule.Scheduler over a fake backend: exact orderings, no process.

The fake backend ends attempts in the order a test dictates (`ends`), with the
outcome the test scripted for each attempt (`outcomes`); the listener records
every event, so each test asserts the whole story of a run.
"""

from __future__ import annotations

import signal
import time
from collections import deque

import pytest

from runner.model import AttemptResult, Plan, TaskFile, TaskSpec
from runner.plan import make_plan
from runner.schedule import Scheduler, StopRequest

OK, FAIL, TIMEOUT, NOSTART = "ok", "fail", "timeout", "nostart"
STOP = object()  # an entry of `ends`: a signal arrives (the stop request is made)


def attempt_result(outcome: str, *, pid: int | None, cancelled: bool = False, reason: str | None = None
                   ) -> AttemptResult:
    now = time.time()
    if cancelled:
        return AttemptResult(exit_code=None, signal="SIGTERM", timed_out=False, pid=pid, started_at=now,
                             finished_at=now, duration_s=0.0, reason=reason, cancelled=True)
    if outcome == TIMEOUT:
        return AttemptResult(exit_code=None, signal="SIGTERM", timed_out=True, pid=pid, started_at=now,
                             finished_at=now, duration_s=0.0, reason="timed out after 1s")
    if outcome == NOSTART:
        return AttemptResult(exit_code=127, signal=None, timed_out=False, pid=None, started_at=now,
                             finished_at=now, duration_s=0.0, reason="command not found: nope")
    code = 0 if outcome == OK else 1
    return AttemptResult(exit_code=code, signal=None, timed_out=False, pid=pid, started_at=now,
                         finished_at=now, duration_s=0.0)


class FakeBackend:
    """Attempts that end only when the test says so.

    `outcomes[name]` lists the outcome of each attempt (default: all succeed).
    `wait` ends the next attempt named in `ends` (which must be running), or,
    when `ends` is exhausted, the attempt that started first. Stopped attempts
    end, cancelled, at the next `wait` (unless a signal comes first).
    """

    def __init__(self, log: list, outcomes: dict[str, list[str]] | None = None, ends=(),
                 stop: StopRequest | None = None) -> None:
        self.log = log
        self.outcomes = {k: deque(v) for k, v in (outcomes or {}).items()}
        self.ends = deque(ends)
        self.stop_request = stop
        self.running: dict[str, int] = {}  # name -> pid, in start order
        self.stopped: dict[str, str] = {}  # name -> reason
        self.done: list[tuple[str, AttemptResult]] = []
        self.specs = []
        self.waits: list[float | None] = []
        self.stop_calls: list[tuple[str, bool]] = []
        self.next_pid = 1000

    def start(self, key, spec):
        self.specs.append(spec)
        outcome = self._peek(key)
        if outcome == NOSTART:
            self.outcomes[key].popleft()
            self.done.append((key, attempt_result(NOSTART, pid=None)))
            return None
        self.next_pid += 1
        self.running[key] = self.next_pid
        return self.next_pid

    def _peek(self, key):
        queue = self.outcomes.get(key)
        return queue[0] if queue else OK

    def wait(self, timeout_s, writable_fd=None):
        assert writable_fd is None  # these pumps never have output waiting
        self.waits.append(timeout_s)
        if self.done:
            done, self.done = self.done, []
            return done
        if self.ends and self.ends[0] is STOP:
            self.ends.popleft()
            self.stop_request.request(signal.SIGINT, "interrupted (SIGINT)")
            return []  # the wake fd woke the backend: nothing ended
        if self.stopped:
            stopped, self.stopped = self.stopped, {}
            return [(name, attempt_result(OK, pid=self.running.pop(name), cancelled=True, reason=reason))
                    for name, reason in stopped.items()]
        if not self.running:
            assert timeout_s is not None, "the scheduler waits forever with nothing running"
            time.sleep(timeout_s)  # a retry delay: nothing to end
            return []
        name = self.ends.popleft() if self.ends else next(iter(self.running))
        assert name in self.running, f"{name} is not running (running: {list(self.running)})"
        pid = self.running.pop(name)
        queue = self.outcomes.get(name)
        outcome = queue.popleft() if queue else OK
        self.log.append(("end", name))
        return [(name, attempt_result(outcome, pid=pid))]

    def stop(self, key, *, reason, cancelled=True, force=False):
        self.stop_calls.append((reason, force))
        if key in self.running:
            self.stopped[key] = reason

    def stop_all(self, *, reason, force=False):
        self.stop_calls.append((reason, force))
        for name in self.running:
            self.stopped.setdefault(name, reason)


class Recorder:
    """The listener: every event as a tuple, in order."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.slots: dict[tuple[str, int], int] = {}  # (task, attempt) -> the slot it started in

    def task_started(self, task, attempt, pid, slot):
        self.slots[(task.name, attempt)] = slot
        self.log.append(("start", task.name) if attempt == 1 else ("start", task.name, attempt))

    def attempt_ended(self, task, attempt, result, retry_in_s):
        if retry_in_s is not None:
            self.log.append(("retry", task.name, attempt, retry_in_s))

    def task_ended(self, result):
        self.log.append(("done", result.name, result.status.value))


def spec(name: str, **kw) -> TaskSpec:
    return TaskSpec(name=name, cmd=f"run {name}", **kw)


def plan_of(*tasks: TaskSpec, pool: int = 1, fail_fast: bool = False, targets=()) -> Plan:
    tf = TaskFile(path="tasks.yaml", folder="/proj", sha256="0" * 64, version=1, pool=pool, timeout_s=None,
                  env=(("FILE_VAR", "f"),), shell="/bin/sh", fail_fast=fail_fast, tasks=tasks)
    return make_plan(tf, targets)


class Run:
    def __init__(self, tmp_path, plan, outcomes=None, ends=()):
        self.log: list = []
        self.stop = StopRequest()
        self.backend = FakeBackend(self.log, outcomes, ends, stop=self.stop)
        self.recorder = Recorder(self.log)
        self.scheduler = Scheduler(plan, self.backend, self.recorder, log_dir=tmp_path / "logs",
                                   run_id="run-1", stop=self.stop, base_env={"BASE": "b", "FILE_VAR": "base"})
        self.results = self.scheduler.run()

    @property
    def starts(self) -> list:
        return [e[1:] for e in self.log if e[0] == "start"]

    def status(self) -> dict[str, str]:
        return {r.name: r.status.value for r in self.results}

    def reasons(self) -> dict[str, str | None]:
        return {r.name: r.reason for r in self.results}


@pytest.fixture
def run(tmp_path):
    return lambda plan, outcomes=None, ends=(): Run(tmp_path, plan, outcomes, ends)


class TestPool:
    def test_pool_of_one_runs_in_file_order_one_at_a_time(self, run):
        r = run(plan_of(spec("c"), spec("a"), spec("b"), pool=1))
        assert r.log == [("start", "c"), ("end", "c"), ("done", "c", "success"),
                         ("start", "a"), ("end", "a"), ("done", "a", "success"),
                         ("start", "b"), ("end", "b"), ("done", "b", "success")]

    def test_a_freed_slot_goes_to_the_next_task_in_file_order(self, run):
        r = run(plan_of(*(spec(n) for n in "abcde"), pool=2), ends=["b", "a", "d", "c", "e"])
        assert r.log == [("start", "a"), ("start", "b"),
                         ("end", "b"), ("done", "b", "success"), ("start", "c"),
                         ("end", "a"), ("done", "a", "success"), ("start", "d"),
                         ("end", "d"), ("done", "d", "success"), ("start", "e"),
                         ("end", "c"), ("done", "c", "success"),
                         ("end", "e"), ("done", "e", "success")]

    def test_never_more_running_than_the_pool(self, run):
        r = run(plan_of(*(spec(f"t{i}") for i in range(9)), pool=3), ends=[f"t{i}" for i in (2, 0, 1, 5, 3, 4, 8, 7, 6)])
        running = peak = 0
        for event in r.log:
            running += {"start": 1, "end": -1}.get(event[0], 0)
            peak = max(peak, running)
        assert peak == 3
        assert r.status() == {f"t{i}": "success" for i in range(9)}

    def test_a_pool_larger_than_the_plan_starts_everything_at_once(self, run):
        r = run(plan_of(spec("a"), spec("b"), spec("c"), pool=8), ends=["c", "b", "a"])
        assert r.log[:3] == [("start", "a"), ("start", "b"), ("start", "c")]


class TestSlots:
    def test_an_attempt_takes_the_lowest_free_slot_and_its_result_says_which(self, run):
        r = run(plan_of(*(spec(n) for n in "abcde"), pool=2), ends=["b", "a", "d", "c", "e"])
        # a and b start in 0 and 1; b's end frees 1 for c; a's frees 0 for d; d's frees 0 again for e.
        assert r.recorder.slots == {("a", 1): 0, ("b", 1): 1, ("c", 1): 1, ("d", 1): 0, ("e", 1): 0}
        assert {(x.name, 1): x.attempts[0].slot for x in r.results} == r.recorder.slots

    def test_a_retry_takes_the_lowest_slot_free_when_it_starts(self, run):
        tasks = (spec("a"), spec("flaky", retries=1, retry_delay_s=0.2), spec("b"))
        r = run(plan_of(*tasks, pool=2), outcomes={"flaky": [FAIL, OK]}, ends=["flaky", "a"])
        # flaky's first attempt frees slot 1, which b takes during the delay; a frees 0 for the retry.
        assert r.recorder.slots == {("a", 1): 0, ("flaky", 1): 1, ("b", 1): 1, ("flaky", 2): 0}
        assert [a.slot for a in r.results[1].attempts] == [1, 0]

    def test_an_attempt_that_could_not_start_held_its_slot(self, run):
        r = run(plan_of(spec("missing"), spec("other"), pool=2), outcomes={"missing": [NOSTART]})
        assert r.recorder.slots == {("missing", 1): 0, ("other", 1): 1}
        assert r.results[0].attempts[0].slot == 0


class TestNeeds:
    def test_a_task_starts_once_all_its_needs_succeeded(self, run):
        tasks = (spec("a"), spec("b"), spec("c"), spec("d", needs=("a", "b")))
        r = run(plan_of(*tasks, pool=2), ends=["a", "b", "c", "d"])
        assert r.log == [("start", "a"), ("start", "b"),
                         ("end", "a"), ("done", "a", "success"), ("start", "c"),
                         ("end", "b"), ("done", "b", "success"), ("start", "d"),
                         ("end", "c"), ("done", "c", "success"),
                         ("end", "d"), ("done", "d", "success")]

    def test_ready_tasks_start_in_file_order_not_in_readiness_order(self, run):
        # 'late' is first in the file: once 'early' is done it goes before 'other'.
        tasks = (spec("late", needs=("early",)), spec("early"), spec("other"))
        r = run(plan_of(*tasks, pool=1))
        assert r.starts == [("early",), ("late",), ("other",)]

    def test_tasks_made_ready_together_start_in_file_order(self, run):
        tasks = (spec("z", needs=("root",)), spec("root"), spec("y", needs=("root",)), spec("x", needs=("root",)))
        r = run(plan_of(*tasks, pool=3))
        assert r.starts == [("root",), ("z",), ("y",), ("x",)]

    def test_results_are_in_file_order_whatever_the_completion_order(self, run):
        r = run(plan_of(spec("a"), spec("b"), spec("c"), pool=3), ends=["c", "b", "a"])
        assert [x.name for x in r.results] == ["a", "b", "c"]


class TestSkip:
    def test_failure_skips_dependents_transitively_and_others_still_run(self, run):
        tasks = (spec("a"), spec("b", needs=("a",)), spec("c", needs=("b",)), spec("d", needs=("c", "e")),
                 spec("e"))
        r = run(plan_of(*tasks, pool=1), outcomes={"a": [FAIL]})
        assert r.status() == {"a": "failed", "b": "skipped", "c": "skipped", "d": "skipped", "e": "success"}
        assert r.reasons() == {"a": None, "b": "needs 'a', which failed", "c": "needs 'b', which was skipped",
                               "d": "needs 'c', which was skipped", "e": None}
        assert r.starts == [("a",), ("e",)]
        assert not any(r.results[i] for i in range(4))
        assert all(not x.attempts for x in r.results[1:4])

    def test_timeout_skips_with_its_own_word(self, run):
        r = run(plan_of(spec("a"), spec("b", needs=("a",))), outcomes={"a": [TIMEOUT]})
        assert r.status() == {"a": "timeout", "b": "skipped"}
        assert r.reasons()["b"] == "needs 'a', which timed out"

    def test_a_task_is_skipped_as_soon_as_one_need_fails(self, run):
        tasks = (spec("slow"), spec("bad"), spec("both", needs=("slow", "bad")))
        r = run(plan_of(*tasks, pool=2), outcomes={"bad": [FAIL]}, ends=["bad", "slow"])
        assert r.log == [("start", "slow"), ("start", "bad"),
                         ("end", "bad"), ("done", "bad", "failed"), ("done", "both", "skipped"),
                         ("end", "slow"), ("done", "slow", "success")]

    def test_allow_failure_fails_but_its_dependents_run(self, run):
        tasks = (spec("lint", allow_failure=True), spec("build", needs=("lint",)))
        r = run(plan_of(*tasks), outcomes={"lint": [FAIL]})
        assert r.status() == {"lint": "failed", "build": "success"}
        assert all(r.results)  # the run counts as a success

    def test_allow_failure_timeout_also_lets_dependents_run(self, run):
        tasks = (spec("flaky", allow_failure=True), spec("next", needs=("flaky",)))
        r = run(plan_of(*tasks), outcomes={"flaky": [TIMEOUT]})
        assert r.status() == {"flaky": "timeout", "next": "success"}

    def test_could_not_start_is_a_failure(self, run):
        r = run(plan_of(spec("a"), spec("b", needs=("a",))), outcomes={"a": [NOSTART]})
        assert r.status() == {"a": "failed", "b": "skipped"}
        assert r.results[0].reason == "command not found: nope"
        assert r.results[0].last.exit_code == 127


class TestFailFast:
    def test_first_failure_cancels_running_and_pending_tasks(self, run):
        tasks = (spec("a"), spec("b"), spec("c"), spec("d", needs=("a",)))
        r = run(plan_of(*tasks, pool=2, fail_fast=True), outcomes={"a": [FAIL]}, ends=["a"])
        assert r.status() == {"a": "failed", "b": "cancelled", "c": "cancelled", "d": "skipped"}
        assert r.starts == [("a",), ("b",)]
        assert r.reasons()["c"] == "fail_fast: 'a' failed"
        assert r.reasons()["b"] == "fail_fast: 'a' failed"
        assert r.results[1].last.cancelled
        assert r.results[2].attempts == ()
        assert r.scheduler.fail_fast_cause == "a"
        assert r.backend.stop_calls == [("fail_fast: 'a' failed", False)]

    def test_timeout_triggers_fail_fast_too(self, run):
        r = run(plan_of(spec("a"), spec("b"), pool=1, fail_fast=True), outcomes={"a": [TIMEOUT]})
        assert r.status() == {"a": "timeout", "b": "cancelled"}
        assert r.reasons()["b"] == "fail_fast: 'a' timed out"

    def test_allowed_failure_does_not_trigger_fail_fast(self, run):
        r = run(plan_of(spec("a", allow_failure=True), spec("b"), fail_fast=True), outcomes={"a": [FAIL]})
        assert r.status() == {"a": "failed", "b": "success"}
        assert r.scheduler.fail_fast_cause is None

    def test_without_fail_fast_the_rest_runs(self, run):
        r = run(plan_of(spec("a"), spec("b"), spec("c"), pool=1), outcomes={"a": [FAIL]})
        assert r.status() == {"a": "failed", "b": "success", "c": "success"}


class TestRetries:
    def test_fails_twice_then_succeeds(self, run):
        r = run(plan_of(spec("flaky", retries=2)), outcomes={"flaky": [FAIL, FAIL, OK]})
        assert r.log == [("start", "flaky"), ("end", "flaky"), ("retry", "flaky", 1, 0.0),
                         ("start", "flaky", 2), ("end", "flaky"), ("retry", "flaky", 2, 0.0),
                         ("start", "flaky", 3), ("end", "flaky"), ("done", "flaky", "success")]
        assert [a.exit_code for a in r.results[0].attempts] == [1, 1, 0]

    def test_retries_exhausted_fails_with_every_attempt(self, run):
        r = run(plan_of(spec("bad", retries=1), spec("after", needs=("bad",))), outcomes={"bad": [FAIL, FAIL]})
        assert r.status() == {"bad": "failed", "after": "skipped"}
        assert len(r.results[0].attempts) == 2

    def test_a_timeout_is_retried(self, run):
        r = run(plan_of(spec("slow", retries=1)), outcomes={"slow": [TIMEOUT, OK]})
        assert r.status() == {"slow": "success"}
        assert [a.timed_out for a in r.results[0].attempts] == [True, False]

    def test_success_is_not_retried(self, run):
        r = run(plan_of(spec("ok", retries=3)))
        assert r.starts == [("ok",)]

    def test_attempt_specs_are_numbered_with_their_own_logs(self, run, tmp_path):
        r = run(plan_of(spec("flaky", retries=1)), outcomes={"flaky": [FAIL, OK]})
        first, second = r.backend.specs
        assert (first.attempt, second.attempt) == (1, 2)
        assert dict(second.env)["TASKRUN_ATTEMPT"] == "2"
        assert (first.stdout_path, second.stdout_path) == (str(tmp_path / "logs" / "flaky.stdout"),
                                                           str(tmp_path / "logs" / "flaky~2.stdout"))
        assert r.results[0].stdout_path == second.stdout_path

    def test_the_slot_is_free_during_the_retry_delay(self, run):
        tasks = (spec("flaky", retries=1, retry_delay_s=0.2), spec("other"))
        r = run(plan_of(*tasks, pool=1), outcomes={"flaky": [FAIL, OK]})
        assert r.log == [("start", "flaky"), ("end", "flaky"), ("retry", "flaky", 1, 0.2),
                         ("start", "other"), ("end", "other"), ("done", "other", "success"),
                         ("start", "flaky", 2), ("end", "flaky"), ("done", "flaky", "success")]

    def test_the_loop_waits_out_the_retry_delay(self, run):
        began = time.monotonic()
        r = run(plan_of(spec("flaky", retries=1, retry_delay_s=0.3)), outcomes={"flaky": [FAIL, OK]})
        assert time.monotonic() - began >= 0.3
        assert r.status() == {"flaky": "success"}
        timeouts = [w for w in r.backend.waits if w is not None]
        assert timeouts and 0 < timeouts[0] <= 0.3


class TestStopRequest:
    def test_a_signal_cancels_running_and_pending_tasks(self, run):
        tasks = (spec("a"), spec("b"), spec("c"), spec("d", needs=("a",)))
        r = run(plan_of(*tasks, pool=2), ends=["a", STOP])
        assert r.status() == {"a": "success", "b": "cancelled", "c": "cancelled", "d": "cancelled"}
        assert r.starts == [("a",), ("b",), ("c",)]  # a's end freed a slot before the signal
        assert r.reasons() == {"a": None, "b": "interrupted (SIGINT)", "c": "interrupted (SIGINT)",
                               "d": "interrupted (SIGINT)"}
        assert r.backend.stop_calls == [("interrupted (SIGINT)", False)]

    def test_a_second_signal_forces_the_kill(self, run):
        r = run(plan_of(spec("a"), spec("b"), pool=2), ends=[STOP, STOP])
        assert r.status() == {"a": "cancelled", "b": "cancelled"}
        assert [force for _, force in r.backend.stop_calls] == [False, True]

    def test_a_task_waiting_for_its_retry_is_cancelled_with_its_attempts(self, run):
        tasks = (spec("flaky", retries=1, retry_delay_s=60), spec("long"))
        r = run(plan_of(*tasks, pool=2), outcomes={"flaky": [FAIL]}, ends=["flaky", STOP])
        assert r.status() == {"flaky": "cancelled", "long": "cancelled"}
        assert len(r.results[0].attempts) == 1
        assert r.results[0].reason == "interrupted (SIGINT)"


class TestAttemptSpec:
    def test_environment_cwd_and_limits_reach_the_backend(self, run, tmp_path):
        tasks = (spec("a", env=(("TASK_VAR", "t"),), timeout_s=3.0, kill_grace_s=0.5, cwd="/proj/sub"),)
        r = run(plan_of(*tasks))
        (s,) = r.backend.specs
        env = dict(s.env)
        assert env["BASE"] == "b"
        assert env["FILE_VAR"] == "f"  # the file's env wins over taskrun's own environment
        assert env["TASK_VAR"] == "t"
        assert (env["TASKRUN_TASK"], env["TASKRUN_ATTEMPT"], env["TASKRUN_RUN_ID"]) == ("a", "1", "run-1")
        assert s.argv == ("/bin/sh", "-e", "-c", "run a")
        assert (s.cwd, s.timeout_s, s.kill_grace_s) == ("/proj/sub", 3.0, 0.5)
        assert s.stderr_path == str(tmp_path / "logs" / "a.stderr")


class Pump:
    """A pump that records: follow per attempt, poll per wake; asks for waits of at most `every`."""

    def __init__(self, log: list, every: float | None) -> None:
        self.log = log
        self.poll_interval_s = every
        self.writable_fd = None

    def follow(self, spec):
        self.log.append(("follow", spec.task, spec.attempt, spec.stdout_path.rsplit("/", 1)[1]))

    def poll(self):
        self.log.append(("poll",))


class TestPump:
    def make(self, tmp_path, plan, every, outcomes=None):
        log: list = []
        backend = FakeBackend(log, outcomes)
        scheduler = Scheduler(plan, backend, Recorder(log), log_dir=tmp_path, run_id="r", pump=Pump(log, every))
        scheduler.run()
        return log, backend

    def test_each_attempt_is_followed_and_each_wake_polled_before_its_ends(self, tmp_path):
        log, backend = self.make(tmp_path, plan_of(spec("a", retries=1), spec("b")), 0.05,
                                 outcomes={"a": [FAIL, OK]})
        # ("end", ...) is logged by the backend inside wait; the poll comes before the
        # listener hears of the end, so the last lines are printed before the end line.
        assert log == [("follow", "a", 1, "a.stdout"), ("start", "a"), ("end", "a"), ("poll",),
                       ("retry", "a", 1, 0.0), ("follow", "a", 2, "a~2.stdout"), ("start", "a", 2),
                       ("end", "a"), ("poll",), ("done", "a", "success"),
                       ("follow", "b", 1, "b.stdout"), ("start", "b"), ("end", "b"), ("poll",),
                       ("done", "b", "success")]
        assert backend.waits == [0.05, 0.05, 0.05]

    def test_without_an_interval_the_waits_are_not_capped(self, tmp_path):
        _, backend = self.make(tmp_path, plan_of(spec("a")), None)
        assert backend.waits == [None]


class TestAbort:
    def test_an_error_of_taskrun_keeps_the_results_the_attempts_return(self, tmp_path):
        # taskrun fails in a wait at the moment `a` exits 0 by itself: `a` keeps its success,
        # `b` (still running) is stopped at once and cancelled, `c` never starts.
        log: list = []

        class FailingOnce(FakeBackend):
            def wait(self, timeout_s, writable_fd=None):
                if not self.waits:
                    self.waits.append(timeout_s)
                    self.done.append(("a", attempt_result(OK, pid=self.running.pop("a"))))
                    raise OverflowError("timeout is too large")
                return super().wait(timeout_s, writable_fd)

        backend = FailingOnce(log)
        scheduler = Scheduler(plan_of(spec("a"), spec("b"), spec("c", needs=("a",)), pool=2), backend,
                              Recorder(log), log_dir=tmp_path, run_id="r")
        with pytest.raises(OverflowError):
            scheduler.run()
        scheduler.abort("taskrun failed: timeout is too large")
        assert backend.stop_calls == [("taskrun failed: timeout is too large", True)]
        assert {r.name: (r.status.value, r.reason) for r in scheduler.results()} == {
            "a": ("success", None),
            "b": ("cancelled", "taskrun failed: timeout is too large"),
            "c": ("cancelled", "taskrun failed: timeout is too large"),
        }
        assert ("start", "c") not in log


class TestGate:
    def test_a_check_holds_its_slot_and_a_false_condition_skips_what_needs_it_without_failing(self, tmp_path):
        (tmp_path / "logs").mkdir()
        here = str(tmp_path)
        plan = plan_of(spec("a", condition="false", cwd=here), spec("b", needs=("a",)),
                       spec("c", condition="true", cwd=here), spec("d"), pool=1)
        r = Run(tmp_path, plan)
        # With one slot, d waits while c's condition runs: a check holds the slot.
        assert r.log == [("done", "a", "skipped"), ("done", "b", "skipped"),
                         ("start", "c"), ("end", "c"), ("done", "c", "success"),
                         ("start", "d"), ("end", "d"), ("done", "d", "success")]
        assert r.reasons() == {"a": "condition false: `false` exited 1",
                               "b": "needs 'a', which was skipped (condition false)", "c": None, "d": None}
        assert all(r.results) and [x.by_condition for x in r.results] == [True, True, False, False]
