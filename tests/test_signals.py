"""Stopping a run from outside: SIGINT, SIGTERM and SIGHUP to the real `taskrun`.

Each test waits for its tasks to say they are running (a file they create)
before it sends the signal; the `taskrun` fixture then proves no process of
the run is left.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from conftest import by_name

NOT_WAITED = 20  # seconds: far below any `sleep 300`


def wait_for(*paths: Path, proc=None, timeout: float = 20) -> None:
    """Poll until every file exists (the tasks are running), with a deadline."""
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"taskrun ended early with {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}")
        if time.monotonic() > deadline:
            pytest.fail(f"not created within {timeout}s: {[str(p) for p in paths if not p.exists()]}")
        time.sleep(0.01)


def finish(proc, timeout: float = NOT_WAITED) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except Exception:
        proc.kill()
        proc.communicate()
        raise
    assert "Traceback" not in err
    return out, err


FILE = """
    version: 1
    pool: 2
    kill_grace: 0.5
    tasks:
      quick: echo quick
      one:
        cmd: sleep 300 & touch one-running; wait
        needs: [quick]
      two:
        cmd: sleep 300 & touch two-running; wait
        needs: [quick]
      waiting:
        cmd: touch waiting-ran
        needs: [quick]
      after-one:
        cmd: touch after-one-ran
        needs: [one]
    """


@pytest.mark.parametrize("sig, code, reason", [
    (signal.SIGINT, 130, "interrupted (SIGINT)"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (signal.SIGHUP, 129, "hung up (SIGHUP)"),
])
def test_a_signal_stops_the_run_and_the_summary_records_it(taskrun, sig, code, reason):
    taskrun.write("tasks.yaml", FILE)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "one-running", taskrun.cwd / "two-running", proc=proc)
    began = time.monotonic()
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == code, err
    assert time.monotonic() - began < NOT_WAITED

    s = taskrun.summary()
    assert (s["status"], s["exit_code"], s["signal"], s["reason"]) == ("cancelled", code, sig.name, reason)
    t = by_name(s)
    assert [x["name"] for x in s["tasks"]] == ["quick", "one", "two", "waiting", "after-one"]
    assert t["quick"]["status"] == "success"
    for name in ("one", "two"):  # running: stopped, their trees killed
        assert t[name]["status"] == "cancelled"
        assert t[name]["reason"] == reason
        assert t[name]["attempts"][0]["cancelled"] is True
        assert (t[name]["exit_code"], t[name]["signal"]) == (None, "SIGTERM")
    for name in ("waiting", "after-one"):  # never started
        assert t[name]["status"] == "cancelled"
        assert t[name]["reason"] == reason
        assert t[name]["attempts"] == [] and t[name]["pid"] is None
    assert s["counts"] == {"success": 1, "failed": 0, "timeout": 0, "skipped": 0, "cancelled": 4, "up_to_date": 0}
    assert not (taskrun.cwd / "waiting-ran").exists()
    assert not (taskrun.cwd / "after-one-ran").exists()
    assert "cancelled" in out  # the closing table still printed


def test_a_task_ignoring_sigterm_is_killed_after_the_grace(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.5
        tasks:
          stubborn: trap '' TERM; touch running; sleep 300
        """)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "running", proc=proc)
    proc.send_signal(signal.SIGINT)
    finish(proc)
    assert proc.returncode == 130
    t = by_name(taskrun.summary())["stubborn"]
    assert (t["status"], t["exit_code"], t["signal"]) == ("cancelled", None, "SIGKILL")


def test_a_second_signal_does_not_wait_for_the_grace(taskrun):
    # The task survives SIGTERM (and says so); only SIGKILL ends it, 60s later unless hurried.
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 60
        tasks:
          stubborn: trap 'touch got-term' TERM; touch running; while :; do sleep 0.05 || :; done
        """)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "running", proc=proc)
    began = time.monotonic()
    proc.send_signal(signal.SIGINT)
    wait_for(taskrun.cwd / "got-term", proc=proc)
    proc.send_signal(signal.SIGINT)
    finish(proc)
    assert proc.returncode == 130
    assert time.monotonic() - began < NOT_WAITED
    t = by_name(taskrun.summary())["stubborn"]
    assert (t["status"], t["signal"]) == ("cancelled", "SIGKILL")


def test_the_summary_is_written_where_asked_on_a_signal(taskrun):
    taskrun.write("tasks.yaml", "version: 1\nkill_grace: 0.5\ntasks:\n  long: touch running; sleep 300\n")
    (taskrun.cwd / "out").mkdir()
    proc = taskrun.popen("tasks.yaml", "-o", "out/run.json")
    wait_for(taskrun.cwd / "running", proc=proc)
    proc.send_signal(signal.SIGTERM)
    finish(proc)
    assert proc.returncode == 143
    s = taskrun.summary("out/run.json")
    assert (s["status"], s["signal"]) == ("cancelled", "SIGTERM")
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


def test_a_signal_during_a_retry_delay_cancels_the_task(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          flaky:
            cmd: touch failed-once; exit 1
            retries: 3
            retry_delay: 300
        """)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "failed-once", proc=proc)
    proc.send_signal(signal.SIGINT)
    finish(proc)
    assert proc.returncode == 130
    t = by_name(taskrun.summary())["flaky"]
    assert t["status"] == "cancelled"
    assert len(t["attempts"]) == 1


