"""What a newcomer types first, through the real command: `--init` (and its
refusal to overwrite), `-l` and `-n`, `--help`, completion of the choices,
and the `--summary` values that are refused because they are mistakes."""

from __future__ import annotations

import subprocess

import yaml

from conftest import check, taskrun_argv
from test_select_cli import complete

from runner.starter import STARTER

TASKS = """
version: 1
tasks:
  build: echo built
  deploy: {cmd: echo deployed, needs: [build]}
"""


def test_init_writes_a_starter_that_validates_and_runs_green(taskrun):
    r = check(taskrun("--init"), 0)
    assert r.stdout == ".taskrun/\ntaskrun-summary.json\n"  # alone on stdout: `taskrun --init >> .gitignore`
    assert r.stderr == ("taskrun: wrote taskrun.yaml; run it with: taskrun\n"
                        "taskrun: add these lines to .gitignore (taskrun --init >> .gitignore does):\n")
    text = (taskrun.cwd / "taskrun.yaml").read_text()
    assert text == STARTER
    assert text.startswith("# yaml-language-server: $schema=schemas/taskfile.schema.json\n")
    data = yaml.safe_load(text)
    assert list(data["tasks"]) == ["lint", "test", "build", "clean"]
    assert data["default"] == "build"  # a bare `taskrun` does not start clean
    assert data["tasks"]["build"]["needs"] == ["lint", "test"]
    assert data["tasks"]["test"]["retries"] == 1 and "timeout" in data["tasks"]["build"] and "timeout" in data
    r = check(taskrun(), 0)
    assert r.stderr == "taskrun: using taskrun.yaml\n"
    assert [(t["name"], t["status"]) for t in taskrun.summary()["tasks"]] == [
        ("lint", "success"), ("test", "success"), ("build", "success")]


def test_init_never_overwrites(taskrun):
    taskrun.write("taskrun.yaml", TASKS)
    r = check(taskrun("--init"), 2)
    assert r.stdout == ""
    assert r.stderr == ("taskrun: --init: taskrun.yaml exists already and is left as it is (remove it first, or name "
                        "another file: taskrun --init -f PATH)\n")
    assert (taskrun.cwd / "taskrun.yaml").read_text() == TASKS.lstrip("\n")
    r = check(taskrun("--init", "-f", "ops/nightly.taskrun.yaml"), 2)  # no such folder: said, not created
    assert r.stderr == "taskrun: --init: cannot create ops/nightly.taskrun.yaml: No such file or directory\n"
    (taskrun.cwd / "ops").mkdir()
    r = check(taskrun("--init", "-f", "ops/nightly.taskrun.yaml"), 0)
    assert r.stderr.splitlines()[0] == ("taskrun: wrote ops/nightly.taskrun.yaml; run it with:"
                                        " taskrun -f ops/nightly.taskrun.yaml")
    check(taskrun("--validate", "ops/nightly.taskrun.yaml"), 0)


def test_dash_l_lists_and_dash_n_shows_the_plan_and_nothing_runs(taskrun):
    taskrun.write("tasks.yaml", TASKS.replace("echo built", "touch ran"))
    listed = check(taskrun("tasks.yaml", "-l"), 0)
    assert listed.stdout == check(taskrun("tasks.yaml", "--list"), 0).stdout
    assert listed.stdout.splitlines() == ["task    needs  tags  description", "build   -      -", "deploy  build  -"]
    planned = check(taskrun("tasks.yaml", "-n"), 0)
    assert planned.stdout == check(taskrun("tasks.yaml", "--dry-run"), 0).stdout
    assert planned.stdout.startswith("plan for tasks.yaml: 2 task(s), pool ")
    assert not (taskrun.cwd / "ran").exists()
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


