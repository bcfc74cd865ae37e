"""A console nobody reads: a pipe never read, a non-blocking stdout that lags, a
terminal stopped with Ctrl-S. Timeouts, signals and the kill ladder keep their
time, taskrun ends with its exit code and summary, and what reaches the reader
is whole: the lines it shows, one marker for those it dropped, the summary and
the closing report."""

from __future__ import annotations

import array
import fcntl
import json
import os
import pty
import re
import signal
import termios
import time

import pytest

from conftest import by_name, read_events_file, validate_summary, wait_for

NOISY = "seq 200000"  # 2.6 MB on the console: forty times what a pipe holds
TIMED = """
    version: 1
    pool: 3
    tasks:
      noisy: seq 200000
      slow:
        cmd: sleep 60
        timeout: 1s
      stubborn:
        cmd: trap '' TERM; sleep 60
        timeout: 1s
        kill_grace: 1s
    """
MARK = re.compile(r"^\[\.\.\. (\d+) lines? not shown: the console was not read in time; the run's logs have them all\]$")
WAIT_S = 60  # bound on what must happen within seconds, for a loaded machine


def queued(fd: int) -> int:
    """Bytes waiting in a pipe or terminal for its reader."""
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:  # EIO: the terminal's last writer is gone
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def summary_when_written(taskrun, name: str = "taskrun-summary.json") -> dict:
    wait_for(lambda: (taskrun.cwd / name).exists(), WAIT_S, "the summary")
    return taskrun.summary(name)


def test_a_timeout_fires_on_time_while_nobody_reads_the_console(taskrun):
    taskrun.write("tasks.yaml", TIMED)
    r, w = os.pipe()
    started = time.monotonic()
    proc = taskrun.popen("tasks.yaml", stdout=w, stderr=w)
    # The test keeps its own copy of the write end: taskrun must not make the
    # open file description it shares with its parent non-blocking.
    try:
        summary = summary_when_written(taskrun)  # while the pipe is full and never read
        ended_in_s = time.monotonic() - started
        assert queued(r) > 32 * 1024  # the console was indeed blocked
        slow, stubborn = by_name(summary)["slow"], by_name(summary)["stubborn"]
        assert slow["status"] == "timeout" and slow["reason"].startswith("timed out after 1s")
        assert slow["duration_s"] < 5.0 and ended_in_s < 20
        assert (stubborn["status"], stubborn["signal"]) == ("timeout", "SIGKILL")  # the ladder's last step
        assert 1.9 <= stubborn["duration_s"] < 7.0  # SIGTERM ignored at 1 s, SIGKILL after the 1 s grace
        assert (summary["status"], summary["exit_code"]) == ("failed", 1)
        assert proc.wait(timeout=WAIT_S) == 1  # it gives up on a reader that never reads
        assert os.get_blocking(w)
    finally:
        os.close(w)
        os.close(r)


def start_with_the_console_blocked(taskrun, long: str):
    """Start a run of a task that floods the console and one running `long`, on a pipe nobody
    reads; return (the process, the pipe's read end) once the flood has ended and the pipe is full."""
    taskrun.write("tasks.yaml", f"""
        version: 1
        pool: 2
        tasks:
          noisy: {NOISY}
          long: {long}
        """)
    r, w = os.pipe()
    proc = taskrun.popen("tasks.yaml", stdout=w, stderr=w)
    os.close(w)
    run_dir = wait_for(taskrun.run_dirs, WAIT_S, "the run folder")[0]

    def noisy_ended_and_pipe_full():
        events = read_events_file(run_dir / "events.jsonl")
        return (any(e.get("event") == "task_end" and e.get("task") == "noisy" for e in events)
                and queued(r) > 32 * 1024)

    wait_for(noisy_ended_and_pipe_full, WAIT_S, "noisy's end, with the console blocked")
    return proc, r


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_is_honoured_while_nobody_reads_the_console(taskrun, sig, code):
    proc, r = start_with_the_console_blocked(taskrun, "sleep 60")
    try:
        proc.send_signal(sig)
        summary = summary_when_written(taskrun)
        assert (summary["status"], summary["exit_code"], summary["signal"]) == ("cancelled", code, sig.name)
        assert by_name(summary)["long"]["status"] == "cancelled"
        assert proc.wait(timeout=WAIT_S) == code
    finally:
        os.close(r)


