"""The core run through the real `taskrun` command: selection, pool, needs, skips,
retries, commands that cannot start, cwd/env/shell, dry run, exit codes."""

from __future__ import annotations

import os
import re
import resource
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from conftest import by_name, check


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def peak_concurrency(events: str) -> int:
    """Most tasks running at once, from lines `+name` / `-name` appended as they start and end."""
    running = peak = 0
    for line in events.split():
        running += 1 if line.startswith("+") else -1
        peak = max(peak, running)
    return peak


def marked_tasks(pool: int, n: int) -> str:
    """A task file of `n` tasks, each appending +name as it starts and -name as it ends to one file."""
    cmd = 'echo "+$TASKRUN_TASK" >> events; sleep 0.4; echo "-$TASKRUN_TASK" >> events'
    return f"version: 1\npool: {pool}\ntasks:\n" + "".join(f"  t{i}: '{cmd}'\n" for i in range(n))


class TestSelection:
    FILE = """
        version: 1
        pool: 2
        tasks:
          compile: echo compile >> ran
          lint: echo lint >> ran
          test:
            cmd: echo test >> ran
            needs: [compile]
          package:
            cmd: echo package >> ran
            needs: [test]
        """

    def test_no_target_runs_every_task(self, taskrun):
        taskrun.write("tasks.yaml", self.FILE)
        check(taskrun("tasks.yaml"), 0)
        assert sorted((taskrun.cwd / "ran").read_text().split()) == ["compile", "lint", "package", "test"]
        s = taskrun.summary()
        assert [t["name"] for t in s["tasks"]] == ["compile", "lint", "test", "package"]
        assert s["targets"] == []

    def test_a_target_runs_with_what_it_needs_and_nothing_else(self, taskrun):
        taskrun.write("tasks.yaml", self.FILE)
        check(taskrun("tasks.yaml", "test"), 0)
        assert (taskrun.cwd / "ran").read_text().split() == ["compile", "test"]
        s = taskrun.summary()
        assert [t["name"] for t in s["tasks"]] == ["compile", "test"]
        assert s["targets"] == ["test"]
        assert s["counts"] == {"success": 2, "failed": 0, "timeout": 0, "skipped": 0, "cancelled": 0, "up_to_date": 0}

    def test_several_targets_keep_file_order(self, taskrun):
        taskrun.write("tasks.yaml", self.FILE)
        check(taskrun("tasks.yaml", "package", "lint"), 0)
        assert [t["name"] for t in taskrun.summary()["tasks"]] == ["compile", "lint", "test", "package"]

    def test_unknown_target_exits_2_with_a_suggestion_and_runs_nothing(self, taskrun):
        taskrun.write("tasks.yaml", self.FILE)
        r = check(taskrun("tasks.yaml", "tset"), 2)
        assert "unknown task 'tset' (did you mean 'test'?)" in r.stderr
        assert not (taskrun.cwd / "ran").exists()
        assert not (taskrun.cwd / "taskrun-summary.json").exists()


