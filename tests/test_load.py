"""The loader: task file -> TaskFile, or every problem with its exact position and wording."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from conftest import by_name, check, spot
from runner import yamlsrc
from runner.durations import DURATION_PATTERN
from runner.errors import TaskFileError
from runner.load import MAX_BYTES, load_taskfile, schema_text, schema_validator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A fresh working folder, so files are named as a user would name them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str, name: str = "tasks.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return name


def problems(text: str | bytes, name: str = "tasks.yaml") -> list[str]:
    if isinstance(text, bytes):
        Path(name).write_bytes(text)
    else:
        write(text, name)
    with pytest.raises(TaskFileError) as caught:
        load_taskfile(name)
    return [str(p) for p in caught.value.problems]


# --- good files --------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "tasks").glob("*.yaml")), ids=lambda p: p.name)
def test_repository_task_files_load(path):
    taskfile = load_taskfile(path)
    assert taskfile.tasks
    assert taskfile.version == 1


def test_a_full_file_becomes_a_taskfile(here):
    write("""
        version: 1
        pool: 4
        timeout: 1h30m
        kill_grace: 250ms
        fail_fast: true
        shell: /bin/bash
        env: {B: 2, A: "x", FLAG: yes, NOPE: false, PI: 3.5}
        tasks:
          lint: ruff check .
          test:
            cmd: [pytest, -q]
            description: Unit tests
            needs: [lint]
            timeout: 90
            kill_grace: 1s
            retries: 2
            retry_delay: 2s
            env: {CI: true}
            cwd: sub/dir
            allow_failure: true
            tags: [fast, unit]
    """)
    tf = load_taskfile("tasks.yaml")
    assert tf.path == "tasks.yaml"
    assert tf.folder == str(here)
    assert tf.sha256 == hashlib.sha256(Path("tasks.yaml").read_bytes()).hexdigest()
    assert (tf.version, tf.pool, tf.timeout_s, tf.kill_grace_s) == (1, 4, 5400.0, 0.25)
    assert (tf.shell, tf.fail_fast) == ("/bin/bash", True)
    assert tf.env == (("B", "2"), ("A", "x"), ("FLAG", "yes"), ("NOPE", "false"), ("PI", "3.5"))  # file order
    lint, test = tf.tasks
    assert (lint.name, lint.cmd, lint.line, lint.needs, lint.timeout_s) == ("lint", "ruff check .", 9, (), None)
    assert test.cmd == ("pytest", "-q")
    assert test.line == 10
    assert test.description == "Unit tests"
    assert test.needs == ("lint",)
    assert (test.timeout_s, test.kill_grace_s, test.retries, test.retry_delay_s) == (90.0, 1.0, 2, 2.0)
    assert test.env == (("CI", "true"),)
    assert test.cwd == str(here / "sub" / "dir")  # need not exist yet: a missing cwd fails at run time
    assert (test.allow_failure, test.tags) == (True, ("fast", "unit"))


def test_defaults_of_a_minimal_file(here):
    write("""
        version: 1
        tasks:
          a: echo a
    """)
    tf = load_taskfile(Path("tasks.yaml"))
    assert tf.path == "tasks.yaml"
    assert (tf.pool, tf.timeout_s, tf.kill_grace_s, tf.env, tf.shell, tf.fail_fast) == (
        None, None, None, (), "/bin/sh", False)
    assert tf.tasks[0].cwd is None


def test_absolute_cwd_is_kept(here):
    write("""
        version: 1
        tasks:
          a: {cmd: pwd, cwd: /tmp}
    """)
    assert load_taskfile("tasks.yaml").tasks[0].cwd == "/tmp"


def test_anchors_and_merge_keys_are_allowed(here):
    write("""
        version: 1
        tasks:
          base: &base
            cmd: echo base
            timeout: 5m
            env: &env {A: "1"}
          build:
            <<: *base
            cmd: make
          test:
            cmd: pytest
            env: *env
    """)
    tf = load_taskfile("tasks.yaml")
    assert tf.task("build").cmd == "make"  # the mapping's own key wins over the merged one
    assert tf.task("build").timeout_s == 300.0
    assert tf.task("test").env == (("A", "1"),)


def test_tasks_given_through_an_alias(here):
    write("""
        version: 1
        env: &tasks {a: echo, b: ls}
        tasks: *tasks
    """)
    tf = load_taskfile("tasks.yaml")
    assert [(t.name, t.line) for t in tf.tasks] == [("a", 2), ("b", 2)]  # where the keys are written


def test_a_bom_is_fine_and_lines_still_count_from_one(here):
    Path("tasks.yaml").write_bytes(b"\xef\xbb\xbfversion: 1\ntasks:\n  a: echo\n  b: {cmd: x, timout: 1}\n")
    with pytest.raises(TaskFileError) as caught:
        load_taskfile("tasks.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "tasks.yaml:4:15: tasks.b.timout: unknown key (did you mean 'timeout'?)"]
    Path("ok.yaml").write_bytes(b"\xef\xbb\xbfversion: 1\ntasks:\n  a: echo\n")
    assert load_taskfile("ok.yaml").tasks[0].line == 3


# --- schema errors in plain English ---------------------------------------------------


def test_the_issue_example_and_every_problem_in_file_order(here):
    text = "version: 1\ntasks:\n" + "".join(f"  t{i}: echo {i}\n" for i in range(7)) + """\
  build:
    cmd: make
    timeout: 5 minutes
    timout: 5m
