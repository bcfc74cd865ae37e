"""Task output on the console, the logs on disk and the closing report, through the real `taskrun`."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from conftest import PY, by_name, taskrun_argv

CLOCK = r"\d\d:\d\d:\d\d"
REPLACEMENT = "\ufffd"


def lines_of(out: str, prefix: str) -> list[str]:
    return [line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)]


def write_script(taskrun, name: str, body: str) -> None:
    taskrun.write(name, body)


# -- stream mode -------------------------------------------------------------------


def test_stream_prefixes_every_line_with_the_padded_name_and_marks_stderr(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        tasks:
          a: 'printf "one\\ntwo\\n"; echo oops >&2'
          long-name: echo hi
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert "a         | one" in out
    assert "a         | two" in out
    assert "a         ! oops" in out
    assert "long-name | hi" in out
    assert out.index("a         | one") < out.index("a         | two")
    # each task's lines come between its start and end lines
    start = next(i for i, line in enumerate(out) if re.fullmatch(rf"{CLOCK} start a +\(pid \d+\)", line))
    end = next(i for i, line in enumerate(out) if re.fullmatch(rf"{CLOCK} done  a +ok exit 0 in \d+\.\d\ds", line))
    assert start < out.index("a         | one") < out.index("a         ! oops") + 100 and max(
        out.index("a         | two"), out.index("a         ! oops")) < end


def test_a_last_line_without_newline_is_shown_before_the_end_line(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          t: printf 'no newline'
    """)
    r = taskrun("tasks.yaml")
    out = r.stdout.splitlines()
    assert out[1:3] == ["t $ printf 'no newline'", "t | no newline"]
    assert re.fullmatch(rf"{CLOCK} done  t ok exit 0 in .*", out[3])


def test_a_line_written_after_a_long_silence_is_shown_while_its_task_still_runs(taskrun):
    """Logs that showed nothing are looked at less and less often (up to QUIET_MAX_S apart):
    a task silent for two seconds still has its line on the console seconds before it ends."""
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          quiet: 'sleep 2; echo late; sleep 4'
    """)
    seen: dict[str, float] = {}
    with taskrun.popen("tasks.yaml", stderr=subprocess.DEVNULL) as proc:
        for line in proc.stdout:
            if line.startswith("quiet | late"):
                seen["late"] = time.monotonic()
            elif " done " in line:
                seen["done"] = time.monotonic()
    assert proc.returncode == 0
    assert seen["done"] - seen["late"] > 2.0, seen  # shown about 0.4 s after it was written, not at the end


def test_a_log_that_showed_nothing_is_looked_for_again_only_after_a_growing_pause(tmp_path, monkeypatch):
    import runner.output as output

    path = tmp_path / "t.stdout"
    looks: list[float] = []
    real_stat = os.stat

    def counted_stat(p, *args, **kwargs):
        if p == str(path):
            looks.append(clock)
        return real_stat(p, *args, **kwargs)

    monkeypatch.setattr(output.os, "stat", counted_stat)
    follower = output.LogFollower(str(path))
    clock = 0.0
    while clock < 2.0:  # a periodic read every 10 ms for two seconds, the file not there
        assert follower.read(now=clock) == (b"", b"", 0, False)
        clock = round(clock + 0.01, 2)
    first, most = output.QUIET_FIRST_S, output.QUIET_MAX_S
    gaps = [round(b - a, 2) for a, b in zip(looks, looks[1:])]
    wanted = [min(first * 2 ** i, most) for i in range(len(gaps))]  # 0.05, 0.1, 0.2, 0.4, 0.4, ...
    assert looks[0] == 0.0 and gaps == pytest.approx(wanted, abs=0.011), looks
    assert len(looks) <= 2.0 / most + 4  # eight looks, not two hundred
    path.write_bytes(b"one\n")
    assert follower.read(now=2.0)[2] == 0  # not looked for before its next turn
    carry, data, end, _ = follower.read(now=looks[-1] + most + 0.01)
    assert carry + data[:end] == b"one\n"
    # A read without `now` (the rest of an ended attempt's logs) always looks.
    late = output.LogFollower(str(tmp_path / "late"))
    assert late.read(now=0.0)[2] == 0
    (tmp_path / "late").write_bytes(b"last\n")
    assert b"".join(c + d[:e] for c, d, e in late.drain()) == b"last\n"


def test_two_tasks_printing_ten_thousand_lines_each_never_mix_half_lines(taskrun):
    # Each line is written in three pieces with flushes between them, so the log
    # files often end in the middle of a line when taskrun reads them.
    taskrun.write("writer.py", """
        import sys
        name = sys.argv[1]
        for i in range(10_000):
            sys.stdout.write(f"{name} line "); sys.stdout.flush()
            sys.stdout.write(f"{i:05d} of "); sys.stdout.flush()
            sys.stdout.write(f"{name}\\n"); sys.stdout.flush()
    """)
    taskrun.write("tasks.yaml", f"""
        version: 1
        pool: 2
        tasks:
          left: {PY} writer.py left
          right: {PY} writer.py right
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    for name in ("left", "right"):
        got = lines_of(r.stdout, f"{name.ljust(5)} | ")
        assert got == [f"{name} line {i:05d} of {name}" for i in range(10_000)]
    task_lines = [line for line in r.stdout.splitlines() if " | " in line]
    assert len(task_lines) == 20_000
    assert all(re.fullmatch(r"(left |right) \| (left|right) line \d{5} of \2", line) for line in task_lines)


