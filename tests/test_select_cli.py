"""Choosing and listing tasks through the real command: --tag, --skip, --list,
--list --json, shell completion of task names, several files with --validate."""

from __future__ import annotations

import json

import pytest

# Each task appends its name to ran.txt, so a test sees exactly what ran.
TASKS = """\
    version: 1
    tasks:
      fmt:
        cmd: echo fmt >> ran.txt
        description: Check the formatting
        tags: [lint]
      types:
        cmd: echo types >> ran.txt
        tags: [lint, slow]
      build: echo build >> ran.txt
      unit:
        cmd: echo unit >> ran.txt
        needs: [build]
        tags: [test]
      deploy:
        cmd: echo deploy >> ran.txt
        description: |
          Ship it,
          carefully
        needs: [unit, fmt]
"""


@pytest.fixture
def tasks(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    return taskrun


def ran(taskrun) -> list[str]:
    path = taskrun.cwd / "ran.txt"
    return sorted(path.read_text().split()) if path.exists() else []


def test_tag_runs_the_tagged_tasks_and_what_they_need(tasks):
    r = tasks("tasks.yaml", "--tag", "test", "--tag", "slow", "-o", "s.json")
    assert r.returncode == 0, r.stderr
    assert ran(tasks) == ["build", "types", "unit"]
    assert [t["name"] for t in tasks.summary("s.json")["tasks"]] == ["types", "build", "unit"]


def test_skip_leaves_out_a_task_and_its_dependents(tasks):
    r = tasks("tasks.yaml", "--skip", "build")
    assert r.returncode == 0, r.stderr
    assert ran(tasks) == ["fmt", "types"]


def test_unknown_names_and_tags_exit_2_with_suggestions_and_run_nothing(tasks):
    r = tasks("tasks.yaml", "biuld", "--tag", "lnt", "--skip", "fmtt")
    assert r.returncode == 2
    assert r.stderr == ("taskrun: unknown task 'biuld' (did you mean 'build'?); unknown tag 'lnt' (did you mean "
                        "'lint'?); --skip: unknown task 'fmtt' (did you mean 'fmt'?) in tasks.yaml\n")
    assert ran(tasks) == []


def test_list_prints_a_table_and_runs_nothing(tasks):
    r = tasks("tasks.yaml", "--list")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "task    needs      tags        description\n"
        "fmt     -          lint        Check the formatting\n"
        "types   -          lint, slow\n"
        "build   -          -\n"
        "unit    build      test\n"
        "deploy  unit, fmt  -           Ship it, carefully\n"
    )
    assert ran(tasks) == []
    assert not (tasks.cwd / "taskrun-summary.json").exists()


PLAIN = {"when": "on_success", "resources": {}, "confirm": None, "interactive": False}  # the keys' defaults


def test_list_json_is_stable_for_scripts(tasks):
    r = tasks("tasks.yaml", "--list", "--json", "--tag", "test")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "version": 1,
        "file": "tasks.yaml",
        "default": [],
        "tasks": [
            {"name": "build", "description": None, "needs": [], "tags": [], "line": 10, "aliases": [],
             "internal": False, **PLAIN},
            {"name": "unit", "description": None, "needs": ["build"], "tags": ["test"], "line": 11, "aliases": [],
             "internal": False, **PLAIN},
        ],
        "parameters": [],
    }


def test_json_without_list_is_a_usage_error(tasks):
    r = tasks("tasks.yaml", "--json")
    assert (r.returncode, r.stderr) == (2, "taskrun: --json goes with --list: taskrun FILE --list --json\n")


def complete(taskrun, words: str, env: dict | None = None) -> list[str]:
    """What bash completion offers for the last word of `words`, through the real command."""
    parts = words.split(" ")
    r = taskrun(env={"_TASKRUN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1),
                     **(env or {})})
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_completion_offers_the_task_names_of_the_file_on_the_command_line(tasks):
    assert complete(tasks, "taskrun tasks.yaml ") == ["fmt", "types", "build", "unit", "deploy"]
    assert complete(tasks, "taskrun tasks.yaml b") == ["build"]
    assert complete(tasks, "taskrun tasks.yaml build ") == ["fmt", "types", "unit", "deploy"]


def test_completion_of_tag_and_skip_values(tasks):
    assert complete(tasks, "taskrun tasks.yaml --tag ") == ["lint", "slow", "test"]
    assert complete(tasks, "taskrun tasks.yaml --skip d") == ["deploy"]


def test_completion_with_a_broken_or_missing_file_offers_nothing_and_says_nothing(tasks):
    tasks.write("broken.yaml", "version: 1\ntasks: [\n")
    for name in ("broken.yaml", "missing.yaml"):
        r = tasks(env={"_TASKRUN_COMPLETE": "complete_bash", "COMP_WORDS": f"taskrun {name} ", "COMP_CWORD": "2"})
        assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "", "")


def test_show_completion_prints_a_bash_script_that_calls_back_taskrun(tasks):
    # Typer detects the user's shell when it can (shellingham); a test has no interactive
    # shell above it, so detection is turned off and the shell is named, as a user may.
    r = tasks("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert r.returncode == 0, r.stderr
    assert "_TASKRUN_COMPLETE=complete_bash" in r.stdout
    assert "complete -o default -F" in r.stdout


def test_validate_checks_every_file_named(tasks):
    tasks.write("bad.yaml", "version: 1\ntasks:\n  a: {cmd: x, timout: 1}\n")
    r = tasks("--validate", "tasks.yaml", "bad.yaml", "missing.yaml")
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "tasks.yaml: valid (5 tasks)",
        "bad.yaml:3:15: tasks.a.timout: unknown key (did you mean 'timeout'?)",
        "missing.yaml:1:1: no such file",
    ]
    r = tasks("--validate", "tasks.yaml", "tasks.yaml")
    assert r.returncode == 0, r.stderr
