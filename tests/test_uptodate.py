"""Skipping what is up to date, and conditions, through the real `taskrun` on real files.

A task with `sources`/`generates` whose fingerprint (the sources' content, its
commands as run, env and folder) matches the last successful run's, and whose
generates exist, ends `up_to_date` without running; `status` probes that all
exit 0 do the same. `up_to_date` counts as success. Records live in
`.taskrun/fingerprints/FILE/`, one per task, replaced whole; two runs at once
take turns on a task. `if: {sh: ...}` false skips the task and what needs it
without failing the run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import by_name, check, wait_for

RECORDS = Path(".taskrun/fingerprints/tasks.yaml")

BUILD = """
    version: 1
    tasks:
      build:
        cmd: mkdir -p out && cat src/*.c > out/app && echo built >> ran.log
        sources: [src/**/*.c]
        generates: [out/app]
      test:
        cmd: echo tested >> ran.log
        needs: [build]
"""


def ran(taskrun) -> list[str]:
    path = taskrun.cwd / "ran.log"
    return path.read_text().split() if path.exists() else []


def statuses(taskrun) -> dict[str, tuple[str, str | None]]:
    return {name: (t["status"], t["reason"]) for name, t in by_name(taskrun.summary()).items()}


@pytest.fixture
def built(taskrun):
    """BUILD run once: build and test succeeded, build's fingerprint recorded."""
    taskrun.write("tasks.yaml", BUILD)
    taskrun.write("src/a.c", "int a;\n")
    taskrun.write("src/lib/b.c", "int b;\n")
    check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["built", "tested"]
    (taskrun.cwd / "ran.log").unlink()
    return taskrun


def up_to_date_reason(taskrun, sources: int = 2) -> str:
    run_id = json.loads((taskrun.cwd / RECORDS / "build.json").read_text())["run_id"]
    return f"{sources} sources, commands and env unchanged since run {run_id}; generates exist"


def test_a_second_run_skips_what_is_up_to_date_and_runs_what_needs_it(built):
    taskrun = built
    reason = up_to_date_reason(taskrun)
    r = check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["tested"]
    assert statuses(taskrun) == {"build": ("up_to_date", reason), "test": ("success", None)}
    summary = taskrun.summary()
    assert (summary["status"], summary["counts"]["up_to_date"], summary["counts"]["success"]) == ("success", 1, 1)
    assert re.search(rf"^\d\d:\d\d:\d\d skip  build up_to_date \({re.escape(reason)}\)$", r.stdout, re.M), r.stdout
    assert re.search(r"^build +up_to_date +- +- +0$", r.stdout, re.M), r.stdout
    assert "1 succeeded, 1 up to date in " in r.stdout
    run_dir = taskrun.cwd / ".taskrun/runs" / summary["run_id"]
    assert [e["status"] for e in taskrun.events(run_dir) if e["event"] == "task_end"] == ["up_to_date", "success"]


def test_the_record_is_the_fingerprint_of_the_last_success(built):
    record = json.loads((built.cwd / RECORDS / "build.json").read_text())
    assert record["run_id"] == built.summary()["run_id"]
    assert sorted(record["sources"]) == ["src/a.c", "src/lib/b.c"]  # `**` spans folders
    assert oct(os.stat(built.cwd / RECORDS).st_mode & 0o777) == "0o700"
    assert oct(os.stat(built.cwd / RECORDS / "build.json").st_mode & 0o777) == "0o600"


def test_a_generated_file_deleted_between_runs_makes_it_run(built):
    (built.cwd / "out/app").unlink()
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["built", "tested"]
    assert statuses(built)["build"] == ("success", None)
    assert (built.cwd / "out/app").exists()


def test_a_source_edited_between_runs_makes_it_run_and_the_dry_run_says_which(built):
    (built.cwd / "src/lib/b.c").write_text("int b = 2;\n")
    r = check(built("tasks.yaml", "--dry-run"), 0)
    assert "\n             runs: sources changed: src/lib/b.c changed\n" in r.stdout
    (built.cwd / "src/new.c").write_text("int n;\n")
    r = check(built("tasks.yaml", "--dry-run"), 0)
    assert "runs: sources changed: src/lib/b.c changed, src/new.c is new\n" in r.stdout
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["built", "tested"]
    assert (built.cwd / "out/app").read_text() == "int a;\nint n;\n"  # src/*.c: b.c is under lib/


