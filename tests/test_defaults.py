"""A default, internal tasks, aliases, and other tools' words, through the real `taskrun`.

`default:` is what a bare `taskrun FILE` runs; a named task, --tag or
--rerun-failed choose instead. An internal task is refused on the command
line, hidden by --list (shown by --list --all) and runs as a need or a step
call. An alias is another name for a task everywhere a name is given; the
records use the task's own name. Validation answers go-task's and GitHub
Actions' words with taskrun's keys, at their positions.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import by_name, check

TASKS = """
    version: 1
    default: build
    tasks:
      _setup:
        cmd: echo setup
        internal: true
      install:
        cmd: echo install
        aliases: [i, inst]
      build:
        needs: [i]
        steps:
          - {task: _setup}
          - echo build
      test:
        cmd: if [ -e broken ]; then exit 3; fi
        needs: [_setup]
        tags: [check]
      clean: touch cleaned
"""

INTERNAL = ("taskrun: task '_setup' is internal (internal: true): it runs only as a need or a step of another task, "
            "never on its own in tasks.yaml\n")


def ran(taskrun) -> list[str]:
    return [t["name"] for t in taskrun.summary()["tasks"]]


def complete(taskrun, words: str) -> list[str]:
    """What bash completion offers for the last word of `words`, through the real command."""
    r = taskrun(env={"_TASKRUN_COMPLETE": "complete_bash", "COMP_WORDS": words,
                     "COMP_CWORD": str(len(words.split(" ")) - 1)})
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def problems(taskrun, text: str) -> list[str]:
    taskrun.write("tasks.yaml", text)
    r = check(taskrun("tasks.yaml", "--validate"), 2)
    return r.stderr.splitlines()


# --- the default ------------------------------------------------------------------------


def test_a_bare_run_runs_the_default_with_what_it_needs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    check(taskrun("tasks.yaml"), 0)
    summary = taskrun.summary()
    assert ran(taskrun) == ["install", "build"]  # not clean, not test
    assert summary["targets"] == ["build"]
    assert not (taskrun.cwd / "cleaned").exists()
    r = check(taskrun("tasks.yaml", "--dry-run"), 0)
    assert "clean" not in r.stdout and "build" in r.stdout
    check(taskrun("tasks.yaml", "--skip", "install"), 2)  # the default minus what --skip leaves out: nothing left


def test_a_named_task_or_a_tag_chooses_instead_of_the_default(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    check(taskrun("tasks.yaml", "clean"), 0)
    assert (ran(taskrun), taskrun.summary()["targets"]) == (["clean"], ["clean"])
    check(taskrun("tasks.yaml", "--tag", "check"), 0)
    assert (ran(taskrun), taskrun.summary()["targets"]) == (["_setup", "test"], [])


def test_a_rerun_reruns_what_failed_not_the_default(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    (taskrun.cwd / "broken").touch()
    check(taskrun("tasks.yaml", "test"), 1)
    (taskrun.cwd / "broken").unlink()
    check(taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json"), 0)
    assert ran(taskrun) == ["test"]  # _setup succeeded the first time; build, the default, is not added


def test_without_a_default_every_task_runs_but_an_internal_one_only_when_needed(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          _setup: {cmd: echo setup, internal: true}
          _helper: {cmd: echo helper, internal: true, tags: [x]}
          a: {cmd: echo a, needs: [_setup]}
          b:
            tags: [x]
            steps: [{task: _helper}, echo b]
    """)
    check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["_setup", "a", "b"]  # _helper runs inside b, not as a task of its own
    assert taskrun.summary()["targets"] == []
    check(taskrun("tasks.yaml", "--tag", "x"), 0)
    assert ran(taskrun) == ["b"]  # a tag selects no internal task either: _helper runs inside b only


