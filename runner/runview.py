"""A run as every drawing of it sees it, built from a summary dict alone.

`build_view(summary)` reads only the summary (schemas/summary.schema.json), so
it draws the summary of a run just ended and one kept from long ago alike. The
time axis is seconds from the run's start (`started_at`): an attempt is a `Bar`
from its `started_at` to its `finished_at` (both to the millisecond, so bars
that hand a slot over never overlap) in its pool `slot`, and says the exact
`duration_s` the summary records. A
summary written before attempts recorded their slot gets slots assigned
greedily: attempts in order of start, each in the lowest slot free by then
(`slots_assigned` says so); that is what the scheduler does, so the tracks are
the ones the run used unless two attempts ended and started within the same
millisecond. An attempt with no `started_at` has no place on the axis and no
bar.

Around the bars: the waits between a task's attempts (`Gap`: the retry delay,
and any wait for a free slot after it), the tasks that did not run (`NotRun`:
up to date, skipped, or cancelled before starting), the critical path (the
chain along `needs` that ended last: from the task that ended last, back
through the need that ended last, while a need ran; its length is from the
chain's first start to its last end), the number of attempts running over
time (`concurrency`, a step function) and the tasks in the order of a table
(failures first, then the longest). Plain functions and frozen dataclasses,
standard library only, linear or n log n in the number of attempts.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime

# Statuses that are failures of the task (allowed or not): a table lists them first.
FAILURES = ("failed", "timeout")


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """The run as a whole."""

    file: str
    status: str  # success | failed | cancelled
    exit_code: int
    duration_s: float
    pool: int
    host: str | None
    taskrun_version: str | None
    run_id: str
    started_at: str  # UTC, ISO 8601 with milliseconds, as in the summary
    reason: str | None = None
    signal: str | None = None
    counts: tuple[tuple[str, int], ...] = ()  # (status, tasks), in the summary's order


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """One attempt on the time axis."""

    task: str
    attempt: int  # 1-based
    attempts: int  # how many attempts its task made
    slot: int
    start_s: float  # seconds from the run's start, from the attempt's stamps (to the millisecond)
    end_s: float
    duration_s: float  # the summary's own (to the microsecond): what the drawings say it took
    outcome: str  # success | failed | timeout | cancelled
    exit_code: int | None
    signal: str | None
    reason: str | None
    stderr_tail: str | None  # the task's, on its last attempt only (the summary keeps no other)
    stderr_log: str | None
    worker: str | None
    host: str | None

    @property
    def last(self) -> bool:
        return self.attempt == self.attempts


@dataclass(frozen=True, slots=True, kw_only=True)
class Gap:
    """A task waiting between two of its attempts: after `attempt` ended, until the next started."""

    task: str
    attempt: int  # the attempt that ended (the next one is attempt + 1)
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class NotRun:
    """A task with no attempt: up to date, skipped, or cancelled before it started."""

    task: str
    status: str
    reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRow:
    """One task, for a table."""

    name: str
    status: str
    attempts: int
    exit_code: int | None
    signal: str | None
    reason: str | None
    allow_failure: bool
    needs: tuple[str, ...]
    start_s: float | None  # its first attempt's start; None when it did not run
    end_s: float | None  # its last attempt's end
    duration_s: float  # time spent running: its attempts' durations added up (0 when it did not run)
    critical: bool  # on the critical path

    @property
    def failure(self) -> bool:
        return self.status in FAILURES


@dataclass(frozen=True, slots=True, kw_only=True)
class CriticalPath:
    """The chain of needs that ended last, first task first."""

    tasks: tuple[str, ...] = ()
    length_s: float = 0.0  # from the first task's first start to the last task's end
    start_s: float = 0.0
    end_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    header: Header
    bars: tuple[Bar, ...]  # by start, then slot
    gaps: tuple[Gap, ...]
    not_run: tuple[NotRun, ...]  # in file order
    critical: CriticalPath
    concurrency: tuple[tuple[float, int], ...]  # (seconds, attempts running from then on), from (0, 0)
    tasks: tuple[TaskRow, ...]  # in file order
    table: tuple[TaskRow, ...]  # failures first, then by duration (longest first), then file order
    slots: int  # tracks to draw: the pool, or more if an attempt's slot says so
    span_s: float  # the axis' length: the run's duration, or the last end if later
    slots_assigned: bool  # the summary had no slots: assigned greedily by start time


def seconds(stamp: str) -> float:
    """An ISO 8601 UTC stamp of the summary (`2026-11-26T21:47:38.120Z`) as Unix seconds."""
    return datetime.fromisoformat(stamp).timestamp()


def attempt_outcome(a: dict) -> str:
    if a.get("cancelled"):
        return "cancelled"
    if a.get("timed_out"):
        return "timeout"
    return "success" if a.get("exit_code") == 0 else "failed"


_LAST: tuple[dict, RunView] | None = None  # the last summary drawn, and its view


def build_view(summary: dict) -> RunView:
    """The run of a summary dict (of this version or an earlier one) as the drawings see it.
    The view of the last summary asked for is kept: the writers of one run (the page, the
    trace, the text timeline, GitHub's step summary) get the same dict, and share one view."""
    global _LAST
    if _LAST is not None and _LAST[0] is summary:
        return _LAST[1]
    view = _build_view(summary)
    _LAST = (summary, view)
    return view


def _build_view(summary: dict) -> RunView:
    tasks = summary.get("tasks", [])
    spans: list[tuple] = []  # start, span (then end), duration, task, attempt, number, of
    for t in tasks:
        attempts = t.get("attempts") or []
        for n, a in enumerate(attempts, start=1):
            if a.get("started_at") is None:
                continue
            start = seconds(a["started_at"])
            # The end from its own stamp, as the start: both cut to the millisecond alike, so an
            # attempt that took over a slot never overlaps the one that left it (start + an exact
            # duration could end up to a millisecond after the next start).
            end = seconds(a["finished_at"]) if a.get("finished_at") else start + (a.get("duration_s") or 0.0)
            spans.append((start, max(0.0, end - start), a.get("duration_s") or 0.0, t, a, n, len(attempts)))
    # The run's start, or its first attempt's in a summary (made by hand) without one
    origin = seconds(summary["started_at"]) if summary.get("started_at") else min((s[0] for s in spans), default=0.0)
    spans = [(start - origin, start - origin + duration, *rest) for start, duration, *rest in spans]
    spans.sort(key=lambda s: s[0])
    slots = [s[4].get("slot") for s in spans]
    assigned = any(slot is None for slot in slots)
    if assigned:
        slots = assign_slots([(s[0], s[1]) for s in spans])
    bars = [Bar(task=t["name"], attempt=n, attempts=of, slot=slot, start_s=start, end_s=end, duration_s=took,
                outcome=attempt_outcome(a), exit_code=a.get("exit_code"), signal=a.get("signal"),
                reason=a.get("reason"), stderr_tail=t.get("stderr_tail") if n == of else None,
                stderr_log=a.get("stderr_log"), worker=a.get("worker"), host=a.get("host"))
            for (start, end, took, t, a, n, of), slot in zip(spans, slots)]
    bars.sort(key=lambda b: (b.start_s, b.slot))
    by_task: dict[str, list[Bar]] = {}
    for b in bars:
        by_task.setdefault(b.task, []).append(b)
    for own in by_task.values():
        own.sort(key=lambda b: b.attempt)
    critical = critical_path(tasks, by_task)
    on_path = set(critical.tasks)
    rows = tuple(task_row(t, by_task.get(t["name"], ()), t["name"] in on_path) for t in tasks)
    span = max([summary.get("duration_s") or 0.0, *(b.end_s for b in bars)])
    return RunView(
        header=header(summary),
        bars=tuple(bars),
        gaps=tuple(Gap(task=a.task, attempt=a.attempt, start_s=a.end_s, end_s=b.start_s)
                   for own in by_task.values() for a, b in zip(own, own[1:])),
        not_run=tuple(NotRun(task=t["name"], status=t["status"], reason=t.get("reason"))
                      for t in tasks if t["name"] not in by_task),
        critical=critical,
        concurrency=concurrency(bars),
        tasks=rows,
        table=tuple(sorted(rows, key=lambda r: (not r.failure, -r.duration_s))),  # stable: file order last
        slots=max([summary.get("pool") or 1, *(b.slot + 1 for b in bars)]),
        span_s=span,
        slots_assigned=assigned and bool(bars),
    )


def header(summary: dict) -> Header:
    return Header(
        file=summary.get("file", ""), status=summary.get("status", ""), exit_code=summary.get("exit_code", 0),
        duration_s=summary.get("duration_s") or 0.0, pool=summary.get("pool") or 1, host=summary.get("host"),
        taskrun_version=summary.get("taskrun_version"), run_id=summary.get("run_id", ""),
        started_at=summary.get("started_at") or "", reason=summary.get("reason"), signal=summary.get("signal"),
        counts=tuple((summary.get("counts") or {}).items()),
    )


def assign_slots(spans: list[tuple[float, float]]) -> list[int]:
    """Slots for (start, end) spans sorted by start: each takes the lowest slot free at its start
    (one that ended at that very moment is free); a new slot when none is."""
    free: list[int] = []
    busy: list[tuple[float, int]] = []  # (end, slot)
    out = []
    for start, end in spans:
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        slot = heapq.heappop(free) if free else len(busy)
        heapq.heappush(busy, (end, slot))
        out.append(slot)
    return out


def critical_path(tasks: list[dict], by_task: dict[str, list[Bar]]) -> CriticalPath:
    """From the task that ended last, back through the need that ended last, while a need ran.
    Ties go to the task first in the file."""
    ends = {name: own[-1].end_s for name, own in by_task.items()}
    if not ends:
        return CriticalPath()
    needs = {t["name"]: t.get("needs") or () for t in tasks}
    order = {t["name"]: i for i, t in enumerate(tasks)}

    def latest(names):
        ran = [n for n in names if n in ends]
        return max(ran, key=lambda n: (ends[n], -order.get(n, 0))) if ran else None

    chain, seen = [], set()
    name = latest(by_task)
    while name is not None and name not in seen:  # `seen`: a summary made by hand could hold a cycle
        seen.add(name)
        chain.append(name)
        name = latest(needs.get(name, ()))
    chain.reverse()
    start, end = by_task[chain[0]][0].start_s, ends[chain[-1]]
    return CriticalPath(tasks=tuple(chain), length_s=end - start, start_s=start, end_s=end)


def task_row(t: dict, own, critical: bool) -> TaskRow:
    return TaskRow(
        name=t["name"], status=t["status"], attempts=len(t.get("attempts") or ()), exit_code=t.get("exit_code"),
        signal=t.get("signal"), reason=t.get("reason"), allow_failure=bool(t.get("allow_failure")),
        needs=tuple(t.get("needs") or ()), start_s=own[0].start_s if own else None,
        end_s=own[-1].end_s if own else None, duration_s=sum(b.duration_s for b in own), critical=critical,
    )


def concurrency(bars) -> tuple[tuple[float, int], ...]:
    """(time, attempts running from then on) at each change, from (0.0, 0); an end and a start
    at the same moment count as a hand-over, not as one more."""
    changes = sorted([(b.start_s, 1) for b in bars] + [(b.end_s, -1) for b in bars])
    steps = [(0.0, 0)]
    running = 0
    for i, (at, delta) in enumerate(changes):
        running += delta
        if i + 1 < len(changes) and changes[i + 1][0] == at:
            continue  # every change of this moment first
        if at == steps[-1][0]:
            steps[-1] = (at, running)
        elif running != steps[-1][1]:
            steps.append((at, running))
    return tuple(steps)
