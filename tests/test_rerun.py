"""`--rerun-failed SUMMARY` through the real command: only what did not succeed
runs again, with the needs that did not succeed; a changed file is refused
unless --force; the new summary names the run it reran."""

from __future__ import annotations

import json
import os

import pytest

# `flaky` fails while the file `broken` exists; every task appends its name to ran.txt.
TASKS = """
version: 1
pool: 1
tasks:
  setup: echo setup >> ran.txt
  flaky:
    cmd: echo flaky >> ran.txt; test ! -e broken
    needs: [setup]
  report: {cmd: echo report >> ran.txt, needs: [flaky]}
  other: echo other >> ran.txt
  chain: {cmd: echo chain >> ran.txt, needs: [report, other]}
"""


def ran(taskrun) -> list[str]:
    path = taskrun.cwd / "ran.txt"
    text = path.read_text() if path.exists() else ""
    path.unlink(missing_ok=True)
    return text.split()


def statuses(summary: dict) -> dict[str, str]:
    return {t["name"]: t["status"] for t in summary["tasks"]}


def first_run(taskrun) -> dict:
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "broken").touch()
    r = taskrun("tasks.yaml", "-o", "first.json")
    assert r.returncode == 1, r.stderr
    assert ran(taskrun) == ["setup", "flaky", "other"]
    first = taskrun.summary("first.json")
    assert statuses(first) == {"setup": "success", "flaky": "failed", "report": "skipped", "other": "success",
                               "chain": "skipped"}
    assert first["rerun_of"] is None
    return first


def test_rerun_runs_what_did_not_succeed_and_records_the_run_it_reran(taskrun):
    first = first_run(taskrun)
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", "first.json", "-o", "second.json")
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky", "report", "chain"]  # setup and other succeeded before: not again
    second = taskrun.summary("second.json")
    assert statuses(second) == {"flaky": "success", "report": "success", "chain": "success"}
    assert second["rerun_of"] == {"run_id": first["run_id"], "summary": "first.json",
                                  "file_sha256": first["file_sha256"]}
    assert second["run_id"] != first["run_id"]

    r = taskrun("tasks.yaml", "--rerun-failed", "second.json")
    assert (r.returncode, r.stderr) == (
        0, f"taskrun: nothing to rerun: every task of run {second['run_id']} (second.json) succeeded\n")
    assert ran(taskrun) == []


def test_rerun_of_a_rerun_that_failed_again(taskrun):
    first_run(taskrun)
    r = taskrun("tasks.yaml", "--rerun-failed", "first.json", "-o", "second.json")
    assert r.returncode == 1
    assert ran(taskrun) == ["flaky"]
    second = taskrun.summary("second.json")
    assert statuses(second) == {"flaky": "failed", "report": "skipped", "chain": "skipped"}
    assert [t["needs"] for t in second["tasks"]] == [[], ["flaky"], ["report"]]  # the needs that ran in it
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", "second.json", "-o", "third.json")
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky", "report", "chain"]  # setup and other succeeded in the first run
    assert taskrun.summary("third.json")["rerun_of"]["run_id"] == second["run_id"]


def test_a_changed_file_is_refused_unless_forced(taskrun):
    first = first_run(taskrun)
    (taskrun.cwd / "broken").unlink()
    with open(taskrun.cwd / "tasks.yaml", "a") as f:
        f.write("  new: {cmd: echo new >> ran.txt, needs: [setup]}\n")
    r = taskrun("tasks.yaml", "--rerun-failed", "first.json")
    assert r.returncode == 2
    assert r.stderr == (f"taskrun: tasks.yaml changed since run {first['run_id']} (its sha256 differs from the one "
                        "in first.json): run the file whole, or add --force to rerun what did not succeed then "
                        "anyway\n")
    assert ran(taskrun) == [] and not (taskrun.cwd / "taskrun-summary.json").exists()

    r = taskrun("tasks.yaml", "--rerun-failed", "first.json", "--force")
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky", "report", "chain"]  # `new` was not part of that run
    summary = taskrun.summary()
    assert summary["rerun_of"]["file_sha256"] == first["file_sha256"] != summary["file_sha256"]


def test_skip_applies_to_a_rerun(taskrun):
    first_run(taskrun)
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", "first.json", "--skip", "report")
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky"]


def test_rerun_with_named_tasks_is_refused(taskrun):
    first_run(taskrun)
    r = taskrun("tasks.yaml", "report", "--rerun-failed", "first.json")
    assert (r.returncode, r.stderr) == (
        2, "taskrun: --rerun-failed chooses the tasks itself: name no task and no --tag with it\n")