def test_a_lagging_non_blocking_stdout_loses_nothing(taskrun):
    taskrun.write("tasks.yaml", f"version: 1\ntasks:\n  t: {NOISY}\n")
    r, w = os.pipe()
    os.set_blocking(w, False)  # as a parent that uses non-blocking pipes leaves it
    proc = taskrun.popen("tasks.yaml", stdout=w, stderr=w)
    os.close(w)
    wait_for(lambda: queued(r) > 32 * 1024, WAIT_S, "a full pipe")  # taskrun met EAGAIN
    out = read_all(r).decode()
    os.close(r)
    assert proc.wait(timeout=WAIT_S) == 0
    lines = out.splitlines()
    assert re.fullmatch(r"\d\d:\d\d:\d\d start t \(pid \d+\)", lines[0])
    assert lines[1] == f"t $ {NOISY}"  # the command, echoed
    assert lines[2:200_002] == [f"t | {i}" for i in range(1, 200_001)]
    assert re.fullmatch(r"\d\d:\d\d:\d\d done  t ok exit 0 in \d+\.\d\ds", lines[200_002])
    assert re.fullmatch(r"1 succeeded in \d+\.\d\ds \(pool \d+\)", lines[-2])
    assert lines[-1] == "summary: taskrun-summary.json"


def test_a_reader_stalled_for_the_whole_run_loses_only_the_lines_it_is_told_of(taskrun):
    names = [f"t{i:02d}" for i in range(20)]
    taskrun.write("tasks.yaml", "version: 1\npool: 4\ntasks:\n" + "".join(f"  {n}: seq 20000\n" for n in names))
    r, w = os.pipe()
    proc = taskrun.popen("tasks.yaml", stdout=w, stderr=w)
    os.close(w)
    run_dir = wait_for(taskrun.run_dirs, WAIT_S, "the run folder")[0]
    wait_for(lambda: any(e["event"] == "run_end" for e in read_events_file(run_dir / "events.jsonl")),
             WAIT_S, "the run's end")  # not a byte read before
    out = read_all(r).decode()
    os.close(r)
    assert proc.wait(timeout=WAIT_S) == 0
    lines = out.splitlines()
    marks = [int(m[1]) for m in map(MARK.match, lines) if m]
    assert marks, "a reader that read nothing while 20 tasks wrote 2.4 MB must lose lines"
    for name in names:  # every task's start and end line is kept; what is shown of its output is in order
        assert sum(bool(re.fullmatch(rf"\d\d:\d\d:\d\d (start|done ) {name} .*", line)) for line in lines) == 2
        shown = [int(line[6:]) for line in lines if line.startswith(f"{name} | ")]
        assert shown == list(range(1, len(shown) + 1)) or shown == []
    task_lines = [line for line in lines if re.match(r"t\d\d \| ", line)]
    assert len(task_lines) + sum(marks) == 20 * 20000  # every line shown, or counted
    assert lines[-2].startswith("20 succeeded in ") and lines[-1] == "summary: taskrun-summary.json"


