"""`taskrun FILE --validate` and `taskrun FILE` on invalid files, through the real command.

Every bad file also holds a task `touch ran`: a run of it must exit 2 with
nothing started, so the file `ran` must never appear.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BILLION_LAUGHS = (ROOT / "tests" / "files" / "billion-laughs.yaml").read_text()
RAN = "  ran: touch ran\n"

BAD_FILES = [
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  build:\n    cmd: make\n    timeout: 5 minutes\n    timout: 5m\n",
        ["tasks.yaml:6:5: tasks.build.timeout: '5 minutes' is not a duration (use 90s, 5m, 1h30m or seconds)",
         "tasks.yaml:7:5: tasks.build.timout: unknown key (did you mean 'timeout'?)"],
        id="duration-and-typo"),
    pytest.param(
        "version: 2\npool: true\ntasks:\n" + RAN + "  a:\n    description: yes\n",
        ["tasks.yaml:1:1: version: unsupported version 2 (this taskrun reads version 1)",
         "tasks.yaml:2:1: pool: expected a whole number, got boolean true",
         "tasks.yaml:5:3: tasks.a: missing required key 'cmd'",
         "tasks.yaml:6:5: tasks.a.description: expected a string, got boolean true "
         "(YAML reads unquoted true/false/yes/no/on/off as booleans: quote it)"],
        id="schema"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  ran: touch ran again\n",
        ["tasks.yaml:4:3: tasks.ran: duplicate key (first at line 3; YAML would keep only the last)"],
        id="duplicate-key"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  on: echo\n  ../x: echo\n",
        ["tasks.yaml:4:3: tasks.on: task names must be strings; quote it (YAML reads unquoted on as boolean true)",
         "tasks.yaml:5:3: tasks.../x: '../x' is not a valid task name "
         "(use letters, digits and _ . : - and start with a letter or digit)"],
        id="task-names"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: {cmd: x, needs: [ran, b, a, rna]}\n  b: {cmd: x, needs: [c]}\n"
        "  c: {cmd: x, needs: [a]}\n",
        ["tasks.yaml:4:28: tasks.a.needs.1: dependency cycle: a -> b -> c -> a",
         "tasks.yaml:4:31: tasks.a.needs.2: a task cannot need itself",
         "tasks.yaml:4:34: tasks.a.needs.3: unknown task 'rna' (did you mean 'ran'?)"],
        id="needs"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: ''\n  b: {cmd: []}\n  c: {cmd: ['']}\n  d: {cmd: x, timeout: .nan}\n",
        ["tasks.yaml:4:3: tasks.a: the command is empty",
         "tasks.yaml:5:7: tasks.b.cmd: the command is empty",
         "tasks.yaml:6:7: tasks.c.cmd: the command is empty",
         "tasks.yaml:7:15: tasks.d.timeout: nan is not a duration: it must be a finite number of seconds >= 0"],
        id="empty-commands-and-nan"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: !!python/object/apply:os.system ['touch ran']\n",
        ["tasks.yaml:4:3: tasks.a: expected a string or a mapping, got a list",
         "tasks.yaml:4:6: tasks.a: unsupported tag !!python/object/apply:os.system: task files hold plain "
         "strings, numbers, booleans, lists and mappings"],
        id="python-tag"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: [unclosed\n",
        ["tasks.yaml:5:1: invalid YAML: did not find expected ',' or ']' "
         "(while parsing a flow sequence at line 4, column 6)"],
        id="syntax"),
    pytest.param(
        "- version: 1\n- tasks:\n" + "  " + RAN,
        ["tasks.yaml:1:1: the top level must be a mapping with 'version' and 'tasks', got a list"],
        id="top-level-list"),
    pytest.param(
        BILLION_LAUGHS + RAN,
        ["tasks.yaml:9:10: tasks.g.0: aliases expand this file to more than 1,000,000 values; "
         "refusing to read it (is it an alias bomb?)"],
        id="alias-bomb"),
    pytest.param(
        b"version: 1\ntasks:\n" + RAN.encode() + b"  a: caf\xe9\n",
        ["tasks.yaml:4:9: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"],
        id="not-utf8"),
    pytest.param("", ["tasks.yaml:1:1: the file is empty: a task file needs 'version: 1' and 'tasks:'"], id="empty"),
    pytest.param(
        "version: 1\nexecutor: {kind: daks, schedulr: tcp://h:1}\ntasks:\n" + RAN
        + "  a:\n    cmd: x\n    resources: {gpu: 1, 9x: 1, mem: -1, cpu: yes, big: .inf}\n",
        ["tasks.yaml:2:12: executor.kind: 'daks' is not one of local, dask (did you mean 'dask'?)",
         "tasks.yaml:2:24: executor.schedulr: unknown key (did you mean 'scheduler'?)",
         "tasks.yaml:7:25: tasks.a.resources.9x: '9x' is not a valid resource name "
         "(use letters, digits and _ . -, starting with a letter or _)",
         "tasks.yaml:7:32: tasks.a.resources.mem: must be at least 0, got -1",
         "tasks.yaml:7:41: tasks.a.resources.cpu: expected a number, got boolean true",
         "tasks.yaml:7:51: tasks.a.resources.big: must be at most 1000000000, got inf"],
        id="executor-and-resources"),
]


def put(taskrun, content: str | bytes) -> None:
    path = taskrun.cwd / "tasks.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


@pytest.mark.parametrize(("content", "expected"), BAD_FILES)
@pytest.mark.parametrize("validate", [True, False], ids=["validate", "run"])
def test_invalid_files_exit_2_with_every_problem_and_nothing_run(taskrun, content, expected, validate):
    put(taskrun, content)
    r = taskrun("tasks.yaml", *(["--validate"] if validate else []))
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == expected
    assert r.stdout == ""
    assert not (taskrun.cwd / "ran").exists()


def test_a_valid_file_says_ok_in_one_line(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          ran: touch ran
          later: {cmd: echo, needs: [ran]}
    """)
    r = taskrun("tasks.yaml", "--validate")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("\n") == 1 and "tasks.yaml" in r.stderr
    assert not (taskrun.cwd / "ran").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "tasks").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_task_files_validate(taskrun, path):
    r = taskrun(path, "--validate")
    assert r.returncode == 0, r.stderr


