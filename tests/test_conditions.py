"""`if: ${{ EXPR }}` conditions, through the real `taskrun` on real files.

The expression reads the same names as every template; its value is known once the
variables are (before anything runs) and applied when the task is ready: false skips
the task, with reason `condition false: EXPR`, and what needs it, without failing the
run. It must give true or false (a boolean, or the text true/false in any case);
anything else, an unknown name, or text around the `${{ }}`, is a positioned error,
exit 2, before anything runs.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from conftest import by_name, check

DEPLOY = """
    version: 1
    vars:
      env: {default: dev, enum: [dev, prod]}
    tasks:
      build:
        cmd: echo build >> ran.log
      deploy:
        cmd: echo deploy >> ran.log
        needs: [build]
        if: ${{ vars.env == 'prod' }}
      notify:
        cmd: echo notify >> ran.log
        needs: [deploy]
      announce:
        cmd: echo announce >> ran.log
        needs: [notify]
      preview:
        cmd: echo preview >> ran.log
        if: "${{ vars.env != 'prod' }}"
"""


def ran(taskrun) -> list[str]:
    path = taskrun.cwd / "ran.log"
    return sorted(path.read_text().split()) if path.exists() else []


def statuses(taskrun) -> dict[str, tuple[str, str | None]]:
    return {name: (t["status"], t["reason"]) for name, t in by_name(taskrun.summary()).items()}


def test_a_false_expression_skips_the_task_and_what_needs_it_and_the_run_succeeds(taskrun):
    taskrun.write("tasks.yaml", DEPLOY)
    r = check(taskrun("tasks.yaml", "--junit", "report.xml"), 0)
    assert ran(taskrun) == ["build", "preview"]
    assert statuses(taskrun) == {
        "build": ("success", None),
        "deploy": ("skipped", "condition false: ${{ vars.env == 'prod' }}"),
        "notify": ("skipped", "needs 'deploy', which was skipped (condition false)"),
        "announce": ("skipped", "needs 'notify', which was skipped"),
        "preview": ("success", None),
    }
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"]) == ("success", 0)
    assert {t["name"]: t["by_condition"] for t in summary["tasks"]} == {
        "build": False, "deploy": True, "notify": True, "announce": True, "preview": False}
    assert "skip  deploy   skipped (condition false: ${{ vars.env == 'prod' }})\n" in r.stdout
    skipped = ET.parse(taskrun.cwd / "report.xml").getroot().find("testcase[@name='deploy']/skipped")
    assert skipped.get("message") == "skipped: condition false: ${{ vars.env == 'prod' }}"
    r = check(taskrun("tasks.yaml", "--rerun-failed", "taskrun-summary.json"), 0)
    assert "nothing to rerun" in r.stderr


def test_a_parameter_on_the_command_line_makes_it_true(taskrun):
    taskrun.write("tasks.yaml", DEPLOY)
    check(taskrun("tasks.yaml", "env=prod"), 0)
    assert ran(taskrun) == ["announce", "build", "deploy", "notify"]
    assert statuses(taskrun)["preview"] == ("skipped", "condition false: ${{ vars.env != 'prod' }}")


def test_dry_run_says_whether_each_condition_holds(taskrun):
    taskrun.write("tasks.yaml", DEPLOY)
    r = check(taskrun("tasks.yaml", "--dry-run", "env=prod"), 0)
    lines = [line.strip() for line in r.stdout.splitlines()]
    deploy = lines.index("$ echo deploy >> ran.log")
    assert lines[deploy + 1:deploy + 3] == ["vars env=prod", "condition true: ${{ vars.env == 'prod' }}"]
    assert ("condition false: ${{ vars.env != 'prod' }} (skipped when it is ready, with every task that needs it)"
            in lines)
    assert not (taskrun.cwd / "ran.log").exists()
    r = check(taskrun("tasks.yaml", "-n"), 0)
    assert ("condition false: ${{ vars.env == 'prod' }} (skipped when it is ready, with every task that needs it)\n"
            in r.stdout)


def test_a_skip_by_need_failure_wins_over_the_condition(taskrun):
    """The condition applies when the task is ready: a need that failed skips it for that reason."""
    taskrun.write("tasks.yaml", DEPLOY.replace("echo build >> ran.log", "exit 3"))
    check(taskrun("tasks.yaml"), 1)
    assert statuses(taskrun)["deploy"] == ("skipped", "needs 'build', which failed")


TRUTH = """
    version: 1
    vars:
      flag: {default: 'false'}
    tasks:
      flagged:
        cmd: echo flagged >> ran.log
        if: ${{ vars.flag }}
