"""YAML scalars are what the user wrote: where the task file expects text, an
unquoted `3.10`, `0027`, `12:30`, `on`, `0777`, `1e3` or a date reaches the
command exactly as written, instead of what YAML 1.1 makes of it (3.1, 23, 750,
true, 511, ...). Nothing (`~`, `null`, an empty value) is refused where it is
written, and nothing runs.
"""

from __future__ import annotations

from conftest import by_name, check

VALUES = {"PY": "3.10", "UMASK": "0027", "AT": "12:30", "GO111MODULE": "on", "ANSWER": "yes", "MODE": "0777",
          "BIG": "1e3", "FLOAT": "1.0e+3", "HEX": "0x1F", "SEP": "1_000", "DAY": "2024-01-02", "NEG": "-.5",
          "INF": ".inf", "SWITCH": "off", "EMPTY": "''"}


def test_env_values_reach_the_command_as_written(taskrun):
    env = "".join(f"  {name}: {value}\n" for name, value in VALUES.items())
    script = "".join(f'printf "%s\\n" "${name}"; ' for name in VALUES)
    taskrun.write("tasks.yaml", "version: 1\nenv:\n" + env + "tasks:\n  show:\n"
                  f"    cmd: [sh, -c, '{script} printf \"%s %s\" \"$TASK_PY\" \"$TASK_ON\" > task-env']\n"
                  "    env: {TASK_PY: 3.10, TASK_ON: on}\n")
    check(taskrun("tasks.yaml"), 0)
    show = by_name(taskrun.summary())["show"]
    assert show["stdout_tail"] == "".join(v.strip("'") + "\n" for v in VALUES.values())
    assert (taskrun.cwd / "task-env").read_text() == "3.10 on"


def test_list_commands_and_descriptions_as_written(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          args:
            cmd: [printf, "%s|", 3.10, 0027, 12:30, on, 2024-01-02, &v 1.10, *v]
            description: Python 3.10
    """)
    r = check(taskrun("tasks.yaml", "--dry-run"), 0)
    assert "$ printf '%s|' 3.10 0027 12:30 on 2024-01-02 1.10 1.10\n" in r.stdout
    assert "Python 3.10" in check(taskrun("tasks.yaml", "--list"), 0).stdout
    check(taskrun("tasks.yaml"), 0)
    assert by_name(taskrun.summary())["args"]["stdout_tail"] == "3.10|0027|12:30|on|2024-01-02|1.10|1.10|"


def test_nothing_where_text_is_expected_is_refused_with_its_position(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        env:
          A: ~
          B:
        tasks:
          ran: {cmd: touch ran, env: {C: null}}
    """)
    hint = "got nothing (YAML reads ~, null and an empty value as nothing): quote it, e.g. '' for an empty string"
    expected = [f"tasks.yaml:3:3: env.A: expected a string, {hint}",
                f"tasks.yaml:4:3: env.B: expected a string, {hint}",
                f"tasks.yaml:6:31: tasks.ran.env.C: expected a string, {hint}"]
    for args in (("--validate", "tasks.yaml"), ("tasks.yaml",)):
        r = check(taskrun(*args), 2)
        assert r.stderr.splitlines() == expected
    assert not (taskrun.cwd / "ran").exists()


def test_validate_calls_valid_only_what_runs_as_written(taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          a: {cmd: [echo, on, 3.10], env: {V: 0027}, tags: [1.0]}
    """)
    r = check(taskrun("--validate", "tasks.yaml"), 0)
    assert r.stderr == "tasks.yaml: valid (1 tasks)\n"
    r = check(taskrun("tasks.yaml", "--list", "--json"), 0)
    assert '"1.0"' in r.stdout