"""
    assert problems(text) == [
        "tasks.yaml:12:5: tasks.build.timeout: '5 minutes' is not a duration (use 90s, 5m, 1h30m or seconds)",
        "tasks.yaml:13:5: tasks.build.timout: unknown key (did you mean 'timeout'?)",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("version: 1\ntasks:\n  a:\n    cmd: [make, [x]]\n",
                 ["tasks.yaml:4:17: tasks.a.cmd.1: expected a string, got a list"], id="item-type"),
    pytest.param("version: 1\ntasks:\n  a:\n    cmd: {x: 1}\n",
                 ["tasks.yaml:4:5: tasks.a.cmd: expected a string or a list, got a mapping"], id="cmd-type"),
    pytest.param("version: 1\ntasks:\n  a: [make]\n",
                 ["tasks.yaml:3:3: tasks.a: expected a string or a mapping, got a list"], id="task-type"),
    pytest.param("version: 1\ntasks:\n  a:\n",
                 ["tasks.yaml:3:3: tasks.a: expected a string or a mapping, got nothing (YAML reads ~, null and an "
                  "empty value as nothing): quote it, e.g. '' for an empty string"], id="task-empty"),
    pytest.param("version: 1\ntasks:\n  a:\n    description: x\n",
                 ["tasks.yaml:3:3: tasks.a: missing required key 'cmd' (or 'steps')"], id="required-cmd"),
    pytest.param("tasks:\n  a: echo\n", ["tasks.yaml:1:1: missing required key 'version'"], id="required-version"),
    pytest.param("version: 2\ntasks:\n  a: echo\n",
                 ["tasks.yaml:1:1: version: unsupported version 2 (this taskrun reads version 1)"], id="version"),
    pytest.param("version: '1'\ntasks:\n  a: echo\n",
                 ["tasks.yaml:1:1: version: unsupported version '1' (this taskrun reads version 1)"],
                 id="version-string"),
    pytest.param("version: 1\ntasks: {}\n", ["tasks.yaml:2:1: tasks: no tasks: define at least one"], id="no-tasks"),
    pytest.param("version: 1\npool: 0\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: pool: must be at least 1, got 0"], id="pool-min"),
    pytest.param("version: 1\npool: 100000\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: pool: must be at most 4096, got 100000"], id="pool-max"),
    pytest.param("version: 1\npool: true\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: pool: expected a whole number, got boolean true"], id="pool-bool"),
    pytest.param("version: 1\npool: .inf\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: pool: expected a whole number, got the number inf"], id="pool-inf"),
    pytest.param("version: 1\npool: 2.5\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: pool: expected a whole number, got the number 2.5"], id="pool-float"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, retries: 1000000000000}\n",
                 ["tasks.yaml:3:15: tasks.a.retries: must be at most 100, got 1000000000000"], id="retries-max"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, retries: -1}\n",
                 ["tasks.yaml:3:15: tasks.a.retries: must be at least 0, got -1"], id="retries-min"),
    pytest.param("version: 1\ntimeout: .inf\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: timeout: inf is not a duration: it must be a finite number of seconds >= 0"],
                 id="timeout-inf"),
    pytest.param("version: 1\ntimeout: .nan\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: timeout: nan is not a duration: it must be a finite number of seconds >= 0"],
                 id="timeout-nan"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, timeout: 99999999999}\n",
                 ["tasks.yaml:3:15: tasks.a.timeout: 99999999999 is too long: at most 31622400 seconds (366 days)"],
                 id="timeout-huge"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, kill_grace: -1}\n",
                 ["tasks.yaml:3:15: tasks.a.kill_grace: -1 is not a duration: it must be a finite number of "
                  "seconds >= 0"], id="kill-grace-negative"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, retry_delay: true}\n",
                 ["tasks.yaml:3:15: tasks.a.retry_delay: expected a duration (use 90s, 5m, 1h30m or seconds), "
                  "got boolean true"], id="retry-delay-bool"),
    pytest.param("version: 1\nfail_fast: maybe\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: fail_fast: expected true or false, got a string ('maybe')"], id="bool-type"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, tags: [a, a]}\n",
                 ["tasks.yaml:3:25: tasks.a.tags.1: 'a' is listed twice"], id="unique-tags"),
    pytest.param("version: 1\nshell: ''\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: shell: must not be empty"], id="shell-empty"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, env: {1X: y, OK: [1]}}\n",
                 ["tasks.yaml:3:21: tasks.a.env.1X: '1X' is not a valid variable name (use letters, digits and _, "
                  "not starting with a digit)",
                  "tasks.yaml:3:28: tasks.a.env.OK: expected a string, got a list"],
                 id="env"),
    pytest.param("version: 1\nverison: 1\ntasks:\n  a: echo\n",
                 ["tasks.yaml:2:1: verison: unknown key (did you mean 'version'?)"], id="unknown-top"),
    pytest.param("version: 1\ntasks:\n  a: {cmd: x, zzz: 1}\n",
                 ["tasks.yaml:3:15: tasks.a.zzz: unknown key"], id="unknown-no-suggestion"),
])
def test_schema_problems(here, text, expected):
    assert problems(text) == expected


@pytest.mark.parametrize("name", ["../x", "a/b", "-x", ".hidden", "a b"])
def test_task_names_that_could_escape_a_folder_are_refused(here, name):
    assert problems(f'version: 1\ntasks:\n  "{name}": echo\n') == [
        f"tasks.yaml:3:3: tasks.{name}: {name!r} is not a valid task name "
        "(use letters, digits and _ . : - and start with a letter, a digit or _)"]


@pytest.mark.parametrize(("cmd", "where"), [
    ('""', "tasks.a.cmd"), ('"   "', "tasks.a.cmd"), ("[]", "tasks.a.cmd"), ('[""]', "tasks.a.cmd"),
    ('[" ", ""]', "tasks.a.cmd"),
])
def test_empty_commands(here, cmd, where):
    assert problems(f"version: 1\ntasks:\n  a:\n    cmd: {cmd}\n") == [f"tasks.yaml:4:5: {where}: the command is empty"]


def test_empty_command_given_as_the_task_itself(here):
    assert problems('version: 1\ntasks:\n  a: "  "\n  b: ""\n') == [
        "tasks.yaml:3:3: tasks.a: the command is empty",
        "tasks.yaml:4:3: tasks.b: the command is empty",
    ]


def test_an_empty_program_in_a_list_command(here):
    assert problems('version: 1\ntasks:\n  a:\n    cmd: ["", x]\n') == [
        "tasks.yaml:4:11: tasks.a.cmd.0: the program (the first item) is empty"]


# --- YAML 1.1 surprises ----------------------------------------------------------------


# Where the schema expects text, a scalar is what the user wrote, whatever YAML 1.1 makes of it.
AS_WRITTEN = ["yes", "no", "on", "off", "true", "False", "3.10", "0027", "0777", "12:30", "1e3", "1.0e+3", "0x1F",
              "1_000", ".inf", "-.5", "2024-01-02", "2024-01-02 10:00:00"]


@pytest.mark.parametrize("word", AS_WRITTEN)
def test_unquoted_scalars_where_a_string_is_expected_are_read_as_written(here, monkeypatch, word):
    # A shell must be installed: one named like the word, on PATH.
    (here / "bin").mkdir()
    (here / "bin" / word).write_text("#!/bin/sh\n")
    (here / "bin" / word).chmod(0o755)
    monkeypatch.setenv("PATH", f"{here / 'bin'}:{os.environ['PATH']}")
    write(f"""
        version: 1
        shell: {word}
        env: {{A: {word}}}
        tasks:
          a: {word}
          b:
            cmd: [{word}, {word}]
            description: {word}
            env: {{B: {word}}}
            cwd: {word}
            tags: [{word}]
    """)
    tf = load_taskfile("tasks.yaml")
    a, b = tf.tasks
    assert (tf.shell, tf.env, a.cmd) == (word, (("A", word),), word)
    assert (b.cmd, b.description, b.env, b.tags) == ((word, word), word, (("B", word),), (word,))
    assert b.cwd == str(here / word)


def test_numbers_stay_numbers_where_a_number_is_expected(here):
    write("version: 1\npool: 0x10\ntimeout: 1_000\ntasks:\n  a: {cmd: x, retries: 010, timeout: 1.5e+1}\n")
    tf = load_taskfile("tasks.yaml")
    assert (tf.pool, tf.timeout_s, tf.tasks[0].retries, tf.tasks[0].timeout_s) == (16, 1000.0, 8, 15.0)


@pytest.mark.parametrize("empty", ["~", "null", "Null", ""])
def test_nothing_where_a_string_is_expected_is_refused(here, empty):
    hint = "got nothing (YAML reads ~, null and an empty value as nothing): quote it, e.g. '' for an empty string"
    assert problems(f"version: 1\nenv:\n  A: {empty}\ntasks:\n  a:\n    cmd:\n      - x\n      - {empty}\n") == [
        f"tasks.yaml:3:3: env.A: expected a string, {hint}",
        f"tasks.yaml:8:{9 if empty else 8}: tasks.a.cmd.1: expected a string, {hint}",  # nothing: where the dash ends
    ]


def test_a_choice_is_read_as_written_too(here):
    assert problems("version: 1\noutput: on\ntasks:\n  a: x\n") == [
        "tasks.yaml:2:1: output: 'on' is not one of stream, group, quiet"]


def test_task_names_that_are_not_strings(here):
    assert problems("version: 1\ntasks:\n  1: echo one\n  off: echo off\n  null: echo null\n") == [
        "tasks.yaml:3:3: tasks.1: task names must be strings; quote it (YAML reads unquoted 1 as a number)",
        "tasks.yaml:4:3: tasks.off: task names must be strings; quote it (YAML reads unquoted off as boolean false)",
        "tasks.yaml:5:3: tasks.null: task names must be strings; quote it (YAML reads unquoted null as null)",
    ]


def test_quoted_task_names_are_fine(here):
    write('version: 1\ntasks:\n  "1": echo one\n  "on": echo on\n')
    assert [t.name for t in load_taskfile("tasks.yaml").tasks] == ["1", "on"]


def test_keys_that_are_lists(here):
    assert problems("version: 1\ntasks:\n  a: echo\n  ? [x, y]\n  : echo\n") == [
        "tasks.yaml:4:5: tasks: task names must be strings, not a list"]


def test_a_needs_item_is_a_name_as_written(here):
    write("version: 1\ntasks:\n  'on': echo\n  '3.10': echo\n  b: {cmd: x, needs: [on, 3.10]}\n")
    assert load_taskfile("tasks.yaml").tasks[2].needs == ("on", "3.10")


def test_anchors_and_aliases_on_plain_scalars(here):
    write("""
        version: 1
        env: {PY: &py 3.10, MODE: &mode on}
        tasks:
          a:
            cmd: [python, *py, &flag -q]
            description: *mode
            env: {AGAIN: *py, FLAG: *flag}
            retries: &n 2
          b: {cmd: [echo, *n], retries: *n, timeout: *py}
          c: {cmd: [sleep, &m 3], retries: *m}
    """)
    tf = load_taskfile("tasks.yaml")
    a, b, c = tf.tasks
    assert tf.env == (("PY", "3.10"), ("MODE", "on"))
    assert (a.cmd, a.description, a.env, a.retries) == (("python", "3.10", "-q"), "on",
                                                        (("AGAIN", "3.10"), ("FLAG", "-q")), 2)
    # an alias is read where it stands: text in a command, a number where one is expected
    assert (b.cmd, b.retries, b.timeout_s) == (("echo", "2"), 2, 3.1)
    assert (c.cmd, c.retries) == (("sleep", "3"), 3)


# --- duplicate keys --------------------------------------------------------------------


def test_duplicate_keys_point_at_the_second_and_name_the_first(here):
    assert problems("""
        version: 1
        tasks:
          build: make
          test:
            cmd: pytest
            env: {A: 1, A: 2}
            cmd: tox
          build: make all
    """) == [
        "tasks.yaml:6:17: tasks.test.env.A: duplicate key (first at line 6; YAML would keep only the last)",
        "tasks.yaml:7:5: tasks.test.cmd: duplicate key (first at line 5; YAML would keep only the last)",
        "tasks.yaml:8:3: tasks.build: duplicate key (first at line 3; YAML would keep only the last)",
    ]


def test_duplicate_top_level_keys(here):
    assert problems("version: 1\ntasks:\n  a: echo\nversion: 1\n") == [
        "tasks.yaml:4:1: version: duplicate key (first at line 1; YAML would keep only the last)"]


def test_keys_that_are_duplicates_after_yaml_normalisation(here):
    assert problems("version: 1\ntasks:\n  a: echo\nenv:\n  yes: a\n  true: b\n") == [
        "tasks.yaml:5:3: env.yes: variable names must be strings; quote it "
        "(YAML reads unquoted yes as boolean true)",
        "tasks.yaml:6:3: env.true: duplicate key: YAML reads 'yes' (line 5) and 'true' as the same key "
        "(boolean true); quote them",
        "tasks.yaml:6:3: env.true: variable names must be strings; quote it "
        "(YAML reads unquoted true as boolean true)",
    ]


def test_a_merged_key_overridden_by_the_mapping_is_not_a_duplicate(here):
    write("version: 1\ntasks:\n  a: &a {cmd: x, timeout: 1}\n  b: {<<: *a, timeout: 2}\n")
    assert load_taskfile("tasks.yaml").task("b").timeout_s == 2.0


# --- needs -------------------------------------------------------------------------------


def test_needs_naming_unknown_tasks_or_itself(here):
    assert problems("""
        version: 1
        tasks:
          build: make
          test:
            cmd: pytest
            needs: [biuld, test, nothing-like-it]
    """) == [
        "tasks.yaml:6:13: tasks.test.needs.0: unknown task 'biuld' (did you mean 'build'?)",
        "tasks.yaml:6:20: tasks.test.needs.1: a task cannot need itself",
        "tasks.yaml:6:26: tasks.test.needs.2: unknown task 'nothing-like-it'",
    ]


def test_needs_with_an_invalid_name_is_reported_once(here):
    assert problems("version: 1\ntasks:\n  a: {cmd: x, needs: [../up]}\n") == [
        "tasks.yaml:3:23: tasks.a.needs.0: '../up' is not a valid task name "
        "(use letters, digits and _ . : - and start with a letter, a digit or _)"]


def test_a_cycle_is_printed_and_reported_once(here):
    assert problems("""
        version: 1
        tasks:
          setup: echo
          a: {cmd: x, needs: [setup, b]}
          b: {cmd: x, needs: [c]}
          c: {cmd: x, needs: [a]}
    """) == ["tasks.yaml:4:30: tasks.a.needs.1: dependency cycle: a -> b -> c -> a"]


def test_separate_cycles_are_each_reported(here):
    assert problems("""
        version: 1
        tasks:
          a: {cmd: x, needs: [b]}
          b: {cmd: x, needs: [a]}
          c: {cmd: x, needs: [d]}
          d: {cmd: x, needs: [c, a]}
    """) == [
        "tasks.yaml:3:23: tasks.a.needs.0: dependency cycle: a -> b -> a",
        "tasks.yaml:5:23: tasks.c.needs.0: dependency cycle: c -> d -> c",
    ]


def test_a_component_with_several_cycles_is_reported_once_with_its_shortest_cycle(here):
    assert problems("""
        version: 1
        tasks:
          a: {cmd: x, needs: [b, c]}
          b: {cmd: x, needs: [c]}
          c: {cmd: x, needs: [a, b]}
    """) == ["tasks.yaml:3:26: tasks.a.needs.1: dependency cycle: a -> c -> a"]


def test_a_long_chain_is_not_a_cycle(here):
    lines = ["version: 1", "tasks:", "  t0: echo"] + [f"  t{i}: {{cmd: echo, needs: [t{i - 1}]}}" for i in range(1, 3000)]
    Path("tasks.yaml").write_text("\n".join(lines) + "\n")
    assert len(load_taskfile("tasks.yaml").tasks) == 3000


# --- the file itself ---------------------------------------------------------------------


def test_yaml_syntax_errors_have_their_position(here):
    assert problems("version: 1\ntasks:\n  a: [echo\n  b: x\n") == [
        "tasks.yaml:4:4: invalid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 3, column 6)"]


def test_tabs_for_indentation(here):
    assert problems("version: 1\ntasks:\n\ta: echo\n") == [
        "tasks.yaml:3:1: invalid YAML: found character that cannot start any token "
        "(while scanning for the next token at line 3, column 1)"]


def test_control_characters(here):
    assert problems("version: 1\ntasks:\n  é: \x01\n") == [
        "tasks.yaml:3:6: invalid YAML: control characters are not allowed (character U+0001)"]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_file(here, text):
    assert problems(text) == [
        "tasks.yaml:1:1: the file is empty: a task file needs 'version: 1' and 'tasks:'"]


@pytest.mark.parametrize(("text", "got"), [("- a\n- b\n", "a list"), ("hello\n", "a string ('hello')")])
def test_a_top_level_that_is_not_a_mapping(here, text, got):
    assert problems(text) == [
        f"tasks.yaml:1:1: the top level must be a mapping with 'version' and 'tasks', got {got}"]


def test_two_documents(here):
    assert problems("version: 1\ntasks: {a: x}\n---\nversion: 1\n") == [
        "tasks.yaml:3:1: a second YAML document ('---'): a task file holds one document"]


def test_a_python_tag_is_an_error_not_an_exception(here):
    assert problems("version: 1\ntasks:\n  a: !!python/object/apply:os.system [echo hi]\n") == [
        "tasks.yaml:3:3: tasks.a: expected a string or a mapping, got a list",
        "tasks.yaml:3:6: tasks.a: unsupported tag !!python/object/apply:os.system: task files hold plain "
        "strings, numbers, booleans, lists and mappings",
    ]


def test_a_bad_explicit_scalar(here):
    assert problems("version: 1\npool: !!int four\ntasks:\n  a: echo\n") == [
        "tasks.yaml:2:1: pool: expected a whole number, got a string ('four')",
        "tasks.yaml:2:7: pool: cannot read 'four' as !!int: invalid literal for int() with base 10: 'four'",
    ]


def test_unknown_and_recursive_aliases(here):
    assert problems("version: 1\ntasks:\n  a: *nowhere\n  b: &b {cmd: x, tags: [*b]}\n") == [
        "tasks.yaml:3:3: tasks.a: expected a string or a mapping, got nothing (YAML reads ~, null and an empty "
        "value as nothing): quote it, e.g. '' for an empty string",
        "tasks.yaml:3:6: tasks.a: unknown alias *nowhere (no anchor &nowhere before it)",
        "tasks.yaml:4:25: tasks.b.tags.0: alias *b refers to a value that contains it",
        "tasks.yaml:4:25: tasks.b.tags.0: expected a string, got nothing (YAML reads ~, null and an empty value "
        "as nothing): quote it, e.g. '' for an empty string",
    ]


def test_a_missing_file(here):
    with pytest.raises(TaskFileError) as caught:
        load_taskfile("nope.yaml")
    assert str(caught.value) == "nope.yaml:1:1: no such file"


def test_a_directory(here):
    os.mkdir("adir")
    with pytest.raises(TaskFileError) as caught:
        load_taskfile("adir")
    assert str(caught.value) == "adir:1:1: is a directory, not a task file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(here):
    write("version: 1\ntasks: {a: x}\n")
    os.chmod("tasks.yaml", 0)
    with pytest.raises(TaskFileError) as caught:
        load_taskfile("tasks.yaml")
    assert str(caught.value) == "tasks.yaml:1:1: cannot read the file: permission denied"


def test_a_fifo_is_refused_without_waiting_for_a_writer(here):
    os.mkfifo("fifo.yaml")
    outcome: list[str] = []

    def load() -> None:
        try:
            load_taskfile("fifo.yaml")
        except TaskFileError as e:
            outcome.append(str(e))

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the reader so the test process can end
        with open("fifo.yaml", "w"):
            pass
        pytest.fail("load_taskfile blocked on a FIFO")
    assert outcome == ["fifo.yaml:1:1: is a FIFO, not a regular file: taskrun reads task files from regular files only"]


def test_a_device_is_refused(here):
    with pytest.raises(TaskFileError) as caught:
        load_taskfile("/dev/zero")
    assert str(caught.value) == (
        "/dev/zero:1:1: is a character device, not a regular file: taskrun reads task files from regular files only")


def test_a_file_that_is_not_utf8(here):
    assert problems(b"version: 1\ntasks:\n  a: echo caf\xe9\n") == [
        "tasks.yaml:3:14: the file is not UTF-8 text (byte 0xe9); save it as UTF-8"]


def test_a_utf16_file(here):
    assert problems("version: 1\n".encode("utf-16")) == [
        "tasks.yaml:1:1: the file is not UTF-8 text (byte 0xff); save it as UTF-8"]


def test_a_file_over_the_size_limit_is_refused_before_parsing(here):
    with open("tasks.yaml", "wb") as f:  # sparse: nothing is written, and parsing it would take seconds
        f.truncate(MAX_BYTES + 1)
    started = time.perf_counter()
    assert problems_of("tasks.yaml") == [
        f"tasks.yaml:1:1: the file is too large ({MAX_BYTES + 1:,} bytes; the limit is 32 MiB)"]
    assert time.perf_counter() - started < 10  # refused without parsing: no hang (speed: bench/)


def problems_of(name: str) -> list[str]:
    with pytest.raises(TaskFileError) as caught:
        load_taskfile(name)
    return [str(p) for p in caught.value.problems]


# --- hostile YAML --------------------------------------------------------------------------

BILLION_LAUGHS = (Path(__file__).parent / "files" / "billion-laughs.yaml").read_text()


def test_an_alias_bomb_is_refused_quickly_in_little_memory(here):
    write(BILLION_LAUGHS)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        found = problems_of("tasks.yaml")
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found == ["tasks.yaml:9:10: tasks.g.0: aliases expand this file to more than 1,000,000 values; "
                     "refusing to read it (is it an alias bomb?)"]
    assert elapsed < 10  # no hang; the bound that matters is memory
    assert peak < 5 * 2**20


def test_a_file_of_more_values_than_the_limit_is_refused_without_blaming_aliases(here, monkeypatch):
    monkeypatch.setattr(yamlsrc, "MAX_VALUES", 20)  # 5,000,000 in earnest: a file that big takes long to write
    write("version: 1\ntasks:\n" + "".join(f"  t{i}: 'true'\n" for i in range(12)))
    assert problems_of("tasks.yaml") == [
        "tasks.yaml:10:7: tasks.t7: the file holds more than 20 values (keys, items and scalars, aliases "
        "expanded); refusing to read it"]


def test_aliases_under_the_budget_are_fine(here):
    write("version: 1\ntasks:\n  x: &x [a, b]\n  y: {cmd: [*x, *x]}\n")
    # the aliases are read; the task whose cmd holds lists is then a plain schema error
    assert problems_of("tasks.yaml") == [
        "tasks.yaml:3:3: tasks.x: expected a string or a mapping, got a list",
        "tasks.yaml:4:13: tasks.y.cmd.0: expected a string, got a list",
        "tasks.yaml:4:17: tasks.y.cmd.1: expected a string, got a list",
    ]


@pytest.mark.parametrize(("nested", "where"), [
    pytest.param("  a: " + "[" * 1_000_000, "3:104", id="flow-sequences"),
    pytest.param("  a: " + "{a: " * 1_000_000, "3:398", id="flow-mappings"),
    pytest.param("  a:\n    " + "- " * 1_000_000 + "x", "4:201", id="block-sequences"),
])
def test_deep_nesting_is_refused_quickly(here, nested, where):
    # libyaml's composer recurses in C (this would crash the interpreter) and its scanner slows
    # down quadratically with flow nesting: the loader stops reading at the 100th level.
    write("version: 1\ntasks:\n" + nested + "\n")
    started = time.perf_counter()
    assert problems_of("tasks.yaml") == [f"tasks.yaml:{where}: nested more than 100 levels deep"]
    assert time.perf_counter() - started < 10  # no hang


# --- yamlsrc on its own --------------------------------------------------------------------


def test_positions_of_keys_and_items():
    source = yamlsrc.parse_yaml("a:\n  b: 1\n  c: [x, {d: y}]\n- 1\n"[:-4])
    assert source.data == {"a": {"b": 1, "c": ["x", {"d": "y"}]}}
    shallow = {(): (1, 1), ("a",): (1, 1), ("a", "b"): (2, 3), ("a", "c"): (3, 3)}
    assert source.positions == shallow  # the first reading keeps paths of up to two keys
    assert source.all_positions() == {
        **shallow, ("a", "c", 0): (3, 7), ("a", "c", 1): (3, 10), ("a", "c", 1, "d"): (3, 11),
    }
    assert source.position(("a", "c", 1, "d", "missing", 3)) == (3, 11)  # the nearest parent
    assert source.position(("zzz",)) == (1, 1)


def test_yamlsrc_reads_like_pyyaml_safe_load():
    import yaml

    text = textwrap.dedent("""
        base: &base {a: 1, b: [x, y]}
        other: &other {b: 2, c: 3}
        merged: {<<: [*base, *other], c: 4}
        scalars: [1, 1.5, 0x10, .inf, ~, yes, No, "yes", 2024-01-02, '', !!str 5]
        anchored: [&n 3.10, *n, &s text, *s, &k key, {*k : *n}]
        text: |
          two
          lines
    """)
    assert yamlsrc.parse_yaml(text).data == yaml.safe_load(text)


def test_yamlsrc_reads_scalars_as_written_where_the_caller_wants_text():
    text = "text: [3.10, 0027, on, 12:30, 2024-01-02, !!int 5, ~, '', &n 1e3, 1.0e+3]\nvalue: [*n, 0027, on]\n" \
           "again: [&f 1.50, *f]\n"
    data = yamlsrc.parse_yaml(text, is_text=lambda path: path[:1] in (("text",), ("again",))).data
    assert data == {"text": ["3.10", "0027", "on", "12:30", "2024-01-02", "5", None, "", "1e3", "1.0e+3"],
                    "value": ["1e3", 23, True],  # PyYAML reads 1e3 as a string (a float needs a dot)
                    "again": ["1.50", "1.50"]}


def test_an_alias_of_a_scalar_is_read_where_it_stands():
    text = ("num: &f 1.50\ntext: [*f]\nre: &f 0027\nlast: [*f]\nstr: &f x\nafter: [*f]\n"
            "first: [&t on, &d 2024-01-02, &bad !!int x]\nthen: [*t, *d, *bad]\n")
    data = yamlsrc.parse_yaml(text, is_text=lambda path: path[0] in ("text", "last", "after", "first")).data
    assert data == {"num": 1.5, "text": ["1.50"], "re": 23, "last": ["0027"], "str": "x", "after": ["x"],
                    "first": ["on", "2024-01-02", "x"], "then": [True, datetime.date(2024, 1, 2), "x"]}


def test_yamlsrc_uses_libyaml_when_present():
    import yaml

    assert yamlsrc.library().loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# --- the schema and the module ------------------------------------------------------------


def test_schema_text_is_the_packaged_schema():
    assert schema_text() == (ROOT / "runner" / "schemas" / "taskfile.schema.json").read_text(encoding="utf-8")
    assert schema_text() == (ROOT / "schemas" / "taskfile.schema.json").read_text(encoding="utf-8")
    assert schema_validator() is schema_validator()
    assert schema_validator().schema == json.loads(schema_text())


def test_duration_pattern_is_the_schemas():
    schema = json.loads(schema_text())
    task = schema["properties"]["tasks"]["additionalProperties"]["properties"]
    for where in (schema["properties"]["timeout"], schema["properties"]["kill_grace"], task["timeout"],
                  task["kill_grace"], task["retry_delay"]):
        assert where["pattern"] == DURATION_PATTERN


def test_import_does_not_load_jsonschema():
    code = "import sys, runner.load; print('jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_ten_thousand_tasks_with_needs_load(here):
    # How fast is measured by bench/bench.py (bigfile), not here: shared machines are noisy.
    lines = ["version: 1", "tasks:"]
    for i in range(10_000):
        lines += [f"  t{i}:", f"    cmd: echo {i}", "    timeout: 5m"]
        if i:
            lines.append(f"    needs: [t{i - 1}, t{i // 2}]" if i // 2 != i - 1 else f"    needs: [t{i - 1}]")
    Path("tasks.yaml").write_text("\n".join(lines) + "\n")
    tf = load_taskfile("tasks.yaml")
    assert len(tf.tasks) == 10_000
    assert tf.tasks[-1].needs == ("t9998", "t4999")


VALID = "version: 1\ntasks:\n  a: echo a\n  b: {cmd: [echo, b], needs: [a]}\n"


def _load_in_child(path, cache):
    """Load in a fresh interpreter; report whether jsonschema had to be imported."""
    code = ("import sys, runner.load as l; tf = l.load_taskfile(sys.argv[1]); "
            "print(len(tf.tasks), 'jsonschema' in sys.modules)")
    env = {**os.environ, "TASKRUN_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                          check=True).stdout.split()


def test_a_file_validated_once_skips_the_schema_pass_next_time(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text(VALID)
    cache = tmp_path / "cache"
    assert _load_in_child(path, cache) == ["2", "True"]
    assert len(list((cache / "valid").iterdir())) == 1
    assert _load_in_child(path, cache) == ["2", "False"]


def test_a_changed_file_is_validated_again(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text(VALID)
    cache = tmp_path / "cache"
    _load_in_child(path, cache)
    path.write_text(VALID.replace("a: echo a", "a: {cmd: echo a, timout: 5s}"))
    env = {**os.environ, "TASKRUN_CACHE_DIR": str(cache)}
    r = subprocess.run([sys.executable, "-m", "runner", str(path), "--validate"], capture_output=True,
                       text=True, env=env)
    assert r.returncode == 2
    assert "tasks.a.timout: unknown key (did you mean 'timeout'?)" in r.stderr


def test_invalid_files_leave_no_verdict_and_caching_can_be_off(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text("version: 1\ntasks:\n  a: {cmd: x, timout: 5s}\n")
    cache = tmp_path / "cache"
    env = {**os.environ, "TASKRUN_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-m", "runner", str(path), "--validate"], capture_output=True, env=env)
    assert not (cache / "valid").exists()
    path.write_text(VALID)
    assert _load_in_child(path, "") == ["2", "True"]
    assert _load_in_child(path, "") == ["2", "True"]


# Where a compiled check and jsonschema could part: bool against number, 1.0 against 1, Python's
# whitespace (\x1c is whitespace to `re`), equal-looking items, keys under if/then, empty values.
SCHEMA_CORNERS = [
    {"version": True, "tasks": {"a": "x"}}, {"version": 1.0, "tasks": {"a": "x"}},
    {"version": 1, "pool": True, "tasks": {"a": "x"}}, {"version": 1, "pool": 2.0, "tasks": {"a": "x"}},
    {"version": 1, "pool": 2.5, "tasks": {"a": "x"}}, {"version": 1, "output": True, "tasks": {"a": "x"}},
    {"version": 1, "tasks": {"a": "\x1c"}}, {"version": 1, "tasks": {"a": " \u3000"}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "retries": True}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "retries": 1.0}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "timeout": True}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "timeout": False}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "tags": [1, True]}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "tags": ["1", 1]}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "tags": [0, False]}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "resources": {"r": True}}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "when": True}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "steps": ["y"]}}}, {"version": 1, "tasks": {"a": {"steps": ["y"]}}},
    {"version": 1, "tasks": {"a": {"steps": [{"cmd": "x", "task": "b"}]}, "b": "x"}},
    {"version": 1, "tasks": {"a": {"steps": [{"task": "b"}, "y", ["z"]]}, "b": "x"}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "needs": ["b", "b"]}, "b": "x"}},
    {"version": 1, "tasks": {"a": {"cmd": ["x", 1, True]}}}, {"version": 1, "tasks": {"a": {"cmd": []}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "if": {"sh": "y"}}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "if": "${{ true }}"}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "matrix": {"os": ["a", "a"]}}}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "env": {"A": None}}}},
    {"version": 1, "tasks": {"a": None}}, {"version": 1, "tasks": {}}, {"version": 1}, {"tasks": {"a": "x"}},
    {"version": 1, "pool": float("inf"), "tasks": {"a": "x"}},
    {"version": 1, "timeout": float("nan"), "tasks": {"a": "x"}},
    {"version": 1, "timeout": float("inf"), "tasks": {"a": "x"}},
    {"version": datetime.date(2024, 1, 2), "tasks": {"a": "x"}},
    {"version": 1, "tasks": {"a": {"cmd": "x", "description": datetime.date(2024, 1, 2)}}},
    {"version": 1, "tasks": {"a": b"x"}}, {"version": 1, "tasks": {"a": {"cmd": "x", "needs": [["b"]]}}},
]


def test_the_compiled_schema_check_gives_jsonschemas_verdict():
    """A yes of `schema_check` skips jsonschema: it must never accept what jsonschema refuses.
    Checked on the editor test's valid and invalid files and on corner values."""
    from test_editor import BAD, GOOD

    from runner import load, yamlsrc

    documents = list(SCHEMA_CORNERS)
    for text in [*GOOD.values(), *BAD.values()]:
        try:
            documents.append(yamlsrc.parse_yaml(text, file="t.yaml", key_noun=load._key_noun,
                                                is_text=load.holds_text).data)
        except Exception:
            continue  # refused before the schema (a YAML error): nothing to compare
    verdicts = [(load.schema_check()(doc), load.schema_validator().is_valid(doc)) for doc in documents]
    assert [doc for doc, (fast, full) in zip(documents, verdicts) if fast != full] == []
    assert {full for _, full in verdicts} == {True, False}  # both verdicts are exercised


