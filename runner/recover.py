"""`taskrun --recover RUN`: find and stop what a dead runner left running.

A runner killed by SIGKILL cannot stop its commands. They live on, adopted by
init (or the nearest subreaper), still in their own sessions. Every command
carries `TASKRUN_RUN_ID` in its environment, and so does everything it started
(unless it cleared its environment on purpose), so a scan of /proc/*/environ
finds them all, wherever they were reparented and whatever group they moved
to. They get the same ladder as a timeout: SIGTERM (and SIGCONT), the run's
grace period (the longest `kill_grace` of the tasks that had not ended, as the
event log recorded it; the default when it says nothing), SIGKILL.

RUN is a run id (looked up in the runs folder) or the path of a run's log
folder. Its event log tells which tasks were running, and whether the runner
is in fact still alive (then nothing is touched: stop that runner instead).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from .errors import EXIT_OK, UsageError
from .events import EVENTS_NAME, read_events
from .model import DEFAULT_KILL_GRACE_S
from .proc import KILL_WAIT_S, carriers, signal_all, terminate

RUN_VAR = "TASKRUN_RUN_ID"
POLL_S = 0.05


def find_run(target: str, runs_folder: Path) -> tuple[str, Path | None]:
    """(run id, its log folder if found) for a run id or a log folder path."""
    path = Path(target)
    if path.is_dir() and (path / EVENTS_NAME).exists():
        events = read_events(path / EVENTS_NAME)
        start = next((e for e in events if e.get("event") == "run_start"), None)
        return (start["run_id"] if start else path.name), path
    if "/" in target or not target or target.startswith("."):
        raise UsageError(f"--recover {target}: no run's log folder there (give a run id, or a folder "
                         f"holding {EVENTS_NAME})")
    folder = runs_folder / target
    return target, (folder if (folder / EVENTS_NAME).exists() else None)


def processes_of_run(run_id: str) -> dict[int, str]:
    """Live processes whose environment says they belong to the run: pid -> command line."""
    found = {}
    for pid in carriers(RUN_VAR, {run_id.encode()}):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                found[pid] = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue  # it ended meanwhile
    return found


def _runner_alive(pid: int, events_path: Path) -> bool:
    """Whether process `pid` is a runner still writing this event log."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(events_path.resolve()):
                    return True
            except OSError:
                continue
    except OSError:
        pass
    return False


def stop_processes(run_id: str, grace_s: float) -> tuple[dict[int, str], int]:
    """SIGTERM, then SIGKILL after `grace_s`, every process of the run until none is left.
    Returns (what was found, how many needed SIGKILL)."""
    found = processes_of_run(run_id)
    if not found:
        return found, 0
    terminate(found)
    deadline = time.monotonic() + grace_s
    left = processes_of_run(run_id)
    while left and time.monotonic() < deadline:
        time.sleep(POLL_S)
        left = processes_of_run(run_id)
    killed: set[int] = set()
    give_up = time.monotonic() + KILL_WAIT_S
    while left and time.monotonic() < give_up:
        killed.update(left)
        found.update(left)  # new ones may have been started during the grace
        signal_all(left, signal.SIGKILL)
        time.sleep(POLL_S)
        left = processes_of_run(run_id)
    return found, len(killed)


def recover_run(target: str, runs_folder: Path, say: Callable[[str], None]) -> int:
    run_id, folder = find_run(target, runs_folder)
    events = read_events(folder / EVENTS_NAME) if folder else []
    start = next((e for e in events if e.get("event") == "run_start"), None)
    if start and not any(e.get("event") == "run_end" for e in events) and _runner_alive(start["pid"],
                                                                                       folder / EVENTS_NAME):
        raise UsageError(f"run {run_id} is still running (taskrun pid {start['pid']}): stop it with "
                         f"kill -TERM {start['pid']}, which stops its tasks too")
    grace_s = DEFAULT_KILL_GRACE_S
    if folder is None:
        say(f"run {run_id}: no log folder under {runs_folder}; looking for its processes anyway")
    else:
        ended = {(e["task"], e["attempt"]) for e in events if e.get("event") == "attempt_end"}
        running = [e for e in events if e.get("event") == "task_start" and (e["task"], e["attempt"]) not in ended]
        if not any(e.get("event") == "run_end" for e in events):
            say(f"run {run_id}: taskrun stopped without finishing its record ({folder / EVENTS_NAME})")
        for e in running:
            say(f"run {run_id}: task {e['task']} (attempt {e['attempt']}, pid {e['pid']}) had not ended")
        graces = [e["kill_grace_s"] for e in running if isinstance(e.get("kill_grace_s"), (int, float))]
        grace_s = max(graces, default=grace_s)
    found, killed = stop_processes(run_id, grace_s)
    if not found:
        say(f"run {run_id}: no process of this run is left")
        return EXIT_OK
    for pid, cmdline in sorted(found.items()):
        say(f"run {run_id}: stopped pid {pid}: {cmdline}")
    say(f"run {run_id}: stopped {len(found)} process(es)" + (f", {killed} with SIGKILL" if killed else ""))
    return EXIT_OK
