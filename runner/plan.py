"""From a validated task file and what the command line asks, the plan to run.

Pure: no process, no clock. The plan holds the selected tasks (the named ones
and everything they need; with none named, the file's `default`, else every
task that is not internal) in file order, each with the file's defaults and
the command line's overrides applied. A name on the command line may be an
alias; an internal task may not be named there.
"""

from __future__ import annotations

import difflib
import heapq
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .errors import UsageError
from .model import DEFAULT_KILL_GRACE_S, Plan, PlannedTask, RerunOf, StepSpec, TaskFile, TaskSpec, shell_argv


@dataclass(frozen=True, slots=True, kw_only=True)
class Rerun:
    """What an earlier run left: its identity, the tasks of the current file that
    did not succeed in it, and those that did."""

    of: RerunOf
    failed: tuple[str, ...]
    done: frozenset[str]


def default_pool() -> int:
    """The CPUs this process may use (affinity and cgroup-pinned sets included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def named_task_problems(taskfile: TaskFile, names: tuple[str, ...], prefix: str = "") -> list[str]:
    """What is wrong with task names given on the command line: unknown (did you mean),
    or internal (it runs only as a need or a step call of another task)."""
    if not names:
        return []
    # a matrix task's name stands for its instances, internal or not together
    known = {**taskfile.names(), **{name: instances[0] for name, instances in taskfile.matrices}}
    shown = {**known, **{name: name for name, _ in taskfile.matrices}}
    internal = {t.name for t in taskfile.tasks if t.internal}
    problems = []
    for name in names:
        if name not in known:
            problems.append(f"{prefix}unknown task '{name}'{did_you_mean(name, taskfile.public_names())}")
        elif not prefix and known[name] in internal:
            problems.append(f"task '{shown[name]}' is internal (internal: true): it runs only as a need or a step "
                            "of another task, never on its own")
    return problems


def select_tasks(taskfile: TaskFile, targets: tuple[str, ...] = (), *, tags: tuple[str, ...] = (),
                 skip: tuple[str, ...] = (), done: frozenset[str] = frozenset(),
                 named: bool = True) -> list[TaskSpec]:
    """The tasks to run, in file order.

    The roots are the `targets` (a task's name or alias) and every task carrying one of `tags`
    (when neither is given, every task that is not internal); with them comes everything they need,
    except what is in `done` (succeeded in an earlier run: a rerun counts those
    needs as met). `skip` leaves out those tasks and everything that needs
    them, directly or not. Every unknown name or tag, and every internal task
    among `targets` when they come from the command line (`named`), is reported at once.
    """
    by_name = {t.name: t for t in taskfile.tasks}
    known_tags = list(dict.fromkeys(tag for t in taskfile.tasks for tag in t.tags)) if tags else []
    problems = named_task_problems(taskfile, targets) if named else []
    problems += [f"unknown tag '{t}'{did_you_mean(t, known_tags)}" + ("" if known_tags else " (no task has tags)")
                 for t in dict.fromkeys(tags) if t not in known_tags]
    problems += named_task_problems(taskfile, skip, "--skip: ")
    if problems:
        raise UsageError("; ".join(problems) + f" in {taskfile.path}")
    skip = tuple(dict.fromkeys(n for t in skip for n in taskfile.resolve(t)))
    if targets or tags:
        wanted_tags = set(tags)
        roots = [n for t in targets for n in taskfile.resolve(t)] + [t.name for t in taskfile.tasks
                                               if wanted_tags.intersection(t.tags) and not t.internal]
    else:
        roots = [t.name for t in taskfile.tasks if not t.internal]
    wanted: set[str] = set()
    stack = roots
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(n for n in by_name[name].needs if n not in done)
    if skip:
        dependents: dict[str, list[str]] = {}
        for t in taskfile.tasks:
            for need in t.needs:
                dependents.setdefault(need, []).append(t.name)
        left_out: set[str] = set()
        stack = list(skip)
        while stack:
            name = stack.pop()
            if name not in left_out:
                left_out.add(name)
                stack.extend(dependents.get(name, ()))
        before = len(wanted)
        wanted -= left_out
        if before and not wanted:
            raise UsageError(f"nothing left to run: --skip {' --skip '.join(skip)} leaves out every selected task "
                             f"of {taskfile.path}")
    return [t for t in taskfile.tasks if t.name in wanted]


def command_argv(taskfile: TaskFile, cmd: str | tuple[str, ...], spec: TaskSpec | None = None) -> tuple[str, ...]:
    """A string through the shell of the task's own file (with errexit, see `shell_argv`); a list as it is."""
    shell = spec.shell if spec is not None and spec.shell is not None else taskfile.shell
    return (*shell_argv(shell), cmd) if isinstance(cmd, str) else tuple(cmd)


def plan_steps(taskfile: TaskFile, spec: TaskSpec) -> tuple[StepSpec, ...]:
    return tuple(StepSpec(argv=command_argv(taskfile, s.cmd, spec), shown=shown_command(s.cmd), name=s.name,
                          allow_failure=s.allow_failure, cwd=s.cwd) for s in spec.steps)


def shown_command(cmd: str | tuple[str, ...]) -> str:
    """The command as the console echoes it: a string as written, a list shell-quoted."""
    return cmd if isinstance(cmd, str) else shlex.join(cmd)


def plan_task(taskfile: TaskFile, spec: TaskSpec, default_timeout_s: float | None) -> PlannedTask:
    steps = plan_steps(taskfile, spec)
    argv = steps[0].argv if steps else command_argv(taskfile, spec.cmd, spec)
    if spec.env:
        env = dict(taskfile.env)
        env.update(spec.env)
        pairs = tuple(env.items())
    else:
        pairs = taskfile.env  # one tuple shared by the tasks that add nothing
    grace = spec.kill_grace_s if spec.kill_grace_s is not None else taskfile.kill_grace_s
    return PlannedTask(
        spec=spec,
        argv=tuple(argv),
        env=pairs,
        cwd=spec.cwd or taskfile.folder,
        timeout_s=spec.timeout_s if spec.timeout_s is not None else default_timeout_s,
        kill_grace_s=DEFAULT_KILL_GRACE_S if grace is None else grace,
        steps=steps,
        silent=taskfile.silent if spec.silent is None else spec.silent,
    )


def readiness_order(tasks: list[TaskSpec], priority: dict[str, float] | None = None) -> list[str]:
    """Kahn's order, highest priority first, file order breaking ties: how an
    unbounded pool starts them. (Tasks are their places in `tasks` here: 100,000 of them
    are ordered in a tenth of a second.)"""
    index = {t.name: i for i, t in enumerate(tasks)}
    waiting = [len(t.needs) for t in tasks]
    dependents: list[list[int]] = [[] for _ in tasks]
    for i, t in enumerate(tasks):
        for need in t.needs:
            dependents[index[need]].append(i)
    # the heap holds places, or (-priority, place) when there are priorities
    key: list[Any] = ([(-priority.get(t.name, 0.0), i) for i, t in enumerate(tasks)] if priority
                      else list(range(len(tasks))))
    ready = [key[i] for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    pop, push = heapq.heappop, heapq.heappush
    while ready:
        i = pop(ready)
        if priority:
            i = i[1]
        order.append(tasks[i].name)
        for d in dependents[i]:
            waiting[d] -= 1
            if waiting[d] == 0:
                push(ready, key[d])
    return order


def _own_name(taskfile: TaskFile, name: str) -> str:
    """A target as the records name it: a task's own name, or a matrix task's (for all its instances)."""
    return name if any(name == written for written, _ in taskfile.matrices) else taskfile.names()[name]


def make_plan(
    taskfile: TaskFile,
    targets: tuple[str, ...] = (),
    *,
    pool: int | None = None,
    timeout_s: float | None = None,
    fail_fast: bool | None = None,
    tags: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    rerun: Rerun | None = None,
    every_task: bool = False,
    render: Callable[[list[TaskSpec]], list[TaskSpec]] | None = None,
    force: bool = False,
) -> Plan:
    """Apply selection and overrides: `pool`, `timeout_s` (the default timeout) and
    `fail_fast` from the command line win over the file when given. A `rerun`
    selects what did not succeed in an earlier run (see `select_tasks`). When
    nothing is selected, the file's `default` is, or with `every_task` every task,
    internal ones too (what --list shows). `render` turns the selected tasks'
    templates into text (`expand.render_tasks`); `force` runs the tasks that are up
    to date too."""
    done = frozenset()
    named = True
    if rerun is not None:
        if targets or tags:
            raise UsageError("--rerun-failed chooses the tasks itself: name no task and no --tag with it")
        targets, done, named = rerun.failed, rerun.done, False
    elif not targets and not tags and every_task:
        targets, named = tuple(t.name for t in taskfile.tasks), False
    elif not targets and not tags:
        targets, named = taskfile.default, False  # the file may name an internal task as its default
    selected = select_tasks(taskfile, targets, tags=tags, skip=skip, done=done, named=named)
    if done:  # the needs met in the earlier run are not part of this one: every need of a plan is planned
        names = {t.name for t in selected}
        selected = [replace(t, needs=tuple(n for n in t.needs if n in names)) for t in selected]
    if render is not None:
        selected = render(selected)
    default_timeout_s = timeout_s if timeout_s is not None else taskfile.timeout_s
    return Plan(
        taskfile=taskfile,
        tasks=tuple(plan_task(taskfile, t, default_timeout_s) for t in selected),
        pool=pool or taskfile.pool or default_pool(),
        fail_fast=taskfile.fail_fast if fail_fast is None else fail_fast,
        targets=tuple(dict.fromkeys(_own_name(taskfile, t) for t in targets)),
        order=tuple(readiness_order(selected)),
        rerun_of=rerun.of if rerun is not None else None,
        force=force,
    )
