"""A live run's folder is protected: pruning spares live runs, and a run whose
folder a task deletes notices it, makes it again and says so (exit 3).

Each test runs the real `taskrun`; the fixture proves nothing is left running.
"""

from __future__ import annotations

import shutil
import stat

import pytest

from conftest import by_name, check, read_events_file, wait_for

HOLD_FILE = """
    version: 1
    tasks:
      hold: 'touch started; while [ ! -e go ]; do sleep 0.05; done; echo held'
      after: {cmd: echo after, needs: [hold]}
      quick: echo quick
"""


def run_ids(taskrun) -> list[str]:
    return sorted(p.name for p in taskrun.run_dirs())


def start_holding_run(taskrun):
    """A run of HOLD_FILE whose `hold` task is waiting for the file `go`: (process, its folder)."""
    taskrun.write("tasks.yaml", HOLD_FILE)
    before = set(run_ids(taskrun))
    p = taskrun.popen("tasks.yaml", "-o", "held.json")
    wait_for(lambda: (taskrun.cwd / "started").exists(), what="the task `hold` to start")
    (run_id,) = set(run_ids(taskrun)) - before
    return p, taskrun.cwd / ".taskrun" / "runs" / run_id


def test_pruning_spares_a_run_that_is_still_running_and_deletes_ended_ones(taskrun):
    taskrun.write("tasks.yaml", HOLD_FILE)
    check(taskrun("tasks.yaml", "quick", "-o", "old.json"), 0)  # an ended run of this taskrun
    runs = taskrun.cwd / ".taskrun" / "runs"
    for name in ("20200101T000000Z-aaaaa0", "20200101T000001Z-aaaaa1"):  # runs of an older taskrun (no lock)
        (runs / name).mkdir()
        (runs / name / "t.stdout").write_text("old")
    p, live = start_holding_run(taskrun)

    r = check(taskrun("tasks.yaml", "quick", "--keep-runs", "1", "-o", "second.json"), 0)
    second = taskrun.summary("second.json")["run_id"]
    assert run_ids(taskrun) == sorted([live.name, second])  # the live run kept, the ended ones deleted
    assert r.stderr == ""

    (taskrun.cwd / "go").touch()
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    summary = taskrun.summary("held.json")
    assert (summary["status"], summary["exit_code"], summary["reason"]) == ("success", 0, None)
    assert by_name(summary)["hold"]["stdout_tail"] == "held\n"
    assert (live / "hold.stdout").read_text() == "held\n"
    events = taskrun.events(live)  # whole: every line complete and valid, run_start to run_end
    assert events[0]["event"] == "run_start" and "log_lost" not in events[0]
    assert (events[-1]["event"], events[-1]["exit_code"]) == ("run_end", 0)
    for task in ("hold", "after", "quick"):
        assert [e["event"] for e in events if e.get("task") == task] == ["task_start", "attempt_end", "task_end"]

    check(taskrun("tasks.yaml", "quick", "--keep-runs", "1", "-o", "third.json"), 0)
    assert run_ids(taskrun) == [taskrun.summary("third.json")["run_id"]]  # ended now: deleted


