"""What a person sees: one start and one end line per task, the closing table and
the verdict; colour only on a terminal without NO_COLOR; the demo file."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess

from conftest import ROOT, by_name, check

START = re.compile(r"^(\d\d:\d\d:\d\d) start (\S+) +\(pid (\d+)\)$")
DONE = re.compile(r"^(\d\d:\d\d:\d\d) done  (\S+) +(\S+(?: \(allowed\))?) (?:exit (-?\d+)|signal (\w+)) in (\d+\.\d\d)s")
ANSI = "\x1b["
SGR = re.compile(r"\x1b\[[0-9;]*m")  # colour and style sequences

FILE = """
    version: 1
    pool: 2
    tasks:
      build: echo built
      test:
        cmd: exit 3
        needs: [build]
      docs:
        cmd: "true"
        needs: [test]
      lint:
        cmd: exit 1
        allow_failure: true
    """


def lines_matching(pattern: re.Pattern, text: str) -> list[re.Match]:
    return [m for m in map(pattern.match, text.splitlines()) if m]


class TestLines:
    def test_one_start_and_one_end_line_per_task_that_ran(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        r = check(taskrun("tasks.yaml"), 1)
        pids = {t["name"]: t["pid"] for t in taskrun.summary()["tasks"]}
        starts = {m[2]: int(m[3]) for m in lines_matching(START, r.stdout)}
        assert starts == {"build": pids["build"], "test": pids["test"], "lint": pids["lint"]}
        ends = {m[2]: (m[3], m[4]) for m in lines_matching(DONE, r.stdout)}
        assert ends == {"build": ("ok", "0"), "test": ("FAILED", "3"), "lint": ("FAILED (allowed)", "1")}
        assert len(lines_matching(START, r.stdout)) == 3 and len(lines_matching(DONE, r.stdout)) == 3
        skip = [line for line in r.stdout.splitlines() if " skip " in line]
        assert len(skip) == 1 and skip[0].endswith("skip  docs  skipped (needs 'test', which failed)")

    def test_each_start_line_comes_before_its_end_line(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        r = check(taskrun("tasks.yaml"), 1)
        lines = r.stdout.splitlines()
        for name in ("build", "test", "lint"):
            start = next(i for i, line in enumerate(lines) if re.search(rf" start {name} ", line))
            end = next(i for i, line in enumerate(lines) if re.search(rf" done  {name} ", line))
            assert start < end

    def test_closing_table_and_verdict(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        r = check(taskrun("tasks.yaml"), 1)
        lines = r.stdout.splitlines()
        at = lines.index("") + 1
        table = [line.split() for line in lines[at:at + 5]]
        assert table[0] == ["task", "status", "exit", "time", "tries"]
        assert [row[:-2] + row[-1:] for row in table[1:]] == [  # all but the time; what did not succeed first
            ["test", "failed", "3", "1"], ["docs", "skipped", "-", "0"], ["lint", "failed", "(allowed)", "1", "1"],
            ["build", "success", "0", "1"]]
        # then the root cause and the failed tasks' last lines (tests/test_output.py), then the verdict
        assert lines[at + 5] == ""
        assert re.fullmatch(r"1 succeeded, 2 failed, 1 skipped in \d+\.\d\ds \(pool 2\)", lines[-2])
        assert lines[-1] == "summary: taskrun-summary.json"

    def test_timeout_and_signal_end_lines(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            kill_grace: 0.5
            tasks:
              slow:
                cmd: sleep 300
                timeout: 0.2
              killed: kill -KILL $$
            """)
        r = check(taskrun("tasks.yaml"), 1)
        slow = next(line for line in r.stdout.splitlines() if " done  slow " in line)
        assert re.search(r" done  slow +TIMEOUT timed out after 0\.2s; signal SIGTERM at \d+\.\d\ds$", slow)
        killed = lines_matching(DONE, r.stdout)
        assert [(m[2], m[3], m[5]) for m in killed if m[2] == "killed"] == [("killed", "FAILED", "SIGKILL")]
        assert "1 failed, 1 timed out in" in r.stdout

    def test_a_retry_has_its_own_line(self, taskrun):
        taskrun.write("tasks.yaml", """
            version: 1
            tasks:
              flaky:
                cmd: if [ -e again ]; then exit 0; fi; touch again; exit 5
                retries: 1
            """)
        r = check(taskrun("tasks.yaml"), 0)
        retry = [line for line in r.stdout.splitlines() if " retry " in line]
        assert len(retry) == 1
        assert re.search(r" retry flaky failed exit 5 in \d+\.\d\ds; attempt 2 of 2 in 0ms$", retry[0])
        starts = lines_matching(START, r.stdout)
        assert len(starts) == 1  # the first start; the second says which attempt
        assert re.search(r" start flaky \(pid \d+, attempt 2 of 2\)$", r.stdout, re.M)

    def test_could_not_start_says_why(self, taskrun):
        taskrun.write("tasks.yaml", "version: 1\ntasks:\n  ghost:\n    cmd: [no-such-program-7f3a]\n")
        r = check(taskrun("tasks.yaml"), 1)
        assert re.search(r"^\d\d:\d\d:\d\d done  ghost FAILED exit 127 \(command not found: no-such-program-7f3a\)$",
                         r.stdout, re.M)