def test_the_default_may_be_a_list_and_name_an_alias_or_an_internal_task(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        default: [fmt, _all]
        tasks:
          format: {cmd: echo format, aliases: [fmt]}
          lint: echo lint
          _all: {cmd: echo all, needs: [lint], internal: true}
          other: echo other
    """)
    check(taskrun("tasks.yaml"), 0)
    assert ran(taskrun) == ["format", "lint", "_all"]
    assert taskrun.summary()["targets"] == ["format", "_all"]


def test_a_default_naming_no_task_and_an_empty_default_are_refused_with_their_position(taskrun):
    assert problems(taskrun, "version: 1\ndefault: [biuld]\ntasks:\n  build: echo\n") == [
        "tasks.yaml:2:11: default.0: unknown task 'biuld' (did you mean 'build'?)"]
    assert problems(taskrun, "version: 1\ndefault: []\ntasks:\n  build: echo\n") == [
        "tasks.yaml:2:1: default: an empty list: name at least one task, or leave `default` out to run every task"]
    assert problems(taskrun, "version: 1\ndefault: bild\ntasks:\n  build: echo\n") == [
        "tasks.yaml:2:1: default: unknown task 'bild' (did you mean 'build'?)"]


# --- internal tasks -----------------------------------------------------------------------


def test_an_internal_task_named_on_the_command_line_is_refused_and_nothing_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r = check(taskrun("tasks.yaml", "_setup"), 2)
    assert (r.stdout, r.stderr) == ("", INTERNAL)
    r = check(taskrun("tasks.yaml", "clean", "_setup", "--dry-run"), 2)
    assert r.stderr == INTERNAL
    assert not (taskrun.cwd / "taskrun-summary.json").exists()
    assert not (taskrun.cwd / "cleaned").exists()


def test_an_internal_task_runs_as_a_need_and_as_a_step_call(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r = check(taskrun("tasks.yaml", "build", "test"), 0)
    tasks = by_name(taskrun.summary())
    assert list(tasks) == ["_setup", "install", "build", "test"]  # _setup as test's need
    assert tasks["_setup"]["status"] == "success"
    (attempt,) = tasks["build"]["attempts"]
    assert [(s["name"], s["cmd"]) for s in attempt["steps"]] == [("_setup", "echo setup"), (None, "echo build")]
    assert "build   | setup" in r.stdout.splitlines()  # the call ran inside build


def test_list_hides_internal_tasks_and_list_all_shows_them(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r = check(taskrun("tasks.yaml", "--list"), 0)
    assert r.stdout == (
        "task               needs    tags   description\n"
        "install [i, inst]  -        -\n"
        "build              install  -\n"
        "test               _setup   check\n"
        "clean              -        -\n"
        "default: build (what runs when no task is named)\n")
    r = check(taskrun("tasks.yaml", "--list", "--all"), 0)
    assert r.stdout.splitlines()[1] == "_setup (internal)  -        -"
    listed = json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)
    assert listed["default"] == ["build"]
    assert [(t["name"], t["aliases"], t["internal"], t["needs"]) for t in listed["tasks"]] == [
        ("install", ["i", "inst"], False, []), ("build", [], False, ["install"]), ("test", [], False, ["_setup"]),
        ("clean", [], False, [])]
    listed = json.loads(check(taskrun("tasks.yaml", "--list", "--json", "--all"), 0).stdout)
    assert [(t["name"], t["internal"]) for t in listed["tasks"]][0] == ("_setup", True)
    r = check(taskrun("tasks.yaml", "--all"), 2)
    assert r.stderr == "taskrun: --all goes with --list: taskrun FILE --list --all\n"


# --- aliases ---------------------------------------------------------------------------------


def test_an_alias_names_the_task_on_the_command_line_and_the_records_use_its_own_name(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    r = check(taskrun("tasks.yaml", "inst", "--junit", "junit.xml"), 0)
    summary = taskrun.summary()
    assert (ran(taskrun), summary["targets"]) == (["install"], ["install"])
    assert "start install" in r.stdout and "inst " not in r.stdout
    assert [c.get("name") for c in ET.parse(taskrun.cwd / "junit.xml").getroot().iter("testcase")] == ["install"]
    check(taskrun("tasks.yaml", "--skip", "i", "--tag", "check"), 0)  # --skip takes an alias too
    assert ran(taskrun) == ["_setup", "test"]
    r = check(taskrun("tasks.yaml", "clean", "--summary", "inst"), 2)  # like a task's name, not a place to write
    assert r.stderr.startswith("taskrun: --summary inst: 'inst' is a task of tasks.yaml, not a place for the summary")
    assert not (taskrun.cwd / "inst").exists()


def test_an_alias_works_in_needs_and_in_step_calls(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          install: {cmd: echo installing, aliases: [i]}
          build:
            needs: [i]
            steps: [{task: i}, echo built]
    """)
    r = check(taskrun("tasks.yaml", "build"), 0)
    tasks = by_name(taskrun.summary())
    assert list(tasks) == ["install", "build"]
    (attempt,) = tasks["build"]["attempts"]
    assert [s["name"] for s in attempt["steps"]] == ["install", None]
    assert "build   | installing" in r.stdout


