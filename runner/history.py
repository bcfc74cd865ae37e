"""Plans that use history: how long each task took last time orders what starts first.

Without history, ready tasks start in file order. With durations from earlier
runs of the same task file (`record`: the summaries in the run folders, or one
named with --history), a ready task's priority is the longest remaining path
through the dependency graph starting at it (its own estimated duration plus
the longest chain of tasks that wait for it): the classic
critical-path list scheduling, which keeps the long chains and the slow shards
from being started last. Tasks with no recorded duration count as the median of
those that have one. Ties keep file order.

Pure functions over a `Plan` and a mapping of durations (read from the
summaries first); no clock, no process.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path

from .model import Plan, TaskFile
from .record import NotASummary, earlier_runs, read_json


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    durations: dict[str, float]  # estimated seconds of every task of the plan
    priority: dict[str, float]  # longest remaining path from each task, seconds
    critical_path: tuple[str, ...]
    critical_s: float
    makespan_s: float | None  # simulated on the plan's pool, in priority order; None when not asked
    known: int  # how many tasks had a recorded duration


def read_durations(summary_path: str) -> dict[str, float] | None:
    """Durations of the tasks that ran in the summary at `summary_path` (`--history`);
    None when it is missing, not a regular file, too big or not a summary."""
    try:
        return durations_of(read_json(summary_path))
    except NotASummary:
        return None


def earlier_durations(runs: Path, taskfile: TaskFile, names: set[str]) -> dict[str, float] | None:
    """The default history: the duration of each task of `names` (those planned) in the
    latest earlier run of this task file (same real path and content) that ran it, from
    the run folders under `runs`; older runs are read only for tasks the newer ones did not
    run. None when there is none."""
    found: dict[str, float] = {}
    for summary in earlier_runs(runs, taskfile, wanted=lambda: names - found.keys()):
        for name, seconds in (durations_of(summary) or {}).items():
            found.setdefault(name, seconds)
        if names <= found.keys():
            break
    return found or None


def durations_of(data) -> dict[str, float] | None:
    try:
        return {t["name"]: float(t["duration_s"]) for t in data["tasks"]
                if t.get("duration_s") is not None and t.get("status") in ("success", "failed", "timeout")}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def estimate(plan: Plan, recorded: dict[str, float], *, makespan: bool = True) -> Estimate:
    """The durations and priorities of the plan's tasks; with `makespan`, the run simulated
    too (what the dry run shows; a run needs only the priorities, and simulating 20,000
    tasks takes 0.2 s)."""
    names = [t.name for t in plan.tasks]
    known = {n: recorded[n] for n in names if n in recorded}
    fallback = _median(list(known.values())) if known else 1.0
    durations = {n: known.get(n, fallback) for n in names}
    dependents: dict[str, list[str]] = {n: [] for n in names}
    for t in plan.tasks:
        for need in t.spec.needs:
            dependents[need].append(t.name)
    # Longest remaining path, computed in reverse readiness order (a topological order).
    priority: dict[str, float] = {}
    nxt: dict[str, str | None] = {}
    for name in reversed(plan.order):
        best = max(dependents[name], key=lambda d: priority[d], default=None)
        priority[name] = durations[name] + (priority[best] if best else 0.0)
        nxt[name] = best
    index = {n: i for i, n in enumerate(names)}
    start = max(names, key=lambda n: (priority[n], -index[n]), default=None)
    path = []
    while start is not None:
        path.append(start)
        start = nxt[start]
    return Estimate(
        durations=durations, priority=priority, critical_path=tuple(path),
        critical_s=priority[path[0]] if path else 0.0,
        makespan_s=simulate(plan, durations, priority) if makespan else None, known=len(known),
    )


def _median(values: list[float]) -> float:
    values.sort()
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def simulate(plan: Plan, durations: dict[str, float], priority: dict[str, float] | None = None) -> float:
    """Makespan of the plan on its pool if every task took its estimated duration, a task
    starting only while its declared resources fit (as the scheduler does)."""
    index = {t.name: i for i, t in enumerate(plan.tasks)}
    prio = priority or {}
    waiting = {t.name: len(t.spec.needs) for t in plan.tasks}
    dependents: dict[str, list[str]] = {t.name: [] for t in plan.tasks}
    for t in plan.tasks:
        for need in t.spec.needs:
            dependents[need].append(t.name)
    ready = [(-prio.get(n, 0.0), index[n], n) for n, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    capacity = dict(plan.taskfile.resources)
    held = dict.fromkeys(capacity, 0.0)
    units = {t.name: [(k, n) for k, n in t.spec.resources if k in capacity] for t in plan.tasks}
    now = 0.0
    while ready or running:
        held_back = []  # ready, but their resources are held
        while ready and len(running) < plan.pool:
            entry = heapq.heappop(ready)
            name = entry[2]
            if any(held[k] + n > capacity[k] + 1e-9 for k, n in units[name]):
                held_back.append(entry)
                continue
            for k, n in units[name]:
                held[k] += n
            heapq.heappush(running, (now + durations[name], name))
        for entry in held_back:
            heapq.heappush(ready, entry)
        now, name = heapq.heappop(running)
        for k, n in units[name]:
            held[k] -= n
        for d in dependents[name]:
            waiting[d] -= 1
            if waiting[d] == 0:
                heapq.heappush(ready, (-prio.get(d, 0.0), index[d], d))
    return now
