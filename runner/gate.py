"""Whether a ready task runs: its condition, then whether its work is already done.

A task with `if`, `sources`, `generates` or `status` goes through the gate when
it is ready (its needs have ended), holding its slot. The gate decides in a
thread of its own, since probes are commands and fingerprints read files, and
the loop must keep following what runs; it hands the verdict back through
`done`, which wakes the loop. In order:

1. `if: ${{ EXPR }}` (its value is known from the rendering, before the run) or
   `if: {sh: COMMAND}`: true or exit 0 goes on; anything else skips the task
   (`condition false: ...`), and the scheduler skips what needs it, without
   failing the run;
2. the task's lock (`fingerprint.Store.lock`): held from here until the task
   ends, so a second run at the same time checks what the first one recorded;
3. unless the run is forced: the fingerprint (with `sources` or `generates`)
   must match the record and every `generates` glob match a file, then every
   `status` probe must exit 0: the task is `up_to_date` and does not run;
4. otherwise the record is removed and the task runs; after a success, the
   fingerprint taken in 3 is recorded (`ended`).

Probes run on the runner's machine whatever the executor (on Dask too: the
fingerprints are kept next to the task file, here), through the file's shell,
in the task's folder with its env, bounded by its timeout, each one an attempt
of `proc` (own group, the kill ladder), their output logged in the run's folder
as `NAME~if.stdout`, `NAME~status.stdout` (and .stderr). Starting commands from
several threads is safe (`proc.spawn` locks its change of folder), and nothing
of taskrun's opens a relative path while a run goes on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from . import fingerprint
from .errors import TaskrunError
from .model import AttemptResult, AttemptSpec, Plan, PlannedTask, Status, StepSpec, TaskResult, TaskSpec, step_label
from .plan import command_argv

MAX_THREADS = 32  # checks hold pool slots; past this many at once they queue for a thread


@dataclass(frozen=True, slots=True)
class Verdict:
    status: Status | None  # None: run it; else SKIPPED, UP_TO_DATE, CANCELLED or FAILED, with `reason`
    reason: str | None = None
    taken: dict | None = None  # the fingerprint to record after a success
    lock: int | None = None  # the task's lock, held until it ends


def keeps_fingerprint(task: PlannedTask) -> bool:
    return bool(task.spec.sources or task.spec.generates)


def outcome(result: AttemptResult) -> str:
    """How a probe ended, after its command: `exited 1`, `timed out after 5s` ..."""
    if result.timed_out:
        return result.reason or "timed out"  # `timed out after 5s`
    if result.pid is None:
        return f"could not start: {result.reason}"
    if result.exit_code is None:
        return f"was ended by {result.signal}"
    return f"exited {result.exit_code}"


class Gate:
    """Runs the checks of a plan's tasks, a thread each (see the module's model)."""

    def __init__(self, plan: Plan, *, log_dir: Path, run_id: str, base_env: Mapping[str, str],
                 mask: tuple[str, ...], stopping: Callable[[], bool | str]) -> None:
        self.plan = plan
        self.log_dir = log_dir
        self.run_id = run_id
        self.base_env = base_env
        self.mask = mask
        self.stopping = stopping  # True: stop probes and waits; "force": without grace
        self.store = fingerprint.Store(plan.taskfile.path)
        from concurrent.futures import ThreadPoolExecutor  # here: most runs have no checks

        self._pool = ThreadPoolExecutor(max_workers=min(plan.pool, MAX_THREADS), thread_name_prefix="taskrun-check")

    def check(self, task: PlannedTask, done: Callable[[Verdict], None]) -> None:
        """Decide in a thread; `done(verdict)` is called from it."""
        def work() -> None:
            try:
                verdict = self._decide(task)
            except TaskrunError as exc:
                verdict = Verdict(Status.FAILED, f"cannot check whether it is up to date: {exc}")
            except Exception as exc:  # noqa: BLE001 - a bug must end the task, never hang the loop
                verdict = Verdict(Status.FAILED, f"taskrun failed checking it: {exc!r}")
            done(verdict)

        self._pool.submit(work)

    def _decide(self, task: PlannedTask) -> Verdict:
        spec = task.spec
        if spec.condition_holds is False:
            return Verdict(Status.SKIPPED, f"condition false: {spec.condition_expr.strip()}")
        if spec.condition is not None:
            result = self._probe(task, "if", (spec.condition,))
            if result.cancelled:
                return Verdict(Status.CANCELLED, "the run was stopped while its condition ran")
            if not result:
                return Verdict(Status.SKIPPED, f"condition false: `{spec.condition}` {outcome(result)}")
        if not (spec.sources or spec.generates or spec.status):
            return Verdict(None)
        lock = self.store.lock(task.name, lambda: bool(self.stopping()))
        if lock is None:
            return Verdict(Status.CANCELLED, "the run was stopped while it waited for another run of this task")
        try:
            verdict = self._up_to_date(task, lock)
            if verdict.status is None and keeps_fingerprint(task):
                self.store.forget(task.name)  # a run that fails or is stopped leaves no record
        except BaseException:
            os.close(lock)
            raise
        if verdict.status is not None:
            os.close(lock)
        return verdict

    def _up_to_date(self, task: PlannedTask, lock: int) -> Verdict:
        """Verdict UP_TO_DATE, or None (run) with the fingerprint to record after a success."""
        spec = task.spec
        taken = fingerprint.take(task) if keeps_fingerprint(task) else None
        if self.plan.force:
            return Verdict(None, taken=taken, lock=lock)
        said = []
        if taken is not None:
            recorded = self.store.read(task.name)
            if fingerprint.changes(recorded, taken) is not None or fingerprint.missing_generates(task):
                return Verdict(None, taken=taken, lock=lock)
            said.append(fingerprint.up_to_date_reason(recorded, task))
        if spec.status:
            result = self._probe(task, "status", spec.status)
            if result.cancelled:
                return Verdict(Status.CANCELLED, "the run was stopped while its status probes ran")
            if not result:
                return Verdict(None, taken=taken, lock=lock)
            shown = ", ".join(f"`{step_label(None, c)}`" for c in spec.status)
            said.append(f"every status probe exited 0 ({shown})")
        return Verdict(Status.UP_TO_DATE, "; ".join(said))

    def _probe(self, task: PlannedTask, kind: str, commands: tuple[str, ...]) -> AttemptResult:
        """Run `commands` in turn as one attempt, here, until one fails."""
        from .proc import run_attempt

        taskfile = self.plan.taskfile
        steps = tuple(StepSpec(argv=command_argv(taskfile, c, task.spec), shown=c) for c in commands)
        env = dict(self.base_env)
        env.update(task.env)
        env.update(TASKRUN_TASK=task.name, TASKRUN_RUN_ID=self.run_id)
        stem = f"{self.log_dir}/{task.name}~{kind}"
        spec = AttemptSpec(task=task.name, attempt=1, argv=steps[0].argv, env=tuple(env.items()), cwd=task.cwd,
                           timeout_s=task.timeout_s, kill_grace_s=task.kill_grace_s, stdout_path=f"{stem}.stdout",
                           stderr_path=f"{stem}.stderr", mask=self.mask, steps=steps if len(steps) > 1 else ())
        return run_attempt(spec, self.stopping)

    def ended(self, task: PlannedTask, result: TaskResult, verdict: Verdict) -> None:
        """The task has ended: record its fingerprint if it succeeded; release its lock."""
        try:
            if verdict.taken is not None and result.status is Status.SUCCESS:
                self.store.write(task.name, {"task": task.name, "run_id": self.run_id, **verdict.taken})
        finally:
            if verdict.lock is not None:
                os.close(verdict.lock)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.store.close()


def preview(task: PlannedTask, store: fingerprint.Store, *, force: bool) -> str | None:
    """What --dry-run says of a task with checks, running no command."""
    spec = task.spec
    notes = []
    if spec.condition is not None:
        notes.append(f"runs only if `{spec.condition}` exits 0 (checked when it is ready)")
    if spec.condition_expr is not None:
        notes.append(expression_note(spec))
    if keeps_fingerprint(task):
        recorded = store.read(task.name)
        try:
            why = fingerprint.changes(recorded, fingerprint.take(task))
        except TaskrunError as exc:
            why = str(exc)
        missing = fingerprint.missing_generates(task)
        if force:
            notes.append("runs: --force")
        elif why is None and not missing:
            later = " if its status probes pass" if spec.status else ""
            notes.append(f"up to date{later}: {fingerprint.up_to_date_reason(recorded, task)}"
                         + (" (checked again once its needs have run)" if spec.needs else ""))
        else:
            notes.append(f"runs: {why or 'generates missing: ' + ', '.join(missing)}")
    elif spec.status:
        notes.append("runs: --force" if force
                     else "up to date if every status probe exits 0 (probes are not run by --dry-run)")
    return "; ".join(notes) or None


def expression_note(spec: TaskSpec) -> str:
    """What --dry-run says of an `if: ${{ EXPR }}`: its value is already known."""
    expression = spec.condition_expr.strip()
    if spec.condition_holds:
        return f"condition true: {expression}"
    return f"condition false: {expression} (skipped when it is ready, with every task that needs it)"