class TestPool:
    def test_pool_from_the_file_is_never_exceeded_and_is_used(self, taskrun):
        taskrun.write("tasks.yaml", marked_tasks(pool=2, n=5))
        check(taskrun("tasks.yaml"), 0)
        assert peak_concurrency((taskrun.cwd / "events").read_text()) == 2
        assert taskrun.summary()["pool"] == 2

    def test_pool_flag_overrides_the_file(self, taskrun):
        taskrun.write("tasks.yaml", marked_tasks(pool=4, n=3))
        check(taskrun("tasks.yaml", "-j", "1"), 0)
        assert (taskrun.cwd / "events").read_text().split() == ["+t0", "-t0", "+t1", "-t1", "+t2", "-t2"]
        assert taskrun.summary()["pool"] == 1

    def test_long_pool_flag(self, taskrun):
        taskrun.write("tasks.yaml", marked_tasks(pool=1, n=3))
        check(taskrun("tasks.yaml", "--pool", "3"), 0)
        assert peak_concurrency((taskrun.cwd / "events").read_text()) == 3

    def test_summary_intervals_never_overlap_beyond_the_pool(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n"
                      + "".join(f"  t{i}: sleep 0.2\n" for i in range(6)))
        check(taskrun("tasks.yaml", "-j", "2"), 0)
        edges = []
        for t in taskrun.summary()["tasks"]:
            edges += [(ts(t["started_at"]), 1), (ts(t["finished_at"]), -1)]
        running = peak = 0
        for _, step in sorted(edges):  # at equal times an end sorts before a start
            running += step
            peak = max(peak, running)
        assert peak == 2

    def test_pool_zero_is_rejected(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
        check(taskrun("tasks.yaml", "-j", "0"), 2)
        assert not (taskrun.cwd / "ran").exists()


class TestOrder:
    def test_ties_start_in_file_order(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 1
            tasks:
              zulu: echo zulu >> order
              yankee: echo yankee >> order
              xray: echo xray >> order
            """)
        check(taskrun("tasks.yaml"), 0)
        assert (taskrun.cwd / "order").read_text().split() == ["zulu", "yankee", "xray"]

    def test_a_task_starts_as_soon_as_its_needs_succeeded(self, taskrun):
        # 'late' comes first in the file: once 'early' is done it goes before 'other'.
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 1
            tasks:
              late:
                cmd: echo late >> order
                needs: [early]
              early: echo early >> order
              other: echo other >> order
            """)
        check(taskrun("tasks.yaml"), 0)
        assert (taskrun.cwd / "order").read_text().split() == ["early", "late", "other"]

    def test_a_dependent_does_not_wait_for_unrelated_tasks(self, taskrun):
        # 'slow' ends only once 'after-quick' has run: it must not wait for 'slow'
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 2
            tasks:
              slow:
                cmd: while [ ! -e after-quick-ran ]; do sleep 0.01; done
                timeout: 20
              quick: "true"
              after-quick:
                cmd: touch after-quick-ran
                needs: [quick]
            """)
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())
        assert ts(t["after-quick"]["started_at"]) < ts(t["slow"]["finished_at"])

    def test_a_dependent_starts_after_its_need_ended(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 4
            tasks:
              first: sleep 0.3
              second:
                cmd: "true"
                needs: [first]
            """)
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())
        assert ts(t["second"]["started_at"]) >= ts(t["first"]["finished_at"])


