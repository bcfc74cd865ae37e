"""runner.runview: the run model every drawing uses, built from summaries of real runs
(and a few made by hand for what a run cannot be made to show)."""

from __future__ import annotations

import signal
import uuid

import pytest

from conftest import Runner, by_name, check, processes_with_mark, wait_for
from runner.runview import assign_slots, build_view, seconds

MIXED = """
    version: 1
    pool: 3
    tasks:
      compile: sleep 0.5
      integration: {cmd: sleep 1, needs: [compile]}
      unit: {cmd: sleep 0.1, needs: [compile]}
      package: {cmd: sleep 0.2, needs: [integration, unit]}
      lint: {cmd: echo bad style >&2; exit 2}
      docs: {cmd: echo never, needs: [lint]}
      flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1, retry_delay: 0.2}
      slow: {cmd: sleep 30, timeout: 0.3, kill_grace: 0.2}
      fresh: {cmd: echo never, status: ["true"]}
"""


def attempts_of(summary: dict) -> dict[tuple[str, int], dict]:
    return {(t["name"], n): a for t in summary["tasks"] for n, a in enumerate(t["attempts"], start=1)}


def running_at(view, at: float) -> int:
    return sum(1 for b in view.bars if b.start_s <= at < b.end_s)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One real mixed run, shared by the tests that only read it (checked as the `taskrun` fixture
    checks its runs: nothing of it is left running)."""
    runner = Runner(tmp_path_factory.mktemp("mixed"), uuid.uuid4().hex)
    runner.write("tasks.yaml", MIXED)
    check(runner("tasks.yaml"), 1)
    wait_for(lambda: not processes_with_mark(runner.mark), timeout=5, what="the run's processes to be gone")
    return runner.summary()


class TestMixedRun:
    def test_one_bar_per_attempt_where_and_when_the_summary_says(self, mixed):
        view = build_view(mixed)
        origin = seconds(mixed["started_at"])
        attempts = attempts_of(mixed)
        assert {(b.task, b.attempt) for b in view.bars} == set(attempts)
        for b in view.bars:
            a = attempts[(b.task, b.attempt)]
            assert b.slot == a["slot"]
            assert b.start_s == pytest.approx(seconds(a["started_at"]) - origin)
            assert b.duration_s == pytest.approx(a["duration_s"])
            assert (b.exit_code, b.signal, b.reason, b.worker) == (a["exit_code"], a["signal"], a["reason"], None)
        assert not view.slots_assigned and view.slots == 3
        assert [b.start_s for b in view.bars] == sorted(b.start_s for b in view.bars)

    def test_outcomes_retries_and_the_stderr_tail_of_the_last_attempt(self, mixed):
        bars = {(b.task, b.attempt): b for b in build_view(mixed).bars}
        assert {k: b.outcome for k, b in bars.items()} == {
            ("compile", 1): "success", ("integration", 1): "success", ("unit", 1): "success",
            ("package", 1): "success", ("lint", 1): "failed", ("flaky", 1): "failed", ("flaky", 2): "success",
            ("slow", 1): "timeout"}
        assert (bars[("lint", 1)].exit_code, bars[("lint", 1)].stderr_tail) == (2, "bad style\n")
        assert (bars[("slow", 1)].exit_code, bars[("slow", 1)].signal) == (None, "SIGTERM")
        assert [(b.attempt, b.attempts, b.last) for b in (bars[("flaky", 1)], bars[("flaky", 2)])] == [
            (1, 2, False), (2, 2, True)]
        assert bars[("flaky", 1)].stderr_tail is None  # the summary keeps the last attempt's tail only

    def test_the_retry_delay_is_a_gap_between_the_attempts(self, mixed):
        view = build_view(mixed)
        (gap,) = view.gaps
        bars = {(b.task, b.attempt): b for b in view.bars}
        assert (gap.task, gap.attempt) == ("flaky", 1)
        assert (gap.start_s, gap.end_s) == (bars[("flaky", 1)].end_s, bars[("flaky", 2)].start_s)
        assert gap.end_s - gap.start_s >= 0.2 - 0.001  # the delay at least (stamps are in milliseconds)

    def test_tasks_that_did_not_run_with_their_reasons(self, mixed):
        not_run = [(n.task, n.status, n.reason) for n in build_view(mixed).not_run]
        assert not_run == [("docs", "skipped", "needs 'lint', which failed"),
                           ("fresh", "up_to_date", by_name(mixed)["fresh"]["reason"])]

    def test_the_critical_path_is_the_chain_of_needs_that_ended_last(self, mixed):
        view = build_view(mixed)
        bars = {(b.task, b.attempt): b for b in view.bars}
        assert view.critical.tasks == ("compile", "integration", "package")
        assert view.critical.start_s == bars[("compile", 1)].start_s
        assert view.critical.end_s == bars[("package", 1)].end_s == max(b.end_s for b in view.bars)
        assert view.critical.length_s == pytest.approx(view.critical.end_s - view.critical.start_s)
        assert [r.name for r in view.tasks if r.critical] == ["compile", "integration", "package"]

    def test_concurrency_steps_count_the_bars_running(self, mixed):
        view = build_view(mixed)
        steps = view.concurrency
        assert steps[0][0] == 0.0 and steps[-1][1] == 0
        assert [t for t, _ in steps] == sorted({t for t, _ in steps})  # one step per moment, in order
        for at, running in steps:
            assert running == running_at(view, at) <= mixed["pool"]
        assert max(n for _, n in steps) == 3

    def test_the_table_lists_failures_first_then_the_longest(self, mixed):
        view = build_view(mixed)
        table = [r.name for r in view.table]
        assert table[:2] == ["slow", "lint"]  # the failures, the longer first (a timeout of 0.3s, an exit at once)
        rest = view.table[2:]
        assert [r.duration_s for r in rest] == sorted((r.duration_s for r in rest), reverse=True)
        assert rest[0].name == "integration" and {r.name for r in rest[-2:]} == {"docs", "fresh"}
        flaky = next(r for r in view.tasks if r.name == "flaky")
        assert flaky.attempts == 2
        assert flaky.duration_s == pytest.approx(sum(a["duration_s"] for a in by_name(mixed)["flaky"]["attempts"]))

    def test_the_header_is_the_summarys(self, mixed):
        h = build_view(mixed).header
        assert (h.file, h.status, h.exit_code, h.pool, h.host, h.run_id, h.started_at, h.taskrun_version) == (
            "tasks.yaml", "failed", 1, 3, mixed["host"], mixed["run_id"], mixed["started_at"],
            mixed["taskrun_version"])
        assert h.duration_s == mixed["duration_s"] and dict(h.counts) == mixed["counts"]

    def test_a_summary_without_slots_gets_them_greedily(self, mixed):
        old = {**mixed, "tasks": [{**t, "attempts": [{k: v for k, v in a.items() if k != "slot"}
                                                       for a in t["attempts"]]} for t in mixed["tasks"]]}
        view = build_view(old)
        assert view.slots_assigned
        by_slot: dict[int, list] = {}
        for b in view.bars:
            by_slot.setdefault(b.slot, []).append(b)
        for held in by_slot.values():
            for before, after in zip(held, held[1:]):
                assert before.end_s <= after.start_s + 0.001
        assert view.slots >= 3


class TestRealEdges:
    def test_nothing_ran(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            tasks:
              a: {cmd: echo a, status: ["true"]}
              b: {cmd: echo b, status: ["true"], needs: [a]}
        """)
        check(taskrun("tasks.yaml"), 0)
        view = build_view(taskrun.summary())
        assert (view.bars, view.gaps, view.concurrency) == ((), (), ((0.0, 0),))
        assert view.critical.tasks == () and view.critical.length_s == 0
        assert [(n.task, n.status) for n in view.not_run] == [("a", "up_to_date"), ("b", "up_to_date")]
        assert not view.slots_assigned

    def test_a_run_cancelled_by_a_signal(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 2
            tasks:
              long: touch started; sleep 30
              later: {cmd: echo later, needs: [long]}
        """)
        p = taskrun.popen("tasks.yaml")
        wait_for(lambda: (taskrun.cwd / "started").exists(), what="the task to start")
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=60)
        assert p.returncode == 130
        view = build_view(taskrun.summary())
        assert view.header.status == "cancelled" and view.header.signal == "SIGINT"
        ((bar),) = view.bars
        assert (bar.task, bar.outcome, bar.slot) == ("long", "cancelled", 0)
        assert [(n.task, n.status) for n in view.not_run] == [("later", "cancelled")]
        assert view.critical.tasks == ("long",)


def summary_of(tasks: list[dict], *, pool: int = 2, duration_s: float = 10.0) -> dict:
    """A summary made by hand: the fields `build_view` reads."""
    return {"file": "tasks.yaml", "status": "success", "exit_code": 0, "pool": pool, "run_id": "r",
            "started_at": "2026-01-01T00:00:00.000Z", "duration_s": duration_s, "tasks": tasks}


def task(name: str, *spans: tuple[float, float], needs=(), status="success", slots=None) -> dict:
    attempts = [{"started_at": f"2026-01-01T00:00:{start:06.3f}Z", "duration_s": end - start,
                 "exit_code": 0 if i == len(spans) - 1 else 1, "timed_out": False, "cancelled": False,
                 **({} if slots is None else {"slot": slots[i]})} for i, (start, end) in enumerate(spans)]
    return {"name": name, "status": status, "needs": list(needs), "attempts": attempts}


class TestMadeByHand:
    def test_greedy_slots_take_the_lowest_free_and_a_slot_freed_at_that_moment(self):
        assert assign_slots([(0, 4), (0, 1), (1, 2), (1.5, 3), (4, 5), (4, 6)]) == [0, 1, 1, 2, 0, 1]

    def test_retries_without_slots_in_an_old_summary(self):
        view = build_view(summary_of([task("flaky", (0, 1), (3, 4)), task("other", (0.5, 5))]))
        assert view.slots_assigned
        assert [(b.task, b.attempt, b.slot) for b in view.bars] == [("flaky", 1, 0), ("other", 1, 1),
                                                                    ("flaky", 2, 0)]
        assert [(g.task, g.attempt, g.start_s, g.end_s) for g in view.gaps] == [("flaky", 1, 1.0, 3.0)]
        assert view.concurrency == ((0.0, 1), (0.5, 2), (1.0, 1), (3.0, 2), (4.0, 1), (5.0, 0))

    def test_the_writers_of_one_summary_share_its_view_and_another_summary_gets_its_own(self):
        one = summary_of([task("a", (0, 1))])
        view = build_view(one)
        assert build_view(one) is view  # the page, the trace, the timeline and the step summary
        other = summary_of([task("a", (0, 1))])
        assert build_view(other) is not view and build_view(other) == view

    def test_an_end_and_a_start_at_one_moment_are_a_hand_over(self):
        view = build_view(summary_of([task("a", (0, 2), slots=[0]), task("b", (2, 3), slots=[0], needs=["a"])]))
        assert view.concurrency == ((0.0, 1), (3.0, 0))
        assert view.critical.tasks == ("a", "b") and view.critical.length_s == 3.0

    def test_a_bar_ends_at_its_end_stamp_so_a_slot_handed_over_in_one_millisecond_never_overlaps(self):
        # As a run records it: stamps cut to the millisecond, durations to the microsecond. Ending
        # bars at start + duration put `a` past `b`'s start: three attempts at once on a pool of 2.
        a, b, c = task("a", (0.591, 0.592), slots=[1]), task("b", (0.592, 0.9), slots=[1]), task("c", (0, 1), slots=[0])
        a["attempts"][0].update(finished_at="2026-01-01T00:00:00.592Z", duration_s=0.00135)
        view = build_view(summary_of([a, b, c]))
        first = next(bar for bar in view.bars if bar.task == "a")
        assert (first.end_s, first.duration_s) == (pytest.approx(0.592), 0.00135)
        assert max(n for _, n in view.concurrency) == 2

    def test_the_path_goes_back_through_the_need_that_ended_last_and_past_needs_that_did_not_run(self):
        view = build_view(summary_of([
            task("early", (0, 1)), task("late", (0, 2)), task("fresh", status="up_to_date"),
            task("last", (2, 4), needs=["early", "late", "fresh"]), task("side", (0, 3))]))
        assert view.critical.tasks == ("late", "last")
        assert (view.critical.start_s, view.critical.end_s, view.critical.length_s) == (0.0, 4.0, 4.0)

    def test_a_chain_of_ten_thousand(self):
        n = 10_000
        tasks = [task(f"t{i}", (i / 1000, (i + 1) / 1000), needs=[f"t{i - 1}"] if i else [], slots=[0])
                 for i in range(n)]
        view = build_view(summary_of(tasks, pool=1))
        assert len(view.bars) == n and view.critical.tasks == tuple(f"t{i}" for i in range(n))
        assert view.critical.length_s == pytest.approx(n / 1000)
        assert view.slots == 1 and view.concurrency[0] == (0.0, 1)
        assert view.concurrency[-1] == (pytest.approx(n / 1000), 0)
