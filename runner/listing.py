"""`--list`: the tasks of a file as a table for people or JSON for scripts, and
the names shell completion offers.

The JSON is a contract (README, "Listing tasks"): an object with `version`
(1), `file`, `default`, `tasks` and `parameters`. Each task has `name`,
`description`, `needs`, `tags`, `line`, `aliases`, `internal`, `when`,
`resources`, `confirm` and `interactive` (and `steps` for a task with steps;
`sources`, `generates`, `status` and `if` for a task that has them; `matrix`,
its `{KEY: value}`, for a matrix instance; `file` for a task of an included
file, whose `line` is in that file), in file order; `parameters` are the
variables the command line may set (`name`,
`default`, `required`, `enum`, `pattern`, `description`). Fields may be added,
never changed.

Internal tasks cannot be named on the command line: the table, the JSON
and completion leave them out unless asked for all (`--list --all`).
Completion offers aliases as well as names.
"""

from __future__ import annotations

import json
import os

from .model import Plan, TaskFile


def _shown(plan: Plan, show_all: bool) -> list:
    return [t for t in plan.tasks if show_all or not t.spec.internal]


def list_records(plan: Plan, show_all: bool = False) -> list[dict]:
    return [_with_file(plan, t.spec, _with_checks(_with_steps({
        "name": t.spec.name, "description": t.spec.description, "needs": list(t.spec.needs),
        "tags": list(t.spec.tags), "line": t.spec.line, "aliases": list(t.spec.aliases),
        "internal": t.spec.internal, "when": t.spec.when, "resources": dict(t.spec.resources),
        "confirm": t.spec.confirm, "interactive": t.spec.interactive}, t.spec), t.spec))
        for t in _shown(plan, show_all)]


def _with_file(plan: Plan, spec, record: dict) -> dict:
    """A task of an included file names that file: its `line` is there."""
    origin = plan.taskfile.origin_of(spec)
    if origin is not None:
        record["file"] = origin.path
    return record


def _with_checks(record: dict, spec) -> dict:
    """A task with a condition or up-to-date checks also lists them, as the file writes them; a
    matrix instance its values."""
    for key, value in (("sources", spec.sources), ("generates", spec.generates), ("status", spec.status)):
        if value:
            record[key] = list(value)
    if spec.condition is not None:
        record["if"] = {"sh": spec.condition}
    elif spec.condition_expr is not None:
        record["if"] = spec.condition_expr
    if spec.matrix:
        record["matrix"] = dict(spec.matrix)
    return record


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


def list_json(taskfile: TaskFile, plan: Plan, show_all: bool = False) -> str:
    return json.dumps({"version": 1, "file": taskfile.path, "default": list(taskfile.default),
                       "tasks": list_records(plan, show_all), "parameters": parameter_records(taskfile)},
                      ensure_ascii=False, indent=2) + "\n"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() + "\n" for r in rows)


def _task_cell(spec) -> str:
    """The name, then its aliases in brackets, then `(internal)` for a task the command line cannot name."""
    aliases = f" [{', '.join(spec.aliases)}]" if spec.aliases else ""
    return spec.name + aliases + (" (internal)" if spec.internal else "")


def format_list(taskfile: TaskFile, plan: Plan, show_all: bool = False) -> str:
    """The tasks, the default; then, when the file has parameters, how to set them and what they take."""
    rows = [("task", "needs", "tags", "description")]
    rows += [(_task_cell(t.spec), ", ".join(t.spec.needs) or "-", ", ".join(t.spec.tags) or "-",
              " ".join((t.spec.description or "").split()))
             for t in _shown(plan, show_all)]
    text = _table(rows)
    if taskfile.default:
        text += f"default: {', '.join(taskfile.default)} (what runs when no task is named)\n"
    params = parameter_records(taskfile)
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
    """The names and aliases the command line may use (internal tasks are left out)."""
    taskfile = _load_quietly(path)
    return taskfile.public_names() if taskfile else []


def tag_names(path: os.PathLike | str | None) -> list[str]:
    taskfile = _load_quietly(path)
    return list(dict.fromkeys(tag for t in taskfile.tasks for tag in t.tags)) if taskfile else []