# Every signal whose default action would end taskrun: caught like SIGTERM. (SIGPIPE and
# SIGXFSZ are ignored by Python, so a failed write is reported, not fatal; the faults a
# process raises on itself, SIGSEGV and the like, cannot be resumed from and are not caught.)
@pytest.mark.parametrize("name", ["SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU", "SIGVTALRM",
                                  "SIGPROF", "SIGRTMIN+3"])
def test_every_signal_that_would_end_taskrun_stops_the_run_and_records_it(taskrun, name):
    sig = signal.SIGRTMIN + 3 if name == "SIGRTMIN+3" else getattr(signal, name)
    taskrun.write("tasks.yaml", FILE)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "one-running", taskrun.cwd / "two-running", proc=proc)
    proc.send_signal(sig)
    out, err = finish(proc)
    assert proc.returncode == 128 + sig, err
    s = taskrun.summary()
    assert (s["status"], s["exit_code"], s["signal"], s["reason"]) == ("cancelled", 128 + sig, name, f"stopped by {name}")
    t = by_name(s)
    assert t["quick"]["status"] == "success"
    for task in ("one", "two"):
        assert (t[task]["status"], t[task]["signal"], t[task]["reason"]) == ("cancelled", "SIGTERM", f"stopped by {name}")
    assert s["counts"]["cancelled"] == 4
    assert "cancelled" in out


def _ignore_signals() -> None:
    for sig in (signal.SIGUSR1, signal.SIGTSTP, signal.SIGHUP, signal.SIGPIPE, signal.SIGRTMIN + 5):
        signal.signal(sig, signal.SIG_IGN)


def test_commands_start_with_every_signal_at_its_default(taskrun):
    # taskrun started the way nohup or a background job starts it (signals ignored), and Python
    # ignores SIGPIPE and SIGXFSZ itself: none of it reaches the command.
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  show: grep -E '^Sig(Ign|Blk):' /proc/self/status\n")
    proc = taskrun.popen("tasks.yaml", preexec_fn=_ignore_signals)
    finish(proc)
    assert proc.returncode == 0
    lines = dict(line.split(":\t") for line in by_name(taskrun.summary())["show"]["stdout_tail"].splitlines())
    assert int(lines["SigBlk"], 16) == 0
    assert int(lines["SigIgn"], 16) & ~(0b11 << 31) == 0, lines  # 32 and 33 belong to the C library


def test_a_stopped_task_runs_its_cleanup_at_once_when_stopped(taskrun):
    # The command stops itself (SIGSTOP, as a debugger or Ctrl-Z would): SIGCONT follows SIGTERM, so its trap
    # runs at the timeout instead of the SIGKILL a minute later.
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 60
        tasks:
          frozen:
            cmd: trap 'touch cleaned; exit 7' TERM; touch running; kill -STOP $$; sleep 300
            timeout: 1
        """)
    began = time.monotonic()
    proc = taskrun.popen("tasks.yaml")
    finish(proc, timeout=NOT_WAITED + 30)
    assert proc.returncode == 1
    assert time.monotonic() - began < 40  # far below the 60 s grace
    t = by_name(taskrun.summary())["frozen"]
    assert (t["status"], t["exit_code"], t["signal"], t["reason"]) == ("timeout", 7, None, "timed out after 1s")
    assert (taskrun.cwd / "cleaned").exists()


def test_sigpipe_and_sigxfsz_do_not_stop_the_run(taskrun):
    # Python ignores both: a write that fails (a closed console, a file over its size limit) is an error taskrun
    # reports where it happens, not the end of the run.
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          wait: touch running; while [ ! -e go ]; do sleep 0.05; done
        """)
    proc = taskrun.popen("tasks.yaml")
    wait_for(taskrun.cwd / "running", proc=proc)
    proc.send_signal(signal.SIGPIPE)
    proc.send_signal(signal.SIGXFSZ)
    (taskrun.cwd / "go").touch()
    finish(proc)
    assert proc.returncode == 0
    s = taskrun.summary()
    assert (s["status"], s["signal"], by_name(s)["wait"]["status"]) == ("success", None, "success")
