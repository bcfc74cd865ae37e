"""No record lost: the event log, the summary under SIGKILL, full and read-only disks."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT, by_name, read_events_file, validate_summary, wait_for


def test_the_event_log_records_every_start_and_end_in_order(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        tasks:
          ok: echo ok
          flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1}
          bad: exit 4
          skipped: {cmd: echo never, needs: [bad]}
          slow: {cmd: sleep 30, timeout: 0.2, kill_grace: 0.2}
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 1
    summary = taskrun.summary()
    events = taskrun.events()
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
    assert events[0]["run_id"] == summary["run_id"]
    assert events[0]["log_dir"] == summary["log_dir"]
    assert events[0]["summary"] == str(taskrun.cwd / "taskrun-summary.json")
    assert (events[-1]["status"], events[-1]["exit_code"]) == ("failed", 1)
    assert events[-1]["counts"] == {"success": 2, "failed": 1, "timeout": 1, "skipped": 1, "cancelled": 0, "up_to_date": 0}
    kinds = [(e["event"], e.get("task"), e.get("attempt")) for e in events[1:-1]]
    assert kinds == [
        ("task_start", "ok", 1), ("attempt_end", "ok", 1), ("task_end", "ok", None),
        ("task_start", "flaky", 1), ("attempt_end", "flaky", 1),
        ("task_start", "flaky", 2), ("attempt_end", "flaky", 2), ("task_end", "flaky", None),
        ("task_start", "bad", 1), ("attempt_end", "bad", 1), ("task_end", "bad", None), ("task_end", "skipped", None),
        ("task_start", "slow", 1), ("attempt_end", "slow", 1), ("task_end", "slow", None),
    ]
    tasks = by_name(summary)
    starts = {(e["task"], e["attempt"]): e for e in events if e["event"] == "task_start"}
    ends = {(e["task"], e["attempt"]): e for e in events if e["event"] == "attempt_end"}
    for name, task in tasks.items():
        for i, attempt in enumerate(task["attempts"], start=1):
            assert starts[(name, i)]["pid"] == attempt["pid"] == ends[(name, i)]["pid"]
            assert starts[(name, i)]["slot"] == attempt["slot"] == 0  # pool 1: one slot
            assert ends[(name, i)]["exit_code"] == attempt["exit_code"]
            assert ends[(name, i)]["started_at"] == attempt["started_at"]
    assert ends[("flaky", 1)]["retry_in_s"] == 0 and ends[("flaky", 2)]["retry_in_s"] is None
    assert ends[("slow", 1)]["timed_out"] is True
    skipped = next(e for e in events if e.get("task") == "skipped")
    assert skipped == {"event": "task_end", "ts": skipped["ts"], "task": "skipped", "status": "skipped",
                       "exit_code": None, "attempts": 0, "reason": "needs 'bad', which failed"}
    assert (taskrun.run_dirs()[0] / "events.jsonl").stat().st_mode & 0o777 == 0o600


def test_each_run_has_a_fresh_event_log(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo a\n")
    assert taskrun("tasks.yaml").returncode == 0
    assert taskrun("tasks.yaml").returncode == 0
    first, second = taskrun.run_dirs()
    assert [e["event"] for e in taskrun.events(first)] == [e["event"] for e in taskrun.events(second)]
    assert taskrun.events(first)[0]["run_id"] != taskrun.events(second)[0]["run_id"]


def test_a_sigkilled_run_keeps_every_finished_task_in_its_event_log(taskrun):
    lines = "\n".join(f"  t{i}: {{cmd: ['true']}}" for i in range(300))
    taskrun.write("tasks.yaml", f"version: 1\npool: 4\ntasks:\n  stuck: sleep 300\n{lines}\n")
    taskrun.expect_orphans()
    p = taskrun.popen("tasks.yaml", stdout=subprocess.DEVNULL)
    path = wait_for(lambda: taskrun.run_dirs() if (taskrun.cwd / ".taskrun/runs").exists() else None,
                    what="the log folder")[0] / "events.jsonl"
    seen = wait_for(lambda: [e for e in read_events_file(path) if e["event"] == "task_end"][:50] if len(
        [e for e in read_events_file(path) if e["event"] == "task_end"]) >= 50 else None, what="50 tasks to end")
    p.kill()
    p.communicate(timeout=30)
    events = taskrun.events(path.parent)  # every line complete, each valid
    ended = [e["task"] for e in events if e["event"] == "task_end"]
    assert [e["task"] for e in seen] == ended[:50]
    assert all(e["status"] == "success" for e in events if e["event"] == "task_end")
    attempt_ends = {e["task"] for e in events if e["event"] == "attempt_end"}
    assert set(ended) <= attempt_ends
    assert events[-1]["event"] != "run_end"
    r = taskrun("--recover", str(path.parent))
    assert r.returncode == 0 and "stopped" in r.stderr.splitlines()[-1]


WRITER = textwrap.dedent("""
    import sys
    from runner.target import write_atomic
    target, a, b = sys.argv[1:]
    texts = [open(a).read(), open(b).read()]
    print("ready", flush=True)
    i = 0
    while True:
        write_atomic(target, texts[i % 2])
        i += 1
