"""Which task file `taskrun` means when the command line names none.

Like go-task and just: the first of `NAMES` found in the current folder, else
in its parent, and so on up to the repository's root (the first folder holding
`.git`) or `/`. The names are taskrun's own or plainly about tasks; a folder of
YAML files named `tasks/` (Ansible's roles have those) is never searched.

`taskrun build`: a first argument that is not a file and does not look like
one is a task of the found file.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError

NAMES = ("taskrun.yaml", "taskrun.yml", "tasks.yaml", "tasks.yml")


def find_taskfile(start: Path) -> Path:
    """The task file for a command run in `start`; UsageError when there is none."""
    folder = start.absolute()
    while True:
        for name in NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if (folder / ".git").exists() or folder.parent == folder:
            break
        folder = folder.parent
    here = start.absolute()
    searched = str(here) if folder == here else f"{here} or a parent up to {folder}"
    root = "the repository root" if folder.parent != folder else "the filesystem root"
    raise UsageError(f"no task file: none of {', '.join(NAMES)} in {searched} ({root}); "
                     "name one with -f PATH, or write a starter with taskrun --init")


def names_a_file(argument: str) -> bool:
    """Whether a first argument is meant as the task file rather than a task's name: a
    regular file, or a name that looks like one (a folder named `build` is not)."""
    return os.path.isfile(argument) or argument.endswith((".yaml", ".yml")) or os.sep in argument


def shown(path: Path) -> str:
    """The found file as a path from the current folder, as a user would type it."""
    return os.path.relpath(path)
