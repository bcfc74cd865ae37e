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
NUL = "contains a NUL character (\\0), which no command, argument, path or variable can hold; remove it"

BAD_FILES = [
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  build:\n    cmd: make\n    timeout: 5 minutes\n    timout: 5m\n",
        ["tasks.yaml:6:5: tasks.build.timeout: '5 minutes' is not a duration (use 90s, 5m, 1h30m or seconds)",
         "tasks.yaml:7:5: tasks.build.timout: unknown key (did you mean 'timeout'?)"],
        id="duration-and-typo"),
    pytest.param(
        "version: 2\npool: true\ntasks:\n" + RAN + "  a:\n    description: ~\n",
        ["tasks.yaml:1:1: version: unsupported version 2 (this taskrun reads version 1)",
         "tasks.yaml:2:1: pool: expected a whole number, got boolean true",
         "tasks.yaml:5:3: tasks.a: missing required key 'cmd' (or 'steps')",
         "tasks.yaml:6:5: tasks.a.description: expected a string, got nothing (YAML reads ~, null and an empty "
         "value as nothing): quote it, e.g. '' for an empty string"],
        id="schema"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  ran: touch ran again\n",
        ["tasks.yaml:4:3: tasks.ran: duplicate key (first at line 3; YAML would keep only the last)"],
        id="duplicate-key"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  on: echo\n  ../x: echo\n",
        ["tasks.yaml:4:3: tasks.on: task names must be strings; quote it (YAML reads unquoted on as boolean true)",
         "tasks.yaml:5:3: tasks.../x: '../x' is not a valid task name "
         "(use letters, digits and _ . : - and start with a letter, a digit or _)"],
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
    pytest.param(
        'version: 1\nenv: {A: "a\\0b"}\ntasks:\n' + RAN + '  a: {cmd: "x\\0y", cwd: "\\0"}\n  b: {cmd: [echo, "\\0"]}\n',
        [f"tasks.yaml:2:7: env.A: {NUL}", f"tasks.yaml:5:7: tasks.a.cmd: {NUL}", f"tasks.yaml:5:20: tasks.a.cwd: {NUL}",
         f"tasks.yaml:6:19: tasks.b.cmd.1: {NUL}"],
        id="nul-characters"),
    pytest.param(
        "version: 1\npool: 5000\ntimeout: .inf\nkill_grace: 1e400\ntasks:\n" + RAN
        + "  a: {cmd: x, timeout: 99999999999, retries: 1000, retry_delay: -1}\n",
        ["tasks.yaml:2:1: pool: must be at most 4096, got 5000",
         "tasks.yaml:3:1: timeout: inf is not a duration: it must be a finite number of seconds >= 0",
         "tasks.yaml:4:1: kill_grace: '1e400' is not a duration (use 90s, 5m, 1h30m or seconds)",
         "tasks.yaml:7:15: tasks.a.timeout: 99999999999 is too long: at most 31622400 seconds (366 days)",
         "tasks.yaml:7:37: tasks.a.retries: must be at most 100, got 1000",
         "tasks.yaml:7:52: tasks.a.retry_delay: -1 is not a duration: it must be a finite number of seconds >= 0"],
        id="absurd-numbers"),
    pytest.param(
        "version: 1\npool: yes\nfail_fast: 'true'\ntasks:\n" + RAN
        + "  a: {cmd: x, retries: true, timeout: off, allow_failure: 1}\n",
        ["tasks.yaml:2:1: pool: expected a whole number, got boolean true",
         "tasks.yaml:3:1: fail_fast: expected true or false, got a string ('true')",
         "tasks.yaml:6:15: tasks.a.retries: expected a whole number, got boolean true",
         "tasks.yaml:6:30: tasks.a.timeout: expected a duration (use 90s, 5m, 1h30m or seconds), got boolean false",
         "tasks.yaml:6:44: tasks.a.allow_failure: expected true or false, got the number 1"],
        id="booleans-for-numbers"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: '   '\n  b: {cmd: [' ', '\\t']}\n  c: \"\\n\"\n",
        ["tasks.yaml:4:3: tasks.a: the command is empty",
         "tasks.yaml:5:13: tasks.b.cmd.0: the program (the first item) is empty",
         "tasks.yaml:6:3: tasks.c: the command is empty"],
        id="whitespace-commands"),
    pytest.param(
        "version: 1\nsecrets: [1A, ok, ok, {a: b}]\ntasks:\n" + RAN,
        ["tasks.yaml:2:11: secrets.0: '1A' is not a valid variable name (use letters, digits and _, not starting "
         "with a digit)",
         "tasks.yaml:2:19: secrets.2: 'ok' is listed twice",
         "tasks.yaml:2:23: secrets.3: expected a string, got a mapping"],
        id="secrets"),
    pytest.param(
        "version: 1\nenv: {null: b, [x]: c}\ntasks:\n" + RAN + "  ..: echo\n  .: echo\n  \"\\u212b\": echo\n"
        + "  yes: echo\n  " + "a" * 201 + ": echo\n",
        ["tasks.yaml:2:7: env.null: variable names must be strings; quote it (YAML reads unquoted null as null)",
         "tasks.yaml:2:16: env: variable names must be strings, not a list",
         "tasks.yaml:5:3: tasks...: '..' is not a valid task name (use letters, digits and _ . : - and start with a "
         "letter, a digit or _)",
         "tasks.yaml:6:3: tasks..: '.' is not a valid task name (use letters, digits and _ . : - and start with a "
         "letter, a digit or _)",
         "tasks.yaml:7:3: tasks.\u212b: '\u212b' is not a valid task name (use letters, digits and _ . : - and start "
         "with a letter, a digit or _)",
         "tasks.yaml:8:3: tasks.yes: task names must be strings; quote it (YAML reads unquoted yes as boolean true)",
         f"tasks.yaml:9:3: tasks.{'a' * 201}: task names are at most 200 characters, this one has 201 "
         "(each names log files)"],
        id="keys-and-names"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: echo\n  ? a\n  : echo\n",
        ["tasks.yaml:5:5: tasks.a: duplicate key (first at line 4; YAML would keep only the last)"],
        id="duplicate-complex-key"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "  a: {cmd: x, env: {A: " + "[" * 200 + "]" * 200 + "}}\n",
        ["tasks.yaml:4:120: nested more than 100 levels deep"],
        id="deep-nesting"),
    pytest.param(
        "version: 1\ntasks:\n" + RAN + "---\nversion: 1\n",
        ["tasks.yaml:4:1: a second YAML document ('---'): a task file holds one document"],
        id="two-documents"),
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
        f.truncate(32 * 1024 * 1024 + 1)
    r = taskrun("tasks.yaml", "--validate")
    assert (r.returncode, r.stderr) == (
        2, "tasks.yaml:1:1: the file is too large (33,554,433 bytes; the limit is 32 MiB)\n")


def test_the_file_is_named_as_given(taskrun):
    (taskrun.cwd / "sub").mkdir()
    taskrun.write("sub/t.yaml", "version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n")
    r = taskrun("sub/t.yaml", "--validate")
    assert (r.returncode, r.stderr) == (2, "sub/t.yaml:3:15: tasks.a.timout: unknown key (did you mean 'timeout'?)\n")


def test_schema_prints_the_packaged_schema(taskrun):
    r = taskrun("--schema")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (ROOT / "runner" / "schemas" / "taskfile.schema.json").read_text(encoding="utf-8")


def test_a_utf8_bom_is_fine_and_the_file_runs(taskrun):
    (taskrun.cwd / "tasks.yaml").write_bytes(b"\xef\xbb\xbfversion: 1\ntasks:\n  ran: touch ran\n")
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    assert (taskrun.cwd / "ran").exists()


def test_the_bad_byte_of_a_bom_file_is_placed_after_the_bom(taskrun):
    (taskrun.cwd / "tasks.yaml").write_bytes(b"\xef\xbb\xbfversion: 1\ntasks:\n" + RAN.encode() + b"  a: \xff\n")
    r = taskrun("tasks.yaml")
    assert (r.returncode, r.stderr) == (2, "tasks.yaml:4:6: the file is not UTF-8 text (byte 0xff); save it as UTF-8\n")
    assert not (taskrun.cwd / "ran").exists()


def test_an_alias_bomb_is_refused_within_a_second_and_little_memory(taskrun):
    import resource

    put(taskrun, BILLION_LAUGHS + RAN)
    # 200 MiB of address space is far below what expanding the bomb would take.
    r = taskrun("tasks.yaml", timeout=20,
                preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (400 * 2**20, 400 * 2**20)))
    assert r.returncode == 2, r.stderr
    assert "alias bomb" in r.stderr
    assert not (taskrun.cwd / "ran").exists()
