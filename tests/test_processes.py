"""Each command's process tree through the real `taskrun`: its own session, stdin
from /dev/null, timeouts that reach grandchildren, the SIGTERM -> grace -> SIGKILL
ladder, and processes left behind. The `taskrun` fixture fails a test that
leaves any process alive; the upper bounds on durations only prove that taskrun
did not wait for a `sleep 300`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import by_name, check, taskrun_argv, wait_for
from runner.model import AttemptSpec
from runner.proc import DISPATCH_SLICE_NS, UNSURE_S, become_subreaper, group_members, launch

NOT_WAITED = 20  # seconds: far below any `sleep 300`, far above a noisy machine's delays
# A background process that leaves the command's session and group, then writes its
# pid to `escaped`; the command goes on only once the escape has happened.
ESCAPE = ("setsid sh -c 'echo $$ > escaped.tmp; mv escaped.tmp escaped; exec sleep 300' &"
          " while [ ! -e escaped ]; do sleep 0.01; done")


def run_one(taskrun, task_yaml: str, *args: str, code: int, head: str = "kill_grace: 0.5\n") -> dict:
    """Run a file with the one task `t` and return its summary record."""
    taskrun.write("tasks.yaml", f"version: 1\n{head}tasks:\n  t:\n" + task_yaml)
    check(taskrun("tasks.yaml", *args), code)
    return by_name(taskrun.summary())["t"]


class TestTimeout:
    def test_timeout_kills_the_whole_group_grandchildren_included(self, taskrun):
        t = run_one(taskrun, "    cmd: sleep 300 & sleep 300 & echo started; wait\n    timeout: 0.5\n", code=1)
        assert t["status"] == "timeout"
        assert t["exit_code"] is None and t["signal"] == "SIGTERM"
        assert t["reason"] == "timed out after 0.5s"
        assert t["attempts"][0]["timed_out"] is True
        assert t["stdout_tail"] == "started\n"
        assert 0.5 <= t["duration_s"] < NOT_WAITED

    def test_children_ended_by_the_timeouts_sigterm_are_not_leftovers(self, taskrun):
        # sh waits for its child `sleep`; both get the group's SIGTERM and end at once.
        taskrun.write("tasks.yaml", "version: 1\npool: 8\nkill_grace: 5\ntasks:\n"
                      + "".join(f"  t{i}:\n    cmd: sleep 300; echo never\n    timeout: 0.2\n" for i in range(8)))
        check(taskrun("tasks.yaml"), 1)
        tasks = taskrun.summary()["tasks"]
        assert [(t["status"], t["stray_killed"], t["reason"]) for t in tasks] == [
            ("timeout", 0, "timed out after 0.2s")] * 8

    def test_grandchildren_surviving_sigterm_are_counted_when_killed(self, taskrun):
        # the inner sh and its sleep ignore SIGTERM: both are there for the SIGKILL
        t = run_one(taskrun, "    cmd: sh -c \"trap '' TERM; sleep 300; echo never\" & wait\n    timeout: 0.2\n",
                    code=1)
        assert (t["status"], t["signal"], t["stray_killed"]) == ("timeout", "SIGTERM", 2)

    def test_grandchildren_get_sigterm_first_to_clean_up(self, taskrun):
        # a long grace: the run ends early only if the grandchild got SIGTERM, not a late SIGKILL
        cleanup = 'trap \\"echo term > cleaned; exit 0\\" TERM; while :; do sleep 0.05; done'
        t = run_one(taskrun, f'    cmd: sh -c "{cleanup}" & wait\n    timeout: 0.5\n    kill_grace: 30\n', code=1)
        assert (t["status"], t["signal"]) == ("timeout", "SIGTERM")
        assert (taskrun.cwd / "cleaned").read_text() == "term\n"
        assert t["duration_s"] < NOT_WAITED
        assert taskrun.summary()["duration_s"] < NOT_WAITED

    def test_nested_shells_are_reached(self, taskrun):
        t = run_one(taskrun, "    cmd: sh -c 'sh -c \"sleep 300\" & sleep 300 & wait'\n    timeout: 0.5\n", code=1)
        assert (t["status"], t["signal"]) == ("timeout", "SIGTERM")
        assert t["duration_s"] < NOT_WAITED

    def test_a_command_ignoring_sigterm_gets_sigkill_after_the_grace(self, taskrun):
        t = run_one(taskrun, "    cmd: trap '' TERM; sleep 300\n    timeout: 0.5\n", code=1)
        assert t["status"] == "timeout"
        assert t["exit_code"] is None and t["signal"] == "SIGKILL"
        assert 0.5 + 0.5 <= t["duration_s"] < NOT_WAITED

    def test_task_kill_grace_wins_over_the_files(self, taskrun):
        t = run_one(taskrun, "    cmd: trap '' TERM; sleep 300\n    timeout: 0.2\n    kill_grace: 1.5\n",
                    code=1, head="kill_grace: 0.1\n")
        assert t["signal"] == "SIGKILL"
        assert t["duration_s"] >= 0.2 + 1.5

    def test_file_kill_grace_replaces_the_default(self, taskrun):
        t = run_one(taskrun, "    cmd: trap '' TERM; sleep 300\n    timeout: 0.2\n", code=1,
                    head="kill_grace: 0.3\n")
        assert t["signal"] == "SIGKILL"
        # the default grace (5s) would make it at least 5.2s
        assert 0.2 + 0.3 <= t["duration_s"] < 0.2 + 5

    @pytest.mark.slow
    def test_default_kill_grace_is_five_seconds(self, taskrun):
        t = run_one(taskrun, "    cmd: trap '' TERM; sleep 300\n    timeout: 0.2\n", code=1, head="")
        assert t["signal"] == "SIGKILL"
        assert 0.2 + 5 <= t["duration_s"] < 0.2 + 5 + NOT_WAITED

    def test_a_grandchild_holding_stdout_open_does_not_hang_the_run(self, taskrun):
        # the grandchild ignores SIGTERM and keeps the task's stdout open
        t = run_one(taskrun, "    cmd: echo before; sh -c \"trap '' TERM; sleep 300\" & wait\n    timeout: 0.5\n",
                    code=1)
        assert t["status"] == "timeout"
        assert t["stdout_tail"] == "before\n"
        assert t["duration_s"] < NOT_WAITED

    def test_a_process_escaped_with_setsid_is_killed_on_timeout(self, taskrun):
        t = run_one(taskrun, f"    cmd: {ESCAPE}; sleep 300\n    timeout: 0.5\n", code=1)
        assert t["status"] == "timeout"
        assert t["stray_killed"] >= 1
        assert _gone(int((taskrun.cwd / "escaped").read_text()))

    def test_the_shortest_timeout_fires_at_once(self, taskrun):
        # (a timeout of 0 is refused: test_durations.py::test_a_zero_timeout_is_refused_where_it_is_written)
        t = run_one(taskrun, "    cmd: sleep 300\n    timeout: 1ms\n", code=1)
        assert t["status"] == "timeout"
        assert t["duration_s"] < NOT_WAITED


class TestLeftovers:
    def test_background_child_left_running_is_killed_and_the_task_succeeds(self, taskrun):
        t = run_one(taskrun, "    cmd: sleep 300 & echo ok\n", code=0)
        assert t["status"] == "success"
        assert t["exit_code"] == 0 and t["signal"] is None
        assert t["stray_killed"] >= 1
        assert t["stdout_tail"] == "ok\n"
        assert t["duration_s"] < NOT_WAITED
        assert taskrun.summary()["duration_s"] < NOT_WAITED

    def test_a_leftover_that_ignores_sigterm_is_killed_after_the_grace(self, taskrun):
        t = run_one(taskrun, "    cmd: sh -c \"trap '' TERM; sleep 300\" & echo ok\n", code=0)
        assert (t["status"], t["exit_code"]) == ("success", 0)
        assert t["stray_killed"] >= 1
        assert taskrun.summary()["duration_s"] < NOT_WAITED

    def test_a_leftover_escaped_with_setsid_is_killed(self, taskrun):
        t = run_one(taskrun, f"    cmd: {ESCAPE}; echo ok\n", code=0)
        assert (t["status"], t["exit_code"]) == ("success", 0)
        assert t["stray_killed"] >= 1
        assert _gone(int((taskrun.cwd / "escaped").read_text()))
        assert taskrun.summary()["duration_s"] < NOT_WAITED

    def test_a_failing_command_with_a_leftover_keeps_its_exit_code(self, taskrun):
        t = run_one(taskrun, "    cmd: sleep 300 & exit 4\n", code=1)
        assert (t["status"], t["exit_code"]) == ("failed", 4)
        assert t["stray_killed"] >= 1

    def test_leftovers_of_tasks_ending_together_are_each_killed_and_counted_on_their_own_task(self, taskrun):
        # Each waits until all four are ready, so they end within moments of each other and the
        # runner sees several ends in one wake (one look at its children answers for all of them).
        ready = "touch ready.$TASKRUN_TASK; while [ $(ls ready.* | wc -l) -lt 4 ]; do sleep 0.01; done"
        taskrun.write("tasks.yaml", "version: 1\npool: 4\nkill_grace: 0.5\ntasks:\n"
                      f"  a:\n    cmd: 'sleep 300 & {ready}'\n"
                      f"  b:\n    cmd: '{ready}'\n"
                      f"  c:\n    cmd: 'sleep 300 & sleep 300 & {ready}'\n"
                      f"  d:\n    cmd: '{ready}'\n")
        check(taskrun("tasks.yaml"), 0)
        tasks = by_name(taskrun.summary())
        assert [(n, t["status"], t["stray_killed"], t["attempts"][0]["reason"]) for n, t in tasks.items()] == [
            ("a", "success", 1, "stopped 1 process(es) the command left running"),
            ("b", "success", 0, None),
            ("c", "success", 2, "stopped 2 process(es) the command left running"),
            ("d", "success", 0, None),
        ]
        assert taskrun.summary()["duration_s"] < NOT_WAITED

    def test_no_leftover_means_none_killed(self, taskrun):
        t = run_one(taskrun, "    cmd: sleep 0.1 & wait; echo ok\n", code=0)
        assert t["stray_killed"] == 0
        assert t["reason"] is None


class TestSessionAndStdin:
    def test_stdin_is_dev_null(self, taskrun):
        t = run_one(taskrun, "    cmd: readlink /proc/self/fd/0\n", code=0)
        assert t["stdout_tail"] == "/dev/null\n"

    def test_cat_ends_at_once(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t:\n    cmd: cat\n    timeout: 60\n")
        check(taskrun("tasks.yaml", input="taskrun's own stdin is not for the tasks\n"), 0)
        t = by_name(taskrun.summary())["t"]
        assert (t["status"], t["stdout_tail"]) == ("success", "")
        assert t["duration_s"] < NOT_WAITED

    def test_reading_stdin_gets_eof(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: if read line; then echo got; else echo eof; fi\n")
        check(taskrun("tasks.yaml", input="a line\n"), 0)
        assert by_name(taskrun.summary())["t"]["stdout_tail"] == "eof\n"

    def test_each_command_leads_its_own_session_and_group(self, taskrun):
        t = run_one(taskrun, "    cmd: ps -o pid=,pgid=,sid= -p $$\n", code=0)
        pid, pgid, sid = (int(x) for x in t["stdout_tail"].split())
        assert pid == pgid == sid == t["pid"]
        assert sid != os.getsid(0)

    def test_stdout_and_stderr_are_kept_apart(self, taskrun):
        t = run_one(taskrun, "    cmd: echo out; echo err >&2\n", code=0)
        assert (t["stdout_tail"], t["stderr_tail"]) == ("out\n", "err\n")


class TestKilledBySignal:
    @pytest.mark.parametrize("sig", ["KILL", "TERM"])
    def test_a_command_killed_by_a_signal(self, taskrun, sig):
        t = run_one(taskrun, f"    cmd: kill -{sig} $$\n", code=1)
        assert t["status"] == "failed"
        assert t["exit_code"] is None and t["signal"] == f"SIG{sig}"
        assert t["attempts"][0]["timed_out"] is False


def _gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


class TestStopRace:
    """The attempt itself, in this process: the moment between a command's end and the loop seeing it."""

    @staticmethod
    def spec(tmp_path, script: str) -> AttemptSpec:
        return AttemptSpec(task="t", attempt=1, argv=("/bin/sh", "-c", script), env=tuple(os.environ.items()),
                           cwd=str(tmp_path), timeout_s=None, kill_grace_s=5.0,
                           stdout_path=str(tmp_path / "t.stdout"), stderr_path=str(tmp_path / "t.stderr"))

    def test_a_command_that_failed_before_the_stop_reached_it_keeps_its_failure(self, tmp_path):
        # fail_fast stops every running task the moment one fails; one that had just failed on its own,
        # its end not yet seen by the loop, is `failed` with its own exit code, not `cancelled`.
        attempt = launch(self.spec(tmp_path, "exit 3"))
        os.waitid(os.P_PID, attempt.pid, os.WEXITED | os.WNOWAIT)  # it has ended; the loop has not looked yet
        attempt.stop(reason="fail_fast: 'other' failed", cancelled=True)
        attempt.on_exit()
        r = attempt.result
        assert (r.exit_code, r.signal, r.cancelled, r.timed_out, r.reason) == (3, None, False, False, None)

    def test_a_running_command_the_stop_reaches_is_cancelled(self, tmp_path):
        attempt = launch(self.spec(tmp_path, "exec sleep 300"))
        attempt.stop(reason="fail_fast: 'other' failed", cancelled=True)
        os.waitid(os.P_PID, attempt.pid, os.WEXITED | os.WNOWAIT)
        attempt.on_exit()
        r = attempt.result
        assert (r.exit_code, r.signal, r.cancelled, r.reason) == (None, "SIGTERM", True, "fail_fast: 'other' failed")


