"""Matrix tasks: one written task, one task per combination of values.

A stage of loading, between reading the YAML and checking the tasks: a task with
`matrix: {KEY: [v1, v2], ..., exclude: [{KEY: v}, ...]}` is replaced, where it
stands, by one task per combination that no `exclude` item matches (keys in the
order written, values in the order written), named `TASK[v1,v2]`. An instance is
the written task with its `matrix` reduced to its own values (read as
`${{ matrix.KEY }}`) and without its aliases (they name the whole matrix). A need
of `TASK` becomes a need of every instance; a need of `TASK[v1,v2]` stays.

Everything after this stage (the checks, the plan, the schedule, the records)
sees ordinary tasks. The positions of the written task's keys are copied to each
instance's, so a problem found in an instance is shown where the user wrote it,
and once (`written_path` maps an instance's key path back).

The written names that stand for several tasks (a matrix task's name and its
aliases) are kept in `TaskFile.matrices`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_INSTANCES = 1000  # each instance is a task with its own logs: more is a mistake, not a plan
MAX_NAME = 200  # as a written task name (it names log files)
VALUE = re.compile(r"[A-Za-z0-9._-]+\Z")
VALUE_HINT = "use letters, digits and . _ -: the value becomes part of the instance's name"
INSTANCE = re.compile(r"(?P<task>[^\[\]]+)\[(?P<values>[^\[\]]*)\]\Z")

Path = tuple[Any, ...]


def text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def instance_name(task: str, values: tuple[str, ...]) -> str:
    return f"{task}[{','.join(values)}]"


def written_path(path: Path) -> Path:
    """The key path as written: `tasks.test[linux,3.12].cmd` -> `tasks.test.cmd`."""
    if len(path) >= 2 and path[0] == "tasks" and isinstance(path[1], str):
        match = INSTANCE.match(path[1])
        if match:
            return ("tasks", match["task"]) + path[2:]
    return path


def is_value_path(path: Path) -> bool:
    """`tasks.T.matrix.KEY.I` or `tasks.T.matrix.exclude.I.KEY`: a matrix value."""
    return (len(path) in (5, 6) and path[0] == "tasks" and path[2] == "matrix"
            and (len(path) == 5) == (path[3] != "exclude"))


def value_problem(value: Any) -> str:
    return f"{text(value)!r} is not a valid matrix value ({VALUE_HINT})"


def _keys(matrix: dict) -> dict[str, list[str]]:
    return {k: [text(v) for v in values] for k, values in matrix.items()
            if k != "exclude" and isinstance(values, list)}


def combinations(matrix: dict) -> list[dict[str, str]]:
    """The combinations of a valid matrix that no `exclude` item matches, in written order."""
    keys = _keys(matrix)
    exclude = matrix.get("exclude")
    excluded = [{k: text(v) for k, v in item.items()} for item in (exclude if isinstance(exclude, list) else ())
                if isinstance(item, dict)]
    out = []
    for values in itertools.product(*keys.values()):
        combo = dict(zip(keys, values))
        if not any(all(combo.get(k) == v for k, v in item.items()) for item in excluded):
            out.append(combo)
    return out


def check_matrices(tasks: dict, add: Callable[[Path, str], None], reported: set) -> None:
    """What the schema cannot say about each `matrix` (its shape is right when reached): an
    `exclude` item naming a key or a value the matrix does not have, a matrix that leaves
    no combination or too many, instance names too long; and a step call of a matrix task."""
    matrices = {name for name, spec in tasks.items() if isinstance(spec, dict) and isinstance(spec.get("matrix"), dict)}
    for name in matrices:
        matrix, base = tasks[name]["matrix"], ("tasks", name, "matrix")
        keys = _keys(matrix)
        exclude = matrix.get("exclude")
        for i, item in enumerate(exclude if isinstance(exclude, list) else ()):
            for key, value in (item.items() if isinstance(item, dict) else ()):
                path = base + ("exclude", i, key)
                if path in reported:
                    continue
                if key not in keys:
                    add(path, f"unknown matrix key {key!r}{_suggest(key, keys)}: the matrix has {', '.join(keys)}")
                elif text(value) not in keys[key]:
                    add(path, f"{text(value)!r} is not a value of {key} ({', '.join(keys[key])}): "
                              "this exclude leaves out nothing")
        if any(p[:len(base)] == base for p in reported):
            continue
        count = 1
        for values in keys.values():
            count *= len(values)
        if count > MAX_INSTANCES:
            add(base, f"{count} combinations, more than {MAX_INSTANCES}: each is a task of its own")
            continue
        combos = combinations(matrix)
        if not combos:
            add(base + ("exclude",), "the exclude leaves out every combination: the task would never run")
        longest = max((instance_name(name, tuple(c.values())) for c in combos), key=len, default="")
        if len(longest) > MAX_NAME:
            add(base, f"the instance name {longest[:40]}... has {len(longest)} characters, more than {MAX_NAME} "
                      "(each names log files): use shorter values")
    for name, spec in tasks.items():
        steps = spec.get("steps") if isinstance(spec, dict) else None
        for i, step in enumerate(steps if isinstance(steps, list) else ()):
            called = step.get("task") if isinstance(step, dict) else None
            if isinstance(called, str) and (called in matrices or _instance_of(called, matrices)):
                add(("tasks", name, "steps", i, "task"), f"{called!r} is a matrix task, which runs as instances of "
                                                         "its own: need it (needs:) rather than call it as a step")


def _instance_of(name: str, matrices: set[str]) -> bool:
    match = INSTANCE.match(name)
    return bool(match) and match["task"] in matrices


def _suggest(word: str, choices: Any) -> str:
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def expand_matrices(tasks: dict, names: dict[str, str], positions: dict[Path, Any],
                    outside: dict[str, tuple[str, ...]] | None = None) -> Expanded:
    """Each matrix task of `tasks` replaced by its instances. `tasks` is valid in shape, with
    aliases in `needs` already replaced by own names; `names` maps every name to its own
    name; `positions` gains the instances' key positions. `outside`: the matrix tasks of
    included files (full name -> instances), which a need may name too."""
    outside = outside or {}
    groups: dict[str, tuple[str, ...]] = {}
    out: dict = {}
    for name, spec in tasks.items():
        if not (isinstance(spec, dict) and isinstance(spec.get("matrix"), dict)):
            out[name] = spec
            continue
        instances = []
        written = [(path[2:], at) for path, at in positions.items() if path[:2] == ("tasks", name)]
        for combo in combinations(spec["matrix"]):
            instance = instance_name(name, tuple(combo.values()))
            out[instance] = {**{k: v for k, v in spec.items() if k != "aliases"}, "matrix": combo}
            instances.append(instance)
            positions.update((("tasks", instance) + rest, at) for rest, at in written)
        groups[name] = tuple(instances)
    if not groups and not outside:
        return Expanded(tasks=tasks, names=names)
    every = {**outside, **groups}
    origin: dict[Path, Path] = {}  # a need's key path -> where it is written, when they differ
    for name, spec in out.items():
        needs = spec.get("needs") if isinstance(spec, dict) else None
        if not isinstance(needs, list):
            continue
        expanded: dict[Any, int] = {}
        for i, need in enumerate(needs):
            for one in every.get(need, (need,)) if isinstance(need, str) else (need,):
                expanded.setdefault(one, i)
        out[name] = spec = {**spec, "needs": list(expanded)}
        written_at = {i: positions.get(("tasks", name, "needs", i)) for i in range(len(needs))}
        for j, i in enumerate(expanded.values()):
            origin[("tasks", name, "needs", j)] = written_path(("tasks", name, "needs", i))
            if written_at[i] is not None:
                positions[("tasks", name, "needs", j)] = written_at[i]
    written = {alias: groups[own] for alias, own in names.items() if own in groups} | outside
    return Expanded(tasks=out, names={**names, **{i: i for g in groups.values() for i in g}},
                    groups=written, origin=origin)


@dataclass(frozen=True, slots=True, kw_only=True)
class Expanded:
    """What `expand_matrices` makes: the tasks, every name -> its own name (an instance's is
    itself), each written name of a matrix task (its own, its aliases) -> its instances, and
    the key paths of needs that moved (see `origin_of`)."""

    tasks: dict
    names: dict[str, str]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    origin: dict[Path, Path] = field(default_factory=dict)

    def origin_of(self, path: Path) -> Path:
        """Where the user wrote what `path` names: an instance's key is its matrix task's key,
        a need of a matrix task is the need that named it."""
        for end in range(len(path), 1, -1):
            if path[:end] in self.origin:
                return self.origin[path[:end]] + path[end:]
        return written_path(path)