def test_a_big_file_gets_the_same_problems_and_verdict_as_a_small_one(taskrun):
    """From `COMPILED_CHECK_FROM` tasks the compiled check goes first: an invalid file still gets
    jsonschema's messages at their places, and a valid one is remembered as valid."""
    from runner.load import COMPILED_CHECK_FROM

    filler = "".join(f"  t{i}: {{cmd: echo {i}, needs: [t{i - 1}], timeout: 5m}}\n"
                     for i in range(1, COMPILED_CHECK_FROM))
    bad = ("version: 1\ntasks:\n  t0: echo 0\n" + filler + "  last: {cmd: x, timout: 5s}\n"
           "  both: {cmd: x, steps: [y]}\n")
    taskrun.write("tasks.yaml", bad)
    r = taskrun("tasks.yaml", "--validate")
    assert r.returncode == 2, r.stderr
    line = COMPILED_CHECK_FROM + 3
    assert r.stderr.splitlines() == [
        f"tasks.yaml:{line}:18: tasks.last.timout: unknown key (did you mean 'timeout'?)",
        f"tasks.yaml:{line + 1}:3: tasks.both: a task has either 'cmd' or 'steps', not both",
    ]
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t0: echo 0\n" + filler)
    r = taskrun("tasks.yaml", "--validate")
    assert r.returncode == 0, r.stderr
    assert list((taskrun.cwd.parent / f"{taskrun.cwd.name}-cache" / "valid").iterdir())