def run_on_a_terminal(taskrun, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run taskrun with its stdout on a pseudo-terminal; return the exit code and what it printed."""
    master, slave = pty.openpty()
    proc = taskrun.popen(*args, env=env, stdout=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    proc.communicate(timeout=60)
    return proc.returncode, b"".join(chunks).decode()


class TestColour:
    def test_no_colour_when_stdout_is_not_a_terminal(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        r = check(taskrun("tasks.yaml"), 1)
        assert ANSI not in r.stdout and ANSI not in r.stderr

    def test_colour_on_a_terminal(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        code, out = run_on_a_terminal(taskrun, "tasks.yaml")
        assert code == 1
        assert "\x1b[32mok\x1b[0m" in out and "\x1b[31mFAILED\x1b[0m" in out

    def test_no_colour_on_a_terminal_with_no_color(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        code, out = run_on_a_terminal(taskrun, "tasks.yaml", env={"NO_COLOR": "1"})
        assert code == 1
        assert " done  build ok " in out
        assert not SGR.search(out)  # no colour; the status area still moves the cursor

    def test_no_color_wins_over_force_color(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        forced = check(taskrun("tasks.yaml", env={"FORCE_COLOR": "1"}), 1)
        assert ANSI in forced.stdout
        both = check(taskrun("tasks.yaml", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}), 1)
        assert ANSI not in both.stdout and ANSI not in both.stderr

    def test_summary_on_stdout_keeps_it_free_of_colour_and_console_lines(self, taskrun):
        taskrun.write("tasks.yaml", FILE)
        r = check(taskrun("tasks.yaml", "-o", "-", env={"FORCE_COLOR": "1"}), 1)
        assert r.stdout.startswith("{") and ANSI not in r.stdout
        assert " start build " in SGR.sub("", r.stderr)


class TestDemo:
    def test_the_demo_starts_its_three_tasks_together(self, taskrun):
        (taskrun.cwd / "tasks").mkdir()
        shutil.copy(ROOT / "tasks" / "demo.yaml", taskrun.cwd / "tasks" / "demo.yaml")
        r = check(taskrun("tasks/demo.yaml"), 0)
        lines = r.stdout.splitlines()
        starts = [(i, m) for i, m in enumerate(map(START.match, lines)) if m]
        first_done = next(i for i, line in enumerate(lines) if DONE.match(line))
        assert [m[2] for _, m in starts] == ["fetch", "compile", "test", "report"]
        assert all(i < first_done for i, _ in starts[:3])  # the three started before any ended
        pids = [int(m[3]) for _, m in starts]
        assert len(set(pids)) == 4
        s = taskrun.summary()
        assert s["pool"] == 3
        assert {t["name"]: t["pid"] for t in s["tasks"]} == dict(zip(["fetch", "compile", "test", "report"], pids))
        assert [t["status"] for t in s["tasks"]] == ["success"] * 4
        assert "4 succeeded in" in r.stdout
        assert by_name(s)["report"]["stdout_tail"] == "fetch, compile and test succeeded\n"


def test_console_survives_a_closed_stdout(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n" + "".join(f"  t{i}: 'true'\n" for i in range(20)))
    proc = taskrun.popen("tasks.yaml", stdout=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()  # like `taskrun tasks.yaml | head -1`
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "Traceback" not in err
    assert taskrun.summary()["counts"]["success"] == 20


def test_paths_with_a_newline_are_printed_quoted_on_one_line(taskrun):
    folder = taskrun.cwd / "new\nline"
    folder.mkdir()
    (folder / "tasks.yaml").write_text("version: 1\ntasks:\n  t: echo oops >&2; exit 1\n")
    (folder / "bad.yaml").write_text("version: 1\ntasks:\n  t:\n    cmd: x\n    timout: 1\n")
    r = check(taskrun("new\nline/tasks.yaml", "-o", "out\nput.json"), 1)
    log = taskrun.summary("out\nput.json")["tasks"][0]["stderr_log"]
    lines = r.stdout.splitlines()
    assert "  log: $'" + log.replace("\n", "\\n") + "' (last 1 line)" in lines
    assert lines[-1] == "summary: $'out\\nput.json'"
    assert not [line for line in lines if line.startswith("line/")]  # no path split over two lines
    dry = check(taskrun("new\nline/tasks.yaml", "--dry-run", "--pool", "2"), 0)
    assert dry.stdout.splitlines()[0] == "plan for $'new\\nline/tasks.yaml': 1 task(s), pool 2"
    checked = check(taskrun("--validate", "new\nline/tasks.yaml", "new\nline/bad.yaml"), 2)
    assert checked.stderr.splitlines() == [
        "$'new\\nline/tasks.yaml': valid (1 tasks)",
        "$'new\\nline/bad.yaml':5:5: tasks.t.timout: unknown key (did you mean 'timeout'?)"]