"""


@pytest.mark.parametrize(("value", "runs"), [("true", True), ("TRUE", True), ("True", True), ("false", False),
                                             ("False", False)])
def test_a_variable_holding_true_or_false_is_a_condition(taskrun, value, runs):
    taskrun.write("tasks.yaml", TRUTH)
    check(taskrun("tasks.yaml", f"flag={value}"), 0)
    assert ran(taskrun) == (["flagged"] if runs else [])


@pytest.mark.parametrize("value", ["yes", "1", "", "no", "0", "prod"])
def test_any_other_value_is_an_error_where_the_condition_stands_and_nothing_runs(taskrun, value):
    """Unlike GitHub, where any non-empty string (even 'false') is true."""
    taskrun.write("tasks.yaml", TRUTH)
    r = check(taskrun("tasks.yaml", f"flag={value}"), 2)
    assert r.stderr == (
        f"tasks.yaml:7:5: tasks.flagged.if: the condition gave {value!r} for task 'flagged', which is neither true "
        "nor false: a condition gives true or false (a comparison such as ${{ vars.env == 'prod' }}, or a "
        "variable whose value is true or false, in any case)\n")
    assert ran(taskrun) == []
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


def test_unknown_names_and_non_conditions_are_refused_where_they_stand(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          env: dev
        tasks:
          a: {cmd: echo a >> ran.log, if: "${{ vars.enw == 'prod' }}"}
          b: {cmd: echo b >> ran.log, if: "${{ target == 'prod' }}"}
          c: {cmd: echo c >> ran.log, if: "${{ vars.env ~ '-x' }}"}
          d: {cmd: echo d >> ran.log, if: "${{ 'yes' }}"}
          e: {cmd: echo e >> ran.log, if: "${{ vars.env == 'a' }} or ${{ vars.env == 'b' }}"}
          f: {cmd: echo f >> ran.log, if: "${{ true }}"}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    never = ("this expression never gives true or false: a condition gives true or false (a comparison such as "
             "${{ vars.env == 'prod' }}, or a variable whose value is true or false, in any case)")
    assert r.stderr.splitlines() == [
        "tasks.yaml:5:31: tasks.a.if: unknown variable 'enw' (did you mean 'env'?): declare it under vars:",
        "tasks.yaml:6:31: tasks.b.if: unknown name 'target' in a template (use vars.NAME, env.NAME, task.name or "
        "args)",
        f"tasks.yaml:7:31: tasks.c.if: {never}",
        f"tasks.yaml:8:31: tasks.d.if: {never}",
        "tasks.yaml:9:31: tasks.e.if: an expression condition is one ${{ ... }} and nothing around it",
    ]
    assert ran(taskrun) == []
    check(taskrun("--validate", "tasks.yaml"), 2)


def test_a_bare_expression_or_a_command_string_is_refused_with_both_forms(taskrun):
    """A bare expression (GitHub's `if: env == 'prod'`) is not read: shell-looking text is never
    silently taken for an expression."""
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          env: dev
        tasks:
          deploy:
            cmd: echo deploy
            if: vars.env == 'prod'
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == (
        "tasks.yaml:7:5: tasks.deploy.if: an expression condition is one ${{ ... }} and nothing around it; write an "
        "expression as if: ${{ vars.env == 'prod' }}, a command as if: {sh: COMMAND} (exit 0 means true)\n")


def test_list_json_shows_the_expression_as_written(taskrun):
    taskrun.write("tasks.yaml", DEPLOY)
    tasks = {t["name"]: t for t in json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)["tasks"]}
    assert tasks["deploy"]["if"] == "${{ vars.env == 'prod' }}"
    assert "if" not in tasks["build"]