def test_a_missing_file(taskrun):
    r = taskrun("nope.yaml", "--validate")
    assert (r.returncode, r.stderr) == (2, "nope.yaml:1:1: no such file\n")


def test_a_directory(taskrun):
    (taskrun.cwd / "adir").mkdir()
    r = taskrun("adir", "--validate")
    assert (r.returncode, r.stderr) == (2, "adir:1:1: is a directory, not a task file\n")


def test_a_fifo_does_not_block(taskrun):
    os.mkfifo(taskrun.cwd / "fifo.yaml")
    r = taskrun("fifo.yaml", "--validate", timeout=20)  # a blocking open would hang until the timeout
    assert (r.returncode, r.stderr) == (
        2, "fifo.yaml:1:1: is a FIFO, not a regular file: taskrun reads task files from regular files only\n")


def test_a_device(taskrun):
    r = taskrun("/dev/null", "--validate")
    assert (r.returncode, r.stderr) == (
        2, "/dev/null:1:1: is a character device, not a regular file: taskrun reads task files from regular "
           "files only\n")


def test_a_file_over_the_size_limit(taskrun):
    with open(taskrun.cwd / "tasks.yaml", "wb") as f:
        f.truncate(8 * 1024 * 1024 + 1)
    r = taskrun("tasks.yaml", "--validate")
    assert (r.returncode, r.stderr) == (
        2, "tasks.yaml:1:1: the file is too large (8,388,609 bytes; the limit is 8 MiB)\n")


def test_the_file_is_named_as_given(taskrun):
    (taskrun.cwd / "sub").mkdir()
    taskrun.write("sub/t.yaml", "version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n")
    r = taskrun("sub/t.yaml", "--validate")
    assert (r.returncode, r.stderr) == (2, "sub/t.yaml:3:15: tasks.a.timout: unknown key (did you mean 'timeout'?)\n")


def test_schema_prints_the_packaged_schema(taskrun):
    r = taskrun("--schema")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (ROOT / "runner" / "schemas" / "taskfile.schema.json").read_text(encoding="utf-8")
