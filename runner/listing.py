"""`--list`: the tasks of a file as a table for people or JSON for scripts, and
the names shell completion offers.

The JSON is a contract (README, "Listing tasks"): an object with `version`
(1), `file` and `tasks`, each task with `name`, `description`, `needs`,
`tags` and `line` (and `steps` for a task with steps; `sources`, `generates`,
`status` and `if` for a task that has them), in file order. Fields
may be added, never changed.
"""

from __future__ import annotations

import json
import os

from .model import Plan, TaskFile


def list_records(plan: Plan) -> list[dict]:
    return [_with_checks(_with_steps({"name": t.spec.name, "description": t.spec.description,
                                      "needs": list(t.spec.needs), "tags": list(t.spec.tags), "line": t.spec.line},
                                     t.spec), t.spec) for t in plan.tasks]


def _with_checks(record: dict, spec) -> dict:
    """A task with a condition or up-to-date checks also lists them, as the file writes them."""
    for key, value in (("sources", spec.sources), ("generates", spec.generates), ("status", spec.status)):
        if value:
            record[key] = list(value)
    if spec.condition is not None:
        record["if"] = {"sh": spec.condition}
    return record


def _with_steps(record: dict, spec) -> dict:
    """A task with steps also lists them (name, command, the task a `{task: NAME}` step calls)."""
    if spec.steps:
        record["steps"] = [{"name": s.name, "cmd": s.cmd if isinstance(s.cmd, str) else list(s.cmd), "task": s.task}
                           for s in spec.steps]
    return record


def list_json(taskfile: TaskFile, plan: Plan) -> str:
    return json.dumps({"version": 1, "file": taskfile.path, "tasks": list_records(plan)},
                      ensure_ascii=False, indent=2) + "\n"


def format_list(plan: Plan) -> str:
    rows = [("task", "needs", "tags", "description")]
    rows += [(t.spec.name, ", ".join(t.spec.needs) or "-", ", ".join(t.spec.tags) or "-",
              " ".join((t.spec.description or "").split()))
             for t in plan.tasks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def _load_quietly(path: os.PathLike | str | None) -> TaskFile | None:
    """The task file for completion, or None: completion must never print an error."""
    if path is None:
        return None
    from .load import load_taskfile

    try:
        return load_taskfile(os.fspath(path))
    except Exception:  # an unfinished or missing file offers nothing to complete
        return None


def task_names(path: os.PathLike | str | None) -> list[str]:
    taskfile = _load_quietly(path)
    return [t.name for t in taskfile.tasks] if taskfile else []


def tag_names(path: os.PathLike | str | None) -> list[str]:
    taskfile = _load_quietly(path)
    return list(dict.fromkeys(tag for t in taskfile.tasks for tag in t.tags)) if taskfile else []
