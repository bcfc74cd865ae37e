"""Load: thousands of tasks, a full pool, big outputs and badly behaved commands.

Marked `load` so the section runs alone (`python3 -m pytest -m load`) or is left
out (`-m "not load"`); it runs in CI with the rest. Each test asserts the
runner's peak memory (from wait4's rusage) under a generous bound, and the
fixture asserts that nothing is left running and no zombie remains. The
figures are printed (`-s`) for README's table.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime

import pytest

from conftest import PY, by_name, taskrun_argv

pytestmark = pytest.mark.load

MiB = 2**20


# A small parent measures taskrun: wait4's ru_maxrss counts what a process shares with its parent at fork,
# so taskrun started straight from pytest would report pytest's own size.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(taskrun, *args, timeout: float = 300):
    """Run taskrun to its end; (exit code, stdout, stderr, seconds, peak RSS in MiB)."""
    rss = taskrun.cwd / "rss.txt"
    started = time.monotonic()
    with open(taskrun.cwd / "console.out", "w+") as out, open(taskrun.cwd / "console.err", "w+") as err:
        r = subprocess.run([PY, "-c", MEASURE, str(rss), *taskrun_argv(), *args], cwd=taskrun.cwd,
                           env=taskrun.env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
    elapsed = time.monotonic() - started
    peak = int(rss.read_text()) / 1024
    print(f"\n{args}: {elapsed:.1f}s, runner peak RSS {peak:.0f} MiB")
    return (r.returncode, (taskrun.cwd / "console.out").read_text(), (taskrun.cwd / "console.err").read_text(),
            elapsed, peak)


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_ten_thousand_tasks_with_a_pool_of_64(taskrun):
    lines = "\n".join(f"  t{i}: {{cmd: ['true']}}" for i in range(10_000))
    taskrun.write("tasks.yaml", f"version: 1\npool: 64\ntasks:\n{lines}\n")
    code, out, err, elapsed, peak = run_measured(taskrun, "tasks.yaml")
    assert code == 0, err
    summary = taskrun.summary()
    assert summary["counts"]["success"] == 10_000
    assert len(taskrun.events()) == 2 + 3 * 10_000
    assert peak < 300


def test_a_thousand_short_tasks_fill_the_pool_and_never_exceed_it(taskrun):
    lines = "\n".join(f"  t{i}: {{cmd: [sleep, '0.2']}}" for i in range(1000))
    taskrun.write("tasks.yaml", f"version: 1\npool: 64\ntasks:\n{lines}\n")
    code, out, err, elapsed, peak = run_measured(taskrun, "tasks.yaml")
    assert code == 0, err
    tasks = taskrun.summary()["tasks"]
    # Sweep the attempts' intervals; at equal times an end comes before a start (a slot is freed first).
    points = sorted([(ts(t["started_at"]), 1) for t in tasks] + [(ts(t["finished_at"]), -1) for t in tasks])
    running = most = 0
    for _, step in points:
        running += step
        most = max(most, running)
    assert most == 64
    assert peak < 150


def test_fifty_tasks_writing_20_mib_each(taskrun):
    lines = "\n".join(f"  t{i}: head -c {20 * MiB} /dev/zero" for i in range(50))
    taskrun.write("tasks.yaml", f"version: 1\npool: 8\ntasks:\n{lines}\n")
    code, out, err, elapsed, peak = run_measured(taskrun, "tasks.yaml")
    assert code == 0, err
    (run_dir,) = taskrun.run_dirs()
    assert {(run_dir / f"t{i}.stdout").stat().st_size for i in range(50)} == {20 * MiB}
    assert peak < 100  # the output never passes through the runner
    for i in range(50):
        (run_dir / f"t{i}.stdout").unlink()


def test_badly_behaved_commands_among_many(taskrun):
    quick = "\n".join(f"  q{i}: {{cmd: [echo, '{i}']}}" for i in range(500))
    taskrun.write("tasks.yaml", f"""
version: 1
pool: 16
kill_grace: 0.5
tasks:
  no-term: {{cmd: "trap '' TERM; sleep 300", timeout: 0.5}}
  closes-stdout: exec >&- 2>&-; sleep 0.5; touch lived
  reads-stdin: read line || echo "stdin at its end"
  reads-all-stdin: cat
  background: sleep 300 & echo bg
{quick}
""")
    code, out, err, elapsed, peak = run_measured(taskrun, "tasks.yaml")
    assert code == 1, err
    tasks = by_name(taskrun.summary())
    assert (tasks["no-term"]["status"], tasks["no-term"]["signal"]) == ("timeout", "SIGKILL")
    assert tasks["closes-stdout"]["status"] == "success" and (taskrun.cwd / "lived").exists()
    assert (tasks["reads-stdin"]["status"], tasks["reads-stdin"]["stdout_tail"]) == ("success", "stdin at its end\n")
    assert tasks["reads-all-stdin"]["status"] == "success"
    assert (tasks["background"]["status"], tasks["background"]["stray_killed"]) == ("success", 1)
    assert sum(t["status"] == "success" for t in tasks.values()) == 504
    assert elapsed < 120  # nothing waited for the 300 s sleeps
    assert peak < 150