class TestUnreadableEnvironment:
    """An adopted child whose environment reads empty (for a moment in every exec) may be an
    ended attempt's escapee: the attempt looks again before it finishes, for a bounded time."""

    def test_an_ended_attempt_looks_again_at_a_child_it_cannot_tell_then_finishes(self, tmp_path):
        assert become_subreaper()
        # env -i: an escapee whose environment stays empty, as it is in the middle of an exec
        script = ("setsid sh -c 'echo $$ > esc.tmp; mv esc.tmp esc; exec env -i sleep 300' &"
                  " while [ ! -e esc ]; do sleep 0.01; done")
        attempt = launch(TestStopRace.spec(tmp_path, script))
        os.waitid(os.P_PID, attempt.pid, os.WEXITED | os.WNOWAIT)
        escapee = int((tmp_path / "esc").read_text())
        try:
            wait_for(lambda: Path(f"/proc/{escapee}/cmdline").read_bytes().startswith(b"sleep"), what="its exec")
            unsure: list[int] = []
            assert group_members(attempt.pid, attempt.attempt_id, attempt.pid, unsure=unsure) == ([], [])
            assert unsure == [escapee]
            attempt.on_exit()
            assert not attempt.done and attempt.next_attention() is not None  # held, to look again
            while not attempt.done:
                time.sleep(max(0.0, attempt.next_attention() - time.monotonic()))
                attempt.tick()
            r = attempt.result
            assert (r.exit_code, r.stray_killed, r.reason) == (0, 0, None)  # not this attempt's, as far as it can tell
            assert r.finished_at - r.started_at < UNSURE_S
        finally:
            os.kill(escapee, signal.SIGKILL)
            os.waitpid(escapee, 0)


def _slice_line(text: str) -> str | None:
    return next((line.split(":")[1].strip() for line in text.splitlines() if line.startswith("se.slice")), None)


def _kernel() -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", os.uname().release)[:2])


def test_the_runner_asks_for_short_time_slices_and_its_commands_keep_the_defaults(taskrun):
    default = _slice_line(subprocess.run(["cat", "/proc/self/sched"], capture_output=True, text=True).stdout)
    if default is None:
        pytest.skip("this kernel does not show a process's time slice")
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          show: "cat /proc/self/sched > command.txt; cat /proc/$PPID/sched > runner.txt; nice > nice.txt"
    """)
    check(subprocess.run(["nice", "-n", "3", *taskrun_argv(), "tasks.yaml"], cwd=taskrun.cwd, env=taskrun.env(),
                         capture_output=True, text=True, timeout=60), 0)
    assert _slice_line((taskrun.cwd / "command.txt").read_text()) == default  # reset in what it starts
    assert (taskrun.cwd / "nice.txt").read_text() == "3\n"  # the nice value it was started with
    if _kernel() >= (6, 12):  # where a slice can be asked for
        assert _slice_line((taskrun.cwd / "runner.txt").read_text()) == str(DISPATCH_SLICE_NS)
