"""Durations as long as the file allows, and none that is nonsense.

A timeout or retry delay up to the loader's maximum (366 days) is honoured:
no single wait is longer than the OS can take (epoll counts milliseconds in a
C int, about 24.8 days), so a longer deadline is reached in several waits. A
timeout of zero is refused where it is written.
"""

from __future__ import annotations

import signal
import subprocess

import pytest

from conftest import by_name, check, read_events_file, wait_for
from runner.durations import MAX_DURATION_S, parse_duration, parse_timeout
from runner.proc import MAX_WAIT_S, clamp_wait

LONGEST = "8784h"  # 366 days, the longest duration a task file may hold
OVER_EPOLL = "600h"  # 25 days: one epoll_wait cannot take it


def test_the_longest_duration_is_beyond_one_wait_and_each_wait_fits():
    assert parse_duration(LONGEST) == MAX_DURATION_S
    assert parse_duration(OVER_EPOLL) * 1000 > 2**31 - 1
    assert clamp_wait(MAX_DURATION_S) == MAX_WAIT_S and MAX_WAIT_S * 1000 < 2**31 - 1
    assert clamp_wait(-1.0) == 0.0 and clamp_wait(None) is None and clamp_wait(0.25) == 0.25


@pytest.mark.parametrize("output", ["quiet", "stream"])
@pytest.mark.parametrize("timeout", [OVER_EPOLL, LONGEST])
def test_a_long_timeout_on_a_command_that_ends_at_once(taskrun, output, timeout):
    # quiet: nothing else caps the loop's wait, the timeout alone is its deadline
    taskrun.write("tasks.yaml", f"""
        version: 1
        output: {output}
        tasks:
          quick: {{cmd: "echo done", timeout: {timeout}}}
          next: {{cmd: "echo next", needs: [quick], timeout: {timeout}}}
    """)
    r = check(taskrun("tasks.yaml"), 0)
    assert "OverflowError" not in r.stderr
    tasks = by_name(taskrun.summary())
    assert {name: (t["status"], t["exit_code"]) for name, t in tasks.items()} == {
        "quick": ("success", 0), "next": ("success", 0)}
    assert tasks["quick"]["timeout_s"] == parse_duration(timeout)


def test_a_long_retry_delay_waits_and_sigterm_ends_it_at_once(taskrun):
    taskrun.write("tasks.yaml", f"""
        version: 1
        output: quiet
        tasks:
          flaky: {{cmd: "echo once; exit 1", retries: 1, retry_delay: {LONGEST}}}
          fine: "true"
    """)
    proc = taskrun.popen("tasks.yaml")
    events = taskrun.cwd / ".taskrun" / "runs"

    def retry_planned():
        logs = list(events.glob("*/events.jsonl"))
        lines = read_events_file(logs[0]) if logs else []
        if not any(e["event"] == "task_end" and e["task"] == "fine" for e in lines):
            return []
        return [e for e in lines if e["event"] == "attempt_end" and e.get("retry_in_s")]

    (ended,) = wait_for(retry_planned, what="`fine` to end and `flaky` to fail with a retry planned")
    assert ended["retry_in_s"] == MAX_DURATION_S
    assert proc.poll() is None  # waiting for the retry, not crashed
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "OverflowError" not in err
    summary = taskrun.summary()
    assert summary["signal"] == "SIGTERM"
    tasks = by_name(summary)
    assert (tasks["fine"]["status"], tasks["flaky"]["status"]) == ("success", "cancelled")
    assert [a["exit_code"] for a in tasks["flaky"]["attempts"]] == [1]


def test_a_zero_timeout_is_refused_where_it_is_written(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        timeout: 0s
        tasks:
          a:
            cmd: "touch ran"
            timeout: 0
          b: {cmd: "touch ran", timeout: "0ms", kill_grace: 0, retry_delay: 0}
    """)
    for args in (("tasks.yaml",), ("--validate", "tasks.yaml")):
        r = check(taskrun(*args), 2)
        assert r.stderr.splitlines() == [
            "tasks.yaml:2:1: timeout: a timeout must be positive; leave it out for none (got '0s')",
            "tasks.yaml:6:5: tasks.a.timeout: a timeout must be positive; leave it out for none (got 0)",
            "tasks.yaml:7:25: tasks.b.timeout: a timeout must be positive; leave it out for none (got '0ms')",
        ]
    assert not (taskrun.cwd / "ran").exists()


@pytest.mark.parametrize("value", ["0", "0s", "0.0"])
def test_a_zero_timeout_flag_is_a_usage_error(taskrun, value):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          a: "touch ran"
    """)
    r = check(taskrun("tasks.yaml", "--timeout", value), 2)
    assert r.stderr == f"taskrun: --timeout: a timeout must be positive; leave it out for none (got {value!r})\n"
    assert not (taskrun.cwd / "ran").exists()


def test_parse_timeout_takes_any_positive_duration():
    assert parse_timeout("1ms") == 0.001
    assert parse_timeout(LONGEST) == MAX_DURATION_S
    with pytest.raises(ValueError, match="must be positive"):
        parse_timeout(0)