def test_unusable_summaries_are_refused_with_the_fix(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    taskrun.write("list.json", "[1, 2]")
    os.mkfifo(taskrun.cwd / "fifo")  # nobody writes it: reading it would wait forever
    with open(taskrun.cwd / "huge.json", "wb") as f:
        f.truncate(300 * 1024 * 1024)  # sparse: no disk used, but reading it would fill memory
    hint = " (name the JSON summary an earlier run wrote, e.g. taskrun-summary.json, or its run id)\n"
    for name, why in (("nope.json", "does not exist"),
                      ("tasks.yaml", "is not JSON (Expecting value: line 1 column 1 (char 0))"),
                      ("list.json", "is not a taskrun summary (version 1 with run_id, file_sha256 and tasks)"),
                      ("fifo", "is not a regular file (a summary is read only from a file)"),
                      ("huge.json", "is too big for a summary (314572800 bytes; at most 268435456)"),
                      (".", "is a directory")):
        r = taskrun("tasks.yaml", "--rerun-failed", name, timeout=30)
        assert (r.returncode, r.stderr) == (2, f"taskrun: --rerun-failed: {name} {why}{hint}")
    assert ran(taskrun) == []


def test_cancelled_tasks_are_rerun(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        fail_fast: true
        tasks:
          a: echo a >> ran.txt; test ! -e broken
          b: echo b >> ran.txt
    """)
    (taskrun.cwd / "broken").touch()
    assert taskrun("tasks.yaml").returncode == 1
    assert ran(taskrun) == ["a"]
    summary = json.loads((taskrun.cwd / "taskrun-summary.json").read_text())
    assert statuses(summary) == {"a": "failed", "b": "cancelled"}
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json")  # the summary it reads is then replaced
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["a", "b"]
    assert taskrun.summary()["rerun_of"]["run_id"] == summary["run_id"]


def test_a_run_id_names_the_run_by_its_own_summary(taskrun):
    first = first_run(taskrun)
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", first["run_id"], "-o", "second.json")
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky", "report", "chain"]
    own = f"{taskrun.cwd}/.taskrun/runs/{first['run_id']}/summary.json"
    assert taskrun.summary("second.json")["rerun_of"] == {
        "run_id": first["run_id"], "summary": own, "file_sha256": first["file_sha256"]}


def test_a_run_id_without_a_summary_or_without_a_folder_is_refused(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    killed = taskrun.cwd / ".taskrun" / "runs" / "20260101T000000Z-abcdef"
    killed.mkdir(parents=True)  # what a run killed before its end leaves: no summary
    r = taskrun("tasks.yaml", "--rerun-failed", killed.name)
    assert (r.returncode, r.stderr) == (
        2, f"taskrun: --rerun-failed: run {killed.name} left no summary in {killed} (it is still running, or was "
           f"killed: taskrun --recover {killed.name} stops what it left)\n")
    r = taskrun("tasks.yaml", "--rerun-failed", "20260101T000000Z-000000")
    assert (r.returncode, r.stderr) == (
        2, "taskrun: --rerun-failed: 20260101T000000Z-000000 does not exist (name the JSON summary an earlier run "
           "wrote, e.g. taskrun-summary.json, or its run id)\n")
    assert ran(taskrun) == []


def test_two_files_run_from_one_folder_keep_their_records(taskrun):
    first = first_run(taskrun)
    (taskrun.cwd / "first.json").rename(taskrun.cwd / "taskrun-summary.json")  # as if written by default
    taskrun.write("other.yaml", "version: 1\ntasks:\n  setup: echo other-setup >> ran.txt\n")
    r = taskrun("other.yaml")  # replaces the failed run's summary: says where that run's own copy is
    assert r.returncode == 0, r.stderr
    own = f"{taskrun.cwd}/.taskrun/runs/{first['run_id']}/summary.json"
    assert r.stderr == (f"taskrun: taskrun-summary.json: replacing the summary of run {first['run_id']} (failed); "
                        f"its own copy is {own}\n")
    assert ran(taskrun) == ["other-setup"]
    other = taskrun.summary()

    # another file's summary is refused, as a changed file's is; the run id finds the failed run
    r = taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json")
    assert (r.returncode, r.stderr) == (
        2, f"taskrun: --rerun-failed: taskrun-summary.json records run {other['run_id']} of another task file "
           "(other.yaml), not tasks.yaml: name a summary of tasks.yaml, or add --force to rerun what did not "
           "succeed then anyway\n")
    assert ran(taskrun) == []
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", first["run_id"])
    assert r.returncode == 0, r.stderr
    assert ran(taskrun) == ["flaky", "report", "chain"]
    assert "replacing" not in r.stderr  # the summary it replaced was a success


def test_the_note_on_a_replaced_failed_summary_is_left_out_for_its_own_rerun(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "broken").touch()
    assert taskrun("tasks.yaml").returncode == 1
    (taskrun.cwd / "broken").unlink()
    r = taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json")  # its summary names the run it reran
    assert (r.returncode, r.stderr) == (0, "")
    (taskrun.cwd / "broken").touch()
    assert taskrun("tasks.yaml").returncode == 1
    failed = taskrun.summary()["run_id"]
    r = taskrun("tasks.yaml", "--skip", "flaky")
    assert (r.returncode, r.stderr) == (
        0, f"taskrun: taskrun-summary.json: replacing the summary of run {failed} (failed); its own copy is "
           f"{taskrun.cwd}/.taskrun/runs/{failed}/summary.json\n")


@pytest.mark.parametrize("indent", [None, 1, 2], ids=["one line", "indent 1", "indent 2"])
def test_a_replaced_summary_rewritten_by_another_tool_gets_the_same_note(taskrun, indent):
    """taskrun reads the first lines of a summary laid out as it writes them to know that no
    note is due; a summary laid out otherwise is read whole, and gets the same note, or none."""
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "broken").touch()
    assert taskrun("tasks.yaml").returncode == 1
    summary = taskrun.summary()
    path = taskrun.cwd / "taskrun-summary.json"
    path.write_text(json.dumps(summary, indent=indent))
    r = taskrun("tasks.yaml", "--skip", "flaky")
    assert (r.returncode, r.stderr) == (
        0, f"taskrun: taskrun-summary.json: replacing the summary of run {summary['run_id']} (failed); its own "
           f"copy is {taskrun.cwd}/.taskrun/runs/{summary['run_id']}/summary.json\n")
    path.write_text(json.dumps(taskrun.summary(), indent=indent))  # a success: replaced without a note
    r = taskrun("tasks.yaml", "--skip", "flaky")
    assert (r.returncode, r.stderr) == (0, "")