def test_completion_offers_names_and_aliases_but_no_internal_task(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    assert complete(taskrun, "taskrun tasks.yaml ") == ["install", "i", "inst", "build", "test", "clean"]
    assert complete(taskrun, "taskrun tasks.yaml in") == ["install", "inst"]
    assert complete(taskrun, "taskrun tasks.yaml _") == []


def test_an_alias_taken_twice_is_refused_where_it_stands(taskrun):
    assert problems(taskrun, """
        version: 1
        tasks:
          install: {cmd: echo, aliases: [i, build, install]}
          build: {cmd: echo, aliases: [b, i]}
    """) == [
        "tasks.yaml:3:37: tasks.install.aliases.1: the alias 'build' is already the name of task 'build'",
        "tasks.yaml:3:44: tasks.install.aliases.2: the alias 'install' is already this task's own name",
        "tasks.yaml:4:35: tasks.build.aliases.1: the alias 'i' is already an alias of task 'install'",
    ]


def test_a_task_may_not_need_itself_through_its_alias(taskrun):
    assert problems(taskrun, "version: 1\ntasks:\n  a: {cmd: echo, aliases: [x], needs: [x]}\n") == [
        "tasks.yaml:3:40: tasks.a.needs.0: a task cannot need itself"]


# --- names starting with _ ------------------------------------------------------------------


def test_a_task_name_may_start_with_an_underscore(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          _lint: echo lint
          check: {cmd: echo check, needs: [_lint]}
    """)
    check(taskrun("tasks.yaml", "_lint"), 0)
    assert ran(taskrun) == ["_lint"]
    check(taskrun("tasks.yaml", "check"), 0)
    assert ran(taskrun) == ["_lint", "check"]
    assert complete(taskrun, "taskrun tasks.yaml _") == ["_lint"]
    assert (taskrun.cwd / ".taskrun" / "runs").is_dir()


# --- other tools' words ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 1\ntasks:\n  a:\n    cmds: [echo]\n",
     "tasks.yaml:4:5: tasks.a.cmds: unknown key (did you mean 'steps'? taskrun's word for go-task's 'cmds')"),
    ("version: 1\ntasks:\n  b: echo\n  a:\n    cmd: echo\n    deps: [b]\n",
     "tasks.yaml:6:5: tasks.a.deps: unknown key (did you mean 'needs'? taskrun's word for go-task's 'deps')"),
    ("version: 1\ntasks:\n  a:\n    cmd: echo\n    desc: Build\n",
     "tasks.yaml:5:5: tasks.a.desc: unknown key (did you mean 'description'? taskrun's word for go-task's 'desc')"),
    ("version: 1\ntasks:\n  a:\n    cmd: echo\n    dir: sub\n",
     "tasks.yaml:5:5: tasks.a.dir: unknown key (did you mean 'cwd'? taskrun's word for go-task's 'dir')"),
    ("version: 1\ntasks:\n  a:\n    cmd: echo\n    ignore_error: true\n",
     "tasks.yaml:5:5: tasks.a.ignore_error: unknown key (did you mean 'allow_failure'? taskrun's word for go-task's "
     "'ignore_error')"),
    ("version: 1\ntasks:\n  a:\n    cmd: echo\n    continue-on-error: true\n",
     "tasks.yaml:5:5: tasks.a.continue-on-error: unknown key (did you mean 'allow_failure'? taskrun's word for GitHub "
     "Actions' 'continue-on-error')"),
    ("version: 1\ntasks:\n  a:\n    cmd: echo\n    timeout-minutes: 10\n",
     "tasks.yaml:5:5: tasks.a.timeout-minutes: unknown key (did you mean 'timeout'? taskrun's word for GitHub "
     "Actions' 'timeout-minutes', which takes a duration such as 10m)"),
    ("version: 1\ntasks:\n  a:\n    run: echo\n",
     "tasks.yaml:4:5: tasks.a.run: unknown key (did you mean 'cmd'? taskrun's word for GitHub Actions' 'run')"),
    ("version: 1\ntasks:\n  a:\n    steps:\n      - {run: echo}\n",
     "tasks.yaml:5:10: tasks.a.steps.0.run: unknown key (did you mean 'cmd'? taskrun's word for GitHub Actions' "
     "'run')"),
    ("version: 1\ntasks:\n  a:\n    steps:\n      - {cmd: echo, continue-on-error: true}\n",
     "tasks.yaml:5:21: tasks.a.steps.0.continue-on-error: unknown key (did you mean 'allow_failure'? taskrun's word "
     "for GitHub Actions' 'continue-on-error')"),
], ids=["cmds", "deps", "desc", "dir", "ignore_error", "continue-on-error", "timeout-minutes", "run", "step-run",
        "step-continue-on-error"])
def test_other_tools_words_are_answered_with_taskruns_key(taskrun, text, expected):
    assert problems(taskrun, text) == [expected]  # and no "missing 'cmd'" beside `cmds` or `run`


def test_a_peer_word_where_taskrun_has_no_such_key_gets_the_usual_answer(taskrun):
    assert problems(taskrun, "version: 1\ndeps: [a]\ntasks:\n  a: echo\n") == [
        "tasks.yaml:2:1: deps: unknown key"]


@pytest.mark.parametrize(("version", "shown"), [("'3'", "'3'"), ("3", "3"), ('"2"', "'2'")])
def test_a_go_task_version_says_what_the_file_looks_like_and_where_to_read(taskrun, version, shown):
    assert problems(taskrun, f"version: {version}\ntasks:\n  a:\n    cmds: [echo a]\n") == [
        f"tasks.yaml:1:1: version: version {shown} looks like a go-task Taskfile: taskrun reads its own format, "
        'version 1; see the README, "Coming from go-task, just, make, GitHub Actions"',
        "tasks.yaml:4:5: tasks.a.cmds: unknown key (did you mean 'steps'? taskrun's word for go-task's 'cmds')",
    ]