class TestSkipsAndFailures:
    FILE = """
        version: 1
        pool: 2
        tasks:
          build: exit 3
          test:
            cmd: touch test-ran
            needs: [build]
          package:
            cmd: touch package-ran
            needs: [test]
          docs: echo docs
        """

    def test_failure_skips_dependents_transitively(self, taskrun):
        taskrun.write("tasks.yaml", self.FILE)
        r = check(taskrun("tasks.yaml"), 1)
        s = taskrun.summary()
        t = by_name(s)
        assert [x["status"] for x in s["tasks"]] == ["failed", "skipped", "skipped", "success"]
        assert t["build"]["exit_code"] == 3
        assert t["test"]["reason"] == "needs 'build', which failed"
        assert t["package"]["reason"] == "needs 'test', which was skipped"
        for name in ("test", "package"):
            assert t[name]["attempts"] == []
            assert t[name]["pid"] is None and t[name]["exit_code"] is None and t[name]["started_at"] is None
        assert not (taskrun.cwd / "test-ran").exists() and not (taskrun.cwd / "package-ran").exists()
        assert s["status"] == "failed" and s["exit_code"] == 1
        assert s["counts"] == {"success": 1, "failed": 1, "timeout": 0, "skipped": 2, "cancelled": 0, "up_to_date": 0}
        assert "needs 'build', which failed" in r.stdout

    def test_allow_failure_fails_alone_and_dependents_still_run(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            tasks:
              lint:
                cmd: exit 1
                allow_failure: true
              build:
                cmd: touch built
                needs: [lint]
            """)
        check(taskrun("tasks.yaml"), 0)
        s = taskrun.summary()
        t = by_name(s)
        assert t["lint"]["status"] == "failed" and t["lint"]["exit_code"] == 1 and t["lint"]["allow_failure"] is True
        assert t["build"]["status"] == "success"
        assert (taskrun.cwd / "built").exists()
        assert s["status"] == "success" and s["exit_code"] == 0

    def test_a_failing_task_alone_exits_1(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 7\n  b: 'true'\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())
        assert (t["a"]["status"], t["a"]["exit_code"], t["b"]["status"]) == ("failed", 7, "success")

    def test_fail_fast_flag_cancels_running_and_pending_tasks(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 2
            kill_grace: 0.5
            tasks:
              bad:
                cmd: while [ ! -e slow-started ]; do sleep 0.01; done; exit 1
                timeout: 20
              slow: touch slow-started; sleep 300
              later: touch later-ran
            """)
        check(taskrun("tasks.yaml", "--fail-fast"), 1)
        s = taskrun.summary()
        t = by_name(s)
        assert (t["bad"]["status"], t["bad"]["exit_code"]) == ("failed", 1)
        assert t["slow"]["status"] == "cancelled"
        assert t["slow"]["attempts"][0]["cancelled"] is True
        assert t["slow"]["signal"] == "SIGTERM" and t["slow"]["exit_code"] is None
        assert t["later"]["status"] == "cancelled" and t["later"]["attempts"] == []
        assert t["later"]["reason"] == t["slow"]["reason"] == "fail_fast: 'bad' failed"
        assert not (taskrun.cwd / "later-ran").exists()
        assert s["fail_fast"] is True and s["status"] == "failed"
        assert s["reason"] == "fail_fast: stopped after 'bad' failed"
        assert s["duration_s"] < 20

    def test_without_fail_fast_the_others_finish(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\npool: 1\ntasks:\n  bad: exit 1\n  later: touch later-ran\n")
        check(taskrun("tasks.yaml"), 1)
        assert (taskrun.cwd / "later-ran").exists()
        assert taskrun.summary()["fail_fast"] is False


class TestDryRun:
    def test_prints_the_plan_and_runs_nothing(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            pool: 3
            tasks:
              deploy:
                cmd: touch ran
                needs: [build]
              build: touch ran
            """)
        r = check(taskrun("tasks.yaml", "--dry-run"), 0)
        assert not (taskrun.cwd / "ran").exists()
        assert not (taskrun.cwd / "taskrun-summary.json").exists()
        lines = r.stdout.splitlines()
        assert lines[0] == "plan for tasks.yaml: 2 task(s), pool 3"
        assert lines[1].split()[:2] == ["1.", "build"]
        assert lines[3].split()[:2] == ["2.", "deploy"]
        assert "needs build" in lines[3]

    def test_dry_run_shows_overrides_and_selection(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n  b: touch ran\n")
        r = check(taskrun("tasks.yaml", "b", "--dry-run", "-j", "5", "--timeout", "90s", "--fail-fast"), 0)
        assert r.stdout.splitlines()[0] == "plan for tasks.yaml: 1 task(s), pool 5, fail_fast"
        assert "timeout 1m30s" in r.stdout
        assert " a " not in r.stdout
        assert not (taskrun.cwd / "ran").exists()


class TestRetries:
    # Fails until the counter reaches 3, whatever the attempt number says.
    FLAKY = 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "try $n"; [ $n -ge 3 ]'

    def test_fails_twice_then_succeeds(self, taskrun):
        taskrun.write("tasks.yaml", f"""
            version: 1
            tasks:
              flaky:
                cmd: '{self.FLAKY}'
                retries: 2
            """)
        r = check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())["flaky"]
        assert t["status"] == "success" and t["exit_code"] == 0
        assert [a["exit_code"] for a in t["attempts"]] == [1, 1, 0]
        assert len({a["pid"] for a in t["attempts"]}) == 3
        assert t["pid"] == t["attempts"][-1]["pid"]
        assert t["stdout_tail"] == "try 3\n"
        assert [a["stdout_log"].rsplit("/", 1)[1] for a in t["attempts"]] == [
            "flaky.stdout", "flaky~2.stdout", "flaky~3.stdout"]
        assert "attempt 2 of 3" in r.stdout and "attempt 3 of 3" in r.stdout

    def test_retries_exhausted(self, taskrun):
        taskrun.write("tasks.yaml", f"""
            version: 1
            tasks:
              flaky:
                cmd: '{self.FLAKY}'
                retries: 1
            """)
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["flaky"]
        assert t["status"] == "failed"
        assert [a["exit_code"] for a in t["attempts"]] == [1, 1]

    def test_retry_delay_is_honoured(self, taskrun):
        taskrun.write("tasks.yaml", f"""
            version: 1
            tasks:
              flaky:
                cmd: '{self.FLAKY}'
                retries: 2
                retry_delay: 0.5s
            """)
        check(taskrun("tasks.yaml"), 0)
        attempts = by_name(taskrun.summary())["flaky"]["attempts"]
        for before, after in zip(attempts, attempts[1:]):
            # the summary keeps milliseconds, truncated: allow for that much
            assert ts(after["started_at"]) - ts(before["finished_at"]) >= 0.5 - 0.002

    def test_a_timeout_is_retried(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            kill_grace: 0.5
            tasks:
              slow-once:
                cmd: if [ -e again ]; then echo fine; else touch again; sleep 300; fi
                timeout: 0.5
                retries: 1
            """)
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())["slow-once"]
        assert t["status"] == "success"
        assert [(a["timed_out"], a["exit_code"]) for a in t["attempts"]] == [(True, None), (False, 0)]