def test_a_changed_command_or_env_makes_it_run(built):
    built.write("tasks.yaml", BUILD.replace("cat src/*.c", "cat src/*.c src/lib/*.c"))
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["built", "tested"]
    assert (built.cwd / "out/app").read_text() == "int a;\nint b;\n"
    (built.cwd / "ran.log").unlink()
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["tested"]
    built.write("tasks.yaml", BUILD.replace("    version: 1\n", "    version: 1\n    env: {LEVEL: '2'}\n"))
    r = check(built("tasks.yaml", "-n"), 0)
    assert "runs: its commands, env or folder changed\n" in r.stdout


def test_a_failed_run_leaves_no_record_so_going_back_to_the_old_sources_still_runs(built):
    (built.cwd / "src/a.c").write_text("broken\n")
    built.write("tasks.yaml", BUILD.replace("echo built >> ran.log", "echo built >> ran.log && grep -q int out/app"))
    check(built("tasks.yaml"), 1)
    assert not (built.cwd / RECORDS / "build.json").exists()
    # Back to the sources of the recorded success: out/app was overwritten by the failed run.
    (built.cwd / "src/a.c").write_text("int a;\n")
    built.write("tasks.yaml", BUILD)
    (built.cwd / "ran.log").unlink()
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["built", "tested"]


def test_status_probes_all_exiting_0_make_it_up_to_date(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          install:
            cmd: touch installed && echo install >> ran.log
            status: [test -f installed, 'test "$MODE" = fast']
            env: {MODE: fast}
    """)
    check(taskrun("tasks.yaml"), 0)  # the first probe exits 1
    assert ran(taskrun) == ["install"]
    r = check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["install"]
    reason = 'every status probe exited 0 (`test -f installed`, `test "$MODE" = fast`)'
    assert statuses(taskrun) == {"install": ("up_to_date", reason)}
    run_dir = taskrun.run_dirs()[-1]
    assert (run_dir / "install~status.stdout").exists()  # the probes' output is logged in the run's folder
    assert "up to date if every status probe exits 0 (probes are not run by --dry-run)" in check(
        taskrun("tasks.yaml", "-n"), 0).stdout
    assert re.search(r"^\d\d:\d\d:\d\d skip  install up_to_date \(every status probe exited 0 ", r.stdout, re.M)


def test_force_runs_what_is_up_to_date_and_records_it(built):
    r = check(built("tasks.yaml", "--dry-run", "--force"), 0)
    assert "\n             runs: --force\n" in r.stdout
    check(built("tasks.yaml", "--force"), 0)
    assert ran(built) == ["built", "tested"]
    forced = built.summary()["run_id"]
    (built.cwd / "ran.log").unlink()
    check(built("tasks.yaml"), 0)
    assert ran(built) == ["tested"]
    assert statuses(built)["build"][1].endswith(f"unchanged since run {forced}; generates exist")


def test_junit_and_the_github_step_summary_say_up_to_date_and_why(built, tmp_path):
    step = tmp_path / "step.md"
    check(built("tasks.yaml", "--junit", "report.xml", env={"GITHUB_ACTIONS": "true",
                                                            "GITHUB_STEP_SUMMARY": str(step)}), 0)
    reason = statuses(built)["build"][1]
    suite = ET.parse(built.cwd / "report.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "0", "1")
    skipped = suite.find("testcase[@name='build']/skipped")
    assert (skipped.get("type"), skipped.get("message")) == ("up_to_date", f"up_to_date: {reason}")
    assert f"| build | ☑️ up_to_date ({reason}) | - | - | 0 |\n" in step.read_text()
    assert "1 succeeded, 1 up to date in " in step.read_text()


def test_the_dry_run_says_up_to_date_and_why_and_creates_nothing(built):
    reason = up_to_date_reason(built)
    r = check(built("tasks.yaml", "-n"), 0)
    assert f"\n             up to date: {reason}\n" in r.stdout
    assert ran(built) == []
    fresh = built.cwd / "other"
    fresh.mkdir()
    (fresh / "tasks.yaml").write_text((built.cwd / "tasks.yaml").read_text())
    r = check(built("other/tasks.yaml", "-n"), 0)
    assert "runs: no successful run recorded\n" in r.stdout
    assert not (fresh / ".taskrun").exists()


def _holds(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def test_two_runs_at_once_take_turns_one_builds_the_other_finds_it_up_to_date(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build:
            cmd: echo built >> ran.log && until test -f release; do sleep 0.02; done && cp src.txt out.txt
            sources: [src.txt]
            generates: [out.txt]
    """)
    taskrun.write("src.txt", "v1\n")
    first = taskrun.popen("tasks.yaml", "-o", "first.json")
    second = taskrun.popen("tasks.yaml", "-o", "second.json")
    try:
        wait_for(lambda: ran(taskrun), what="one run to start build")
        lock = taskrun.cwd / RECORDS / "build.lock"
        # Both hold the lock file open: one holds the lock and builds, the other waits for it.
        wait_for(lambda: _holds(first.pid, lock) and _holds(second.pid, lock), what="both runs at the lock")
        (taskrun.cwd / "release").touch()
        outs = [p.communicate(timeout=120) for p in (first, second)]
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert (first.returncode, second.returncode) == (0, 0), outs
    assert ran(taskrun) == ["built"]
    results = {name: taskrun.summary(name) for name in ("first.json", "second.json")}
    built_by = [s["run_id"] for s in results.values() if s["tasks"][0]["status"] == "success"]
    skipped = [s["tasks"][0] for s in results.values() if s["tasks"][0]["status"] == "up_to_date"]
    assert len(built_by) == len(skipped) == 1
    assert skipped[0]["reason"] == f"1 source, commands and env unchanged since run {built_by[0]}; generates exist"
    record = json.loads((taskrun.cwd / RECORDS / "build.json").read_text())
    assert (record["run_id"], list(record["sources"])) == (built_by[0], ["src.txt"])
    assert [p.name for p in (taskrun.cwd / RECORDS).iterdir()] in (["build.json", "build.lock"],
                                                                    ["build.lock", "build.json"])  # no leftovers


