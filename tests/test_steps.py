"""Steps, commands echoed, and errexit, through the real `taskrun` on real files.

A task with `steps` runs them in order in one attempt: each in its own
process, with the task's env, cwd and one timeout for them all; the first
failing step ends the attempt with its exit code and is named in the
summary, JUnit, the GitHub step summary and the closing report. The console
echoes each command before it runs (`build $ make`). A string command runs
with errexit.
"""

from __future__ import annotations

import json
import re
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

from conftest import by_name, check, wait_for

CLOCK = r"\d\d:\d\d:\d\d"


def task_lines(out: str, name: str) -> list[str]:
    """The console lines of one task's output and echoes (`name | ...`, `name ! ...`, `name $ ...`)."""
    return [line for line in out.splitlines() if re.match(rf"{re.escape(name)} +[|!$>] ", line)]


def steps_of(attempt: dict) -> list[tuple]:
    return [(s["index"], s["name"], s["cmd"], s["exit_code"], s["signal"]) for s in attempt["steps"]]


# --- running steps -------------------------------------------------------------------------


def test_steps_run_in_order_each_in_its_own_process_with_the_tasks_env_and_cwd(taskrun):
    (taskrun.cwd / "sub").mkdir()
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build:
            cwd: sub
            env: {GREETING: hello}
            steps:
              - echo "one $GREETING $(basename $PWD)"; echo $$ > ../pid1
              - [sh, -c, 'echo "two $GREETING"; echo $$ > ../pid2']
              - {cmd: echo three >&2, name: third}
    """)
    r = check(taskrun("tasks.yaml"), 0)
    t = by_name(taskrun.summary())["build"]
    assert (t["status"], t["exit_code"], t["cmd"], t["failed_step"]) == ("success", 0, None, None)
    assert t["steps"] == [
        {"name": None, "cmd": 'echo "one $GREETING $(basename $PWD)"; echo $$ > ../pid1', "allow_failure": False,
         "task": None},
        {"name": None, "cmd": ["sh", "-c", 'echo "two $GREETING"; echo $$ > ../pid2'], "allow_failure": False,
         "task": None},
        {"name": "third", "cmd": "echo three >&2", "allow_failure": False, "task": None},
    ]
    (attempt,) = t["attempts"]
    assert steps_of(attempt) == [
        (1, None, 'echo "one $GREETING $(basename $PWD)"; echo $$ > ../pid1', 0, None),
        (2, None, "sh -c 'echo \"two $GREETING\"; echo $$ > ../pid2'", 0, None),
        (3, "third", "echo three >&2", 0, None),
    ]
    pids = [int((taskrun.cwd / f"pid{i}").read_text()) for i in (1, 2)]
    assert pids == [s["pid"] for s in attempt["steps"][:2]] and len(set(pids)) == 2
    starts = [s["started_at"] for s in attempt["steps"]]
    assert starts == sorted(starts) and starts[0] == attempt["started_at"]
    assert all(s["duration_s"] >= 0 for s in attempt["steps"])
    assert Path(t["stdout_log"]).read_text() == "one hello sub\ntwo hello\n"  # the log: only what the commands wrote
    assert Path(t["stderr_log"]).read_text() == "three\n"
    assert task_lines(r.stdout, "build") == [
        'build $ echo "one $GREETING $(basename $PWD)"; echo $$ > ../pid1',
        "build | one hello sub",
        "build $ sh -c 'echo \"two $GREETING\"; echo $$ > ../pid2'",
        "build | two hello",
        "build $ echo three >&2",
        "build ! three",
    ]


def test_the_first_failing_step_ends_the_attempt_and_is_named_everywhere(taskrun):
    step_summary = taskrun.cwd / "step-summary.md"
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          check:
            steps:
              - echo formatting
              - {cmd: 'echo "lint: 2 problems" >&2; exit 3', name: lint}
              - touch never
    """)
    r = check(taskrun("tasks.yaml", "--junit", "junit.xml",
                      env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step_summary)}), 1)
    assert not (taskrun.cwd / "never").exists()
    t = by_name(taskrun.summary())["check"]
    assert (t["status"], t["exit_code"]) == ("failed", 3)
    assert t["failed_step"] == {"index": 2, "name": "lint", "cmd": 'echo "lint: 2 problems" >&2; exit 3'}
    (attempt,) = t["attempts"]
    assert attempt["failed_step"] == 2
    assert [s["exit_code"] for s in attempt["steps"]] == [0, 3]  # the third never ran
    assert re.search(rf"^{CLOCK} done  check FAILED exit 3 in \d+\.\d\ds at step 2 \(lint\)$", r.stdout, re.M)
    assert re.search(r"^check failed: exit 3 in \d+\.\d\ds at step 2 \(lint\)$", r.stdout, re.M)  # the report
    failure = ET.parse(taskrun.cwd / "junit.xml").getroot().find("testcase/failure")
    assert failure.get("message") == "exit code 3 at step 2 (lint); 1 attempt"
    assert "| check | ❌ failed at step 2 (lint) | 3 |" in step_summary.read_text()
    assert re.search(r"^::error file=tasks.yaml,line=3,title=taskrun%3A task check failed::"
                     r"exit code 3 at step 2 \(lint\); 1 attempt", r.stdout, re.M)


