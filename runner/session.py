"""One run of a plan, start to record: the log folder, signal handling, the
scheduler over a backend, and the summary written in `finally:` so that an
interrupt or an error of taskrun's own still leaves the record.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import channel
from .errors import EXIT_INTERNAL, OutputError, TaskrunError
from .model import Plan, status_counts
from .schedule import Scheduler, StopRequest
from .events import EventLog
from .logdir import FolderWatch, RunDir, claim_ended_runs
from .proc import signal_name
from .secrets import NO_MASK, Masker
from .record import RUN_DURATIONS, RUN_SUMMARY, displaced_note, durations_text, runs_folder
from .summary import RunInfo, build_summary, dump_summary, run_status
from .target import Target, write_atomic

STOP_SIGNALS = {signal.SIGINT: "interrupted (SIGINT)", signal.SIGTERM: "terminated (SIGTERM)",
                signal.SIGHUP: "hung up (SIGHUP)"}
# Every other signal whose default action would end taskrun on the spot (its tasks
# left running, no summary) stops the run the same way. Not these: SIGKILL and
# SIGSTOP (they cannot be caught); the faults a process raises on itself (SIGSEGV,
# SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS), which a handler cannot resume from;
# SIGPIPE and SIGXFSZ, which Python ignores so that a write that fails (a closed
# console, a file over its size limit) is an error taskrun reports, not its end.
_ENDING = [getattr(signal, n) for n in ("SIGQUIT", "SIGABRT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGXCPU",
                                        "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR", "SIGSTKFLT") if hasattr(signal, n)]
_ENDING += range(signal.SIGRTMIN, signal.SIGRTMAX + 1)
STOP_SIGNALS |= {s: f"stopped by {signal_name(s)}" for s in _ENDING}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    summary_path: str = "taskrun-summary.json"  # "-" for stdout
    summary_target: Target | None = None  # summary_path as opened before the run (`target.open_target`)
    log_dir: str | None = None  # the runs folder; default .taskrun/runs next to the task file
    tail_lines: int = 50
    keep_runs: int = 20  # run folders kept under the runs folder, this one included; 0 keeps all
    argv: tuple[str, ...] = ()
    priority: dict[str, float] | None = None  # start order of ready tasks (history); None: file order
    cancelled: str | None = None  # why nothing runs (a `confirm:` answered no): every task cancelled


RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + os.urandom(3).hex()


def make_log_dir(plan: Plan, options: RunOptions, run_id: str) -> RunDir:
    """The run's own log folder, private and fresh, held while the run lives (see `logdir`)."""
    if options.log_dir:
        return RunDir(Path(options.log_dir), run_id, default=False)
    return RunDir(runs_folder(plan.taskfile.folder, None), run_id, default=True)


