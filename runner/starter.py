"""The starter task file `taskrun --init` writes: valid as it is, running green
at once (its commands only say what to put there), and showing the keys a
newcomer needs first: `default`, `needs`, `timeout`, `retries`, `description`."""

from __future__ import annotations

import os

from .errors import UsageError

STARTER = """\
# yaml-language-server: $schema=schemas/taskfile.schema.json
# The line above lets editors check this file as you type, once the schema is there:
#   taskrun --schema > schemas/taskfile.schema.json
#
# taskrun runs these tasks in parallel, each as soon as what it needs has succeeded:
#   taskrun              the default (build)  taskrun clean    clean, with what it needs
#   taskrun -l           list the tasks       taskrun -n       show the plan, run nothing
# Replace the echo commands with yours. The format: taskrun's README, or taskrun --schema.
version: 1
timeout: 10m              # no task runs longer (a task's own timeout wins)
default: build            # what `taskrun` runs when no task is named: build and what it needs
tasks:
  lint:
    description: Check the code's style
    cmd: echo "put your linter here, e.g. ruff check ."
  test:
    description: Run the tests
    cmd: echo "put your tests here, e.g. python -m pytest"
    retries: 1            # one more attempt after a failure, for a flaky suite
  build:
    description: Build what you ship
    cmd: echo "put your build here, e.g. python -m build"
    needs: [lint, test]   # starts once both have succeeded
    timeout: 5m
  clean:
    description: Remove what the build made (runs only when named)
    cmd: echo "put your clean-up here, e.g. rm -rf dist"
"""

GITIGNORE = (".taskrun/", "taskrun-summary.json")  # the run folders and the last run's summary


def write_starter(path: str) -> None:
    """Create `path` with the starter; an existing file is never touched."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise UsageError(f"--init: {path} exists already and is left as it is "
                         "(remove it first, or name another file: taskrun --init -f PATH)") from None
    except OSError as exc:
        raise UsageError(f"--init: cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(STARTER)
