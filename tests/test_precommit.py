"""The `taskrun-validate` pre-commit hook: its entry, run the way pre-commit runs
it (the entry's words, then the names of the changed files that match `files`)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml

from conftest import taskrun_argv

ROOT = Path(__file__).resolve().parent.parent


def hook() -> dict:
    [only] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    return only


def test_the_hook_is_declared_for_pre_commit():
    h = hook()
    assert (h["id"], h["language"], h["pass_filenames"]) == ("taskrun-validate", "python", True)
    assert shlex.split(h["entry"]) == ["taskrun", "--validate"]


def test_the_default_files_pattern_finds_task_files():
    pattern = re.compile(hook()["files"])
    matched = [p for p in ("tasks.yaml", "tasks.yml", "ops/tasks.yaml", "taskrun.yaml", "a/taskrun.yml",
                           "deploy.taskrun.yaml", "ops/nightly.taskrun.yml", "tasks/ci.yaml", "a/tasks/nightly.yml",
                           "roles/web/tasks/main.yml", "tasks/README.md", "docker-compose.yaml", "mytasks.yaml",
                           "mytaskrun.yaml", ".taskrun.yaml", "tasks/sub/x.yaml", ".github/workflows/ci.yaml")
               if pattern.search(p)]
    assert matched == ["tasks.yaml", "tasks.yml", "ops/tasks.yaml", "taskrun.yaml", "a/taskrun.yml",
                       "deploy.taskrun.yaml", "ops/nightly.taskrun.yml"]


def run_hook(taskrun, *files: str) -> subprocess.CompletedProcess:
    argv = shlex.split(hook()["entry"])
    argv[0:1] = taskrun_argv()
    return subprocess.run(argv + list(files), cwd=taskrun.cwd, env=taskrun.env(), capture_output=True, text=True,
                          timeout=60)


def test_the_hook_passes_good_files_and_names_every_problem_of_bad_ones(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo\n")
    taskrun.write("tasks/ci.yaml", "version: 1\ntasks:\n  b: {cmd: x, needs: [c]}\n")
    taskrun.write("tasks/nightly.yaml", "version: 1\npool: 0\ntasks:\n  a: {cmd: x, timout: 1}\n")
    r = run_hook(taskrun, "tasks.yaml")
    assert (r.returncode, r.stderr) == (0, "tasks.yaml: valid (1 tasks)\n")
    r = run_hook(taskrun, "tasks.yaml", "tasks/ci.yaml", "tasks/nightly.yaml")
    assert r.returncode == 2  # pre-commit fails the commit on any exit code but 0
    assert r.stderr.splitlines() == [
        "tasks.yaml: valid (1 tasks)",
        "tasks/ci.yaml:3:23: tasks.b.needs.0: unknown task 'c'",
        "tasks/nightly.yaml:2:1: pool: must be at least 1, got 0",
        "tasks/nightly.yaml:4:15: tasks.a.timout: unknown key (did you mean 'timeout'?)",
    ]
    assert r.stdout == ""