def prune_runs(runs: Path, keep: int, current: str) -> list[str]:
    """Delete the oldest run folders so that `keep` remain, never `current`, and
    only folders whose name is a run id, and never one whose run is still alive
    (`logdir.claim_ended_runs`). Returns the names deleted. Best effort: a folder
    that cannot be deleted is left, silently."""
    if keep <= 0:
        return []
    try:
        entries = [e for e in os.scandir(runs) if RUN_ID.match(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []

    def age(entry: os.DirEntry) -> tuple[str, float]:  # the id starts with its UTC second
        try:
            return entry.name[:16], entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return entry.name[:16], 0.0

    older = sorted((e for e in entries if e.name != current), key=age)
    doomed = older[:max(0, len(older) - (keep - 1))]
    with claim_ended_runs([e.path for e in doomed]) as ended:
        for path in ended:
            shutil.rmtree(path, ignore_errors=True)
    return [os.path.basename(path) for path in ended]


@contextmanager
def catch_stop_signals(stop: StopRequest):
    """Turn the `STOP_SIGNALS` into a stop request, and wake the loop through a pipe:
    yields its read end, and `wake()`, which writes to it."""
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def wake() -> None:  # also from other threads (the gate's verdicts)
        try:
            os.write(w, b"!")
        except OSError:
            pass

    def handler(signum, _frame):
        stop.request(signum, STOP_SIGNALS.get(signum, "stopped"))
        wake()

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield r, wake
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(r)
        os.close(w)


def run_session(plan: Plan, listener, report, options: RunOptions, *, backend_factory, pump=None,
                writers: Sequence[Callable[[dict], None]] = (), masker: Masker = NO_MASK) -> int:
    """Run the plan and write its summary; return the exit code.

    `report(results, duration_s, summary_path)` prints the closing report;
    `backend_factory(wake_fd)` makes the backend; `pump` (optional) follows
    the attempts' logs (see `schedule.Pump`); each of `writers` gets the
    summary dict after the report (JUnit XML, CI annotations), also when the
    run failed or was interrupted. The backend is made first: it may refuse
    the pool (open-file limit) before any folder is made or anything starts.

    Besides `listener`, every event goes to the run's append-only event log.
    A record that could not be written (event log, a masked log file) or the
    run's folder deleted by a task (see `logdir.FolderWatch`) makes the exit
    code 3 with the path and the reason; the tasks' results stay true.
    `masker` hides the file's secrets in the event log, summary and writers.
    """
    run_id = new_run_id()
    stop = StopRequest()
    scheduler = None
    error: BaseException | None = None
    with catch_stop_signals(stop) as (wake_fd, wake), ExitStack() as after:
        backend = backend_factory(wake_fd)
        try:
            run_dir = make_log_dir(plan, options, run_id)
        except BaseException:
            backend.close()
            raise
        log_dir = run_dir.path
        after.callback(run_dir.close)
        # Once the summary is written, never on the start path (it costs tens of ms at a thousand tasks).
        after.callback(prune_runs, log_dir.parent, options.keep_runs, run_id)
        started = time.time()
        events = EventLog(log_dir, masker=masker)
        watch = FolderWatch(run_dir, events, stop=lambda why: stop.request(None, why))
        summary_shown = None if options.summary_path == "-" else os.path.abspath(options.summary_path)
        events.run_started(run_id=run_id, file=plan.taskfile.path, pool=plan.pool, tasks=len(plan),
                           argv=options.argv, summary_path=summary_shown)
        try:
            scheduler = Scheduler(plan, backend, (watch, events, listener), log_dir=log_dir, run_id=run_id, stop=stop,
                                  priority=options.priority, pump=pump, mask=masker.secret_values, wake=wake)
            # The plan and everything loaded live as long as the run: the collector need not
            # walk them again at each of its full passes, which would grow with the number of tasks.
            gc.freeze()
            if options.cancelled is None:
                scheduler.run()
            else:
                scheduler.cancel_all(options.cancelled)
        except BaseException as exc:  # record first, then let the CLI report it
            error = exc
            try:
                if scheduler is not None:
                    scheduler.abort(f"taskrun failed: {exc}")
            except Exception:
                pass
        finally:
            backend.close()
        results = scheduler.results() if scheduler else []
        gc.freeze()  # the same for the results, before the summary's objects are made
        finished = time.time()
        signum = stop.signum
        status, code = run_status(results, stopped_by_signal=signum is not None)
        if signum is not None:
            code = 128 + signum
        if options.cancelled is not None:
            status = "cancelled"
        if error is not None:
            status, code = ("cancelled" if isinstance(error, KeyboardInterrupt) else "failed"), EXIT_INTERNAL
        reason = stop.reason or options.cancelled
        if reason is None and scheduler is not None and scheduler.fail_fast_cause:
            reason = f"fail_fast: stopped after '{scheduler.fail_fast_cause}' failed"
        if reason is None and error is not None:
            reason = f"taskrun failed: {error!r}"
        watch.check("at the end of the run")
        record_errors = [*watch.problems, *(f"cannot write the log {e.filename}: {e.strerror or e}"
                                            for e in getattr(backend, "write_errors", ()))]
        if events.error is not None:
            record_errors.insert(0, f"cannot write the event log {events.path}: "
                                    f"{events.error.strerror or events.error}")
        if record_errors and error is None:
            code = EXIT_INTERNAL
            reason = "; ".join(filter(None, [reason, *record_errors]))
        lost = getattr(backend, "lost", None) if signum is None else None  # the executor went away mid-run
        if lost and error is None:
            status, code = "failed", EXIT_INTERNAL
        events.run_ended(status=status, exit_code=code, duration_s=finished - started,
                         counts=status_counts(results), reason=reason)
        events.close()
        info = RunInfo(
            run_id=run_id, argv=options.argv, started_at=started, finished_at=finished,
            log_dir=str(log_dir), status=status, exit_code=code,
            signal=signal_name(signum) if signum else None, reason=reason,
        )
        summary = masker.mask_written(build_summary(plan, results, info, tail_lines=options.tail_lines))
        text = dump_summary(summary)
        shown_path = None if options.summary_path == "-" else options.summary_path
        if not watch.broken:  # a folder that could not be made again is already reported
            try:
                # The run's own record: no later run replaces it. Not flushed to disk: the summary
                # at -o is (its fsyncs are what a one-task run spends most of its end on).
                write_atomic(log_dir / RUN_SUMMARY, text, durable=False)
            except OutputError as exc:
                record_errors.append(str(exc))
            else:
                try:  # what history reads of this run; without it, history reads the summary
                    write_atomic(log_dir / RUN_DURATIONS, durations_text(summary), durable=False)
                except OutputError:
                    pass
        try:
            if options.summary_path == "-":
                _write_stdout(text)
            else:
                target = options.summary_target or Target(options.summary_path)
                reran = plan.rerun_of.run_id if plan.rerun_of else None
                note = displaced_note(options.summary_path, run_id, reran) if target.replaces else None
                if note:
                    _write_stderr(note + "\n")
                target.write(text)
        except OutputError as exc:
            _write_stderr(text)  # the last resort: the record is not lost
            report(results, finished - started, None)
            run_writers(writers, summary)
            raise OutputError(f"{exc}; the summary was written to stderr instead") from None
        report(results, finished - started, shown_path)
        run_writers(writers, summary)
    if error is not None:
        raise error
    if lost:
        raise TaskrunError(f"{lost}; the summary has what ran")
    if record_errors:
        raise OutputError("; ".join(record_errors) + " (the summary has every task's result)")
    return code


def _write_stderr(text: str) -> None:
    channel.for_stream(sys.stderr).write([text.encode("utf-8", "replace")])


def run_writers(writers: Sequence[Callable[[dict], None]], summary: dict) -> None:
    """Every writer, even after one failed; then the first failure."""
    failed: OutputError | None = None
    for write in writers:
        try:
            write(summary)
        except OutputError as exc:
            failed = failed or exc
    if failed is not None:
        raise failed


def _write_stdout(text: str) -> None:
    """Whole, in order with the console (`2>&1`): queued in stdout's channel, never dropped."""
    out = channel.for_stream(sys.stdout)
    out.write([text.encode("utf-8", "replace")])
    if out.closed:
        raise OutputError("cannot write the summary to stdout: nobody reads it (broken pipe)")


__all__ = ["RunOptions", "run_session", "TaskrunError"]