def test_a_step_allowed_to_fail_lets_the_next_one_run(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          t:
            steps:
              - {cmd: exit 5, allow_failure: true}
              - echo after
    """)
    check(taskrun("tasks.yaml"), 0)
    t = by_name(taskrun.summary())["t"]
    assert (t["status"], t["exit_code"], t["failed_step"]) == ("success", 0, None)
    assert [(s["exit_code"], s["allow_failure"]) for s in t["attempts"][0]["steps"]] == [(5, True), (0, False)]
    assert Path(t["stdout_log"]).read_text() == "after\n"


def test_a_step_that_cannot_start_ends_the_attempt_with_the_reason(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          t: {steps: [echo ok, [no-such-program-here, --x], touch never]}
    """)
    r = check(taskrun("tasks.yaml"), 1)
    assert not (taskrun.cwd / "never").exists()
    t = by_name(taskrun.summary())["t"]
    assert (t["exit_code"], t["pid"], t["reason"]) == (127, None, "command not found: no-such-program-here")
    assert t["failed_step"] == {"index": 2, "name": None, "cmd": "no-such-program-here --x"}
    assert re.search(r"^t failed: exit 127 \(command not found: no-such-program-here\) "
                     r"at step 2 \(no-such-program-here --x\)$", r.stdout, re.M)


def test_an_interrupt_stops_the_running_step_and_starts_no_other(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 1
        tasks:
          t: {steps: [echo first, touch running; sleep 60, touch never]}
    """)
    proc = taskrun.popen("tasks.yaml")
    wait_for(lambda: (taskrun.cwd / "running").exists(), what="the second step")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert not (taskrun.cwd / "never").exists()
    t = by_name(taskrun.summary())["t"]
    assert (t["status"], t["signal"], t["failed_step"]["index"]) == ("cancelled", "SIGTERM", 2)
    assert [s["exit_code"] for s in t["attempts"][0]["steps"]] == [0, None]


def test_a_retry_runs_every_step_again(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          flaky:
            retries: 1
            steps:
              - echo "attempt $TASKRUN_ATTEMPT" >> ran
              - '[ "$TASKRUN_ATTEMPT" = 2 ]'
              - echo done >> ran
    """)
    check(taskrun("tasks.yaml"), 0)
    assert (taskrun.cwd / "ran").read_text() == "attempt 1\nattempt 2\ndone\n"
    t = by_name(taskrun.summary())["flaky"]
    first, second = t["attempts"]
    assert ([s["exit_code"] for s in first["steps"]], first["failed_step"]) == ([0, 1], 2)
    assert ([s["exit_code"] for s in second["steps"]], second["failed_step"]) == ([0, 0, 0], None)
    assert t["failed_step"] is None


