"""A run as Chrome trace event JSON (`--trace PATH`), for Perfetto and chrome://tracing.

The JSON object form of the Trace Event Format: `traceEvents`, `displayTimeUnit`
and `otherData` (the run's id, file, status, critical path). Times are
microseconds from the run's start. The run is one process (pid 1) named after
the task file; each pool slot is one thread (`tid` = slot, named "slot N"), so
an attempt is a complete event (`X`) on the track of the slot it ran in, its
task as the name, `cat` its outcome (and `critical_path` on that chain), and in
`args` the task, attempt, outcome, exit code or signal, reason and worker. A
wait before a retry holds no slot: it is an `X` event on a track of its own
after the slots ("retry wait N", as few as overlapping waits need). A counter
(`C`) follows how many attempts run. Tasks that did not run have no time, so
no event: `otherData` counts them.
"""

from __future__ import annotations

import json
import os

from .runview import RunView, assign_slots, build_view

PID = 1
EXAMPLE = "taskrun-trace.json"  # the name a refused folder is told to hold
CATEGORY_WAIT = "retry_wait"


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def trace_events(view: RunView) -> dict:
    """The trace as a JSON-ready dict."""
    h = view.header
    critical = set(view.critical.tasks)
    events: list[dict] = [
        {"name": "process_name", "ph": "M", "ts": 0, "pid": PID, "tid": 0,
         "args": {"name": f"taskrun {h.file} (run {h.run_id})"}},
    ]
    for slot in range(view.slots):
        events.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": PID, "tid": slot,
                       "args": {"name": f"slot {slot}"}})
        events.append({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": PID, "tid": slot,
                       "args": {"sort_index": slot}})
    wait_tracks = assign_slots([(g.start_s, g.end_s) for g in sorted(view.gaps, key=lambda g: g.start_s)])
    for track in range(max(wait_tracks, default=-1) + 1):
        tid = view.slots + track
        events.append({"name": "thread_name", "ph": "M", "ts": 0, "pid": PID, "tid": tid,
                       "args": {"name": f"retry wait {track}"}})
        events.append({"name": "thread_sort_index", "ph": "M", "ts": 0, "pid": PID, "tid": tid,
                       "args": {"sort_index": tid}})
    for b in view.bars:
        args = {"task": b.task, "attempt": b.attempt, "attempts": b.attempts, "outcome": b.outcome,
                "exit_code": b.exit_code, "signal": b.signal, "slot": b.slot}
        if b.reason:
            args["reason"] = b.reason
        if b.worker:
            args.update(worker=b.worker, host=b.host)
        if b.stderr_tail:
            args["stderr_tail"] = b.stderr_tail
        events.append({"name": b.task, "cat": b.outcome + (",critical_path" if b.task in critical else ""),
                       "ph": "X", "ts": _us(b.start_s), "dur": max(0, _us(b.end_s) - _us(b.start_s)),
                       "pid": PID, "tid": b.slot, "args": args})
    for g, track in zip(sorted(view.gaps, key=lambda g: g.start_s), wait_tracks):
        events.append({"name": f"{g.task} (waiting to retry)", "cat": CATEGORY_WAIT, "ph": "X",
                       "ts": _us(g.start_s), "dur": max(0, _us(g.end_s) - _us(g.start_s)),
                       "pid": PID, "tid": view.slots + track,
                       "args": {"task": g.task, "after_attempt": g.attempt, "next_attempt": g.attempt + 1}})
    for at, running in view.concurrency:
        events.append({"name": "running", "ph": "C", "ts": _us(at), "pid": PID, "tid": 0,
                       "args": {"attempts": running}})
    other = {"taskrun_version": h.taskrun_version, "run_id": h.run_id, "file": h.file, "status": h.status,
             "exit_code": h.exit_code, "pool": h.pool, "host": h.host, "started_at": h.started_at,
             "critical_path": list(view.critical.tasks), "critical_path_s": round(view.critical.length_s, 3),
             "not_run": {n.task: n.status for n in view.not_run}}
    return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": other}


def dump_trace(trace: dict) -> str:
    """One event per line: readable, and json's fast encoder (an `indent` is ten times slower)."""
    head = {k: v for k, v in trace.items() if k != "traceEvents"}
    events = ",\n".join(json.dumps(e, ensure_ascii=False) for e in trace["traceEvents"])
    rest = "".join(f",\n{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items())
    return f'{{"traceEvents": [\n{events}\n]{rest}\n}}\n'


def write_trace(view_or_summary: RunView | dict, target) -> None:
    """Write the trace of a run (its `RunView`, or its summary dict) to `target`: a `target.Target`
    opened before the run, or a path, opened now with the same rules as `-o` (refusals exit 2)."""
    from .target import open_target

    view = view_or_summary if isinstance(view_or_summary, RunView) else build_view(view_or_summary)
    if isinstance(target, (str, os.PathLike)):
        target = open_target(os.fspath(target), "--trace", EXAMPLE)
    target.write(dump_trace(trace_events(view)))