def test_a_fingerprint_folder_through_a_symbolic_link_is_refused_and_the_task_fails(taskrun, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    taskrun.write("tasks.yaml", BUILD)
    taskrun.write("src/a.c", "int a;\n")
    (taskrun.cwd / ".taskrun").symlink_to(elsewhere)  # someone else's folder, or a place taskrun must not write
    r = check(taskrun("tasks.yaml", "--log-dir", "logs"), 1)
    reason = (f"cannot check whether it is up to date: the fingerprint folder {taskrun.cwd / '.taskrun'} is a "
              "symbolic link, which taskrun does not follow (remove it, or drop sources, generates and status "
              "from the file)")
    assert statuses(taskrun) == {"build": ("failed", reason), "test": ("skipped", "needs 'build', which failed")}
    assert f" fail  build failed ({reason})\n" in r.stdout
    assert ran(taskrun) == [] and list(elsewhere.iterdir()) == []


def test_a_fifo_or_a_device_among_the_sources_is_never_opened(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          pack:
            cmd: echo packed >> ran.log
            sources: [in/*]
    """)
    taskrun.write("in/data.txt", "x\n")
    os.mkfifo(taskrun.cwd / "in/pipe")  # reading it would wait for a writer forever
    if os.geteuid() == 0:  # a private node, like /dev/null (1, 3); never the machine's own
        os.mknod(taskrun.cwd / "in/null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    check(taskrun("tasks.yaml", timeout=60), 0)
    check(taskrun("tasks.yaml", timeout=60), 0)
    assert ran(taskrun) == ["packed"]
    assert statuses(taskrun)["pack"][0] == "up_to_date"


def test_a_whole_folder_as_a_source_leaves_out_taskruns_own_records(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          pack:
            cmd: echo packed >> ../ran.log
            cwd: project
            sources: [.]
    """)
    taskrun.write("project/a.txt", "x\n")
    (taskrun.cwd / "project/.taskrun").mkdir()  # as a run from that folder would leave
    for _ in range(2):
        check(taskrun("tasks.yaml", "--log-dir", "project/.taskrun/runs"), 0)  # a run's logs inside the source
    assert ran(taskrun) == ["packed"]
    record = json.loads((taskrun.cwd / RECORDS / "pack.json").read_text())
    assert list(record["sources"]) == ["a.txt"]
    (taskrun.cwd / "project/a.txt").write_text("y\n")
    check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["packed", "packed"]


# --- conditions ------------------------------------------------------------------------------

CONDITIONS = """
    version: 1
    tasks:
      deploy:
        cmd: echo deploy >> ran.log
        if: {sh: test "$TARGET" = prod}
      notify:
        cmd: echo notify >> ran.log
        needs: [deploy]
      announce:
        cmd: echo announce >> ran.log
        needs: [notify]
      lint:
        cmd: echo lint >> ran.log
        if: {sh: 'true'}
"""


def test_a_false_condition_skips_the_task_and_what_needs_it_and_the_run_succeeds(taskrun):
    taskrun.write("tasks.yaml", CONDITIONS)
    r = check(taskrun("tasks.yaml", "--junit", "report.xml"), 0)
    assert ran(taskrun) == ["lint"]
    assert statuses(taskrun) == {
        "deploy": ("skipped", 'condition false: `test "$TARGET" = prod` exited 1'),
        "notify": ("skipped", "needs 'deploy', which was skipped (condition false)"),
        "announce": ("skipped", "needs 'notify', which was skipped"),
        "lint": ("success", None),
    }
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"]) == ("success", 0)
    assert [t["by_condition"] for t in summary["tasks"]] == [True, True, True, False]
    assert "skip  deploy   skipped (condition false: `test \"$TARGET\" = prod` exited 1)\n" in r.stdout
    skipped = ET.parse(taskrun.cwd / "report.xml").getroot().find("testcase[@name='deploy']/skipped")
    assert skipped.get("message") == 'skipped: condition false: `test "$TARGET" = prod` exited 1'
    # Nothing failed: there is nothing to rerun.
    r = check(taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json"), 0)
    assert "nothing to rerun" in r.stderr


def test_a_true_condition_runs_the_task_and_it_is_evaluated_when_ready(taskrun):
    taskrun.write("tasks.yaml", CONDITIONS.replace('test "$TARGET" = prod', "test -f ready").replace(
        "      deploy:\n", "      prepare: {cmd: touch ready}\n      deploy:\n        needs: [prepare]\n"))
    check(taskrun("tasks.yaml"), 0)  # `ready` exists only once prepare has run
    assert sorted(ran(taskrun)) == ["announce", "deploy", "lint", "notify"]
    r = check(taskrun("tasks.yaml", "-n"), 0)
    assert "runs only if `test -f ready` exits 0 (checked when it is ready)\n" in r.stdout


def test_a_condition_is_bounded_by_the_tasks_timeout_and_then_counts_as_false(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          deploy:
            cmd: echo deploy >> ran.log
            timeout: 1s
            kill_grace: 1s
            if: {sh: sleep 30}
    """)
    check(taskrun("tasks.yaml", timeout=30), 0)
    assert ran(taskrun) == []
    assert statuses(taskrun) == {"deploy": ("skipped", "condition false: `sleep 30` timed out after 1s")}


def test_list_json_shows_the_checks(taskrun):
    taskrun.write("tasks.yaml", CONDITIONS.replace("        if: {sh: 'true'}\n",
                                                   "        sources: ['*.py']\n        generates: [out]\n"
                                                   "        status: [test -d out]\n"))
    tasks = {t["name"]: t for t in json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)["tasks"]}
    assert tasks["deploy"]["if"] == {"sh": 'test "$TARGET" = prod'}
    assert (tasks["lint"]["sources"], tasks["lint"]["generates"], tasks["lint"]["status"]) == (
        ["*.py"], ["out"], ["test -d out"])
    assert "sources" not in tasks["notify"]


# --- stopping while checks are out -------------------------------------------------------------


def test_sigint_stops_a_condition_being_checked_and_a_run_waiting_for_a_task_lock(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          slow-check:
            cmd: echo never >> ran.log
            if: {sh: echo probing; sleep 60}
          build:
            cmd: echo built >> ran.log && until test -f release; do sleep 0.02; done && touch out.txt
            generates: [out.txt]
    """)
    holder = taskrun.popen("tasks.yaml", "-o", "holder.json", "build")
    try:
        wait_for(lambda: ran(taskrun) == ["built"], what="the first run to start build")
        waiter = taskrun.popen("tasks.yaml", "-o", "waiter.json")
        lock = taskrun.cwd / RECORDS / "build.lock"
        wait_for(lambda: _holds(waiter.pid, lock), what="the second run at build's lock")
        probes = taskrun.cwd / ".taskrun/runs"
        wait_for(lambda: any(p.read_text() == "probing\n" for p in probes.glob("*/slow-check~if.stdout")),
                 what="the condition to run")
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=30)
        assert waiter.returncode == 130, out + err
        assert statuses_of(taskrun.summary("waiter.json")) == {
            "slow-check": ("cancelled", "the run was stopped while its condition ran"),
            "build": ("cancelled", "the run was stopped while it waited for another run of this task"),
        }
        (taskrun.cwd / "release").touch()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, out + err
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()
    assert ran(taskrun) == ["built"]
    record = json.loads((taskrun.cwd / RECORDS / "build.json").read_text())
    assert record["run_id"] == taskrun.summary("holder.json")["run_id"]


def statuses_of(summary: dict) -> dict[str, tuple[str, str | None]]:
    return {name: (t["status"], t["reason"]) for name, t in by_name(summary).items()}
