"""The closing report points at what failed: what did not succeed comes first,
a large run's plain successes fold into one line, flaky and allowed outcomes
say so, each failure that others paid for has its root cause line, and on a
terminal the statuses and the verdict are coloured. A task printing bare `\\r`
progress keeps its prefix on the terminal."""

from __future__ import annotations

import re

import pyte

from conftest import by_name, check
from test_console import run_on_a_terminal

FLAKY = "if [ -e {name}.again ]; then sleep 0.1; exit 0; fi; touch {name}.again; exit 5"
TIME = r"\d+\.\d\ds"


def table(stdout: str) -> list[str]:
    """The table's lines, from its header to the blank line after it."""
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("task "))
    return lines[start:lines.index("", start)]


def test_a_60_task_run_shows_what_did_not_succeed_and_folds_the_rest(taskrun):
    tasks = {f"t{i:02}": "'true'" for i in range(60)}
    tasks["t07"] = "exit 3"
    tasks["t13"] = f"{{cmd: '{FLAKY.format(name='t13')}', retries: 1}}"
    tasks["t21"] = "{cmd: exit 4, allow_failure: true}"
    taskrun.write("tasks.yaml", "version: 1\npool: 8\ntasks:\n" + "".join(f"  {n}: {c}\n" for n, c in tasks.items()))
    r = check(taskrun("tasks.yaml", "--output", "quiet"), 1)
    *rows, fold = table(r.stdout)
    assert fold == "57 more succeeded"
    assert [row.split()[:4] for row in rows] == [
        ["task", "status", "exit", "time"],
        ["t07", "failed", "3", rows[1].split()[3]],
        ["t21", "failed", "(allowed)", "4"],
        ["t13", "success", "(flaky,", "2"],
    ]
    assert re.fullmatch(rf"t13 +success \(flaky, 2 tries\) +0 +{TIME} \(total {TIME}\) +2", rows[3]), rows[3]
    assert re.search(rf"^58 succeeded, 2 failed in {TIME} \(pool 8\)$", r.stdout, re.M)
    assert taskrun.summary()["counts"] == {"success": 58, "failed": 2, "timeout": 0, "skipped": 0, "cancelled": 0, "up_to_date": 0}


def test_a_small_run_keeps_every_row_and_marks_flaky_and_allowed(taskrun):
    taskrun.write("tasks.yaml", f"""
        version: 1
        tasks:
          build: echo built
          flaky: {{cmd: '{FLAKY.format(name="flaky")}', retries: 2}}
          lint: {{cmd: exit 1, allow_failure: true}}
        """)
    r = check(taskrun("tasks.yaml", "--output", "quiet"), 0)
    rows = table(r.stdout)
    assert re.fullmatch(rf"lint +failed \(allowed\) +1 +{TIME} +1", rows[1]), rows
    assert re.fullmatch(rf"build +success +0 +{TIME} +1", rows[2]), rows
    assert re.fullmatch(rf"flaky +success \(flaky, 2 tries\) +0 +{TIME} \(total {TIME}\) +2", rows[3]), rows
    total = float(re.search(r"total (\d+\.\d\d)s", rows[3])[1])
    attempts = by_name(taskrun.summary())["flaky"]["attempts"]
    assert abs(total - sum(a["duration_s"] for a in attempts)) < 0.011  # rounded to hundredths
    assert "more succeeded" not in r.stdout


def test_one_root_cause_line_per_failure_that_others_paid_for(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 4
        kill_grace: 0.5s
        tasks:
          fetch: 'echo no network >&2; exit 6'
          unpack: {cmd: echo never, needs: [fetch]}
          slow: {cmd: sleep 30, timeout: 1s}
          test: {cmd: echo never, needs: [slow]}
          deploy: {cmd: echo never, needs: [test]}
          alone: exit 1
          fine: echo fine
        """)
    r = check(taskrun("tasks.yaml", "--output", "quiet"), 1)
    causes = [line for line in r.stdout.splitlines() if line.startswith("root cause")]
    assert len(causes) == 2, r.stdout
    assert re.fullmatch(rf"root cause: fetch failed \(exit 6 in {TIME}\); because of it 1 skipped \(unpack\)",
                        causes[0]), causes
    assert re.fullmatch(rf"root cause: slow timed out \(timed out after 1s; signal SIGTERM at {TIME}\); "
                        r"because of it 2 skipped \(test, deploy\)", causes[1]), causes


def test_on_a_terminal_the_statuses_and_the_verdict_are_coloured(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build: echo built
          test: {cmd: exit 3, needs: [build]}
          lint: {cmd: exit 1, allow_failure: true}
        """)
    code, out = run_on_a_terminal(taskrun, "tasks.yaml", "--output", "quiet")
    assert code == 1
    assert "\x1b[31mfailed\x1b[0m" in out  # test
    assert "\x1b[33mfailed (allowed)\x1b[0m" in out
    assert "\x1b[32msuccess\x1b[0m" in out
    assert re.search(rf"\x1b\[31m1 succeeded, 2 failed in {TIME} \(pool \d+\)\x1b\[0m", out), out[-500:]
    ok = check(taskrun("tasks.yaml", "--output", "quiet", "--skip", "test", "--color", "always"), 0)
    assert re.search(rf"\x1b\[32m1 succeeded, 1 failed in {TIME} \(pool \d+\)\x1b\[0m", ok.stdout), ok.stdout


def test_carriage_return_progress_keeps_the_prefix_on_a_terminal(taskrun):
    taskrun.write("tasks.yaml", r"""
        version: 1
        tasks:
          progress: printf 'step 1\r 40%%\r 80%%\rdone\r\n'
        """)
    code, out = run_on_a_terminal(taskrun, "tasks.yaml", env={"NO_COLOR": "1"})
    assert code == 0
    screen = pyte.Screen(200, 60)
    pyte.Stream(screen).feed(out)
    shown = [line.rstrip() for line in screen.display]
    assert [line for line in shown if line.startswith("progress |")] == [
        "progress | step 1", "progress |  40%", "progress |  80%", "progress | done"]
    log = by_name(taskrun.summary())["progress"]["stdout_log"]
    with open(log, "rb") as f:
        assert f.read() == b"step 1\r 40%\r 80%\rdone\r\n"  # the log keeps every byte
