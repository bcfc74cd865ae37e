"""Plans that use history: longest remaining path first, exact orders."""

from __future__ import annotations

import json

import pytest

from runner.history import estimate, read_durations, simulate
from runner.model import TaskFile, TaskSpec
from runner.plan import make_plan, readiness_order
from runner.schedule import Scheduler

from test_schedule import FakeBackend, Recorder


def make(tasks: dict[str, list[str]], pool: int = 2):
    specs = tuple(TaskSpec(name=n, cmd="true", needs=tuple(needs)) for n, needs in tasks.items())
    tf = TaskFile(path="t.yaml", folder="/tmp", sha256="0" * 64, version=1, pool=pool, timeout_s=None,
                  env=(), shell="/bin/sh", fail_fast=False, tasks=specs)
    return make_plan(tf)


def test_priority_is_longest_remaining_path():
    plan = make({"a": [], "b": [], "c": ["b"], "d": ["c"]})
    est = estimate(plan, {"a": 5.0, "b": 1.0, "c": 2.0, "d": 3.0})
    assert est.priority == {"a": 5.0, "b": 6.0, "c": 5.0, "d": 3.0}
    assert est.critical_path == ("b", "c", "d")
    assert est.critical_s == 6.0


def test_unknown_durations_count_as_the_median_of_known_ones():
    plan = make({"a": [], "b": [], "c": [], "new": []})
    est = estimate(plan, {"a": 1.0, "b": 3.0, "c": 10.0})
    assert est.durations["new"] == 3.0
    assert est.known == 3


def test_readiness_order_with_priority_breaks_ties_by_file_order():
    plan = make({"s1": [], "s2": [], "long": [], "s3": []})
    est = estimate(plan, {"s1": 1.0, "s2": 1.0, "long": 9.0, "s3": 1.0})
    assert readiness_order([t.spec for t in plan.tasks], est.priority) == ["long", "s1", "s2", "s3"]
    assert readiness_order([t.spec for t in plan.tasks]) == ["s1", "s2", "long", "s3"]


def test_simulated_makespan_file_order_versus_history():
    tasks = {f"s{i}": [] for i in range(16)}
    tasks.update({"c1": [], "c2": ["c1"], "c3": ["c2"], "l1": [], "l2": []})
    durations = {**{f"s{i}": 1.0 for i in range(16)}, "c1": 1.0, "c2": 2.0, "c3": 4.0, "l1": 8.0, "l2": 8.0}
    plan = make(tasks, pool=4)
    assert simulate(plan, durations) == 12.0
    est = estimate(plan, durations)
    assert est.makespan_s == 10.0


def test_scheduler_starts_ready_tasks_in_priority_order(tmp_path):
    plan = make({"a": [], "b": [], "c": [], "d": ["a"]}, pool=1)
    est = estimate(plan, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 5.0})
    log: list = []
    Scheduler(plan, FakeBackend(log), Recorder(log), log_dir=tmp_path, run_id="r", priority=est.priority).run()
    # a leads the longest chain (a -> d: 6s); once a is done, d (5s) outranks c (3s) and b (2s).
    assert [e[1] for e in log if e[0] == "start"] == ["a", "d", "c", "b"]


def test_read_durations_ignores_a_summary_of_another_file(tmp_path):
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"file": str(tmp_path / "other.yaml"), "tasks": [
        {"name": "a", "duration_s": 1.5, "status": "success"},
        {"name": "b", "duration_s": None, "status": "skipped"}]}))
    assert read_durations(str(summary), str(tmp_path / "tasks.yaml")) is None
    assert read_durations(str(summary)) == {"a": 1.5}
    assert read_durations(str(tmp_path / "missing.json")) is None


HISTORY_FILE = """
version: 1
pool: 1
tasks:
  quick1: "true"
  quick2: "true"
  slow: "true"
"""


def _fake_summary(path, taskfile, durations):
    path.write_text(json.dumps({"file": str(taskfile), "tasks": [
        {"name": n, "duration_s": d, "status": "success"} for n, d in durations.items()]}))


def test_run_uses_the_previous_summary_by_default(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    _fake_summary(taskrun.cwd / "taskrun-summary.json", "tasks.yaml", {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
    r = taskrun(tf.name)
    assert r.returncode == 0, r.stderr
    tasks = taskrun.summary()["tasks"]
    order = [t["name"] for t in sorted(tasks, key=lambda t: t["started_at"])]
    assert order[0] == "slow"
    assert [t["name"] for t in tasks] == ["quick1", "quick2", "slow"]  # the summary keeps file order


def test_no_history_keeps_file_order(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    _fake_summary(taskrun.cwd / "taskrun-summary.json", "tasks.yaml", {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
    r = taskrun(tf.name, "--no-history")
    assert r.returncode == 0, r.stderr
    tasks = taskrun.summary()["tasks"]
    assert [t["name"] for t in sorted(tasks, key=lambda t: t["started_at"])] == ["quick1", "quick2", "slow"]


def test_dry_run_shows_estimated_makespan_and_critical_path(taskrun):
    tf = taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        tasks:
          a: "true"
          b: {cmd: "true", needs: [a]}
          c: "true"
    """)
    _fake_summary(taskrun.cwd / "prev.json", "tasks.yaml", {"a": 2.0, "b": 3.0, "c": 1.0})
    r = taskrun(tf.name, "--dry-run", "--history", "prev.json")
    assert r.returncode == 0, r.stderr
    assert "estimated makespan 5.00s on pool 2 (from 3 of 3 recorded durations)" in r.stdout
    assert "critical path 5.00s: a -> b" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--history", "missing.json"], "taskrun: --history missing.json: not a readable taskrun summary"),
    (["--history", "x.json", "--no-history"], "taskrun: --history and --no-history contradict each other"),
])
def test_bad_history_arguments(taskrun, args, message):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    (taskrun.cwd / "x.json").write_text("{}")
    r = taskrun(tf.name, *args)
    assert r.returncode == 2
    assert r.stderr.strip() == message
    assert not (taskrun.cwd / "taskrun-summary.json").exists()
