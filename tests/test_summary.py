"""The summary JSON through the real `taskrun`: every field, where it goes (-o),
atomic replacement, and what happens when it cannot be written (exit 3)."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from datetime import datetime
from pathlib import Path

import pytest

import runner
from conftest import TASKRUN, by_name, check, slots_of_run, validate_summary

FILE = """
    version: 1
    pool: 2
    timeout: 30
    tasks:
      build:
        description: Make the thing
        cmd: echo built; echo warning >&2
        tags: [ci]
      test:
        cmd: [sh, -c, "exit 3"]
        needs: [build]
      docs:
        cmd: "true"
        needs: [test]
      lint:
        cmd: exit 1
        allow_failure: true
        timeout: 5
    """


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


class TestFields:
    def test_run_fields(self, taskrun):
        path = taskrun.write("tasks.yaml", FILE)
        check(taskrun("tasks.yaml", "-j", "2"), 1)
        s = taskrun.summary()
        assert s["version"] == 1
        assert s["taskrun_version"] == runner.__version__
        assert s["file"] == "tasks.yaml"
        assert s["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert (s["status"], s["exit_code"], s["signal"], s["reason"]) == ("failed", 1, None, None)
        assert (s["pool"], s["fail_fast"], s["targets"]) == (2, False, [])
        assert s["host"] == socket.gethostname()
        assert s["user"] == getpass.getuser()
        assert s["command"] == [TASKRUN, "tasks.yaml", "-j", "2"]
        assert s["cwd"] == str(taskrun.cwd)
        assert s["counts"] == {"success": 1, "failed": 2, "timeout": 0, "skipped": 1, "cancelled": 0, "up_to_date": 0}
        started, finished = ts(s["started_at"]), ts(s["finished_at"])
        assert started <= finished
        assert s["duration_s"] == pytest.approx((finished - started).total_seconds(), abs=0.002)
        assert s["log_dir"].endswith(s["run_id"]) and os.path.isdir(s["log_dir"])
        for t in s["tasks"]:
            if t["started_at"] is not None:
                assert started <= ts(t["started_at"]) <= ts(t["finished_at"]) <= finished

    def test_task_fields(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        check(taskrun("tasks.yaml"), 1)
        s = taskrun.summary()
        assert [t["name"] for t in s["tasks"]] == ["build", "test", "docs", "lint"]
        t = by_name(s)

        build = t["build"]
        assert build["description"] == "Make the thing"
        assert build["cmd"] == "echo built; echo warning >&2"
        assert (build["status"], build["exit_code"], build["signal"]) == ("success", 0, None)
        assert isinstance(build["pid"], int) and build["pid"] > 0
        assert (build["allow_failure"], build["needs"], build["tags"]) == (False, [], ["ci"])
        assert build["timeout_s"] == 30
        assert build["reason"] is None
        assert (build["stdout_tail"], build["stderr_tail"]) == ("built\n", "warning\n")
        assert Path(build["stdout_log"]).read_text() == "built\n"
        assert Path(build["stderr_log"]).read_text() == "warning\n"
        assert build["duration_s"] == pytest.approx(
            (ts(build["finished_at"]) - ts(build["started_at"])).total_seconds(), abs=0.002)
        (attempt,) = build["attempts"]
        assert attempt["pid"] == build["pid"]
        assert (attempt["exit_code"], attempt["timed_out"], attempt["cancelled"]) == (0, False, False)
        assert (attempt["started_at"], attempt["finished_at"]) == (build["started_at"], build["finished_at"])
        assert attempt["stdout_log"] == build["stdout_log"]

        test = t["test"]
        assert test["cmd"] == ["sh", "-c", "exit 3"]
        assert (test["status"], test["exit_code"], test["needs"]) == ("failed", 3, ["build"])
        assert test["started_at"] >= build["finished_at"]

        docs = t["docs"]  # never ran: every field of a run is null
        assert (docs["status"], docs["reason"]) == ("skipped", "needs 'test', which failed")
        assert [docs[k] for k in ("exit_code", "signal", "pid", "started_at", "finished_at", "duration_s",
                                  "stdout_tail", "stderr_tail", "stdout_log")] == [None] * 9
        assert docs["attempts"] == []

        lint = t["lint"]
        assert (lint["status"], lint["exit_code"], lint["allow_failure"], lint["timeout_s"]) == ("failed", 1, True, 5)

    def test_targets_and_fail_fast_are_recorded(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        check(taskrun("tasks.yaml", "build", "--fail-fast"), 0)
        s = taskrun.summary()
        assert (s["targets"], s["fail_fast"], s["status"], s["exit_code"]) == (["build"], True, "success", 0)
        assert [t["name"] for t in s["tasks"]] == ["build"]

    def test_tails_keep_the_last_50_lines(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  many: seq 1 60; seq 1 3 >&2\n")
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())["many"]
        assert t["stdout_tail"] == "".join(f"{i}\n" for i in range(11, 61))
        assert t["stderr_tail"] == "1\n2\n3\n"
        assert Path(t["stdout_log"]).read_text() == "".join(f"{i}\n" for i in range(1, 61))

    def test_invalid_utf8_output_is_replaced(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  raw: printf 'caf\\351\\n'\n")
        check(taskrun("tasks.yaml"), 0)
        assert by_name(taskrun.summary())["raw"]["stdout_tail"] == "caf\ufffd\n"

    def test_no_output_is_an_empty_tail(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  quiet: 'true'\n")
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())["quiet"]
        assert (t["stdout_tail"], t["stderr_tail"]) == ("", "")


class TestSlots:
    def test_each_attempt_runs_in_a_slot_of_the_pool_one_at_a_time(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 2
            tasks:
              long: sleep 1
              short1: sleep 0.1
              short2: sleep 0.1
              short3: sleep 0.1
        """)
        check(taskrun("tasks.yaml"), 0)
        s = taskrun.summary()
        slots = slots_of_run(s, taskrun.events())
        # The first two start together, in the lowest free slots; the others take the slot a short one freed.
        assert (slots[("long", 1)], slots[("short1", 1)]) == (0, 1)
        assert set(slots.values()) == {0, 1}

    def test_retries_checked_tasks_and_commands_that_cannot_start_have_their_slots(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 3
            tasks:
              flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1, retry_delay: 0.3}
              checked: {cmd: sleep 0.2, if: {sh: "true"}}
              missing: {cmd: [no-such-command-here]}
              after: {cmd: sleep 0.1, needs: [flaky, checked]}
        """)
        check(taskrun("tasks.yaml"), 1)
        s = taskrun.summary()
        slots = slots_of_run(s, taskrun.events())
        assert set(slots) == {("flaky", 1), ("flaky", 2), ("checked", 1), ("missing", 1), ("after", 1)}
        assert by_name(s)["missing"]["attempts"][0]["pid"] is None


class TestWhere:
    def test_default_path_is_in_the_current_folder(self, taskrun):
        (taskrun.cwd / "proj").mkdir()
        taskrun.write("proj/tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
        r = check(taskrun("proj/tasks.yaml"), 0)
        assert taskrun.summary()["file"] == "proj/tasks.yaml"
        assert not (taskrun.cwd / "proj" / "taskrun-summary.json").exists()
        assert r.stdout.splitlines()[-1] == "summary: taskrun-summary.json"

    def test_o_writes_where_asked(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
        (taskrun.cwd / "out").mkdir()
        r = check(taskrun("tasks.yaml", "-o", "out/run.json"), 0)
        assert taskrun.summary("out/run.json")["status"] == "success"
        assert not (taskrun.cwd / "taskrun-summary.json").exists()
        assert r.stdout.splitlines()[-1] == "summary: out/run.json"

    def test_o_dash_writes_json_to_stdout_and_the_console_to_stderr(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo from-a\n  b: exit 2\n")
        r = check(taskrun("tasks.yaml", "--summary", "-"), 1)
        s = json.loads(r.stdout)
        validate_summary(s)
        assert [(t["name"], t["status"], t["exit_code"]) for t in s["tasks"]] == [
            ("a", "success", 0), ("b", "failed", 2)]
        assert " start a" in r.stderr and " done  b" in r.stderr
        assert "summary:" not in r.stderr
        assert not (taskrun.cwd / "taskrun-summary.json").exists()
        assert not (taskrun.cwd / "-").exists()

    def test_an_existing_summary_is_replaced_and_no_temporary_file_is_left(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 1\n")
        check(taskrun("tasks.yaml"), 1)
        first = taskrun.summary()["run_id"]
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 0\n")
        check(taskrun("tasks.yaml"), 0)
        s = taskrun.summary()
        assert (s["status"], s["tasks"][0]["exit_code"]) == ("success", 0)
        assert s["run_id"] != first
        assert sorted(p.name for p in taskrun.cwd.iterdir() if p.is_file()) == ["taskrun-summary.json",
                                                                               "tasks.yaml"]


class TestCannotWrite:
    @staticmethod
    def summary_on_stderr(stderr: str) -> dict:
        start = 0 if stderr.startswith("{") else stderr.index("\n{") + 1
        data, _ = json.JSONDecoder().raw_decode(stderr, start)
        validate_summary(data)
        return data

    def test_a_missing_folder_is_created_like_the_junit_one(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
        check(taskrun("tasks.yaml", "-o", "reports/run/summary.json"), 0)
        assert taskrun.summary("reports/run/summary.json")["tasks"][0]["status"] == "success"

    def test_a_folder_that_cannot_be_made_exits_3_and_the_summary_goes_to_stderr(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
        taskrun.write("blocker", "")
        r = check(taskrun("tasks.yaml", "-o", "blocker/sub/summary.json"), 3)
        assert "blocker/sub/summary.json" in r.stderr
        assert (taskrun.cwd / "ran").exists()  # the tasks did run
        s = self.summary_on_stderr(r.stderr)
        assert s["tasks"][0]["status"] == "success"

    def test_a_file_in_the_way_exits_3(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
        taskrun.write("blocker", "")
        r = check(taskrun("tasks.yaml", "-o", "blocker/summary.json"), 3)
        assert "blocker/summary.json" in r.stderr
        self.summary_on_stderr(r.stderr)

    @pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
    def test_a_read_only_folder_exits_3(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
        ro = taskrun.cwd / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            r = check(taskrun("tasks.yaml", "-o", "ro/summary.json"), 3)
        finally:
            ro.chmod(0o755)
        assert "ro/summary.json" in r.stderr
        self.summary_on_stderr(r.stderr)

    def test_a_folder_nobody_can_write_exits_3(self, taskrun):
        # /proc refuses new files even to root
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
        r = check(taskrun("tasks.yaml", "-o", "/proc/taskrun-summary.json"), 3)
        assert "/proc/taskrun-summary.json" in r.stderr
        self.summary_on_stderr(r.stderr)


def test_the_compiled_summary_check_gives_jsonschemas_verdict(taskrun):
    """`--report` takes a summary on the compiled check's yes (runner/schemacheck.py): it must
    never accept what jsonschema refuses. Checked on a real summary and on changed copies."""
    import copy

    import jsonschema

    from runner.record import SUMMARY_SCHEMA
    from runner.schemacheck import compiled

    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          a: 'true'
          b: {cmd: exit 3, retries: 1, needs: [a]}
          c: {cmd: 'true', needs: [b]}
        """)
    check(taskrun("tasks.yaml"), 1)
    real = taskrun.summary()
    changes = [
        lambda s: s["tasks"][0].update(status="fine"), lambda s: s.update(exit_code=True),
        lambda s: s.update(pool=1.0), lambda s: s.update(pool=0), lambda s: s.update(extra=1),
        lambda s: s["tasks"][1]["attempts"][0].update(slot=-1), lambda s: s["tasks"][1]["attempts"][0].update(slot=True),
        lambda s: s["tasks"][1]["attempts"][0].pop("slot"), lambda s: s["tasks"][0].pop("attempts"),
        lambda s: s["tasks"][0].update(started_at="2026-01-01 00:00:00"), lambda s: s["tasks"][0].update(needs=[1]),
        lambda s: s["tasks"][0].update(duration_s=-1), lambda s: s["tasks"][0].update(duration_s=float("nan")),
        lambda s: s.update(tasks={}), lambda s: s.update(counts=None), lambda s: None,
    ]
    documents = []
    for change in changes:
        document = copy.deepcopy(real)
        change(document)
        documents.append(document)
    schema = json.loads(SUMMARY_SCHEMA.read_text())
    full = jsonschema.validators.validator_for(schema)(schema)
    verdicts = [(compiled(schema)(doc), full.is_valid(doc)) for doc in documents]
    assert [i for i, (fast, whole) in enumerate(verdicts) if fast != whole] == []
    assert {whole for _, whole in verdicts} == {True, False}
