"""`when:` (cleanup and rollback), `confirm:`, declared `resources` as locks on the
local pool, and `interactive:` tasks, through the real `taskrun` on real files.

Terminal cases run taskrun on a pseudo-terminal (the `pty` module) that is its
controlling terminal, as in a shell; "no terminal" cases run it in a session of
its own with stdin from /dev/null, so /dev/tty cannot be opened either.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import pytest

from conftest import by_name, check, taskrun_argv, wait_for


# --- when: always and on_failure ------------------------------------------------------

DEPLOY = """
    version: 1
    tasks:
      deploy: {cmd: 'echo deploying; exit %s'}
      health: {cmd: 'touch healthy', needs: [deploy]}
      rollback: {cmd: 'touch rolled-back', needs: [health], when: on_failure}
      cleanup: {cmd: 'touch cleaned', needs: [health], when: always}
      notify: {cmd: 'touch notified', needs: [rollback]}
"""


def test_after_a_failure_cleanup_and_rollback_run_and_the_run_still_fails(taskrun):
    taskrun.write("tasks.yaml", DEPLOY % 3)
    check(taskrun("tasks.yaml"), 1)
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"]) == ("failed", 1)
    tasks = by_name(summary)
    assert {n: (t["status"], t["reason"]) for n, t in tasks.items()} == {
        "deploy": ("failed", None),
        "health": ("skipped", "needs 'deploy', which failed"),
        "rollback": ("success", None),  # deploy failed: a need of a need counts
        "cleanup": ("success", None),
        "notify": ("success", None),
    }
    assert (taskrun.cwd / "rolled-back").exists() and (taskrun.cwd / "cleaned").exists()
    assert tasks["cleanup"]["started_at"] >= tasks["deploy"]["finished_at"]
    assert [tasks[n]["when"] for n in ("deploy", "rollback", "cleanup")] == ["on_success", "on_failure", "always"]


def test_without_a_failure_the_rollback_is_skipped_and_the_run_succeeds(taskrun):
    taskrun.write("tasks.yaml", DEPLOY % 0)
    r = check(taskrun("tasks.yaml"), 0)
    assert "skipped (when: on_failure, and nothing it needs failed)" in r.stdout
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"]) == ("success", 0)
    tasks = by_name(summary)
    assert (tasks["rollback"]["status"], tasks["rollback"]["reason"]) == (
        "skipped", "when: on_failure, and nothing it needs failed")
    # what needs a task skipped by its condition is skipped the same way, without failing the run
    assert (tasks["notify"]["status"], tasks["notify"]["reason"]) == ("skipped", "needs 'rollback', which was skipped")
    assert tasks["cleanup"]["status"] == "success"
    assert not (taskrun.cwd / "rolled-back").exists() and not (taskrun.cwd / "notified").exists()


def test_cleanup_runs_after_fail_fast_stopped_the_run(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 3
        fail_fast: true
        tasks:
          long: {cmd: 'touch started; sleep 60'}
          breaks: {cmd: 'while [ ! -e started ]; do sleep 0.02; done; exit 2'}
          later: {cmd: 'touch later', needs: [breaks]}
          cleanup: {cmd: 'touch cleaned', needs: [long, breaks], when: always, timeout: 30}
    """)
    started = time.monotonic()
    check(taskrun("tasks.yaml"), 1)
    assert time.monotonic() - started < 40  # not the 60 s of `long`
    summary = taskrun.summary()
    assert (summary["status"], summary["reason"]) == ("failed", "fail_fast: stopped after 'breaks' failed")
    tasks = by_name(summary)
    assert (tasks["long"]["status"], tasks["long"]["reason"]) == ("cancelled", "fail_fast: 'breaks' failed")
    assert tasks["later"]["status"] == "skipped"
    assert tasks["cleanup"]["status"] == "success"
    assert tasks["cleanup"]["started_at"] >= tasks["long"]["finished_at"]
    assert (taskrun.cwd / "cleaned").exists() and not (taskrun.cwd / "later").exists()


STOPPED = """
    version: 1
    kill_grace: 30
    tasks:
      long: {cmd: "trap 'touch termed; sleep %s; exit 1' TERM; touch started; while :; do sleep 0.05; done"}
      later: {cmd: 'touch later', needs: [long]}
      cleanup: {cmd: 'touch cleaned', needs: [long], when: always}
"""


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGINT, 130, "SIGINT"), (signal.SIGTERM, 143, "SIGTERM")])
def test_cleanup_runs_after_a_first_signal_and_the_run_still_exits_128_plus_n(taskrun, sig, code, name):
    taskrun.write("tasks.yaml", STOPPED % 0)
    p = taskrun.popen("tasks.yaml")
    wait_for(lambda: (taskrun.cwd / "started").exists(), what="the task to start")
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, out + err
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"], summary["signal"]) == ("cancelled", code, name)
    tasks = by_name(summary)
    assert [tasks[n]["status"] for n in ("long", "later", "cleanup")] == ["cancelled", "cancelled", "success"]
    assert (taskrun.cwd / "cleaned").exists() and not (taskrun.cwd / "later").exists()


