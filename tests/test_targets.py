"""Output targets (`-o`, `--junit`, `--html`, the GitHub step summary) through the real command:
a regular file is replaced atomically; a device, a FIFO with a reader or one of
taskrun's own descriptors is written into and left as it is; a folder, a block
device, a socket or a FIFO nobody reads is refused before anything runs. The
device nodes are private ones made with mknod in the test's folder."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import pytest

from conftest import check, validate_summary

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device node needs root")

TASKS = "version: 1\ntasks:\n  a: touch ran\n  b: echo b\n"


def device(taskrun, name: str, minor: int):
    """A private character device of the memory driver (1,3 null; 1,5 zero; 1,7 full)."""
    path = taskrun.cwd / name
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return path


def assert_device(path, minor: int) -> None:
    st = os.lstat(path)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, minor), f"{path} was replaced"


def run_copy(taskrun) -> dict:
    """The summary the run kept in its own folder (the only run's)."""
    (run_dir,) = taskrun.run_dirs()
    data = json.loads((run_dir / "summary.json").read_text())
    validate_summary(data)
    return data


@root_only
@pytest.mark.parametrize("flag", ["-o", "--junit", "--html"])
def test_a_null_device_is_written_into_and_never_replaced(taskrun, flag):
    taskrun.write("tasks.yaml", TASKS)
    null = device(taskrun, "null", 3)
    r = check(taskrun("tasks.yaml", flag, "null", timeout=60), 0)
    assert_device(null, 3)
    assert (taskrun.cwd / "ran").exists()
    assert run_copy(taskrun)["status"] == "success"
    assert sorted(p.name for p in taskrun.cwd.iterdir() if p.name.startswith(".null")) == []  # no temporary file
    if flag == "-o":
        assert r.stdout.splitlines()[-1] == "summary: null"


@root_only
def test_a_zero_device_is_neither_replaced_nor_read_as_history(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    zero = device(taskrun, "zero", 5)
    check(taskrun("tasks.yaml", "-o", "zero", timeout=60), 0)  # a second run: history must not read it
    check(taskrun("tasks.yaml", "-o", "zero", timeout=60), 0)
    assert_device(zero, 5)
    r = taskrun("tasks.yaml", "--history", "zero", timeout=60)
    assert (r.returncode, r.stderr) == (2, "taskrun: --history zero: not a readable taskrun summary\n")


@root_only
def test_a_full_device_fails_the_write_and_the_summary_goes_to_stderr(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    full = device(taskrun, "full", 7)
    r = check(taskrun("tasks.yaml", "-o", "full", timeout=60), 3)
    assert_device(full, 7)
    assert r.stderr.endswith("taskrun: cannot write full: No space left on device; "
                             "the summary was written to stderr instead\n")
    on_stderr = json.loads(r.stderr[:r.stderr.rindex("}\n") + 1])
    assert on_stderr == run_copy(taskrun)
    assert on_stderr["status"] == "success"


def test_a_fifo_nobody_reads_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    os.mkfifo(taskrun.cwd / "fifo")
    for flag in ("-o", "--junit", "--html"):
        r = taskrun("tasks.yaml", flag, "fifo", timeout=60)
        assert (r.returncode, r.stderr) == (
            2, f"taskrun: {flag} fifo: is a FIFO that nobody reads; start its reader first (e.g. cat fifo &)\n")
    assert not (taskrun.cwd / "ran").exists() and taskrun.run_dirs() == []
    assert stat.S_ISFIFO(os.lstat(taskrun.cwd / "fifo").st_mode)


def test_a_fifo_with_a_reader_gets_the_summary_and_stays_a_fifo(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    fifo = taskrun.cwd / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)  # blocks until a writer opens it
    try:
        r = check(taskrun("tasks.yaml", "-o", "fifo", timeout=60), 0)  # the default history does not read it
        got, _ = reader.communicate(timeout=60)  # ends: taskrun closed its end
    finally:
        reader.kill()
        reader.communicate()
    summary = json.loads(got)
    validate_summary(summary)
    assert summary == run_copy(taskrun)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert r.stdout.splitlines()[-1] == "summary: fifo"


STALL = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)  # a reader that never reads
print("open", flush=True)
time.sleep(600)
"""


def test_a_reader_that_stops_reading_cannot_hold_the_run(taskrun):
    # 20 tasks with 50 lines of 300 bytes in their tails: a summary larger than a pipe holds
    lines = "\n".join(f"  t{i}: {{cmd: ['{sys.executable}', '-c', 'print((\"x\" * 300 + chr(10)) * 50)']}}"
                      for i in range(20))
    taskrun.write("tasks.yaml", f"version: 1\ntasks:\n{lines}\n")
    fifo = taskrun.cwd / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen([sys.executable, "-c", STALL, str(fifo)], stdout=subprocess.PIPE, text=True)
    try:
        taskrun_proc = taskrun.popen("tasks.yaml", "-o", "fifo")
        assert reader.stdout.readline() == "open\n"
        out, err = taskrun_proc.communicate(timeout=120)
    finally:
        reader.kill()
        reader.communicate()
    assert taskrun_proc.returncode == 3, err
    assert err.endswith("taskrun: cannot write fifo: nobody read it for 10s; "
                        "the summary was written to stderr instead\n")
    assert run_copy(taskrun)["counts"]["success"] == 20


def test_dev_stdout_in_a_pipe_gets_the_summary_whole_and_the_console_goes_to_stderr(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r = check(taskrun("tasks.yaml", "-o", "/dev/stdout", timeout=60), 0)  # capture_output: stdout is a pipe
    summary = json.loads(r.stdout)
    assert summary == run_copy(taskrun)
    assert " start a" in r.stderr and r.stderr.splitlines()[-1] == "summary: /dev/stdout"
    assert os.path.islink("/dev/stdout")


def test_a_descriptor_like_process_substitution_is_written_into(taskrun):
    # `-o >(jq .)` hands taskrun /dev/fd/63, the write end of a pipe
    taskrun.write("tasks.yaml", TASKS)
    r_fd, w_fd = os.pipe()
    proc = taskrun.popen("tasks.yaml", "-o", f"/dev/fd/{w_fd}", "--junit", f"/proc/self/fd/{w_fd}",
                         pass_fds=(w_fd,))
    os.close(w_fd)
    with os.fdopen(r_fd, "rb") as reader:
        got = reader.read()  # ends once taskrun (and the tasks that inherited nothing of it) are gone
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    text = got.decode()
    summary, end = json.JSONDecoder().raw_decode(text)
    assert summary == run_copy(taskrun)
    assert text[end:].lstrip().startswith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuite')  # the JUnit after


def test_dev_stdout_redirected_to_a_file_keeps_the_link(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    with open(taskrun.cwd / "out.json", "w") as out:
        proc = taskrun.popen("tasks.yaml", "-o", "/dev/stdout", stdout=out)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads((taskrun.cwd / "out.json").read_text()) == run_copy(taskrun)
    assert os.path.islink("/dev/stdout")


@pytest.mark.parametrize("flag, example", [("-o", "taskrun-summary.json"), ("--junit", "taskrun-summary.json"),
                                           ("--html", "report.html")])
def test_a_folder_is_refused_before_anything_runs(taskrun, flag, example):
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "reports").mkdir()
    r = taskrun("tasks.yaml", flag, "reports", timeout=60)
    assert (r.returncode, r.stderr) == (
        2, f"taskrun: {flag} reports: is a folder; give a file path, e.g. reports/{example}\n")
    assert not (taskrun.cwd / "ran").exists() and taskrun.run_dirs() == []


def test_a_socket_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(taskrun.cwd / "sock"))
        r = taskrun("tasks.yaml", "-o", "sock", timeout=60)
    assert (r.returncode, r.stderr) == (
        2, "taskrun: -o sock: is a socket; give a file path, a FIFO or a character device\n")
    assert not (taskrun.cwd / "ran").exists()


@root_only
def test_a_block_device_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    disk = taskrun.cwd / "disk"
    os.mknod(disk, 0o600 | stat.S_IFBLK, os.makedev(7, 250))  # a loop device number; never opened
    r = taskrun("tasks.yaml", "--junit", "disk", timeout=60)
    assert (r.returncode, r.stderr) == (2, "taskrun: --junit disk: is a block device; taskrun does not write "
                                           "onto a disk\n")
    assert stat.S_ISBLK(os.lstat(disk).st_mode) and not (taskrun.cwd / "ran").exists()


@root_only
def test_the_github_step_summary_follows_the_same_rule(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    null = device(taskrun, "null", 3)
    check(taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(null)}, timeout=60), 0)
    assert_device(null, 3)
    (taskrun.cwd / "ran").unlink()
    r = taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(taskrun.cwd)}, timeout=60)
    assert (r.returncode, r.stderr) == (
        2, f"taskrun: GITHUB_STEP_SUMMARY {taskrun.cwd}: is a folder; give a file path, "
           f"e.g. {taskrun.cwd}/taskrun-summary.json\n")
    assert not (taskrun.cwd / "ran").exists()


@root_only
def test_write_atomic_never_renames_over_a_device(tmp_path):
    from runner.errors import OutputError
    from runner.target import write_atomic

    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(OutputError, match="it is no longer a regular file; taskrun replaces only regular files"):
        write_atomic(null, "{}\n")
    assert_device(null, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # the temporary file is gone too


def test_a_descriptor_that_is_not_open_for_writing_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r_fd, w_fd = os.pipe()
    try:
        proc = taskrun.popen("tasks.yaml", "-o", f"/dev/fd/{r_fd}", pass_fds=(r_fd,))
        _, err = proc.communicate(timeout=60)
    finally:
        os.close(r_fd)
        os.close(w_fd)
    assert (proc.returncode, err) == (
        2, f"taskrun: -o /dev/fd/{r_fd}: is taskrun's descriptor {r_fd}, open for reading only\n")
    r = taskrun("tasks.yaml", "--junit", "/dev/fd/9", timeout=60)  # not open at all
    assert (r.returncode, r.stderr) == (2, "taskrun: --junit /dev/fd/9: Bad file descriptor\n")
    assert not (taskrun.cwd / "ran").exists()