def block_yaml_tasks(n: int) -> dict:
    return {f"t{i}": {"cmd": f"echo {i}", "needs": [f"t{i - 1}"] if i % 3 else [], "timeout": "5m",
                      "tags": ["bulk"]} for i in range(n)}


def test_problems_deep_in_a_large_block_yaml_file_point_at_their_place(taskrun):
    """A YAML file is read first keeping only the top level's and each task's position
    (`yamlsrc.LEAN_DEPTH`); a problem deep in a task still points at its own line and column,
    a warning too, and nothing runs."""
    import yaml

    tasks = block_yaml_tasks(2000)
    tasks["t1500"]["timeout"] = "5x"
    tasks["t1700"]["needs"] = ["nope"]
    tasks["t1800"]["env"] = {"A": "1", "B": {"deep": "x"}}
    tasks["t1999"]["cmd"] = "touch ran"
    text = yaml.safe_dump({"version": 1, "tasks": tasks}, sort_keys=False, default_flow_style=False)
    taskrun.write("tasks.yaml", text)
    r = check(taskrun("tasks.yaml"), 2)
    assert f"tasks.yaml:{spot(text, 'timeout: 5x')}: tasks.t1500.timeout: '5x' is not a duration" in r.stderr
    assert f"tasks.yaml:{spot(text, 'nope')}: tasks.t1700.needs.0: unknown task 'nope'" in r.stderr
    assert f"tasks.yaml:{spot(text, 'B:')}: tasks.t1800.env.B:" in r.stderr
    assert not (taskrun.cwd / "ran").exists()
    del tasks["t1999"]
    tasks["t1500"]["timeout"], tasks["t1700"]["needs"], tasks["t1800"]["env"] = "5m", ["t0"], {"A": "1"}
    tasks["t1600"]["cmd"] = ["make clean", "all"]
    text = yaml.safe_dump({"version": 1, "tasks": tasks}, sort_keys=False, default_flow_style=False)
    taskrun.write("tasks.yaml", text)
    r = check(taskrun("tasks.yaml", "--validate"), 0)
    assert f"tasks.yaml:{spot(text, 'make clean')}: tasks.t1600.cmd.0: warning:" in r.stderr


def test_a_large_block_yaml_file_lists_each_task_at_its_line_and_runs(taskrun):
    import yaml

    text = yaml.safe_dump({"version": 1, "tasks": block_yaml_tasks(300)}, sort_keys=False,
                          default_flow_style=False)
    taskrun.write("tasks.yaml", text)
    listed = json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)
    rows = listed["tasks"] if isinstance(listed, dict) else listed
    assert {t["name"]: t["line"] for t in rows} == {
        f"t{i}": int(spot(text, f"\n  t{i}:\n").split(":")[0]) + 1 for i in range(300)}
    check(taskrun("tasks.yaml", "-o", "summary.json"), 0)
    tasks = by_name(taskrun.summary("summary.json"))
    assert len(tasks) == 300 and {t["status"] for t in tasks.values()} == {"success"}
