"""`--rerun-failed SUMMARY`: from an earlier run's summary, what to run again.

The earlier run's tasks that did not succeed (failed, timeout, skipped,
cancelled) are the roots; `plan.select_tasks` adds what they need, except the
tasks that succeeded then. The summary holds the task file's sha256: a file
that changed since is refused unless forced, because the earlier outcome may
no longer say anything about it.
"""

from __future__ import annotations

import json

from .errors import UsageError
from .model import RerunOf, TaskFile
from .plan import Rerun


def _refuse(path: str, why: str) -> UsageError:
    return UsageError(f"--rerun-failed: {path} {why} (name the JSON summary an earlier run wrote, e.g. "
                      "taskrun-summary.json)")


def read_rerun(summary_path: str, taskfile: TaskFile, *, force: bool = False) -> Rerun:
    """What to rerun of the run recorded in `summary_path`, for `taskfile` as it is now."""
    try:
        with open(summary_path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise _refuse(summary_path, "does not exist") from None
    except IsADirectoryError:
        raise _refuse(summary_path, "is a directory") from None
    except OSError as exc:
        raise _refuse(summary_path, f"cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _refuse(summary_path, f"is not JSON ({exc})") from None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    if (not isinstance(tasks, list) or data.get("version") != 1 or not isinstance(data.get("run_id"), str)
            or not isinstance(data.get("file_sha256"), str)
            or not all(isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("status"), str)
                       for t in tasks)):
        raise _refuse(summary_path, "is not a taskrun summary (version 1 with run_id, file_sha256 and tasks)")
    run_id = data["run_id"]
    if data["file_sha256"] != taskfile.sha256 and not force:
        raise UsageError(
            f"{taskfile.path} changed since run {run_id} (its sha256 differs from the one in {summary_path}): "
            "run the file whole, or add --force to rerun what did not succeed then anyway")
    status = {t["name"]: t["status"] for t in tasks}
    failed = tuple(t.name for t in taskfile.tasks if status.get(t.name, "success") != "success")
    if data["file_sha256"] == taskfile.sha256:
        # A task the summary does not list was not needed by that run, or succeeded in
        # the run that one reran (a rerun's summary lists only what it ran): done.
        done = frozenset(t.name for t in taskfile.tasks if t.name not in failed)
    else:  # forced over a changed file: a task new to the file has never succeeded
        done = frozenset(t.name for t in taskfile.tasks if status.get(t.name) == "success")
    return Rerun(of=RerunOf(run_id=run_id, summary=summary_path, file_sha256=data["file_sha256"]),
                 failed=failed, done=done)
