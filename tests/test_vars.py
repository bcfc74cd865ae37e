"""Variables, templates and parameters, through the real `taskrun` on real files.

`vars:` (the file's, a task's, a step call's) feed `${{ vars.NAME }}` templates
in cmd, steps, env values, cwd and description, rendered before anything runs;
the command line (NAME=VALUE, --var, what follows `--`) wins. Every mistake is
exit 2 with its position, and nothing runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ROOT, by_name, check


def tails(taskrun) -> dict[str, str]:
    return {name: t["stdout_tail"] for name, t in by_name(taskrun.summary()).items()}


# --- precedence ------------------------------------------------------------------------


PRECEDENCE = """
    version: 1
    vars:
      a: file
      b: file
      c: file
      d: {default: default}
    tasks:
      show:
        vars: {b: task, c: task}
        cmd: echo ${{ vars.a }} ${{ vars.b }} ${{ vars.c }} ${{ vars.d }}
"""


def test_the_command_line_wins_over_the_task_which_wins_over_the_file_then_the_default(taskrun):
    taskrun.write("tasks.yaml", PRECEDENCE)
    check(taskrun("tasks.yaml"), 0)
    assert tails(taskrun)["show"] == "file task task default\n"
    check(taskrun("tasks.yaml", "c=cli", "--var", "d=flag"), 0)
    assert tails(taskrun)["show"] == "file task cli flag\n"
    assert by_name(taskrun.summary())["show"]["cmd"] == "echo file task cli flag"


def test_name_value_arguments_are_told_apart_from_tasks_even_without_a_file_named(taskrun):
    taskrun.write("taskrun.yaml", PRECEDENCE)
    r = check(taskrun("a=one", "show", "b=two"), 0)
    assert "taskrun: using taskrun.yaml" in r.stderr
    assert tails(taskrun)["show"] == "one two task default\n"


# --- sh vars ------------------------------------------------------------------------------


def test_sh_vars_run_once_before_anything_starts_and_only_for_planned_tasks(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          rev: {sh: "echo run >> sh-ran; printf 'abc\\n\\n'"}
          other: {sh: "touch other-ran; echo x"}
        tasks:
          first: '[ ! -e late ] && echo ${{ vars.rev }}-1'
          second: {cmd: 'echo ${{ vars.rev }}-2; touch late', needs: [first]}
          unused: echo ${{ vars.other }}
    """)
    check(taskrun("tasks.yaml", "--validate"), 0)
    check(taskrun("tasks.yaml", "--list"), 0)
    assert not (taskrun.cwd / "sh-ran").exists()  # checking and listing run nothing
    check(taskrun("tasks.yaml", "first", "second"), 0)
    assert tails(taskrun) == {"first": "abc-1\n", "second": "abc-2\n"}
    assert (taskrun.cwd / "sh-ran").read_text() == "run\n"  # once, for both tasks
    assert not (taskrun.cwd / "other-ran").exists()  # `unused` is not in the plan


