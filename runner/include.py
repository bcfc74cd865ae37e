"""Includes: other task files whose tasks become tasks of this one, under a namespace.

`includes: {NS: PATH}` or `{NS: {file: PATH, vars: {NAME: VALUE}}}`, PATH relative to
the including file's folder. Each included file is loaded as a task file of its own
(`load.load_taskfile`: read, schema, checks, its own includes first), so it is valid
on its own terms; then its tasks are renamed `NS:NAME`, and so is every name they
hold (needs, aliases, the tasks their steps come from). What stays the included
file's own, because its commands were written for it: its folder (their default
cwd), its env (under theirs, over the including file's), its vars (the values passed
in by the include over its own; the command line over both), its shell and silent.
What is run-wide stays the including file's: pool, timeout, kill_grace, fail_fast,
output, executor, default. Secrets and declared resources add up (the including
file's capacity wins for a resource both declare).

Problems are placed where the user must look: a missing file, an include cycle, a
value passed for a variable the file does not declare, a name that the including
file already gives to another task, at the `includes` entry of the including file;
a problem inside an included file at its own line and column.

The task file's sha256 (history, --rerun-failed) covers the included files: it is
the hash of the file's own hash and each included file's (which covers its own
includes in turn). The validation cache (`load.verdict_path`) keys each file by its
own bytes, so a changed included file is checked again whatever its includer's
verdict.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import TaskFileError
from .model import Origin, TaskFile, TaskSpec, Var

Path = tuple[Any, ...]
Chain = tuple[tuple[str, str], ...]  # (real path, shown path) of each file being loaded, outermost first


@dataclass(frozen=True, slots=True)
class Included:
    """One `includes` entry, loaded: the file as it stands alone, and its tasks renamed."""

    ns: str
    taskfile: TaskFile
    tasks: tuple[TaskSpec, ...]
    origins: tuple[Origin, ...]


class Outside(dict):
    """Every name an included task answers to -> its full name. A name under the namespace of
    an included file that could not be loaded counts as known: that file's own problems are
    reported, and "unknown task" for each need of it would only repeat them."""

    def __init__(self, names: dict[str, str], broken: tuple[str, ...],
                 groups: dict[str, tuple[str, ...]] | None = None) -> None:
        super().__init__(names)
        self.broken = broken
        self.groups = groups or {}  # an included matrix task's full name -> its instances' full names

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and name.startswith(self.broken))


def load_includes(data: dict, shown: str, report: Any, chain: Chain,
                  load: Callable[..., TaskFile]) -> tuple[list[Included], tuple[str, ...]]:
    """Every entry of `data["includes"]` whose shape the schema accepted, loaded with `load`,
    and the namespace prefixes of those that could not be; what is wrong is added to `report`
    (the including file's `_Problems`)."""
    includes = data.get("includes")
    if not isinstance(includes, dict):
        return [], ()
    folder = os.path.dirname(shown)
    out, broken = [], []
    for ns, entry in includes.items():
        base = ("includes", ns)
        if not isinstance(ns, str):
            continue  # reported by yamlsrc
        broken.append(ns + ":")
        if any(p[:2] == base for p in report.paths):
            continue  # its shape is already reported
        file = entry if isinstance(entry, str) else entry.get("file")
        where = base if isinstance(entry, str) else base + ("file",)
        child_shown = os.path.normpath(os.path.join(folder, file))
        real = os.path.realpath(child_shown)
        if any(real == r for r, _ in chain):
            cycle = [s for _, s in chain[[r for r, _ in chain].index(real):]] + [child_shown]
            report.add(where, "include cycle: " + " -> ".join(cycle))
            continue
        if not os.path.exists(child_shown):
            report.add(where, f"no such file {child_shown!r} (an include's path is relative to the folder of the "
                              "file that includes it)")
            continue
        if os.path.isdir(child_shown):
            report.add(where, f"{child_shown!r} is a directory: include a task file")
            continue
        try:
            child = load(child_shown, chain=chain + ((real, child_shown),))
        except TaskFileError as e:
            report.found.update(dict.fromkeys(e.problems))  # at the included file's own positions
            continue
        _check_capacities(data.get("resources"), base, child, report)
        passed = _passed_vars(entry, base, child, report)
        out.append(_renamed(ns, child, passed))
        broken.pop()
    return out, tuple(broken)


def _check_capacities(declared: Any, base: Path, child: TaskFile, report: Any) -> None:
    """This file's capacity wins for a resource both declare: an included task needing more
    than it could never start."""
    if not isinstance(declared, dict):
        return
    for t in child.tasks:
        for name, units in t.resources:
            capacity = declared.get(name)
            if isinstance(capacity, (int, float)) and not isinstance(capacity, bool) and units > capacity:
                report.add(base, f"the task {t.name!r} of {child.path} needs {units:g} {name}, more than this "
                                 f"file's capacity {capacity:g}: it could never start")


def _passed_vars(entry: Any, base: Path, child: TaskFile, report: Any) -> tuple[Var, ...]:
    """The values an include passes, each for a variable of the included file's own `vars:`
    (the layer they take the place of), within what a parameter allows."""
    from .expand import breaks, text

    given = entry.get("vars") if isinstance(entry, dict) else None
    declared = {v.name: v for v in child.vars}
    out = []
    for name, value in (given or {}).items():
        path = base + ("vars", name)
        var = declared.get(name)
        if var is None:
            from .plan import did_you_mean

            hint = did_you_mean(name, sorted(declared)) if declared else " (it declares none)"
            report.add(path, f"{child.path} declares no variable {name!r} in its vars{hint}")
        elif var.is_parameter and (why := breaks(var, text(value))):
            report.add(path, f"{why} (a parameter of {child.path})")
        else:
            out.append(Var(name=name, value=text(value), path=path))
    return tuple(out)


def _renamed(ns: str, child: TaskFile, passed: tuple[Var, ...]) -> Included:
    prefix = ns + ":"
    tasks = tuple(_task(t, prefix, child) for t in child.tasks)
    own = Origin(prefix=prefix, path=child.path, folder=child.folder, vars=passed + child.vars, places=child.places)
    nested = tuple(replace(o, prefix=prefix + o.prefix) for o in child.origins)
    return Included(ns=ns, taskfile=child, tasks=tasks, origins=(own,) + nested)


def _task(t: TaskSpec, prefix: str, child: TaskFile) -> TaskSpec:
    def named(name: str) -> str:
        return prefix + name

    steps = tuple(replace(s, task=None if s.task is None else named(s.task),
                          calls=tuple(replace(c, task=named(c.task)) for c in s.calls)) for s in t.steps)
    return replace(
        t, name=named(t.name), needs=tuple(map(named, t.needs)), aliases=tuple(map(named, t.aliases)), steps=steps,
        origin=prefix + t.origin,
        # a templated cwd is resolved against its origin's folder once rendered (`expand`)
        cwd=child.folder if t.cwd is None else t.cwd,
        env=tuple((k, v) for k, v in child.env if k not in dict(t.env)) + t.env,
        shell=child.shell if t.shell is None else t.shell,
        silent=child.silent if t.silent is None else t.silent)


def outside_names(included: list[Included], broken: tuple[str, ...], names: dict[str, str],
                  report: Any) -> Outside:
    """The names of the included tasks (`Outside`). A name this file already gives to a task
    (or an alias) is a clash, reported at the include's entry."""
    out: dict[str, str] = {}
    for inc in included:
        for t in inc.tasks:
            for name in (t.name, *t.aliases):
                if name in names:
                    own = names[name]
                    what = f"the task {own!r}" if own == name else f"an alias of the task {own!r}"
                    line = report.source.position(("tasks", own))[0]
                    report.add(("includes", inc.ns), f"the task {name!r} of {inc.taskfile.path} clashes with {what} "
                                                     f"of this file (line {line}): rename one of them")
                else:
                    out[name] = t.name
    groups: dict[str, tuple[str, ...]] = {}
    for inc in included:  # `needs: [docs:test]` means every instance of that matrix task
        for written, instances in inc.taskfile.matrices:
            full = f"{inc.ns}:{written}"
            if full not in names:
                out[full] = full
                groups[full] = tuple(f"{inc.ns}:{i}" for i in instances)
    return Outside(out, broken, groups)


def merge(taskfile: TaskFile, included: list[Included]) -> TaskFile:
    """The including file with the included files' tasks after its own."""
    if not included:
        return taskfile
    hashed = taskfile.sha256 + "".join(f"\0{i.ns}\0{i.taskfile.sha256}" for i in included)
    resources = dict(taskfile.resources)
    for inc in included:
        for name, capacity in inc.taskfile.resources:
            resources.setdefault(name, capacity)
    return replace(
        taskfile,
        sha256=hashlib.sha256(hashed.encode()).hexdigest(),
        tasks=taskfile.tasks + tuple(t for i in included for t in i.tasks),
        origins=taskfile.origins + tuple(o for i in included for o in i.origins),
        templates=taskfile.templates or any(i.taskfile.templates for i in included),
        secrets=tuple(dict.fromkeys(taskfile.secrets + tuple(s for i in included for s in i.taskfile.secrets))),
        resources=tuple(resources.items()),
        warnings=taskfile.warnings + tuple(w for i in included for w in i.taskfile.warnings))