def test_a_summary_path_naming_a_task_is_refused_with_a_hint(taskrun):
    taskrun.write("playbook.yaml", TASKS.replace("echo built", "touch ran"))
    for args in (["--summary", "deploy"], ["-o", "deploy"], ["-n", "-o", "build"]):
        r = check(taskrun("playbook.yaml", *args), 2)
        name = args[-1]
        assert r.stdout == ""
        assert r.stderr == (f"taskrun: --summary {name}: '{name}' is a task of playbook.yaml, not a place for the "
                            f"summary; did you mean --list? to write the summary to that path use --summary=./{name}\n")
    assert sorted(p.name for p in taskrun.cwd.iterdir()) == ["playbook.yaml"]  # nothing ran, nothing written
    check(taskrun("playbook.yaml", "--summary=./deploy"), 0)
    assert taskrun.summary("deploy")["status"] == "success"


def test_a_summary_path_starting_with_a_dash_is_refused(taskrun):
    taskrun.write("tasks.yaml", TASKS.replace("echo built", "touch ran"))
    r = check(taskrun("tasks.yaml", "--summary", "--no-history"), 2)
    assert r.stderr == ("taskrun: --summary --no-history: a path that starts with '-' looks like an option "
                        "(to write the summary to that path use --summary=./--no-history)\n")
    assert not (taskrun.cwd / "ran").exists() and not (taskrun.cwd / "--no-history").exists()
    r = check(taskrun("tasks.yaml", "-o", "-"), 0)  # '-' alone is stdout
    assert r.stdout.startswith("{")


def test_help_uses_uniform_value_names_and_ends_with_examples_and_exit_codes(taskrun):
    r = subprocess.run(taskrun_argv() + ["--help"], cwd=taskrun.cwd, env=taskrun.env({"COLUMNS": "200"}),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("Usage: taskrun [OPTIONS] [FILE] [TASK]... [NAME=VALUE]...\n")
    assert "<str>" not in out and "<int" not in out
    for shown in ("-f, --file PATH", "-j, --pool N", "--timeout DURATION", "-o, --summary PATH", "--junit PATH",
                  "--log-dir PATH", "--history PATH", "--output MODE", "--color WHEN", "--tail-lines N",
                  "--keep-runs N", "--executor KIND", "--connect-timeout DURATION", "-l, --list", "-n, --dry-run",
                  "--var NAME=VALUE"):
        assert shown in out, shown
    words = " ".join(out.split())
    assert "MODE: stream, group or quiet" in words and "WHEN: auto" in words and "always or never" in words
    examples = out[out.index("Examples:"):out.index("Exit codes:")]
    assert [line.split()[0] for line in examples.splitlines()[1:] if line.strip()] == ["taskrun"] * 5
    codes = out[out.index("Exit codes:"):].splitlines()[1:]
    assert [line.split()[0] for line in codes if line.strip()] == ["0", "1", "2", "3", "130"]


def test_completion_offers_the_choices_of_output_and_color(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    assert complete(taskrun, "taskrun tasks.yaml --output ") == ["stream", "group", "quiet"]
    assert complete(taskrun, "taskrun tasks.yaml --output g") == ["group"]
    assert complete(taskrun, "taskrun --color ") == ["auto", "always", "never"]
    assert complete(taskrun, "taskrun --color n") == ["never"]


def test_completion_offers_the_tasks_of_the_file_taskrun_finds(taskrun):
    taskrun.write("taskrun.yaml", TASKS)
    assert complete(taskrun, "taskrun ") == ["build", "deploy"]
    assert complete(taskrun, "taskrun d") == ["deploy"]
    assert complete(taskrun, "taskrun build ") == ["deploy"]
    assert complete(taskrun, "taskrun tasks") == []  # the shell offers file names


def test_the_default_summary_path_is_never_refused(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  taskrun-summary.json: echo odd name\n")
    check(taskrun("tasks.yaml"), 0)
    assert taskrun.summary()["tasks"][0]["name"] == "taskrun-summary.json"
    check(taskrun("tasks.yaml", "-o", "taskrun-summary.json"), 2)  # named on the command line: refused