""")


def test_a_summary_replaced_under_sigkill_is_always_the_old_or_the_new_one(tmp_path):
    big = {"tasks": [{"name": f"t{i}", "stdout_tail": "x" * 200} for i in range(20_000)]}  # about 5 MB
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({**big, "which": "a"}))
    b.write_text(json.dumps({**big, "which": "b"}))
    target = tmp_path / "summary.json"
    target.write_text(a.read_text())
    rng = random.Random(5)
    for _ in range(15):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(a), str(b)], cwd=ROOT,
                             stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert p.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, 0.2))  # a random moment, not synchronisation
        p.kill()
        p.communicate()
        data = json.loads(target.read_text())
        assert data["which"] in ("a", "b") and len(data["tasks"]) == 20_000
    assert target.stat().st_mode & 0o777 == 0o600
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".summary.json.")]
    assert len(leftovers) <= 15  # a killed writer may leave its temporary file, never a broken summary


def test_taskrun_killed_while_it_writes_the_summary_leaves_the_previous_one_or_a_complete_one(taskrun):
    lines = "\n".join(f"  t{i}: {{cmd: [echo, '{'y' * 200}']}}" for i in range(600))
    taskrun.write("tasks.yaml", f"version: 1\npool: 64\ntasks:\n{lines}\n")
    taskrun.expect_orphans()
    previous = '{"previous": true}\n'
    summary = taskrun.cwd / "taskrun-summary.json"
    rng = random.Random(7)
    outcomes = set()
    for i in range(4):
        summary.write_text(previous)
        p = taskrun.popen("tasks.yaml", stdout=subprocess.DEVNULL)
        path = wait_for(lambda: len(taskrun.run_dirs()) > i and (taskrun.run_dirs()[i] / "events.jsonl").exists()
                        and taskrun.run_dirs()[i] / "events.jsonl", what="the run to start")
        # run_end is written just before the summary: kill at a random moment of its writing.
        wait_for(lambda: p.poll() is not None or b'"run_end"' in path.read_bytes(), what="the run's end")
        time.sleep(rng.uniform(0, 0.08))  # a random moment, not synchronisation
        p.kill()
        p.communicate(timeout=60)
        text = summary.read_text()
        outcomes.add(text == previous)
        if text != previous:
            data = json.loads(text)
            validate_summary(data)
            assert data["counts"]["success"] == 600
    assert taskrun("--recover", str(path.parent)).returncode == 0


# --- full and read-only disks ---------------------------------------------------------------


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs (mounting needs root, or CAP_SYS_ADMIN)."""
    where = tmp_path / "small"
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.strip() or r.returncode}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(fs: Path) -> None:
    with open(fs / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


def summary_on_stderr(stderr: str) -> dict:
    start = stderr.index("{\n")
    end = stderr.index("\n}\n", start) + 3
    data = json.loads(stderr[start:end])
    validate_summary(data)
    return data


def test_logs_on_a_full_disk_keep_true_results_and_fail_the_run(taskrun, small_fs):
    # `big` fills the disk; the event lines of the 50 tasks after it need more than the last free page.
    quiet = "\n".join(f"  q{i}: {{cmd: ['true']}}" for i in range(50))
    taskrun.write("tasks.yaml", f"version: 1\npool: 1\ntasks:\n  big: head -c 3000000 /dev/zero\n{quiet}\n")
    r = taskrun("tasks.yaml", "--log-dir", small_fs / "runs")
    assert r.returncode == 3, r.stderr
    (run_dir,) = (small_fs / "runs").iterdir()
    assert r.stderr == (f"taskrun: cannot write the event log {run_dir}/events.jsonl: No space left on device; "
                        f"cannot write {run_dir}/summary.json: No space left on device "
                        "(the summary has every task's result)\n")
    summary = taskrun.summary()
    tasks = by_name(summary)
    assert (tasks["big"]["status"], tasks["big"]["exit_code"]) == ("failed", 1)  # head could not write
    assert summary["counts"]["success"] == 50
    assert (summary["status"], summary["exit_code"]) == ("failed", 3)
    assert summary["reason"] == f"cannot write the event log {run_dir}/events.jsonl: No space left on device"


def test_a_summary_on_a_full_disk_goes_to_stderr(taskrun, small_fs):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo a\n")
    fill(small_fs)
    r = taskrun("tasks.yaml", "-o", small_fs / "summary.json")
    assert r.returncode == 3
    assert r.stderr.startswith("{\n")
    assert r.stderr.endswith(f"\n}}\ntaskrun: cannot write {small_fs}/summary.json: No space left on device; "
                             "the summary was written to stderr instead\n")
    data = summary_on_stderr(r.stderr)
    assert by_name(data)["a"]["status"] == "success" and data["exit_code"] == 0
    assert not list(small_fs.glob(".summary.json.*"))  # the temporary file is removed


def test_a_read_only_summary_destination(taskrun, small_fs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    r = taskrun("tasks.yaml", "-o", small_fs / "summary.json")
    assert r.returncode == 3
    assert r.stderr.endswith(f"\n}}\ntaskrun: cannot write {small_fs}/summary.json: Read-only file system; "
                             "the summary was written to stderr instead\n")
    assert by_name(summary_on_stderr(r.stderr))["a"]["status"] == "success"
    assert (taskrun.cwd / "ran").exists()


def test_a_read_only_log_folder_runs_nothing(taskrun, small_fs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    r = taskrun("tasks.yaml", "--log-dir", small_fs / "runs")
    assert (r.returncode, r.stderr) == (
        3, f"taskrun: cannot create the log folder {small_fs}/runs: Read-only file system "
           "(choose another --log-dir)\n")
    assert not (taskrun.cwd / "ran").exists()
    assert not (taskrun.cwd / "taskrun-summary.json").exists()
