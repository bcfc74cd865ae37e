"""`--rerun-failed SUMMARY|RUN_ID`: from an earlier run's summary, what to run again.

The earlier run is named by its summary's path, or by its run id (its summary
is then the one in its run folder, `record.RUN_SUMMARY`). Its tasks that did
not succeed (failed, timeout, skipped because a need failed, cancelled; not
those up to date or skipped by a false condition) are the roots;
`plan.select_tasks` adds what they need, except the tasks that succeeded then.
The summary holds the task file's real path and sha256: a summary of another
file, or of this file before it changed, is refused unless forced, because the
earlier outcome may say nothing about the file as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UsageError
from .model import RerunOf, TaskFile
from .plan import Rerun
from .record import RUN_SUMMARY, NotASummary, file_of, read_json


def _refuse(path: str, why: str) -> UsageError:
    return UsageError(f"--rerun-failed: {path} {why} (name the JSON summary an earlier run wrote, e.g. "
                      "taskrun-summary.json, or its run id)")


def summary_of(value: str, runs: Path) -> str:
    """The summary path `value` names: itself, or, for a run id, the summary in that run's folder."""
    if os.path.lexists(value) or "/" in value or value.startswith("."):
        return value
    folder = runs / value
    if not folder.is_dir():
        return value  # neither a file nor a run: refused as a missing file
    if not (folder / RUN_SUMMARY).is_file():
        raise UsageError(f"--rerun-failed: run {value} left no summary in {folder} (it is still running, or "
                         f"was killed: taskrun --recover {value} stops what it left)")
    return str(folder / RUN_SUMMARY)


def read_rerun(value: str, taskfile: TaskFile, *, runs: Path, force: bool = False) -> Rerun:
    """What to rerun of the run `value` names (a summary path or a run id under `runs`),
    for `taskfile` as it is now."""
    summary_path = summary_of(value, runs)
    try:
        data = read_json(summary_path)
    except NotASummary as exc:
        raise _refuse(summary_path, str(exc)) from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if (not isinstance(tasks, list) or data.get("version") != 1 or not isinstance(data.get("run_id"), str)
            or not isinstance(data.get("file_sha256"), str)
            or not all(isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("status"), str)
                       for t in tasks)):
        raise _refuse(summary_path, "is not a taskrun summary (version 1 with run_id, file_sha256 and tasks)")
    run_id = data["run_id"]
    recorded = file_of(data)
    if recorded != os.path.realpath(taskfile.path) and not force:
        raise UsageError(
            f"--rerun-failed: {summary_path} records run {run_id} of another task file ({data.get('file')}), "
            f"not {taskfile.path}: name a summary of {taskfile.path}, or add --force to rerun what did not "
            "succeed then anyway")
    if data["file_sha256"] != taskfile.sha256 and not force:
        raise UsageError(
            f"{taskfile.path} changed since run {run_id} (its sha256 differs from the one in {summary_path}): "
            "run the file whole, or add --force to rerun what did not succeed then anyway")
    # Up to date, or skipped by a false condition: nothing failed there.
    status = {t["name"]: "success" if t["status"] == "up_to_date" or t.get("by_condition") is True else t["status"]
              for t in tasks}
    failed = tuple(t.name for t in taskfile.tasks if status.get(t.name, "success") != "success")
    if data["file_sha256"] == taskfile.sha256:
        # A task the summary does not list was not needed by that run, or succeeded in
        # the run that one reran (a rerun's summary lists only what it ran): done.
        done = frozenset(t.name for t in taskfile.tasks if t.name not in failed)
    else:  # forced over a changed file: a task new to the file has never succeeded
        done = frozenset(t.name for t in taskfile.tasks if status.get(t.name) == "success")
    return Rerun(of=RerunOf(run_id=run_id, summary=summary_path, file_sha256=data["file_sha256"]),
                 failed=failed, done=done)