def _stack_of_8_mib() -> None:
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, resource.getrlimit(resource.RLIMIT_STACK)[1]))


class TestCannotStart:
    def test_missing_program(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            tasks:
              ghost:
                cmd: [no-such-program-7f3a, --flag]
              after:
                cmd: "true"
                needs: [ghost]
            """)
        r = check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())
        assert (t["ghost"]["status"], t["ghost"]["exit_code"], t["ghost"]["pid"]) == ("failed", 127, None)
        assert t["ghost"]["reason"] == "command not found: no-such-program-7f3a"
        assert t["after"]["status"] == "skipped"
        assert "command not found: no-such-program-7f3a" in r.stdout

    def test_missing_cwd(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: 'true'\n    cwd: not-there\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 127, None)
        assert t["reason"] == f"working directory not found: {taskrun.cwd / 'not-there'}"

    def test_cwd_that_is_a_file(self, taskrun):
        taskrun.write("afile", "")
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: 'true'\n    cwd: afile\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"]) == ("failed", 127)
        assert t["reason"] == f"working directory is not a folder: {taskrun.cwd / 'afile'}"

    def test_file_that_is_not_executable(self, taskrun):
        script = taskrun.write("script.sh", "#!/bin/sh\necho hi\n")
        script.chmod(0o644)
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: [./script.sh]\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 126, None)
        assert t["reason"] == "permission denied: ./script.sh"

    def test_missing_program_through_the_shell_is_the_shells_127(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: no-such-program-7f3a\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"]) == ("failed", 127)
        assert isinstance(t["pid"], int)
        assert "no-such-program-7f3a" in t["stderr_tail"]

    def test_a_script_whose_interpreter_is_missing_names_the_interpreter(self, taskrun):
        script = taskrun.write("tool.sh", "#!/no/such/bin -e\necho hi\n")
        script.chmod(0o755)
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: [./tool.sh]\n")
        r = check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 127, None)
        assert t["reason"] == "bad interpreter /no/such/bin in ./tool.sh: not found"
        assert "bad interpreter /no/such/bin in ./tool.sh: not found" in r.stdout

    def test_a_program_whose_loader_is_missing_names_the_loader(self, taskrun):
        # A copy of `true` whose ELF interpreter (the dynamic loader) names a file that does not exist.
        data = Path(shutil.which("true")).resolve().read_bytes()
        loader = re.search(rb"/[\w./-]*/ld-[\w.+-]+\.so[\w.]*\0", data)
        if loader is None:
            pytest.skip("`true` is not a dynamically linked ELF program here")
        missing = loader.group().replace(b"/ld-", b"/no-")
        program = taskrun.cwd / "true"
        program.write_bytes(data.replace(loader.group(), missing, 1))
        program.chmod(0o755)
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: [./true]\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"]) == ("failed", 127)
        assert t["reason"] == f"bad interpreter {missing[:-1].decode()} in ./true: not found"

    def test_a_script_whose_interpreter_is_a_directory_says_so(self, taskrun):
        (taskrun.cwd / "folder").mkdir()
        script = taskrun.write("tool.sh", f"#!{taskrun.cwd / 'folder'}\necho hi\n")
        script.chmod(0o755)
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: [./tool.sh]\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"]) == ("failed", 126)
        assert t["reason"] == f"bad interpreter {taskrun.cwd / 'folder'} in ./tool.sh: is a directory"

    def test_a_directory_is_not_a_command(self, taskrun):
        (taskrun.cwd / "build").mkdir()
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a:\n    cmd: [./build]\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 126, None)
        assert t["reason"] == "is a directory: ./build"

    def test_a_variable_too_big_for_exec_is_named(self, taskrun):
        per_string = 32 * os.sysconf("SC_PAGESIZE")
        taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  a:\n    cmd: 'true'\n    env:\n"
                                    f"      BIG: {'x' * (per_string + 10)}\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 126, None)
        assert t["reason"] == (f"environment too big for exec: the variable BIG is {per_string + 15} bytes "
                               f"(at most {per_string} per variable)")

    def test_an_environment_too_big_for_exec_says_so_with_its_size(self, taskrun):
        # 8 MiB of stack makes the kernel's limit 2 MiB for arguments and environment together.
        variables = "".join(f"      V{i}: {'x' * 100_000}\n" for i in range(24))
        taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  a:\n    cmd: 'true'\n    env:\n{variables}")
        check(taskrun("tasks.yaml", preexec_fn=_stack_of_8_mib), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 126, None)
        m = re.fullmatch(r"environment too big for exec: (\d+) bytes in (\d+) variables, with (\d+) bytes of "
                         r"arguments \(at most about 2097152 in all\)", t["reason"])
        assert m, t["reason"]
        assert int(m[1]) > 24 * 100_000 and int(m[2]) > 24 and int(m[3]) == len("/bin/sh -e -c true ")

    def test_an_argument_too_big_for_exec_is_named(self, taskrun):
        per_string = 32 * os.sysconf("SC_PAGESIZE")
        taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  a:\n    cmd: [echo, {'x' * per_string}]\n")
        check(taskrun("tasks.yaml"), 1)
        t = by_name(taskrun.summary())["a"]
        assert (t["status"], t["exit_code"], t["pid"]) == ("failed", 126, None)
        assert t["reason"] == (f"arguments too big for exec: argument 1 is {per_string + 1} bytes "
                               f"(at most {per_string} per argument)")


class TestCommandEnvironment:
    def test_default_cwd_is_the_task_files_folder(self, taskrun):
        (taskrun.cwd / "proj").mkdir()
        taskrun.write("proj/tasks.yaml", "version: 1\ntasks:\n  where: pwd\n")
        check(taskrun("proj/tasks.yaml", "-o", "summary.json"), 0)
        t = by_name(taskrun.summary("summary.json"))["where"]
        assert t["stdout_tail"] == f"{taskrun.cwd / 'proj'}\n"
        assert taskrun.summary("summary.json")["file"] == "proj/tasks.yaml"

    def test_relative_cwd_is_relative_to_the_task_files_folder(self, taskrun):
        (taskrun.cwd / "proj" / "sub").mkdir(parents=True)
        taskrun.write("proj/tasks.yaml", "version: 1\ntasks:\n  where:\n    cmd: pwd\n    cwd: sub\n")
        check(taskrun("proj/tasks.yaml"), 0)
        assert by_name(taskrun.summary())["where"]["stdout_tail"] == f"{taskrun.cwd / 'proj' / 'sub'}\n"

    def test_tasks_in_the_runners_folder_and_in_another_each_run_in_their_own_in_turn(self, taskrun):
        # The runner steps into a task's folder only when it is not its own, and back after each start.
        (taskrun.cwd / "sub").mkdir()
        taskrun.write("tasks.yaml", "version: 1\npool: 1\ntasks:\n"
                      + "".join(f"  t{i}:\n    cmd: pwd\n" + ("    cwd: sub\n" if i % 2 else "") for i in range(4)))
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())
        here, sub = f"{taskrun.cwd}\n", f"{taskrun.cwd / 'sub'}\n"
        assert [t[f"t{i}"]["stdout_tail"] for i in range(4)] == [here, sub, here, sub]
        assert taskrun.summary()["cwd"] == str(taskrun.cwd)

    def test_env_file_and_task_level_task_wins(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            env:
              ONLY_FILE: from-file
              BOTH: from-file
            tasks:
              show:
                cmd: echo "$ONLY_FILE $BOTH $ONLY_TASK $FROM_CALLER"
                env:
                  BOTH: from-task
                  ONLY_TASK: task
              plain: echo "$ONLY_FILE $BOTH $ONLY_TASK"
            """)
        check(taskrun("tasks.yaml", env={"FROM_CALLER": "caller", "BOTH": "caller"}), 0)
        t = by_name(taskrun.summary())
        assert t["show"]["stdout_tail"] == "from-file from-task task caller\n"
        assert t["plain"]["stdout_tail"] == "from-file from-file \n"

    def test_task_identity_reaches_the_command(self, taskrun):
        taskrun.write("tasks.yaml", 'version: 1\ntasks:\n  me: echo "$TASKRUN_TASK $TASKRUN_ATTEMPT"\n')
        check(taskrun("tasks.yaml"), 0)
        assert by_name(taskrun.summary())["me"]["stdout_tail"] == "me 1\n"

    def test_shell_is_honoured(self, taskrun):
        bash_only = "arr=(a b c); echo ${#arr[@]}"
        taskrun.write("tasks.yaml", f"version: 1\nshell: /bin/bash\ntasks:\n  count: '{bash_only}'\n")
        check(taskrun("tasks.yaml"), 0)
        assert by_name(taskrun.summary())["count"]["stdout_tail"] == "3\n"

    def test_default_shell_is_sh(self, taskrun):
        taskrun.write("tasks.yaml", 'version: 1\ntasks:\n  which: echo "$0"\n')
        check(taskrun("tasks.yaml"), 0)
        assert by_name(taskrun.summary())["which"]["stdout_tail"] == "/bin/sh\n"

    def test_list_command_runs_without_a_shell(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            tasks:
              literal:
                cmd: [echo, "$HOME", "a b", "*"]
            """)
        check(taskrun("tasks.yaml"), 0)
        t = by_name(taskrun.summary())["literal"]
        assert t["stdout_tail"] == "$HOME a b *\n"
        assert t["cmd"] == ["echo", "$HOME", "a b", "*"]


class TestCommandLine:
    def test_timeout_flag_overrides_the_default_not_a_tasks_own(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            timeout: 60
            kill_grace: 0.5
            tasks:
              default: sleep 300
              own:
                cmd: sleep 1
                timeout: 30
            """)
        check(taskrun("tasks.yaml", "--timeout", "500ms"), 1)
        t = by_name(taskrun.summary())
        assert (t["default"]["status"], t["default"]["timeout_s"]) == ("timeout", 0.5)
        assert (t["own"]["status"], t["own"]["timeout_s"]) == ("success", 30)
        assert t["default"]["reason"] == "timed out after 0.5s"

    def test_bad_timeout_value_exits_2(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
        r = check(taskrun("tasks.yaml", "--timeout", "soon"), 2)
        assert "--timeout" in r.stderr and "'soon' is not a duration" in r.stderr
        assert not (taskrun.cwd / "ran").exists()

    def test_unknown_option_exits_2(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
        check(taskrun("tasks.yaml", "--no-such-flag"), 2)
        assert not (taskrun.cwd / "ran").exists()

    def test_missing_task_file_exits_2(self, taskrun):
        r = check(taskrun("nowhere.yaml"), 2)
        assert "nowhere.yaml" in r.stderr