def test_the_timeout_bounds_all_the_steps_together(taskrun):
    # Each step alone is well within the timeout; together they are not.
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.2
        tasks:
          slow:
            timeout: 1
            steps: [sleep 0.7, sleep 0.7, touch never]
    """)
    check(taskrun("tasks.yaml"), 1)
    assert not (taskrun.cwd / "never").exists()
    t = by_name(taskrun.summary())["slow"]
    assert (t["status"], t["signal"], t["reason"]) == ("timeout", "SIGTERM", "timed out after 1s")
    assert t["failed_step"] == {"index": 2, "name": None, "cmd": "sleep 0.7"}
    assert [(s["exit_code"], s["signal"]) for s in t["attempts"][0]["steps"]] == [(0, None), (None, "SIGTERM")]
    assert 1.0 <= t["duration_s"] < 5  # stopped at the deadline, not after the third step


def test_a_step_calling_a_task_runs_its_steps_here_and_brings_its_needs(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          setup: echo setup > setup.done
          lint:
            needs: [setup]
            steps: [cat setup.done, echo linted]
          one: echo one
          ci:
            steps:
              - {task: lint}
              - {task: one, name: the-one}
              - echo end
    """)
    r = check(taskrun("tasks.yaml", "ci"), 0)
    s = taskrun.summary()
    assert [t["name"] for t in s["tasks"]] == ["setup", "ci"]  # lint's need came along; lint itself did not
    ci = by_name(s)["ci"]
    assert ci["needs"] == ["setup"]
    assert ci["steps"] == [
        {"name": None, "cmd": "cat setup.done", "allow_failure": False, "task": "lint"},
        {"name": None, "cmd": "echo linted", "allow_failure": False, "task": "lint"},
        {"name": "the-one", "cmd": "echo one", "allow_failure": False, "task": "one"},
        {"name": None, "cmd": "echo end", "allow_failure": False, "task": None},
    ]
    assert Path(ci["stdout_log"]).read_text() == "setup\nlinted\none\nend\n"
    assert task_lines(r.stdout, "ci")[:2] == ["ci    $ cat setup.done", "ci    | setup"]
    listed = json.loads(check(taskrun("tasks.yaml", "ci", "--list", "--json"), 0).stdout)
    assert by_name(listed)["ci"]["steps"][2] == {"name": "the-one", "cmd": "echo one", "task": "one"}
    assert "needs setup" in check(taskrun("tasks.yaml", "ci", "--dry-run"), 0).stdout


# --- commands echoed -------------------------------------------------------------------------


def test_commands_are_echoed_masked_and_silent_turns_it_off(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        secrets: [TOKEN]
        env: {TOKEN: s3cr3t-t0ken-value}
        tasks:
          login: |
            echo logging in with s3cr3t-t0ken-value
            echo ok
          quiet: {cmd: echo hush, silent: true}
    """)
    r = check(taskrun("tasks.yaml"), 0)
    assert task_lines(r.stdout, "login") == [
        "login $ echo logging in with ***",
        "login > echo ok",
        "login | logging in with ***",
        "login | ok",
    ]
    assert task_lines(r.stdout, "quiet") == ["quiet | hush"]
    assert "s3cr3t" not in r.stdout

    taskrun.write("tasks.yaml", """
        version: 1
        silent: true
        tasks:
          a: echo a
          b: {steps: [echo b], silent: false}
    """)
    r = check(taskrun("tasks.yaml"), 0)
    assert task_lines(r.stdout, "a") == ["a | a"]
    assert task_lines(r.stdout, "b") == ["b $ echo b", "b | b"]


def test_the_record_of_steps_is_masked_and_echoes_follow_each_steps_output_in_group_mode(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        secrets: [TOKEN]
        env: {TOKEN: s3cr3t-t0ken-value}
        tasks:
          deploy:
            steps:
              - printf 'no newline'
              - echo to stderr >&2
              - echo use s3cr3t-t0ken-value
    """)
    r = check(taskrun("tasks.yaml", "--output", "group"), 0)
    assert task_lines(r.stdout, "deploy") == [
        "deploy $ printf 'no newline'",
        "deploy | no newline",
        "deploy $ echo to stderr >&2",
        "deploy ! to stderr",
        "deploy $ echo use ***",
        "deploy | use ***",
    ]
    (run_dir,) = taskrun.run_dirs()
    record = [json.loads(line) for line in (run_dir / "deploy.steps").read_text().splitlines()]
    assert [(m["step"], m["cmd"], m["stdout"], m["stderr"]) for m in record] == [
        (1, "printf 'no newline'", 0, 0), (2, "echo to stderr >&2", 10, 0), (3, "echo use ***", 10, 10)]


def test_each_echo_stands_between_the_output_of_its_step_and_the_previous_ones(taskrun):
    # Fast steps with much output: the console reads logs and the record of steps while they grow.
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  t:\n    steps:\n"
                  + "".join(f"      - seq {i * 1000} {i * 1000 + 499}; sleep 0.03; seq {i} {i} >&2\n" for i in range(1, 21)))
    r = check(taskrun("tasks.yaml"), 0)
    expected = []
    for i in range(1, 21):
        expected += [f"t $ seq {i * 1000} {i * 1000 + 499}; sleep 0.03; seq {i} {i} >&2"]
        expected += [f"t | {n}" for n in range(i * 1000, i * 1000 + 500)] + [f"t ! {i}"]
    got = task_lines(r.stdout, "t")
    # stdout and stderr are two files read one after the other: within a step, their order is free
    assert [line for line in got if not line.startswith("t ! ")] == [e for e in expected if not e.startswith("t ! ")]
    steps = [i for i, line in enumerate(got) if line.startswith("t $ ")]
    for k, (start, end) in enumerate(zip(steps, steps[1:] + [len(got)]), start=1):
        assert f"t ! {k}" in got[start:end]