def test_retries_are_streamed_from_their_own_log_files(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          flaky:
            cmd: 'echo "try $TASKRUN_ATTEMPT"; [ "$TASKRUN_ATTEMPT" = 2 ]'
            retries: 1
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 0
    assert lines_of(r.stdout, "flaky | ") == ["try 1", "try 2"]
    task = by_name(taskrun.summary())["flaky"]
    assert task["stdout_log"].endswith("/flaky~2.stdout")
    assert Path(task["attempts"][0]["stdout_log"]).read_text() == "try 1\n"


# -- group and quiet -----------------------------------------------------------------


GROUP_FILE = """
    version: 1
    pool: 2
    silent: true
    tasks:
      slow: 'while [ ! -s fast.pid ]; do sleep 0.01; done; while kill -0 $(cat fast.pid) 2>/dev/null; do sleep 0.01; done; echo slow out; echo slow err >&2'
      fast: 'echo $$ > fast.pid.tmp; mv fast.pid.tmp fast.pid; echo fast one; echo fast two'
"""
# `slow` ends only after `fast` is gone (reaped by taskrun): completion order is fast, slow.


def test_group_prints_one_block_per_task_in_completion_order(taskrun):
    taskrun.write("tasks.yaml", GROUP_FILE)
    r = taskrun("tasks.yaml", "--output", "group")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    i = next(i for i, line in enumerate(out) if re.fullmatch(rf"{CLOCK} done  fast ok exit 0 in .*", line))
    assert out[i + 1:i + 3] == ["fast | fast one", "fast | fast two"]
    assert re.fullmatch(rf"{CLOCK} done  slow ok exit 0 in .*", out[i + 3])
    assert out[i + 4:i + 6] == ["slow | slow out", "slow ! slow err"]  # stdout, then stderr
    assert out[i + 6] == ""  # then the report
    assert re.fullmatch(rf"{CLOCK} start slow +\(pid \d+\)", out[0])  # start lines stay live
    assert not any(line.startswith("::") or "section_" in line for line in out)


def test_group_from_the_task_file_and_the_flag_wins(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        output: quiet
        tasks:
          t: echo hello
    """)
    r = taskrun("tasks.yaml")
    assert "hello" not in r.stdout
    assert re.search(rf"^{CLOCK} done  t ok exit 0", r.stdout, re.M)
    r = taskrun("tasks.yaml", "--output", "stream")
    assert "t | hello" in r.stdout.splitlines()


def test_quiet_shows_start_and_end_lines_only_and_the_log_has_everything(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          t: 'echo hello; echo oops >&2'
    """)
    r = taskrun("tasks.yaml", "--output", "quiet")
    assert r.returncode == 0
    out = r.stdout.splitlines()
    assert re.fullmatch(rf"{CLOCK} start t \(pid \d+\)", out[0])
    assert re.fullmatch(rf"{CLOCK} done  t ok exit 0 in .*", out[1])
    assert out[2] == ""
    assert "hello" not in r.stdout and "oops" not in r.stdout
    task = by_name(taskrun.summary())["t"]
    assert Path(task["stdout_log"]).read_text() == "hello\n"
    assert Path(task["stderr_log"]).read_text() == "oops\n"


def test_github_actions_folds_each_block_in_a_group(taskrun):
    taskrun.write("tasks.yaml", GROUP_FILE)
    r = taskrun("tasks.yaml", "--output", "group", env={"GITHUB_ACTIONS": "true"})
    out = r.stdout.splitlines()
    i = next(i for i, line in enumerate(out) if line.startswith("::group::"))
    assert re.fullmatch(rf"::group::{CLOCK} done  fast ok exit 0 in \d+\.\d\ds", out[i])
    # The task output inside is fenced: it cannot issue workflow commands (see test_security).
    token = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", out[i + 1]).group(1)
    assert out[i + 2:i + 6] == ["fast | fast one", "fast | fast two", f"::{token}::", "::endgroup::"]
    assert re.fullmatch(rf"::group::{CLOCK} done  slow ok exit 0 in \d+\.\d\ds", out[i + 6])
    assert out[i + 7:i + 12] == [f"::stop-commands::{token}", "slow | slow out", "slow ! slow err", f"::{token}::",
                                 "::endgroup::"]


def test_gitlab_ci_folds_each_block_in_a_collapsible_section(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          good: echo fine
          bad:ly: 'echo broken >&2; exit 3'
    """)
    r = subprocess.run(taskrun_argv() + ["tasks.yaml", "--output", "group", "-j", "1"], cwd=taskrun.cwd,
                       env=taskrun.env({"GITLAB_CI": "true"}), stdin=subprocess.DEVNULL, capture_output=True)
    assert r.returncode == 1
    out = r.stdout.decode()  # bytes: text mode would turn the \r of the markers into newlines
    ok = re.search(r"\x1b\[0Ksection_start:(\d+):taskrun_good_1\[collapsed=true\]\r\x1b\[0K"
                   rf"{CLOCK} done  good   ok exit 0 in \d+\.\d\ds\n"
                   r"good   \$ echo fine\n"
                   r"good   \| fine\n"
                   r"\x1b\[0Ksection_end:(\d+):taskrun_good_1\r\x1b\[0K\n", out)
    assert ok, out
    assert abs(int(ok.group(1)) - time.time()) < 120
    # a failed task's section stays open
    assert re.search(r"\x1b\[0Ksection_start:\d+:taskrun_bad_ly_1\r\x1b\[0K"
                     rf"{CLOCK} done  bad:ly FAILED exit 3 in \d+\.\d\ds\n"
                     r"bad:ly \$ echo broken >&2; exit 3\n"
                     r"bad:ly ! broken\n"
                     r"\x1b\[0Ksection_end:\d+:taskrun_bad_ly_1\r\x1b\[0K\n", out), out


def test_no_folding_markers_outside_ci_and_none_in_stream_mode(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: echo hi\n")
    for args, env in ((("--output", "group"), {}), ((), {"GITHUB_ACTIONS": "true"}),
                      ((), {"GITLAB_CI": "true"}), (("--output", "group"), {"GITHUB_ACTIONS": "false"})):
        r = taskrun("tasks.yaml", *args, env=env)
        assert "::group::" not in r.stdout and "section_start" not in r.stdout, (args, env)
        assert "t | hi" in r.stdout.splitlines()


def test_unknown_output_mode_is_refused(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: echo hi\n")
    r = taskrun("tasks.yaml", "--output", "loud")
    assert r.returncode == 2
    assert r.stderr == "taskrun: --output: 'loud' is not one of stream, group, quiet\n"
    taskrun.write("bad.yaml", "version: 1\noutput: groups\ntasks:\n  t: echo hi\n")
    r = taskrun("bad.yaml")
    assert r.returncode == 2
    assert r.stderr == "bad.yaml:2:1: output: 'groups' is not one of stream, group, quiet (did you mean 'group'?)\n"


# -- colour ----------------------------------------------------------------------------


def test_colour_follows_the_flag_and_the_variables_and_each_task_keeps_its_colour(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  build: 'echo out; echo err >&2'\n")
    plain = taskrun("tasks.yaml")
    assert "\x1b[" not in plain.stdout
    forced = taskrun("tasks.yaml", env={"FORCE_COLOR": "1"})
    colour = re.search(r"\x1b\[(\d+)mbuild\x1b\[0m \| out", forced.stdout)
    assert colour, forced.stdout
    assert f"\x1b[{colour.group(1)}mbuild\x1b[0m \x1b[31m!\x1b[0m err" in forced.stdout
    again = taskrun("tasks.yaml", "--color", "always", env={"NO_COLOR": "1"})
    assert f"\x1b[{colour.group(1)}mbuild\x1b[0m | out" in again.stdout  # the same colour every run
    assert "\x1b[" not in taskrun("tasks.yaml", env={"NO_COLOR": "1", "FORCE_COLOR": "1"}).stdout
    assert "\x1b[" not in taskrun("tasks.yaml", "--color", "never", env={"FORCE_COLOR": "1"}).stdout
    r = taskrun("tasks.yaml", "--color", "sometimes")
    assert r.returncode == 2 and r.stderr == "taskrun: --color: 'sometimes' is not one of auto, always, never\n"


# -- bytes: logs exact, console and tails replaced ---------------------------------------


def test_logs_keep_the_exact_bytes_and_the_console_and_summary_show_replacement_characters(taskrun):
    raw = b"caf\xe9 ok\n\x00\xff\xfe tail\n\xe2\x82\xac euro\nlast \xc3"
    taskrun.write("emit.py", f"import os\nos.write(1, {raw!r})\nos.write(2, {raw!r})\n")
    taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  t: {PY} emit.py\n")
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    task = by_name(taskrun.summary())["t"]
    assert Path(task["stdout_log"]).read_bytes() == raw
    assert Path(task["stderr_log"]).read_bytes() == raw
    assert lines_of(r.stdout, "t | ") == [f"caf{REPLACEMENT} ok", f"\x00{REPLACEMENT}{REPLACEMENT} tail",
                                          "\u20ac euro", f"last {REPLACEMENT}"]
    assert lines_of(r.stdout, "t ! ")[0] == f"caf{REPLACEMENT} ok"
    assert task["stdout_tail"] == f"caf{REPLACEMENT} ok\n\x00{REPLACEMENT}{REPLACEMENT} tail\n\u20ac euro\nlast {REPLACEMENT}"


def test_a_ten_megabyte_line_is_cut_on_the_console_and_whole_in_the_log(taskrun):
    taskrun.write("emit.py", """
        import os, sys
        chunk = b"x" * 100_000
        for _ in range(100):
            os.write(1, chunk)
        if sys.argv[1] == "more":
            os.write(1, b"\\nafter\\n")
    """)
    taskrun.write("tasks.yaml", f"""
        version: 1
        pool: 2
        tasks:
          more: {PY} emit.py more
          only: {PY} emit.py only
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    marker = " [... line cut at 64 KiB on the console; the log has it whole]"
    assert lines_of(r.stdout, "more | ") == ["x" * 65536 + marker, "after"]
    assert lines_of(r.stdout, "only | ") == ["x" * 65536 + marker]
    summary = by_name(taskrun.summary())
    assert Path(summary["more"]["stdout_log"]).stat().st_size == 10_000_000 + 7
    assert Path(summary["only"]["stdout_log"]).read_bytes() == b"x" * 10_000_000
    assert len(r.stdout) < 200_000
    # group mode cuts it the same way
    r = taskrun("tasks.yaml", "--output", "group")
    assert lines_of(r.stdout, "more | ") == ["x" * 65536 + marker, "after"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["stream", "group"])
def test_a_task_writing_one_gibibyte_keeps_the_runner_small(taskrun, mode, tmp_path):
    taskrun.write("emit.py", """
        import os
        block = (b"y" * 99 + b"\\n") * 10_000  # 1,000,000 bytes
        for _ in range(1074):
            os.write(1, block)
    """)
    taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  big: {PY} emit.py\n")
    taskrun.write("small.yaml", f"version: 1\ntasks:\n  small: {PY} -c pass\n")

    def peak_kib(*args: str) -> int:
        proc = subprocess.Popen(taskrun_argv() + list(args), cwd=tmp_path, env=taskrun.env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode == 0, proc.stderr.read()
        proc.stderr.close()
        return usage.ru_maxrss  # KiB: taskrun, or the largest child it waited for

    baseline = peak_kib("small.yaml", "--output", mode)
    peak = peak_kib("tasks.yaml", "--output", mode)
    assert peak < 200 * 1024, f"peak RSS {peak} KiB"
    assert peak - baseline < 64 * 1024, f"peak RSS {peak} KiB, {baseline} KiB for a trivial task"
    log = Path(by_name(taskrun.summary())["big"]["stdout_log"])
    assert log.stat().st_size == 1_074_000_000
    log.unlink()


# -- the live area on a terminal -----------------------------------------------------------


def test_on_a_terminal_a_status_area_shows_running_tasks_and_is_erased_at_the_end(taskrun, tmp_path):
    pyte = pytest.importorskip("pyte")
    import fcntl
    import struct
    import termios

    taskrun.write("tasks.yaml", """
        version: 1
        pool: 3
        tasks:
          waiter: 'echo waiting; while [ ! -f go ]; do sleep 0.01; done; echo went'
          other: 'while [ ! -f go ]; do sleep 0.01; done'
          quick: echo quick
    """)
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(taskrun_argv() + ["tasks.yaml"], cwd=tmp_path,
                            env=taskrun.env({"TERM": "xterm-256color"}),
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    seen = b""
    went = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                seen += chunk
            if not went and b"1/3 done, 2 running" in seen:
                (tmp_path / "go").touch()
                went = True
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0
    assert went, seen[-2000:]
    # the area listed the running tasks with their time
    assert re.search(rb"waiter\x1b\[0m +\d+\.\ds|waiter +\d+\.\ds", seen), seen[-2000:]
    screen = pyte.Screen(120, 40)
    pyte.ByteStream(screen).feed(seen)
    shown = [line.rstrip() for line in screen.display]
    text = "\n".join(shown)
    assert "running" not in text and " done, " not in text, text  # the area is gone
    assert "waiter | waiting" in shown and "waiter | went" in shown and "quick  | quick" in shown
    assert "3 succeeded in" in text and "summary: taskrun-summary.json" in shown
    assert shown.index("waiter | went") < next(i for i, s in enumerate(shown) if s.startswith("task "))


# -- logs on disk ------------------------------------------------------------------------------


def test_old_run_folders_are_pruned_and_nothing_else(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: echo hi\n")
    runs = taskrun.cwd / ".taskrun" / "runs"
    old = [f"2020010{d}T00000{s}Z-abc{d}{s}0" for d in range(1, 6) for s in range(5)]  # 25, oldest first
    for name in old:
        (runs / name).mkdir(parents=True)
        (runs / name / "t.stdout").write_text("old")
    (runs / "notes").mkdir()
    (runs / "20200101T000000Z-short").mkdir()
    r = taskrun("tasks.yaml")
    assert r.returncode == 0
    current = taskrun.summary()["run_id"]
    left = sorted(p.name for p in runs.iterdir())
    assert left == sorted(old[-19:] + [current, "notes", "20200101T000000Z-short"])
    r = taskrun("tasks.yaml", "--keep-runs", "2")
    newest = taskrun.summary()["run_id"]
    assert sorted(p.name for p in runs.iterdir()) == sorted([current, newest, "notes", "20200101T000000Z-short"])
    r = taskrun("tasks.yaml", "--keep-runs", "0")
    assert len([p for p in runs.iterdir()]) == 5
    r = taskrun("tasks.yaml", "--keep-runs", "1", "--log-dir", "elsewhere")
    assert [p.name for p in (taskrun.cwd / "elsewhere").iterdir()] == [taskrun.summary()["run_id"]]
    assert len([p for p in runs.iterdir()]) == 5


def test_tail_lines_sets_the_summary_tails(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: 'seq 1 100; seq 1 3 >&2'\n")
    taskrun("tasks.yaml", "--output", "quiet")
    task = by_name(taskrun.summary())["t"]
    assert task["stdout_tail"] == "".join(f"{i}\n" for i in range(51, 101))
    taskrun("tasks.yaml", "--output", "quiet", "--tail-lines", "2")
    task = by_name(taskrun.summary())["t"]
    assert task["stdout_tail"] == "99\n100\n" and task["stderr_tail"] == "2\n3\n"


# -- the closing report --------------------------------------------------------------------------


def test_the_report_names_the_root_cause_and_shows_the_last_stderr_lines(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        tasks:
          ok: echo fine
          build: 'seq 1 30 >&2; exit 2'
          test:
            cmd: echo never
            needs: [build]
          deploy:
            cmd: echo never
            needs: [test]
          lint:
            cmd: 'echo lint says no; exit 1'
            allow_failure: true
    """)
    r = taskrun("tasks.yaml", "--output", "quiet")
    assert r.returncode == 1
    summary = by_name(taskrun.summary())
    tail = r.stdout[r.stdout.index("\ntask "):]
    lines = tail.splitlines()[1:]
    assert lines[0].split() == ["task", "status", "exit", "time", "tries"]
    assert lines[1].split()[:3] == ["build", "failed", "2"]  # what did not succeed comes first
    assert lines[2].split() == ["test", "skipped", "-", "-", "0"]
    assert lines[3].split() == ["deploy", "skipped", "-", "-", "0"]
    assert lines[4].split()[:4] == ["lint", "failed", "(allowed)", "1"]
    assert lines[5].split()[:3] == ["ok", "success", "0"]
    assert lines[6] == ""
    assert re.fullmatch(r"root cause: build failed \(exit 2 in \d+\.\d\ds\); because of it 2 skipped \(test, deploy\)",
                        lines[7])
    assert lines[8] == ""
    assert re.fullmatch(r"build failed: exit 2 in \d+\.\d\ds", lines[9])
    assert lines[10] == f"  log: {summary['build']['stderr_log']} (last 10 lines)"
    assert lines[11:21] == [f"  | {i}" for i in range(21, 31)]
    assert lines[21] == ""
    assert re.fullmatch(r"lint failed \(allowed\): exit 1 in \d+\.\d\ds", lines[22])
    assert lines[23] == f"  log: {summary['lint']['stdout_log']} (last 1 line)"  # stderr empty: stdout
    assert lines[24] == "  | lint says no"
    assert lines[25] == ""
    assert re.fullmatch(r"1 succeeded, 2 failed, 2 skipped in \d+\.\d\ds \(pool 1\)", lines[26])
    assert lines[27:] == ["summary: taskrun-summary.json"]


def test_the_report_names_the_fail_fast_trigger_as_root_cause(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        fail_fast: true
        kill_grace: 0.5s
        tasks:
          hang: 'while [ ! -f never ]; do sleep 0.05; done'
          boom: 'echo kaput >&2; exit 4'
          later: echo later
    """)
    r = taskrun("tasks.yaml", "--output", "quiet")
    assert r.returncode == 1
    assert re.search(r"^root cause: boom failed \(exit 4 in \d+\.\d\ds\); because of it 2 cancelled \(hang, later\)$",
                     r.stdout, re.M), r.stdout
    assert "boom failed: exit 4" in r.stdout and "  | kaput" in r.stdout


def test_no_root_cause_line_when_nothing_was_skipped_because_of_a_failure(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 1\n  b: echo b\n")
    r = taskrun("tasks.yaml", "--output", "quiet")
    assert r.returncode == 1
    assert "root cause" not in r.stdout
    assert re.search(r"^1 succeeded, 1 failed in \d+\.\d\ds \(pool \d+\)$", r.stdout, re.M)


def test_summary_to_stdout_keeps_task_output_on_stderr(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t: echo hello\n")
    r = taskrun("tasks.yaml", "-o", "-")
    assert json.loads(r.stdout)["status"] == "success"
    assert "t | hello" in r.stderr.splitlines()