def test_a_run_with_no_command_running_is_kept_by_its_lock(taskrun):
    # Between a failed attempt and its retry nothing of the run is running: only its lock shows it alive.
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          flaky: {cmd: 'exit 1', retries: 1, retry_delay: 10m}
          quick: echo quick
    """)
    p = taskrun.popen("tasks.yaml", "flaky", "-o", "flaky.json")
    (live,) = wait_for(taskrun.run_dirs, what="the run's folder")
    wait_for(lambda: any(e["event"] == "attempt_end" and e["retry_in_s"]
                         for e in read_events_file(live / "events.jsonl")), what="the retry delay")
    check(taskrun("tasks.yaml", "quick", "--keep-runs", "1", "-o", "second.json"), 0)
    assert live.is_dir()
    p.terminate()
    p.communicate(timeout=60)
    assert p.returncode == 143
    assert taskrun.summary("flaky.json")["exit_code"] == 143
    events = taskrun.events(live)
    assert (events[0]["event"], events[-1]["event"], events[-1]["exit_code"]) == ("run_start", "run_end", 143)


def test_a_killed_runner_whose_commands_still_run_keeps_its_folder(taskrun):
    taskrun.expect_orphans()
    p, live = start_holding_run(taskrun)
    p.kill()
    p.communicate(timeout=30)
    check(taskrun("tasks.yaml", "quick", "--keep-runs", "1", "-o", "second.json"), 0)
    assert live.is_dir()  # its lock is free, but `hold` still runs with its TASKRUN_RUN_ID

    check(taskrun("--recover", live.name, "tasks.yaml"), 0)
    check(taskrun("tasks.yaml", "quick", "--keep-runs", "1", "-o", "third.json"), 0)
    assert run_ids(taskrun) == [taskrun.summary("third.json")["run_id"]]


def test_old_runs_are_pruned_after_the_run_not_before(taskrun):
    old = taskrun.cwd / ".taskrun" / "runs" / "20200101T000000Z-aaaaa0"
    old.mkdir(parents=True)
    (old / "t.stdout").write_text("old")
    being_made = old.parent / "20200101T000000Z-aaaaa1"  # no lock yet and empty: a run starting this instant
    being_made.mkdir()
    taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  look: test -d {old}\n")
    r = check(taskrun("tasks.yaml", "--keep-runs", "1"), 0)
    assert by_name(taskrun.summary())["look"]["status"] == "success"  # the old folder was there while tasks ran
    assert not old.exists(), r.stderr
    assert being_made.is_dir()


CLEANERS = {
    "rm": "rm -rf .taskrun",
    "git-clean": "git init -q . && git clean -fdxq",
}


@pytest.mark.parametrize("cleaner", sorted(CLEANERS))
def test_a_task_that_deletes_the_run_folder(taskrun, cleaner):
    if cleaner == "git-clean" and shutil.which("git") is None:
        pytest.skip("git is not installed")
    taskrun.write("tasks.yaml", f"""
        version: 1
        pool: 1
        tasks:
          first: echo first
          clean: {{cmd: '{CLEANERS[cleaner]}', needs: [first]}}
          after: {{cmd: echo after, needs: [clean]}}
    """)
    r = check(taskrun("tasks.yaml"), 3)
    summary = taskrun.summary()
    run_dir = summary["log_dir"]
    lost = f"the run's log folder {run_dir} was deleted during the run (noticed after task 'clean' ended)"
    problem = f"{lost}: it was made again, and what it held before is lost"
    assert r.stderr == f"taskrun: {problem} (the summary has every task's result)\n"
    assert (summary["status"], summary["exit_code"], summary["reason"]) == ("success", 3, problem)
    tasks = by_name(summary)
    assert [tasks[t]["status"] for t in ("first", "clean", "after")] == ["success"] * 3
    assert (tasks["after"]["exit_code"], tasks["after"]["stdout_tail"]) == (0, "after\n")

    (again,) = taskrun.run_dirs()  # made again at the same path, as private as before
    assert str(again) == run_dir and stat.S_IMODE(again.stat().st_mode) == 0o700
    assert (again / "after.stdout").read_text() == "after\n"
    events = taskrun.events(again)
    assert (events[0]["event"], events[0]["run_id"], events[0]["log_lost"]) == ("run_start", summary["run_id"], lost)
    assert [(e["event"], e.get("task")) for e in events[1:]] == [
        ("attempt_end", "clean"), ("task_end", "clean"),
        ("task_start", "after"), ("attempt_end", "after"), ("task_end", "after"), ("run_end", None)]
    assert events[-1]["exit_code"] == 3


def test_a_task_that_deletes_the_event_log(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        tasks:
          drop: rm .taskrun/runs/*/events.jsonl
          after: {cmd: echo after, needs: [drop]}
    """)
    r = check(taskrun("tasks.yaml"), 3)
    summary = taskrun.summary()
    path = f"{summary['log_dir']}/events.jsonl"
    lost = f"the event log {path} was deleted during the run (noticed after task 'drop' ended)"
    assert r.stderr == (f"taskrun: {lost}: a new one was started, and the lines before are lost "
                        "(the summary has every task's result)\n")
    events = taskrun.events()
    assert (events[0]["event"], events[0]["log_lost"]) == ("run_start", lost)
    assert [e["event"] for e in events if e.get("task") == "after"] == ["task_start", "attempt_end", "task_end"]
    assert (events[-1]["event"], events[-1]["exit_code"]) == ("run_end", 3)


def test_a_run_folder_that_cannot_be_made_again_stops_the_run(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        tasks:
          spoil: rm -rf .taskrun && touch .taskrun
          after: {cmd: echo after, needs: [spoil]}
    """)
    r = check(taskrun("tasks.yaml"), 3)
    summary = taskrun.summary()
    problem = (f"the run's log folder {summary['log_dir']} was deleted during the run (noticed after task "
               f"'spoil' ended) and could not be made again: the log folder {taskrun.cwd}/.taskrun is not a "
               "folder (remove it, or use --log-dir DIR)")
    assert r.stderr == f"taskrun: {problem} (the summary has every task's result)\n"
    assert summary["reason"] == f"stopped: the run's log folder is gone; {problem}"
    after = by_name(summary)["after"]
    assert (after["status"], after["exit_code"], after["reason"]) == (
        "cancelled", None, "stopped: the run's log folder is gone")
    assert "cancel after cancelled (stopped: the run's log folder is gone)" in r.stdout


def test_the_summary_reaches_its_target_when_a_task_deleted_its_folder_too(taskrun):
    (taskrun.cwd / "out").mkdir()
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  clean: rm -rf .taskrun out\n")
    r = check(taskrun("tasks.yaml", "-o", "out/summary.json"), 3)
    summary = taskrun.summary("out/summary.json")
    assert summary["exit_code"] == 3 and summary["reason"].startswith(f"the run's log folder {summary['log_dir']} ")
    assert r.stderr.startswith("taskrun: the run's log folder ")