# --- errexit and the shell -------------------------------------------------------------------


def test_a_failing_line_in_the_middle_of_a_string_command_fails_it(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          script: |
            echo before
            false
            echo after
    """)
    check(taskrun("tasks.yaml"), 1)
    t = by_name(taskrun.summary())["script"]
    assert (t["status"], t["exit_code"], t["stdout_tail"]) == ("failed", 1, "before\n")


def test_bash_gets_pipefail_and_a_list_shell_is_used_as_given(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        shell: bash
        tasks:
          pipe: false | cat
    """)
    check(taskrun("tasks.yaml"), 1)
    assert by_name(taskrun.summary())["pipe"]["exit_code"] == 1
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          pipe: false | cat
    """)
    check(taskrun("tasks.yaml"), 0)  # sh has no pipefail: the pipeline's status is cat's
    taskrun.write("tasks.yaml", """
        version: 1
        shell: [bash, --noprofile, -c]
        tasks:
          as-given: false; echo "$0 went on"
    """)
    check(taskrun("tasks.yaml"), 0)  # no -e: exactly the argv given
    assert by_name(taskrun.summary())["as-given"]["stdout_tail"] == "bash went on\n"
    taskrun.write("tasks.yaml", """
        version: 1
        shell: [bash, --noprofile, -eu, -c]
        tasks:
          unset: echo "$NOT_SET_ANYWHERE"
    """)
    check(taskrun("tasks.yaml"), 1)
    assert "NOT_SET_ANYWHERE: unbound variable" in by_name(taskrun.summary())["unset"]["stderr_tail"]


# --- validation -------------------------------------------------------------------------------


def test_validate_places_every_problem_of_steps_and_shells(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        shell: /no/such/shell
        tasks:
          a: {cmd: x, steps: [y]}
          b:
            steps:
              - {task: nope}
              - {task: b}
              - {task: c, vars: {v: 1}}
              - {cmd: x, task: c}
              - {name: lonely}
              - ''
          c: {steps: [{task: d}]}
          d: {cmd: x, needs: [c]}
          e: {steps: []}
    """)
    r = check(taskrun("tasks.yaml", "--validate"), 2)
    assert r.stderr.splitlines() == [
        "tasks.yaml:2:1: shell: the shell '/no/such/shell' does not exist or is not executable "
        "(name one that is installed, e.g. /bin/sh or bash)",
        "tasks.yaml:4:3: tasks.a: a task has either 'cmd' or 'steps', not both",
        "tasks.yaml:7:10: tasks.b.steps.0.task: unknown task 'nope'",
        "tasks.yaml:8:10: tasks.b.steps.1.task: a task cannot call itself as a step",
        "tasks.yaml:10:9: tasks.b.steps.3: a step has either 'cmd' or 'task', not both",
        "tasks.yaml:11:9: tasks.b.steps.4: missing required key 'cmd' (or 'task')",
        "tasks.yaml:12:9: tasks.b.steps.5: the command is empty",
        "tasks.yaml:13:16: tasks.c.steps.0.task: dependency cycle through a step call: c -> d -> c",
        "tasks.yaml:15:7: tasks.e.steps: no steps: give at least one (or use cmd)",
    ]
    r = check(taskrun("tasks.yaml"), 2)  # a run checks the same, and nothing runs
    assert "tasks.a: a task has either 'cmd' or 'steps', not both" in r.stderr


def test_validate_warns_where_a_list_command_holds_several(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        shell: bash
        tasks:
          a: {cmd: [make clean, make all]}
          b: {steps: [[echo, ok], ['ls;', pwd], {cmd: [make]}]}
    """)
    r = check(taskrun("tasks.yaml", "--validate"), 0)
    assert r.stderr.splitlines() == [
        "tasks.yaml:4:13: tasks.a.cmd.0: warning: a list runs one program; for several commands use steps "
        "('make clean' would be taken as one program's name)",
        "tasks.yaml:5:28: tasks.b.steps.1.0: warning: a list runs one program; for several commands use steps "
        "('ls;' would be taken as one program's name)",
        "tasks.yaml: valid (2 tasks)",
    ]