def test_a_failing_sh_var_is_exit_2_with_its_stderr_and_nothing_runs(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          tag:
            sh: echo no tag here >&2; exit 3
        tasks:
          early: touch ran
          release: echo ${{ vars.tag }}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == ("tasks.yaml:3:3: vars.tag: the command 'echo no tag here >&2; exit 3' exited with 3: "
                        "no tag here\n")
    assert not (taskrun.cwd / "ran").exists()
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


# --- parameters ----------------------------------------------------------------------------


PARAMETERS = """
    version: 1
    vars:
      version:
        required: true
        pattern: '[0-9]+[.][0-9]+'
        description: the release number
      target: {default: staging, enum: [staging, prod], description: where it goes}
    tasks:
      release: echo ${{ vars.version }} to ${{ vars.target }}
      lint: echo lint
"""


def test_a_required_parameter_without_a_value_says_which_and_how(taskrun):
    taskrun.write("tasks.yaml", PARAMETERS)
    r = check(taskrun("tasks.yaml", "release"), 2)
    assert r.stderr == ("taskrun: the parameter 'version' is required by task 'release': give it on the command line "
                        "as version=VALUE (or --var version=VALUE)\n")
    check(taskrun("tasks.yaml", "lint"), 0)  # a task that does not use it needs no value
    check(taskrun("tasks.yaml", "release", "version=1.2", "target=prod"), 0)
    assert tails(taskrun)["release"] == "1.2 to prod\n"


def test_enum_and_pattern_refuse_a_value_from_the_command_line(taskrun):
    taskrun.write("tasks.yaml", PARAMETERS)
    r = check(taskrun("tasks.yaml", "release", "version=1.2", "target=qa"), 2)
    assert r.stderr == "taskrun: target=qa: 'qa' is not one of staging, prod\n"
    r = check(taskrun("tasks.yaml", "release", "--var", "version=1.2.x"), 2)
    assert r.stderr == "taskrun: version=1.2.x: '1.2.x' does not match the pattern '[0-9]+[.][0-9]+'\n"
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


def test_enum_refuses_a_value_from_the_file_with_its_position(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          target: {default: staging, enum: [staging, prod]}
          level: {enum: [low, high]}
        tasks:
          release:
            vars:
              target: qa
            cmd: echo ${{ vars.target }}
          other:
            steps:
              - {task: show, vars: {level: mid}}
          show: echo ${{ vars.level }}
    """)
    r = check(taskrun("tasks.yaml", "--validate"), 2)
    assert r.stderr == "tasks.yaml:8:7: tasks.release.vars.target: 'qa' is not one of staging, prod\n"


def test_a_value_passed_by_a_step_call_is_checked_against_the_parameter(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          level: {enum: [low, high]}
        tasks:
          other:
            steps:
              - {task: show, vars: {level: mid}}
          show: echo ${{ vars.level }}
    """)
    r = check(taskrun("tasks.yaml", "other"), 2)
    assert r.stderr == "tasks.yaml:7:29: tasks.other.steps.0.vars.level: 'mid' is not one of low, high\n"


def test_an_undeclared_name_on_the_command_line_is_refused_with_did_you_mean(taskrun):
    taskrun.write("tasks.yaml", PARAMETERS)
    r = check(taskrun("tasks.yaml", "verison=1.0"), 2)
    assert r.stderr == "taskrun: verison=1.0: tasks.yaml declares no variable 'verison' (did you mean 'version'?)\n"
    r = check(taskrun("tasks.yaml", "--var", "nope"), 2)
    assert "--var nope: write NAME=VALUE" in r.stderr


# --- templates ------------------------------------------------------------------------------


def test_args_after_the_double_dash_are_each_quoted(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          test: printf '[%s]' ${{ args }}
    """)
    check(taskrun("tasks.yaml", "--", "-k", "a b", "it's", "$HOME"), 0)
    assert tails(taskrun)["test"] == "[-k][a b][it's][$HOME]"
    assert by_name(taskrun.summary())["test"]["cmd"] == "printf '[%s]' -k 'a b' 'it'\"'\"'s' '$HOME'"


def test_quote_filter_and_literal_marker(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          msg: "it's a $HOME; ls"
        tasks:
          a: echo ${{ vars.msg | quote }} '$${{ vars.msg }}'
    """)
    check(taskrun("tasks.yaml"), 0)
    assert tails(taskrun)["a"] == "it's a $HOME; ls ${{ vars.msg }}\n"


def test_variables_are_text_as_written(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          py: 3.10
          flag: on
          mode: {default: 0777}
          switch: {default: on, enum: [on, off]}
        tasks:
          a: echo ${{ vars.py }} ${{ vars.flag }} ${{ vars.mode }} ${{ vars.switch }}
    """)
    check(taskrun("tasks.yaml"), 0)
    assert tails(taskrun)["a"] == "3.10 on 0777 on\n"
    check(taskrun("tasks.yaml", "switch=off"), 0)
    assert tails(taskrun)["a"] == "3.10 on 0777 off\n"


def test_templates_in_env_cwd_description_and_steps(taskrun):
    (taskrun.cwd / "out-b").mkdir()
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          where: out
        env:
          WHO: ${{ task.name }}
        tasks:
          b:
            description: builds into ${{ vars.where }}-${{ task.name }}
            cwd: ${{ vars.where }}-${{ task.name }}
            env: {HOME_TOO: '${{ env.HOME }}'}
            steps:
              - echo "$WHO in $(basename "$PWD") home=$HOME_TOO"
              - [echo, '${{ vars.where }}']
    """)
    r = check(taskrun("tasks.yaml", "--dry-run"), 0)
    assert r.stdout.splitlines()[1:6] == [
        "   1. b  timeout -       needs -",
        "         $ echo \"$WHO in $(basename \"$PWD\") home=$HOME_TOO\"",
        "         $ echo out",
        "         vars where=out",
        f"         env  WHO=b HOME_TOO={os.environ['HOME']}",
    ]
    assert r.stdout.splitlines()[6] == f"         cwd  {taskrun.cwd / 'out-b'}"
    check(taskrun("tasks.yaml"), 0)
    assert tails(taskrun)["b"] == f"b in out-b home={os.environ['HOME']}\nout\n"


def test_a_step_call_runs_the_called_tasks_steps_with_its_vars(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          target: dev
        tasks:
          deploy:
            vars: {region: eu}
            steps:
              - echo deploy ${{ vars.target }} ${{ vars.region }}
          release:
            vars: {stage: prod}
            steps:
              - echo ${{ task.name }}
              - {task: deploy, vars: {target: '${{ vars.stage }}'}}
              - {task: deploy, vars: {region: us}}
    """)
    check(taskrun("tasks.yaml", "release"), 0)
    assert tails(taskrun)["release"] == "release\ndeploy prod eu\ndeploy dev us\n"
    check(taskrun("tasks.yaml", "release", "target=qa"), 0)  # the command line still wins
    assert tails(taskrun)["release"] == "release\ndeploy qa eu\ndeploy qa us\n"


def test_unknown_names_and_unclosed_templates_are_positioned_and_nothing_runs(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          branch: main
        tasks:
          early: touch ran
          a:
            cmd: echo ${{ vars.brnch }}
            env:
              X: ${{ vars.branch
          b:
            steps:
              - echo ok
              - echo ${{ branch }} ${{ task.nme }} ${{ env }}
              - [echo, '${{ vars.branch | shout }}']
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:7:5: tasks.a.cmd: unknown variable 'brnch' (did you mean 'branch'?): declare it under vars:",
        "tasks.yaml:9:7: tasks.a.env.X: unclosed '${{' (close it with '}}'; write $${{ for a literal '${{')",
        "tasks.yaml:13:9: tasks.b.steps.1: unknown name 'branch' in a template "
        "(use vars.NAME, env.NAME, task.name or args)",
        "tasks.yaml:14:16: tasks.b.steps.2.1: unknown filter 'shout' (taskrun adds 'quote' to Jinja's built-in "
        "filters)",
    ]
    assert not (taskrun.cwd / "ran").exists()


def test_an_environment_variable_that_is_not_set_is_positioned(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          a: touch ran
          b:
            cmd: echo ${{ env.TASKRUN_NOT_SET_ANYWHERE }}
    """)
    r = check(taskrun("tasks.yaml"), 2)
    assert r.stderr == ("tasks.yaml:5:5: tasks.b.cmd: env.TASKRUN_NOT_SET_ANYWHERE: taskrun's environment has no "
                        "variable 'TASKRUN_NOT_SET_ANYWHERE'\n")
    assert not (taskrun.cwd / "ran").exists()


def test_secret_values_reached_through_templates_are_masked_in_the_dry_run(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        secrets: [TOKEN]
        vars:
          token: {sh: echo s3cr3t-value}
        tasks:
          a:
            env: {TOKEN: '${{ vars.token }}'}
            cmd: 'true'
    """)
    r = check(taskrun("tasks.yaml", "--dry-run"), 0)
    assert "env  TOKEN=***" in r.stdout
    assert "s3cr3t-value" not in r.stdout


# --- listing ------------------------------------------------------------------------------


def test_list_shows_the_parameters_and_json_includes_them(taskrun):
    taskrun.write("tasks.yaml", PARAMETERS)
    r = check(taskrun("tasks.yaml", "--list"), 0)
    lines = r.stdout.splitlines()
    assert lines[-4].split() == ["parameter", "default", "required", "allowed", "description"]
    assert lines[-3].split() == ["version", "-", "yes", "/[0-9]+[.][0-9]+/", "the", "release", "number"]
    assert lines[-2].split() == ["target", "staging", "no", "staging", "|", "prod", "where", "it", "goes"]
    assert lines[-1] == "set one with NAME=VALUE or --var NAME=VALUE"
    data = json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)
    assert data["parameters"] == [
        {"name": "version", "default": None, "required": True, "enum": [], "pattern": "[0-9]+[.][0-9]+",
         "description": "the release number"},
        {"name": "target", "default": "staging", "required": False, "enum": ["staging", "prod"], "pattern": None,
         "description": "where it goes"},
    ]


def test_a_file_without_parameters_lists_as_before(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo a\n")
    r = check(taskrun("tasks.yaml", "--list"), 0)
    assert r.stdout == "task  needs  tags  description\na     -      -\n"
    assert json.loads(check(taskrun("tasks.yaml", "--list", "--json"), 0).stdout)["parameters"] == []


def test_dry_run_tells_two_tasks_apart_by_their_vars(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          py311: {vars: {py: '3.11'}, cmd: tox -e py}
          py312: {vars: {py: '3.12'}, cmd: tox -e py}
          t311: {steps: [{task: tox, vars: {py: '3.11'}}]}
          t312: {steps: [{task: tox, vars: {py: '3.12'}}]}
          tox: {vars: {py: '3'}, cmd: 'tox -e py${{ vars.py }}'}
    """)
    r = check(taskrun("tasks.yaml", "t311", "t312", "--dry-run"), 0)
    assert "$ tox -e py3.11\n" in r.stdout and "$ tox -e py3.12\n" in r.stdout
    assert "vars py=3.11\n" in r.stdout and "vars py=3.12\n" in r.stdout


# --- the template engine costs nothing unless used ---------------------------------------


def test_jinja2_is_imported_only_for_a_file_that_uses_templates(tmp_path):
    """Through the same way from a file to a plan as --dry-run and the run (`mode.load_plan`):
    a file without vars and templates imports neither the engine nor `expand`."""
    files = {
        "bare.yaml": ("version: 1\ntasks:\n  a: echo '${ HOME }' {{ x }}\n", "False False"),
        "vars.yaml": ("version: 1\nvars: {a: b}\ntasks:\n  a: echo $a\n", "False True"),
        "templated.yaml": ("version: 1\ntasks:\n  a: echo ${{ task.name }}\n", "True True"),
    }
    probe = ("import sys; from runner.mode import Selection, load_plan; load_plan(sys.argv[1], Selection()); "
             "print('jinja2' in sys.modules, 'runner.expand' in sys.modules)")
    for name, (text, expected) in files.items():
        (tmp_path / name).write_text(text)
        r = subprocess.run([sys.executable, "-c", probe, str(tmp_path / name)], capture_output=True, text=True,
                           cwd=ROOT, env={**os.environ, "TASKRUN_CACHE_DIR": "-"})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == expected, name
