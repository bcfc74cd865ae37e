"""With no FILE, taskrun finds the task file from the current folder up to the
repository root, says which it uses, and takes a first argument that is not a
file as a task; `-f PATH` names the file explicitly."""

from __future__ import annotations

import subprocess

from conftest import check, taskrun_argv

TASKS = """
version: 1
tasks:
  build: echo built
  test: {cmd: echo tested, needs: [build]}
  lint: echo linted
"""


def run_in(taskrun, folder, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(taskrun_argv() + list(args), cwd=taskrun.cwd / folder, env=taskrun.env(),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def repository(taskrun) -> None:
    (taskrun.cwd / "repo" / ".git").mkdir(parents=True)
    (taskrun.cwd / "repo" / "src" / "deep").mkdir(parents=True)


def test_from_a_subfolder_the_repositorys_task_file_runs_and_is_named(taskrun):
    repository(taskrun)
    taskrun.write("repo/taskrun.yaml", TASKS)
    r = check(run_in(taskrun, "repo/src/deep"), 0)
    assert r.stderr == "taskrun: using ../../taskrun.yaml\n"
    summary = taskrun.summary("repo/src/deep/taskrun-summary.json")
    assert summary["file"] == "../../taskrun.yaml"
    assert [t["name"] for t in summary["tasks"]] == ["build", "test", "lint"]
    assert (taskrun.cwd / "repo" / ".taskrun" / "runs").is_dir()  # the logs stay next to the file


def test_a_first_argument_that_is_not_a_file_is_a_task(taskrun):
    repository(taskrun)
    taskrun.write("repo/taskrun.yaml", TASKS)
    r = check(run_in(taskrun, "repo/src", "test"), 0)
    assert r.stderr == "taskrun: using ../taskrun.yaml\n"
    assert [t["name"] for t in taskrun.summary("repo/src/taskrun-summary.json")["tasks"]] == ["build", "test"]
    r = check(run_in(taskrun, "repo/src", "--list"), 0)
    assert r.stdout.split("\n")[1:4] == ["build  -      -", "test   build  -", "lint   -      -"]


def test_the_nearest_folder_wins_and_taskrun_yaml_comes_first(taskrun):
    repository(taskrun)
    taskrun.write("repo/taskrun.yaml", TASKS)
    taskrun.write("repo/src/tasks.yml", "version: 1\ntasks:\n  near: echo near\n")
    taskrun.write("repo/src/tasks.yaml", "version: 1\ntasks:\n  nearer: echo nearer\n")
    r = check(run_in(taskrun, "repo/src/deep", "--list"), 0)
    assert r.stderr == "taskrun: using ../tasks.yaml\n"
    assert r.stdout.splitlines()[1:] == ["nearer  -      -"]
    taskrun.write("repo/src/taskrun.yml", "version: 1\ntasks:\n  mine: echo mine\n")
    r = check(run_in(taskrun, "repo/src", "--list"), 0)
    assert (r.stderr, r.stdout.splitlines()[1:]) == ("taskrun: using taskrun.yml\n", ["mine  -      -"])


def test_the_search_stops_at_the_repository_root(taskrun):
    repository(taskrun)
    taskrun.write("taskrun.yaml", TASKS)  # above the repository: not this project's
    taskrun.write("repo/src/tasks/main.yml", TASKS)  # a folder named tasks is not searched (Ansible roles)
    r = check(run_in(taskrun, "repo/src/deep"), 2)
    root = taskrun.cwd / "repo"
    assert r.stderr == (
        f"taskrun: no task file: none of taskrun.yaml, taskrun.yml, tasks.yaml, tasks.yml in {root}/src/deep or a"
        f" parent up to {root} (the repository root); name one with -f PATH"
        ", or write a starter with taskrun --init\n")
    assert not (root / "src" / "deep" / "taskrun-summary.json").exists()


def test_dash_f_names_the_file_and_every_argument_is_a_task(taskrun):
    taskrun.write("ops/deploy.yaml", TASKS)
    r = check(taskrun("-f", "ops/deploy.yaml", "lint"), 0)
    assert "using" not in r.stderr
    assert [t["name"] for t in taskrun.summary()["tasks"]] == ["lint"]
    r = check(taskrun("--file", "ops/deploy.yaml", "--validate"), 0)
    assert r.stderr == "ops/deploy.yaml: valid (3 tasks)\n"


def test_a_file_name_that_does_not_exist_is_reported_not_searched_for(taskrun):
    taskrun.write("taskrun.yaml", TASKS)
    r = check(taskrun("tasks/missing.yaml"), 2)
    assert r.stderr == "tasks/missing.yaml:1:1: no such file\n"


def test_a_folder_named_like_a_task_is_not_a_task_file(taskrun):
    repository(taskrun)
    taskrun.write("repo/taskrun.yaml", TASKS)
    (taskrun.cwd / "repo" / "build").mkdir()  # build output, say
    r = check(run_in(taskrun, "repo", "build"), 0)
    assert r.stderr == "taskrun: using taskrun.yaml\n"
    assert [t["name"] for t in taskrun.summary("repo/taskrun-summary.json")["tasks"]] == ["build"]
    r = check(run_in(taskrun, "repo", "build", "--validate"), 2)  # with --validate every argument is a file
    assert r.stderr == "build:1:1: is a directory, not a task file\n"