def test_a_second_sigint_skips_the_cleanup_not_started_yet(taskrun):
    taskrun.write("tasks.yaml", STOPPED % 20)  # `long` takes 20 s to stop: the cleanup waits for it
    p = taskrun.popen("tasks.yaml")
    wait_for(lambda: (taskrun.cwd / "started").exists(), what="the task to start")
    started = time.monotonic()
    p.send_signal(signal.SIGINT)
    wait_for(lambda: (taskrun.cwd / "termed").exists(), what="the task to get its SIGTERM")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert time.monotonic() - started < 15  # not the 20 s of its trap
    assert p.returncode == 130, out + err
    tasks = by_name(taskrun.summary())
    assert (tasks["long"]["status"], tasks["long"]["signal"]) == ("cancelled", "SIGKILL")
    assert (tasks["cleanup"]["status"], tasks["cleanup"]["reason"]) == (
        "skipped", "not run: a second signal after interrupted (SIGINT)")
    assert not (taskrun.cwd / "cleaned").exists()


def test_a_when_that_is_no_when_points_to_if(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: {cmd: 'true', when: failure}\n")
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == ("tasks.yaml:3:20: tasks.a.when: 'failure' is not one of on_success, always, on_failure"
                        " (did you mean 'on_failure'?) (for a condition use if:)\n")


# --- resources: locks on the local pool ------------------------------------------------


def test_a_lock_of_capacity_1_never_lets_two_tasks_hold_it_at_once(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 4
        resources: {deploy: 1}
        tasks:
          host1: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          host2: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          host3: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          host4: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          free: {cmd: 'touch free-ran'}
    """)
    check(taskrun("tasks.yaml"), 0)
    tasks = by_name(taskrun.summary())
    assert (tasks["host1"]["resources"], tasks["free"]["resources"]) == ({"deploy": 1.0}, {})
    hosts = sorted((tasks[f"host{i}"] for i in range(1, 5)), key=lambda t: t["started_at"])
    for before, after in zip(hosts, hosts[1:]):
        assert after["started_at"] >= before["finished_at"], (before, after)
    # a task without the resource is not held back by it
    assert tasks["free"]["started_at"] < hosts[1]["started_at"]


def test_the_dry_run_and_the_listing_show_the_limits(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        resources: {deploy: 1}
        tasks:
          a: {cmd: 'true', resources: {deploy: 1}}
          b: {cmd: 'true', resources: {deploy: 1}, when: always, needs: [a]}
    """)
    r = check(taskrun("tasks.yaml", "-n"), 0)
    assert "resource deploy: capacity 1, held by a, b (one at a time)" in r.stdout
    assert "resources deploy=1  when always" in r.stdout
    listed = json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)["tasks"]
    assert [(t["when"], t["resources"], t["confirm"], t["interactive"]) for t in listed] == [
        ("on_success", {"deploy": 1.0}, None, False), ("always", {"deploy": 1.0}, None, False)]


def test_an_unknown_resource_and_one_over_capacity_are_positioned_errors(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        resources: {deploy: 1, db: 2}
        tasks:
          a: {cmd: 'true', resources: {deplyo: 1}}
          b: {cmd: 'true', resources: {db: 3}}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == (
        "tasks.yaml:4:32: tasks.a.resources.deplyo: unknown resource 'deplyo' (did you mean 'deploy'?):"
        " the file declares deploy, db in its top-level resources\n"
        "tasks.yaml:5:32: tasks.b.resources.db: needs 3 db, more than its capacity 2: the task could never start\n")
    assert not taskrun.run_dirs()


# --- on a terminal ------------------------------------------------------------------------


class Terminal:
    """taskrun on a pseudo-terminal that is its controlling terminal; what it writes is collected."""

    def __init__(self, taskrun, *args: str) -> None:
        self.master, slave = pty.openpty()

        def own_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(taskrun_argv() + list(args), cwd=taskrun.cwd, env=taskrun.env({"TERM": "dumb"}),
                                     stdin=slave, stdout=slave, stderr=slave, preexec_fn=own_terminal)
        os.close(slave)
        self.output = b""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            self.output += data

    def wait_for(self, text: str) -> None:
        wait_for(lambda: text.encode() in self.output, what=repr(text))

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def finish(self) -> int:
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=10)
        os.close(self.master)
        return code