def test_summary_on_stdout_with_stderr_on_the_same_pipe_stays_whole(taskrun):
    taskrun.write("tasks.yaml", f"""
        version: 1
        pool: 3
        tasks:
          a: {NOISY}
          b: {NOISY}
          c:
            cmd: echo "{'x' * 200}"; exit 1
        """)
    r, w = os.pipe()
    os.set_blocking(w, False)  # and EAGAIN on it means "later"
    proc = taskrun.popen("tasks.yaml", "-o", "-", stdout=w, stderr=w)  # 2>&1
    os.close(w)
    run_dir = wait_for(taskrun.run_dirs, WAIT_S, "the run folder")[0]
    # Not a byte read before the run ended: the summary waits behind console lines.
    wait_for(lambda: any(e["event"] == "run_end" for e in read_events_file(run_dir / "events.jsonl")),
             WAIT_S, "the run's end")
    out = read_all(r).decode()
    os.close(r)
    assert proc.wait(timeout=WAIT_S) == 1
    lines = out.splitlines()
    start, end = lines.index("{"), lines.index("}")
    summary = json.loads("\n".join(lines[start:end + 1]))
    validate_summary(summary)
    assert summary["counts"] == {"success": 2, "failed": 1, "timeout": 0, "skipped": 0, "cancelled": 0, "up_to_date": 0}
    assert by_name(summary)["c"]["stdout_tail"] == "x" * 200 + "\n"
    assert "2 succeeded, 1 failed in " in lines[-1]  # the closing report comes whole after it


def test_a_terminal_stopped_with_ctrl_s_holds_no_timeout_back(taskrun):
    taskrun.write("tasks.yaml", TIMED)
    master, slave = pty.openpty()
    os.write(master, b"\x13")  # Ctrl-S: the terminal stops its output (IXON)
    proc = taskrun.popen("tasks.yaml", stdout=slave, stderr=slave)
    os.close(slave)
    try:
        summary = summary_when_written(taskrun)
        slow = by_name(summary)["slow"]
        assert slow["status"] == "timeout" and slow["duration_s"] < 5.0
        assert proc.poll() is None  # still waiting for the terminal to take the closing report
        os.write(master, b"\x11")  # Ctrl-Q: output resumes
        out = read_all(master).decode(errors="replace")
    finally:
        os.close(master)
    assert proc.wait(timeout=WAIT_S) == 1
    assert "1 succeeded, 2 timed out in " in out
    assert "summary: taskrun-summary.json" in out


def test_a_socket_as_stdout_holds_no_timeout_back_and_gets_every_line(taskrun):
    import socket

    taskrun.write("tasks.yaml", TIMED)
    reader, writer = socket.socketpair()  # as systemd gives a service its journal
    proc = taskrun.popen("tasks.yaml", stdout=writer.fileno(), stderr=writer.fileno())
    writer.close()
    try:
        slow = by_name(summary_when_written(taskrun))["slow"]  # not a byte read before
        assert slow["status"] == "timeout" and slow["duration_s"] < 5.0
        out = read_all(reader.fileno()).decode()
    finally:
        reader.close()
    assert proc.wait(timeout=WAIT_S) == 1
    lines = out.splitlines()
    prefix = "noisy    | "  # padded to the longest name, stubborn
    assert [line for line in lines if line.startswith(prefix)] == [f"{prefix}{i}" for i in range(1, 200_001)]
    assert lines[-2].startswith("1 succeeded, 2 timed out in ")


def test_the_loop_rests_while_nobody_reads_the_console(taskrun):
    # Logs are read at most every 50 ms, and not at all while the console waits for its reader:
    # the loop must then wait, not spin (it would burn a CPU for as long as the reader lags).
    proc, r = start_with_the_console_blocked(taskrun, "sleep 3")
    try:
        before, t0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(1.0)  # a span to measure over, not a synchronisation
        used, span = cpu_s(proc.pid) - before, time.monotonic() - t0
        assert used < 0.1 * span, f"taskrun used {used:.2f}s of CPU in {span:.2f}s while waiting for its reader"
        read_all(r)
        assert proc.wait(timeout=WAIT_S) == 0
    finally:
        proc.kill()
        proc.wait()
        os.close(r)


def cpu_s(pid: int) -> float:
    """User + system seconds a process has used so far."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
