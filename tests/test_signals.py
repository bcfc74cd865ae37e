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
    assert s["counts"] == {"success": 1, "failed": 0, "timeout": 0, "skipped": 0, "cancelled": 4}
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
