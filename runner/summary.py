"""The run's record: results -> the summary JSON (schemas/summary.schema.json); `target` writes it."""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass

from . import __version__
from .errors import EXIT_OK, EXIT_TASKS_FAILED
from .model import AttemptResult, Plan, StepResult, TaskResult, status_counts
from .proc import last_lines

TAIL_LINES = 50
TAIL_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What the summary says about the run as a whole."""

    run_id: str
    argv: tuple[str, ...]
    started_at: float
    finished_at: float
    log_dir: str | None
    status: str  # success | failed | cancelled
    exit_code: int
    signal: str | None = None  # the signal that stopped the run, if any
    reason: str | None = None


def run_status(results: list[TaskResult], stopped_by_signal: bool) -> tuple[str, int]:
    """The run's status and exit code (signals map to 128 + number in the CLI)."""
    if stopped_by_signal:
        return "cancelled", EXIT_TASKS_FAILED
    if all(results):
        return "success", EXIT_OK
    return "failed", EXIT_TASKS_FAILED


_SECOND: list = [None, ""]  # the last whole second formatted, and its text


def iso(ts: float | None) -> str | None:
    """UTC with milliseconds, `2026-11-26T21:47:38.120Z`. The date and time of a
    second are formatted once: a run formats several stamps per task."""
    if ts is None:
        return None
    whole = int(ts)
    if whole != _SECOND[0]:
        _SECOND[0], _SECOND[1] = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_SECOND[1]}.{int((ts - whole) * 1000):03d}Z"


def read_tail(path: str | None, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> str | None:
    """The last `lines` lines of a log, at most `max_bytes`, decoded with replacement
    characters; "" when the attempt left no file (it could not start), None for no attempt."""
    if path is None:
        return None
    return (last_lines(path, lines, max_bytes) or b"").decode("utf-8", errors="replace")


def step_record(r: StepResult) -> dict:
    return {
        "index": r.index,
        "name": r.name,
        "cmd": r.cmd,
        "allow_failure": r.allow_failure,
        "exit_code": r.exit_code,
        "signal": r.signal,
        "pid": r.pid,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration_s": round(r.duration_s, 3),
        "reason": r.reason,
    }


def with_steps(record: dict, a: AttemptResult) -> dict:
    """An attempt's record, with its steps (a task with steps only: other records keep their shape)."""
    record["steps"] = [step_record(r) for r in a.steps]
    record["failed_step"] = a.failed_step
    return record


def attempt_record(a: AttemptResult, stdout_log: str | None, stderr_log: str | None) -> dict:
    return {
        "exit_code": a.exit_code,
        "signal": a.signal,
        "timed_out": a.timed_out,
        "cancelled": a.cancelled,
        "pid": a.pid,
        "started_at": iso(a.started_at),
        "finished_at": iso(a.finished_at),
        "duration_s": round(a.duration_s, 3),
        "reason": a.reason,
        "stray_killed": a.stray_killed,
        "stdout_log": stdout_log,
        "stderr_log": stderr_log,
        "worker": a.worker,
        "host": a.host,
        "slot": a.slot,
    }


def task_record(plan_task, result: TaskResult, tail_lines: int) -> dict:
    spec = plan_task.spec
    attempts = [attempt_record(a, *logs) for a, logs in zip(result.attempts, result.logs)]
    if spec.steps:
        attempts = [with_steps(record, a) for record, a in zip(attempts, result.attempts)]
    last = attempts[-1] if attempts else {}
    record = {
        "name": spec.name,
        "description": spec.description,
        "cmd": spec.cmd if isinstance(spec.cmd, str) or spec.cmd is None else list(spec.cmd),
        "status": result.status.value,
        **{key: last.get(key) for key in ("exit_code", "signal", "pid", "started_at", "finished_at", "duration_s")},
        "allow_failure": spec.allow_failure,
        "needs": list(spec.needs),
        "tags": list(spec.tags),
        "when": spec.when,
        "resources": dict(spec.resources),
        "timeout_s": plan_task.timeout_s,
        "reason": result.reason,
        "by_condition": result.by_condition,
        "matrix": dict(spec.matrix) or None,
        "stray_killed": sum(a.stray_killed for a in result.attempts),
        "stdout_tail": read_tail(result.stdout_path, tail_lines),
        "stderr_tail": read_tail(result.stderr_path, tail_lines),
        "stdout_log": result.stdout_path,
        "stderr_log": result.stderr_path,
        "worker": last.get("worker"),
        "host": last.get("host"),
        "attempts": attempts,
    }
    if spec.steps:
        record["steps"] = [{"name": s.name, "cmd": s.cmd if isinstance(s.cmd, str) else list(s.cmd),
                            "allow_failure": s.allow_failure, "task": s.task} for s in spec.steps]
        failing = result.last.failing_step if result.last is not None else None
        record["failed_step"] = None if failing is None else {
            "index": failing.index, "name": failing.name, "cmd": failing.cmd}
    return record


def build_summary(plan: Plan, results: list[TaskResult], info: RunInfo, *,
                  tail_lines: int = TAIL_LINES) -> dict:
    by_name = {r.name: r for r in results}
    return {
        "version": 1,
        "taskrun_version": __version__,
        "run_id": info.run_id,
        "file": plan.taskfile.path,
        "file_sha256": plan.taskfile.sha256,
        "status": info.status,
        "exit_code": info.exit_code,
        "signal": info.signal,
        "reason": info.reason,
        "pool": plan.pool,
        "fail_fast": plan.fail_fast,
        "targets": list(plan.targets),
        "rerun_of": _rerun_of(plan),
        "host": os.uname().nodename,
        "user": _user(),
        "command": list(info.argv),
        "cwd": os.getcwd(),
        "log_dir": info.log_dir,
        "started_at": iso(info.started_at),
        "finished_at": iso(info.finished_at),
        "duration_s": round(info.finished_at - info.started_at, 3),
        "counts": status_counts(results),
        "tasks": [task_record(t, by_name[t.name], tail_lines) for t in plan.tasks],
    }


def _rerun_of(plan: Plan) -> dict | None:
    of = plan.rerun_of
    return None if of is None else {"run_id": of.run_id, "summary": of.summary, "file_sha256": of.file_sha256}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def dump_summary(summary: dict) -> str:
    """Readable and fast: top-level keys one per line, each task (and counts) on
    one line. An `indent` makes json fall back to its pure-Python encoder, ten
    times slower, which shows at thousands of tasks."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in summary.items() if k != "tasks"]
    tasks = ",\n".join(f"    {json.dumps(t, ensure_ascii=False)}" for t in summary.get("tasks", []))
    lines.append(f'  "tasks": [\n{tasks}\n  ]' if tasks else '  "tasks": []')
    return "{\n" + ",\n".join(lines) + "\n}\n"
