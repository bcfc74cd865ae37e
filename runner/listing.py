"""`--list`: the tasks of a file as a table for people or JSON for scripts, and
the names shell completion offers.

The JSON is a contract (README, "Listing tasks"): an object with `version`
(1), `file`, `tasks`, each task with `name`, `description`, `needs`,
`tags` and `line` (and `steps` for a task with steps), in file order, and
`parameters`: the variables the command line may set as parameters (`name`,
`default`, `required`, `enum`, `pattern`, `description`). Fields may be added,
never changed.
"""

from __future__ import annotations

import json
import os

from .model import Plan, TaskFile


def list_records(plan: Plan) -> list[dict]:
    return [_with_steps({"name": t.spec.name, "description": t.spec.description, "needs": list(t.spec.needs),
                         "tags": list(t.spec.tags), "line": t.spec.line}, t.spec) for t in plan.tasks]


def _with_steps(record: dict, spec) -> dict:
    """A task with steps also lists them (name, command, the task a `{task: NAME}` step calls)."""
    if spec.steps:
        record["steps"] = [{"name": s.name, "cmd": s.cmd if isinstance(s.cmd, str) else list(s.cmd), "task": s.task}
                           for s in spec.steps]
    return record


def parameter_records(taskfile: TaskFile) -> list[dict]:
    if not (taskfile.vars or any(t.vars for t in taskfile.tasks)):
        return []
    from .expand import parameters

    return [{"name": v.name, "default": v.default, "required": v.required, "enum": list(v.enum),
             "pattern": v.pattern, "description": v.description} for v in parameters(taskfile)]


def list_json(taskfile: TaskFile, plan: Plan) -> str:
    return json.dumps({"version": 1, "file": taskfile.path, "tasks": list_records(plan),
                       "parameters": parameter_records(taskfile)}, ensure_ascii=False, indent=2) + "\n"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def format_list(plan: Plan) -> str:
    """The tasks; then, when the file has parameters, how to set them and what they take."""
    rows = [("task", "needs", "tags", "description")]
    rows += [(t.spec.name, ", ".join(t.spec.needs) or "-", ", ".join(t.spec.tags) or "-",
              " ".join((t.spec.description or "").split()))
             for t in plan.tasks]
    text = _table(rows)
    params = parameter_records(plan.taskfile)
    if params:
        rows = [("parameter", "default", "required", "allowed", "description")]
        rows += [(p["name"], "-" if p["default"] is None else p["default"], "yes" if p["required"] else "no",
                  " | ".join(p["enum"]) or (f"/{p['pattern']}/" if p["pattern"] else "any"),
                  " ".join((p["description"] or "").split())) for p in params]
        text += "\n" + _table(rows) + "set one with NAME=VALUE or --var NAME=VALUE\n"
    return text


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
