"""From a validated task file and what the command line asks, the plan to run.

Pure: no process, no clock. The plan holds the selected tasks (the named ones
and everything they need, or the whole file) in file order, each with the
file's defaults and the command line's overrides applied.
"""

from __future__ import annotations

import difflib
import heapq
import os

from .errors import UsageError
from .model import DEFAULT_KILL_GRACE_S, Plan, PlannedTask, TaskFile, TaskSpec


def default_pool() -> int:
    """The CPUs this process may use (affinity and cgroup-pinned sets included)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def select_tasks(taskfile: TaskFile, targets: tuple[str, ...]) -> list[TaskSpec]:
    """The named tasks plus everything they need, in file order; all tasks if none named."""
    by_name = {t.name: t for t in taskfile.tasks}
    if not targets:
        return list(taskfile.tasks)
    unknown = [t for t in targets if t not in by_name]
    if unknown:
        raise UsageError(
            "; ".join(f"unknown task '{t}'{did_you_mean(t, by_name)}" for t in unknown)
            + f" in {taskfile.path}"
        )
    wanted: set[str] = set()
    stack = list(targets)
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(by_name[name].needs)
    return [t for t in taskfile.tasks if t.name in wanted]


def plan_task(taskfile: TaskFile, spec: TaskSpec, default_timeout_s: float | None) -> PlannedTask:
    argv = (taskfile.shell, "-c", spec.cmd) if isinstance(spec.cmd, str) else spec.cmd
    env = dict(taskfile.env)
    env.update(spec.env)
    grace = spec.kill_grace_s if spec.kill_grace_s is not None else taskfile.kill_grace_s
    return PlannedTask(
        spec=spec,
        argv=tuple(argv),
        env=tuple(env.items()),
        cwd=spec.cwd or taskfile.folder,
        timeout_s=spec.timeout_s if spec.timeout_s is not None else default_timeout_s,
        kill_grace_s=DEFAULT_KILL_GRACE_S if grace is None else grace,
    )


def readiness_order(tasks: list[TaskSpec], priority: dict[str, float] | None = None) -> list[str]:
    """Kahn's order, highest priority first, file order breaking ties: how an
    unbounded pool starts them."""
    prio = priority or {}
    index = {t.name: i for i, t in enumerate(tasks)}
    waiting = {t.name: len(t.needs) for t in tasks}
    dependents: dict[str, list[str]] = {t.name: [] for t in tasks}
    for t in tasks:
        for need in t.needs:
            dependents[need].append(t.name)
    ready = [(-prio.get(n, 0.0), index[n]) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = tasks[heapq.heappop(ready)[1]].name
        order.append(name)
        for d in dependents[name]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (-prio.get(d, 0.0), index[d]))
    return order


def make_plan(
    taskfile: TaskFile,
    targets: tuple[str, ...] = (),
    *,
    pool: int | None = None,
    timeout_s: float | None = None,
    fail_fast: bool | None = None,
) -> Plan:
    """Apply selection and overrides: `pool`, `timeout_s` (the default timeout) and
    `fail_fast` from the command line win over the file when given."""
    selected = select_tasks(taskfile, targets)
    default_timeout_s = timeout_s if timeout_s is not None else taskfile.timeout_s
    return Plan(
        taskfile=taskfile,
        tasks=tuple(plan_task(taskfile, t, default_timeout_s) for t in selected),
        pool=pool or taskfile.pool or default_pool(),
        fail_fast=taskfile.fail_fast if fail_fast is None else fail_fast,
        targets=tuple(targets),
        order=tuple(readiness_order(selected)),
    )
