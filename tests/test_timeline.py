"""--timeline: the run drawn as text after the closing report, through the real command
(in a pipe, in a pseudo-terminal of a given width) and from summaries made by hand."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

from conftest import MIXED_RUN, check, taskrun_argv
from runner.runview import build_view
from runner.timeline import MAX_ROWS, legend, render_timeline

ROW = re.compile(r"^([* ]) (\S+)\s* \|([^|]*)\| (.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HEAD = "timeline  = success  X failed  T timed out  / cancelled  . waiting to retry"


def timeline_of(out: str) -> list[str]:
    lines = out.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("timeline  = success")):]


def rows_of(lines: list[str]) -> dict[str, tuple[str, str, str]]:
    return {m[2]: (m[1], m[3], m[4]) for line in lines if (m := ROW.match(line))}


def test_the_timeline_follows_the_report_one_row_per_task(taskrun):
    taskrun.write("tasks.yaml", MIXED_RUN)
    r = check(taskrun("tasks.yaml", "--timeline", env={"COLUMNS": "100"}), 1)
    out = r.stdout
    assert out.index("summary: taskrun-summary.json") < out.index(HEAD)
    lines = timeline_of(out)
    assert all(len(line) <= 100 for line in lines), lines
    rows = rows_of(lines)
    summary = taskrun.summary()
    starts = {t["name"]: (t["attempts"][0]["started_at"], t["attempts"][0]["slot"])
              for t in summary["tasks"] if t["attempts"]}
    assert list(rows) == sorted(starts, key=lambda n: starts[n])  # by first start; in one millisecond, by slot
    assert {n for n, (mark, _, _) in rows.items() if mark == "*"} == {"compile", "integration", "package"}
    bars = {n: bar for n, (_, bar, _) in rows.items()}
    assert set(bars["compile"].strip()) == {"="} and set(bars["lint"].strip()) == {"X"}
    assert set(bars["slow"].strip()) == {"T"}
    assert re.fullmatch(r" *X+\.+=+ *", bars["flaky"]), bars["flaky"]  # a failure, the wait, the retry
    assert len({len(bar) for bar in bars.values()}) == 1  # one scale for every row
    assert bars["package"].endswith("=")  # the last to end reaches the right edge
    assert rows["lint"][2].endswith("failed (exit 2)") and rows["flaky"][2].endswith(", 2 tries")
    assert rows["slow"][2].endswith("timed out (SIGTERM)")
    assert re.fullmatch(r"\* critical path \d+\.\d\ds: compile -> integration -> package", lines[-2])
    assert lines[-1] == "not run: docs (skipped)"
    assert not ANSI.search(out)  # a pipe: no colour, the marks say it all


def test_colour_on_request_paints_the_marks(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  ok: 'true'\n  bad: exit 1\n")
    r = check(taskrun("tasks.yaml", "--timeline", "--color", "always", env={"COLUMNS": "60"}), 1)
    lines = timeline_of(r.stdout)
    rows = {m[2]: line for line in lines if (m := ROW.match(ANSI.sub("", line)))}
    assert set(rows) == {"ok", "bad"}
    assert "\x1b[32m=" in rows["ok"] and "\x1b[31mX" in rows["bad"]


def test_a_terminal_gives_its_width(taskrun):
    taskrun.write("tasks.yaml", MIXED_RUN)
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 72, 0, 0))
    env = taskrun.env()
    env.pop("COLUMNS", None)
    env["TERM"] = "xterm"
    with subprocess.Popen(taskrun_argv() + ["tasks.yaml", "--timeline", "--color", "never", "--output", "quiet"],
                          cwd=taskrun.cwd, env=env, stdin=terminal, stdout=terminal, stderr=terminal) as proc:
        os.close(terminal)
        chunks = []
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(timeout=60) == 1
    os.close(controller)
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    out = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)  # the status area's cursor moves
    lines = timeline_of(out)
    rows = [line for line in lines if ROW.match(line)]
    assert len(rows) == 6
    assert max(len(line) for line in rows) == 72  # the widest row fills the terminal


def summary_of(n: int, failed: set[int] = frozenset()) -> dict:
    tasks = [{"name": f"t{i:03d}", "status": "failed" if i in failed else "success", "needs": [],
              "attempts": [{"started_at": f"2026-01-01T00:00:{i % 50:02d}.000Z", "duration_s": 1.0 + i / 1000,
                            "exit_code": 1 if i in failed else 0, "slot": i % 4}]} for i in range(n)]
    return {"file": "t.yaml", "status": "failed", "exit_code": 1, "pool": 4, "run_id": "r",
            "started_at": "2026-01-01T00:00:00.000Z", "duration_s": 51.0, "tasks": tasks}


def test_past_the_row_cap_failures_and_the_longest_are_drawn():
    lines = render_timeline(build_view(summary_of(120, failed={3})), width=90)
    rows = rows_of(lines)
    assert len(rows) == MAX_ROWS
    assert "t003" in rows and "t119" in rows and "t000" not in rows  # a failure; the longest; not the shortest
    assert f"... and {120 - MAX_ROWS} more task(s) not drawn: the shortest that succeeded" in lines


def test_nothing_ran():
    summary = {"file": "t.yaml", "status": "success", "exit_code": 0, "pool": 2, "run_id": "r",
               "started_at": "2026-01-01T00:00:00.000Z", "duration_s": 0.1,
               "tasks": [{"name": "a", "status": "up_to_date", "attempts": []}]}
    assert render_timeline(build_view(summary)) == [HEAD, "no task ran", "not run: a (up to date)"]


def test_the_legend_wraps_to_the_width():
    assert legend(80) == [HEAD]
    assert legend(40) == ["timeline  = success  X failed", "          T timed out  / cancelled",
                          "          . waiting to retry"]
