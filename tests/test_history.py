"""Plans that use history: longest remaining path first, exact orders."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from runner.history import earlier_durations, estimate, read_durations, simulate
from runner.load import load_taskfile
from runner.model import TaskFile, TaskSpec
from runner.plan import make_plan, readiness_order
from runner.schedule import Scheduler
from runner.summary import dump_summary

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


def test_a_run_is_not_simulated_only_its_priorities_are_taken():
    tasks = {f"s{i}": [] for i in range(16)}
    tasks.update({"c1": [], "c2": ["c1"], "c3": ["c2"]})
    plan = make(tasks, pool=4)
    durations = {**{f"s{i}": 1.0 for i in range(16)}, "c1": 1.0, "c2": 2.0, "c3": 4.0}
    full, run = estimate(plan, durations), estimate(plan, durations, makespan=False)
    assert run.makespan_s is None and full.makespan_s == 7.0
    assert (run.priority, run.critical_path, run.critical_s) == (full.priority, full.critical_path, full.critical_s)


def test_scheduler_starts_ready_tasks_in_priority_order(tmp_path):
    plan = make({"a": [], "b": [], "c": [], "d": ["a"]}, pool=1)
    est = estimate(plan, {"a": 1.0, "b": 2.0, "c": 3.0, "d": 5.0})
    log: list = []
    Scheduler(plan, FakeBackend(log), Recorder(log), log_dir=tmp_path, run_id="r", priority=est.priority).run()
    # a leads the longest chain (a -> d: 6s); once a is done, d (5s) outranks c (3s) and b (2s).
    assert [e[1] for e in log if e[0] == "start"] == ["a", "d", "c", "b"]


def _run_summary(runs, run_id, taskfile, durations, *, sha=None, cwd=None, laid_out=False, command=()):
    """A run folder holding the summary an earlier run of `taskfile` would have left: on one
    line, or (`laid_out`) as taskrun writes it, a top-level key a line."""
    folder = runs / run_id
    folder.mkdir(parents=True)
    summary = {
        "version": 1, "run_id": run_id, "file": str(taskfile),
        "file_sha256": sha or hashlib.sha256(taskfile.read_bytes()).hexdigest(),
        "command": ["taskrun", *command], "cwd": str(cwd or taskfile.parent),
        "tasks": [{"name": n, "duration_s": d, "status": "success" if d is not None else "skipped"}
                  for n, d in durations.items()]}
    (folder / "summary.json").write_text(dump_summary(summary) if laid_out else json.dumps(summary))
    return folder / "summary.json"


def _two_files(tmp_path):
    """(tasks.yaml, other.yaml with the same text, the first loaded, their runs folder)."""
    tf_path = tmp_path / "tasks.yaml"
    tf_path.write_text(HISTORY_FILE)
    other = tmp_path / "other.yaml"
    other.write_text(HISTORY_FILE)
    return tf_path, other, load_taskfile(str(tf_path)), tmp_path / "runs"


def test_earlier_durations_come_from_earlier_runs_of_the_same_file_as_it_is(tmp_path):
    tf_path, other, tf, runs = _two_files(tmp_path)
    _run_summary(runs, "20260101T000000Z-000001", tf_path, {"quick1": 1.0, "quick2": 2.0, "slow": 3.0})
    _run_summary(runs, "20260101T000000Z-000002", tf_path, {"slow": 4.0})  # a rerun of one task, later
    _run_summary(runs, "20260101T000001Z-000003", other, {"quick1": 50.0, "slow": 50.0})  # another file
    _run_summary(runs, "20260101T000002Z-000004", tf_path, {"slow": 60.0}, sha="0" * 64)  # the file before a change
    # the newest run that ran each task gives its duration; nothing from another file or another content
    every = {"quick1", "quick2", "slow"}
    assert earlier_durations(runs, tf, every) == {"slow": 4.0, "quick1": 1.0, "quick2": 2.0}
    assert earlier_durations(tmp_path / "missing", tf, every) is None
    # a plan of one task: the newest run that ran it is enough
    assert earlier_durations(runs, tf, {"slow"}) == {"slow": 4.0}


def test_summaries_whose_first_lines_name_another_file_or_content_are_not_read_whole(tmp_path, monkeypatch):
    from runner import record

    tf_path, other, tf, runs = _two_files(tmp_path)
    mine = _run_summary(runs, "20260101T000000Z-000001", tf_path, {"quick1": 1.0, "quick2": 2.0, "slow": 3.0},
                        laid_out=True)
    for n in range(2, 5):  # newer runs of another file, and of this file before a change
        _run_summary(runs, f"20260101T00000{n}Z-00000{n}", other, {"slow": 50.0}, laid_out=True)
        _run_summary(runs, f"20260101T00001{n}Z-00001{n}", tf_path, {"slow": 60.0}, sha="0" * 64, laid_out=True)
    # what the first lines cannot settle is read whole, as before: a summary on one line, and one
    # whose command line pushes `cwd` out of the first 4 KiB (the same content, another folder)
    flat = _run_summary(runs, "20260101T000020Z-000020", other, {"slow": 70.0})
    long = _run_summary(runs, "20260101T000021Z-000021", tmp_path / "sub" / "tasks.yaml", {"slow": 80.0},
                        sha=tf.sha256, laid_out=True, command=["x" * 100] * 50)
    # a folder whose summary names another run: not this run's record
    moved = _run_summary(runs, "20260101T000022Z-000022", tf_path, {"slow": 90.0}, laid_out=True)
    moved.parent.rename(runs / "20260101T000023Z-000023")
    read = []
    real_read = record.read_bytes
    monkeypatch.setattr(record, "read_bytes",
                        lambda path, *a, **kw: read.append(str(path)) or real_read(path, *a, **kw))
    assert earlier_durations(runs, tf, {"quick1", "quick2", "slow"}) == {"quick1": 1.0, "quick2": 2.0, "slow": 3.0}
    assert sorted(p for p in read if p.endswith("summary.json")) == sorted(map(str, (mine, flat, long)))


def test_a_runs_durations_file_is_read_instead_of_its_summary_and_only_when_it_is_that_runs(tmp_path, monkeypatch):
    from runner import record

    tf_path, other, tf, runs = _two_files(tmp_path)
    summary = _run_summary(runs, "20260101T000000Z-000001", tf_path, {"quick1": 1.0, "quick2": 2.0, "slow": 3.0},
                           laid_out=True)
    durations = summary.parent / record.RUN_DURATIONS
    durations.write_text(record.durations_text(json.loads(summary.read_text())))
    read = []
    real_read = record.read_bytes
    monkeypatch.setattr(record, "read_bytes",
                        lambda path, *a, **kw: read.append(os.path.basename(path)) or real_read(path, *a, **kw))
    every = {"quick1", "quick2", "slow"}
    assert earlier_durations(runs, tf, every) == {"quick1": 1.0, "quick2": 2.0, "slow": 3.0}
    assert read == ["durations.json"]  # the summary's first 4 KiB, then the small file: not the summary
    # Another run's file (copied), one that is not JSON, or none: the summary is read, same durations.
    good = durations.read_text()
    for text in (good.replace("000001", "000002"), '{"run_id": ', good.replace("3.0", '"3.0"'), None):
        if text is None:
            durations.unlink()
        else:
            durations.write_text(text)
        read.clear()
        assert earlier_durations(runs, tf, every) == {"quick1": 1.0, "quick2": 2.0, "slow": 3.0}
        assert read[-1] == "summary.json"


def test_every_run_folder_keeps_its_tasks_durations_beside_its_summary(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE + '  skipped:\n    cmd: "true"\n    if: {sh: "false"}\n')
    assert taskrun(tf.name).returncode == 0
    (run_dir,) = taskrun.run_dirs()
    summary = json.loads((run_dir / "summary.json").read_text())
    durations = json.loads((run_dir / "durations.json").read_text())
    assert durations == {"run_id": summary["run_id"], "tasks": [
        {"name": t["name"], "status": t["status"], "duration_s": t["duration_s"]} for t in summary["tasks"]]}
    assert [t["status"] for t in durations["tasks"]] == ["success"] * 3 + ["skipped"]
    r = taskrun(tf.name, "--dry-run")  # the next run's history comes from it
    assert "(from 3 of 4 recorded durations)" in r.stdout, r.stdout


def test_read_durations_reads_only_a_regular_file(tmp_path):
    summary = tmp_path / "s.json"
    summary.write_text(json.dumps({"file": "other.yaml", "tasks": [
        {"name": "a", "duration_s": 1.5, "status": "success"},
        {"name": "b", "duration_s": None, "status": "skipped"}]}))
    assert read_durations(str(summary)) == {"a": 1.5}
    assert read_durations(str(tmp_path / "missing.json")) is None
    os.mkfifo(tmp_path / "fifo")
    assert read_durations(str(tmp_path / "fifo")) is None  # not opened for a writer, not read


def test_tasks_the_latest_runs_did_not_run_are_looked_up_line_by_line_in_older_ones(tmp_path, monkeypatch):
    # A task skipped by its condition (or up to date) has no duration in the latest runs: older
    # runs are searched for it, each for that task's line alone, not parsed whole.
    from runner import record

    tf_path = tmp_path / "tasks.yaml"
    tf_path.write_text(HISTORY_FILE + '  "odd:name.1": "true"\n  odd: "true"\n')
    tf = load_taskfile(str(tf_path))
    names = {"quick1", "quick2", "slow", "odd:name.1", "odd"}
    runs = tmp_path / "runs"
    _run_summary(runs, "20260101T000000Z-000001", tf_path, {"slow": 11.0, "odd:name.1": 12.0}, laid_out=True)
    _run_summary(runs, "20260101T000001Z-000002", tf_path, {"slow": 9.0, "quick1": 5.0, "odd": None}, laid_out=True)
    _run_summary(runs, "20260101T000002Z-000003", tf_path,
                 {"quick1": 1.0, "quick2": 2.0, "slow": None, "odd:name.1": None, "odd": 3.0}, laid_out=True)
    expected = {"quick1": 1.0, "quick2": 2.0, "odd": 3.0, "slow": 9.0, "odd:name.1": 12.0}
    parsed = []
    real_parse = record._parse
    monkeypatch.setattr(record, "_parse", lambda data: parsed.append(len(data)) or real_parse(data))
    assert earlier_durations(runs, tf, names) == expected
    assert parsed == []  # five tasks: every summary searched line by line
    monkeypatch.setattr(record, "FEW_TASKS", 2)  # the first summary whole, then the two left by line
    assert earlier_durations(runs, tf, names) == expected
    assert len(parsed) == 1
    monkeypatch.setattr(record, "FEW_TASKS", 0)  # every summary whole: the same durations
    parsed.clear()
    assert earlier_durations(runs, tf, names) == expected
    assert len(parsed) == 3


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


def _start_order(summary):
    return [t["name"] for t in sorted(summary["tasks"], key=lambda t: t["started_at"])]


def test_run_uses_earlier_runs_of_the_file_by_default(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    _run_summary(taskrun.cwd / ".taskrun" / "runs", "20260101T000000Z-000001", tf,
                 {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
    r = taskrun(tf.name)
    assert r.returncode == 0, r.stderr
    assert _start_order(taskrun.summary())[0] == "slow"
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["quick1", "quick2", "slow"]  # file order kept


def test_two_files_run_from_one_folder_never_feed_each_other_history(taskrun):
    a = taskrun.write("ops/a.yaml", HISTORY_FILE)
    taskrun.write("ops/b.yaml", HISTORY_FILE.replace("quick1", "first"))
    _run_summary(taskrun.cwd / "ops" / ".taskrun" / "runs", "20260101T000000Z-000001", a,
                 {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
    r = taskrun("ops/b.yaml", "--dry-run")  # b shares a's runs folder, and task names
    assert r.returncode == 0, r.stderr
    assert "estimated" not in r.stdout
    assert taskrun("ops/b.yaml").returncode == 0
    assert _start_order(taskrun.summary()) == ["first", "quick2", "slow"]
    # and b's run, now the summary in the current folder, does not feed a's history either
    r = taskrun("ops/a.yaml", "--dry-run")
    assert "estimated makespan 9.20s on pool 1 (from 3 of 3 recorded durations)" in r.stdout
    assert taskrun("ops/a.yaml").returncode == 0
    assert _start_order(taskrun.summary())[0] == "slow"


def test_the_summary_in_the_current_folder_is_not_history(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    _fake_summary(taskrun.cwd / "taskrun-summary.json", "tasks.yaml", {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
    r = taskrun(tf.name, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "estimated" not in r.stdout


def test_no_history_keeps_file_order(taskrun):
    tf = taskrun.write("tasks.yaml", HISTORY_FILE)
    _run_summary(taskrun.cwd / ".taskrun" / "runs", "20260101T000000Z-000001", tf,
                 {"quick1": 0.1, "quick2": 0.1, "slow": 9.0})
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