CONFIRM = """
    version: 1
    tasks:
      build: {cmd: 'touch built'}
      deploy: {cmd: 'touch deployed', needs: [build], confirm: Deploy to production?}
"""


def test_confirm_yes_on_the_terminal_runs_the_plan(taskrun):
    taskrun.write("tasks.yaml", CONFIRM)
    term = Terminal(taskrun, "tasks.yaml")
    term.wait_for("taskrun: deploy: Deploy to production? [y/N] ")
    assert not (taskrun.cwd / "built").exists()  # asked before anything runs
    term.type("y\n")
    assert term.finish() == 0, term.output
    assert (taskrun.cwd / "built").exists() and (taskrun.cwd / "deployed").exists()


def test_confirm_no_runs_nothing_and_the_summary_says_cancelled(taskrun):
    taskrun.write("tasks.yaml", CONFIRM)
    term = Terminal(taskrun, "tasks.yaml")
    term.wait_for("Deploy to production? [y/N] ")
    term.type("n\n")
    assert term.finish() == 1, term.output
    assert not (taskrun.cwd / "built").exists() and not (taskrun.cwd / "deployed").exists()
    summary = taskrun.summary()
    reason = "not confirmed: 'deploy' asked 'Deploy to production?', the answer was 'n'"
    assert (summary["status"], summary["exit_code"], summary["reason"]) == ("cancelled", 1, reason)
    assert {(t["status"], t["reason"], t["pid"]) for t in summary["tasks"]} == {("cancelled", reason, None)}
    events = taskrun.events()  # the run's record is complete too
    assert (events[-1]["event"], events[-1]["status"], events[-1]["reason"]) == ("run_end", "cancelled", reason)


def test_confirm_without_a_terminal_exits_2_naming_the_tasks(taskrun):
    taskrun.write("tasks.yaml", CONFIRM)
    r = check(taskrun("tasks.yaml", start_new_session=True), 2)
    assert r.stderr == ("taskrun: task asks for confirmation ('deploy') and there is no terminal to ask on;"
                        " nothing ran (answer yes with --yes)\n")
    assert not (taskrun.cwd / "built").exists() and not taskrun.run_dirs()
    check(taskrun("tasks.yaml", "--yes", start_new_session=True), 0)
    assert (taskrun.cwd / "deployed").exists()


def test_a_confirm_of_a_task_not_in_the_plan_is_not_asked(taskrun):
    taskrun.write("tasks.yaml", CONFIRM)
    check(taskrun("tasks.yaml", "build", start_new_session=True), 0)
    assert (taskrun.cwd / "built").exists() and not (taskrun.cwd / "deployed").exists()


INTERACTIVE = """
    version: 1
    pool: 4
    tasks:
      before: {cmd: 'sleep 0.3'}
      ask: {cmd: 'read answer; echo "you said $answer"', interactive: true}
      beside: {cmd: 'sleep 0.3'}
"""


def test_an_interactive_task_gets_the_terminal_and_runs_alone(taskrun):
    taskrun.write("tasks.yaml", INTERACTIVE)
    term = Terminal(taskrun, "tasks.yaml")
    wait_for(lambda: any(p.name.startswith("ask.") for d in taskrun.run_dirs() for p in d.iterdir()),
             what="the interactive task to start")
    term.type("hello\n")
    assert term.finish() == 0, term.output
    assert b"you said hello" in term.output
    summary = taskrun.summary()
    tasks = by_name(summary)
    ask = tasks["ask"]
    for other in (tasks["before"], tasks["beside"]):  # nothing else ran while it did
        assert other["finished_at"] <= ask["started_at"] or other["started_at"] >= ask["finished_at"], (other, ask)
    note = "taskrun: output not captured: this task is interactive, its output went to the terminal\n"
    assert ask["stdout_tail"] == note
    assert Path(ask["stdout_log"]).read_text() == note


def test_an_interactive_task_is_refused_without_a_terminal(taskrun):
    taskrun.write("tasks.yaml", INTERACTIVE)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == ("taskrun: interactive task 'ask' needs a terminal, and stdin is not one; nothing ran"
                        " (run taskrun from a terminal, or leave them out with --skip)\n")
    assert not taskrun.run_dirs()
    r = check(taskrun("tasks.yaml", "-o", "-"), 2)  # its output would corrupt the summary on stdout
    assert r.stderr == ("taskrun: interactive task 'ask' writes to taskrun's stdout, where the summary goes (-o -):"
                        " write the summary to a file\n")
    assert not taskrun.run_dirs()
