"""What the `taskrun` command does, one function per mode.

`cli` parses the flags and picks one mode: print the version or the schema,
write a starter task file, recover a killed run, draw an earlier run from its
summary (report), validate files, list the tasks, show the plan (dry run), or
run. Each mode takes plain values (paths, names, numbers already parsed)
and returns the process exit code; what goes wrong is raised as a
`TaskrunError`, which `cli` turns into one line and its code.

Listing, the dry run and the run share one way from a file to a plan
(`load_plan`): the same selection, so `--list` and `--dry-run` show what the
run would run.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .errors import EXIT_OK, TaskFileError, UsageError, show_path
from .model import Plan, TaskFile

if TYPE_CHECKING:  # imported when a mode needs them: most commands never do
    from .console import Console
    from .executor import Executor
    from .history import Estimate
    from .secrets import Masker


DEFAULT_SUMMARY = "taskrun-summary.json"


def say(text: str) -> None:
    """One line on stderr, through its channel: after a run whose reader stalled, a
    message must not hang the exit; a closed stderr is not an error."""
    from . import channel

    channel.for_stream(sys.stderr).write([(text + "\n").encode("utf-8", "replace")])


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """Which tasks of the file, and the command line's overrides of the file."""

    targets: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    pool: int | None = None
    timeout_s: float | None = None
    fail_fast: bool | None = None
    rerun_failed: str | None = None  # an earlier summary: only what did not succeed in it
    force: bool = False  # run what is up to date too; with rerun_failed: even though the file changed since
    given: tuple[tuple[str, str], ...] = ()  # NAME=VALUE and --var NAME=VALUE: variables set on the command line
    args: tuple[str, ...] = ()  # what follows `--`: ${{ args }}


@dataclass(frozen=True, slots=True, kw_only=True)
class Display:
    """How the console looks: output mode (None: the file's), colour choice."""

    output: str | None = None
    color: str = "auto"
    timeline: bool = False  # --timeline: the run drawn as text after the closing table


@dataclass(frozen=True, slots=True, kw_only=True)
class Where:
    """Where the tasks run (executor flags) and where the run's records go."""

    executor: str | None = None
    scheduler: str | None = None
    connect_timeout_s: float | None = None
    summary: str = DEFAULT_SUMMARY  # '-': stdout, and the console goes to stderr
    summary_named: bool = False  # given on the command line (-o), not the default
    junit: str | None = None
    html: str | None = None  # --html: the run drawn as one self-contained HTML page
    trace: str | None = None  # --trace: Chrome trace JSON of the run
    log_dir: str | None = None
    tail_lines: int = 50
    keep_runs: int = 20
    history: str | None = None
    no_history: bool = False
    yes: bool = False  # --yes: every `confirm:` question answered yes


def show_version() -> int:
    print(f"taskrun {__version__}")
    return EXIT_OK


def show_schema() -> int:
    from .load import schema_text

    sys.stdout.write(schema_text())
    return EXIT_OK


def init(path: str) -> int:
    """Write the starter task file. The lines for .gitignore go to stdout, alone, so that
    `taskrun --init >> .gitignore` adds them; what was done goes to stderr."""
    from .starter import GITIGNORE, write_starter

    write_starter(path)
    say(f"taskrun: wrote {path}; run it with: taskrun{'' if _found_by_default(path) else f' -f {path}'}")
    say("taskrun: add these lines to .gitignore (taskrun --init >> .gitignore does):")
    sys.stdout.write("".join(f"{line}\n" for line in GITIGNORE))
    return EXIT_OK


def _found_by_default(path: str) -> bool:
    from .discovery import NAMES

    return os.path.dirname(path) in ("", ".") and os.path.basename(path) in NAMES


def recover(run: str, *, file: str | None, log_dir: str | None) -> int:
    """Stop what a killed run left running. RUN is looked up in `log_dir`, else in
    `.taskrun/runs` next to FILE (or in the current folder)."""
    from .recover import recover_run

    folder = Path(file).parent if file is not None else Path(".")
    runs = Path(log_dir) if log_dir else folder / ".taskrun" / "runs"
    return recover_run(run, runs, say)


def report(summary: str, *, html: str | None, trace: str | None = None, timeline: bool = False) -> int:
    """Draw the run that an earlier summary records (`--report`), as a run draws itself:
    the HTML page, the trace, the text timeline (on stdout). The summary is checked
    against its schema first, and each target is opened (or refused) before anything
    is written."""
    from .record import NotASummary, read_summary

    if html is None and trace is None and not timeline:
        raise UsageError(f"--report {summary}: nothing to write; add --html PATH, --trace PATH or --timeline")
    html_target, trace_target = _drawing_targets(html, trace)
    try:
        data = read_summary(summary)
    except NotASummary as exc:
        raise UsageError(f"--report {show_path(summary)}: {exc}") from None
    from .runview import build_view

    view = build_view(data)
    if html_target is not None:
        from .htmlreport import write_html

        write_html(html_target, view)
        say(f"taskrun: drew run {data['run_id']} ({show_path(summary)}) in {show_path(html)}")
    if trace_target is not None:
        from .trace import write_trace

        write_trace(view, trace_target)
        say(f"taskrun: wrote the trace of run {data['run_id']} ({show_path(summary)}) to {show_path(trace)}")
    if timeline:
        from .console import columns
        from .timeline import render_timeline

        sys.stdout.write("".join(f"{line}\n" for line in render_timeline(view, width=columns(sys.stdout))))
    return EXIT_OK


def _drawing_targets(html: str | None, trace: str | None) -> tuple:
    """The targets of --html and --trace (None for one not asked for), each opened, or
    refused, before anything runs or is drawn: a run and --report write them alike."""
    from .target import open_target

    html_target = None if html is None else open_target(html, "--html", example="report.html")
    trace_target = None
    if trace is not None:
        from .trace import EXAMPLE

        trace_target = open_target(trace, "--trace", EXAMPLE)
    return html_target, trace_target


def building(function):
    """`function` builds what is read from task files, which lives until the process ends: the
    cyclic collector's full passes over it while it is built find nothing to free (they were a
    third of loading 30,000 tasks), and once it is frozen no later collection walks it again."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.freeze()
            if enabled:
                gc.enable()
    return wrapper


@building
def validate(files: tuple[str, ...]) -> int:
    """Check each file; every problem of every file is printed. 0 when all are valid."""
    from .load import load_taskfile

    code = EXIT_OK
    for path in files:
        try:
            taskfile = load_taskfile(path)
        except TaskFileError as exc:
            for problem in exc.problems:
                say(str(problem))
            code = exc.exit_code
        else:
            for warning in taskfile.warnings:
                say(str(warning))
            say(f"{show_path(path)}: valid ({len(taskfile.tasks)} tasks)")
    return code


@building
def load_plan(file: str, selection: Selection, log_dir: str | None = None,
              every_task: bool = False, render: bool = True) -> tuple[TaskFile, Plan | None]:
    """The file and its plan; no plan when a rerun finds nothing left to run (said on stderr).
    `log_dir`: where the runs are kept (--log-dir), to find a run named by its id.
    `every_task`: with nothing selected, plan every task rather than the file's `default`.
    `render`: the planned tasks' templates are rendered (their `sh` vars run); --list shows
    them as written."""
    from .load import load_taskfile
    from .plan import make_plan

    taskfile = load_taskfile(file)
    rerun = None
    if selection.rerun_failed is not None:
        from .record import runs_folder
        from .rerun import read_rerun

        rerun = read_rerun(selection.rerun_failed, taskfile, force=selection.force,
                           runs=runs_folder(taskfile.folder, log_dir))
        if not rerun.failed:
            say(f"taskrun: nothing to rerun: every task of run {rerun.of.run_id} ({show_path(selection.rerun_failed)}) succeeded")
            return taskfile, None
    render_tasks = None
    if selection.given or taskfile.templates:  # else nothing to render: `expand` is not even imported
        from functools import partial

        from .expand import check_given, render_tasks

        check_given(taskfile, dict(selection.given))
        render_tasks = partial(render_tasks, taskfile, given=dict(selection.given), args=selection.args)
    plan = make_plan(taskfile, selection.targets, pool=selection.pool, timeout_s=selection.timeout_s,
                     fail_fast=selection.fail_fast, tags=selection.tags, skip=selection.skip, rerun=rerun,
                     every_task=every_task, render=render_tasks if render else None, force=selection.force)
    return taskfile, plan


def refuse_task_as_summary(where: Where, taskfile: TaskFile) -> None:
    """`--summary deploy` where deploy is a task: the user meant something else (in go-task,
    `--summary TASK` describes a task); a file of that name is written only when asked as ./deploy."""
    summary = where.summary
    if where.summary_named and summary in taskfile.names():
        raise UsageError(f"--summary {summary}: {summary!r} is a task of {taskfile.path}, not a place for the summary;"
                         f" did you mean --list? to write the summary to that path use --summary=./{summary}")


def list_tasks(file: str, selection: Selection, *, as_json: bool, show_all: bool = False,
               log_dir: str | None = None) -> int:
    """The selected tasks (with none selected: every task, not the default) as a table, or as
    JSON for scripts; internal tasks only with `show_all`. Nothing runs."""
    from .listing import format_list, list_json

    taskfile, plan = load_plan(file, selection, log_dir, every_task=True, render=False)
    if plan is not None:
        sys.stdout.write(list_json(taskfile, plan, show_all) if as_json else format_list(taskfile, plan, show_all))
    return EXIT_OK


def recorded_durations(plan: Plan, *, history: str | None, no_history: bool, log_dir: str | None) -> dict | None:
    """The durations that order the start of the plan's ready tasks: `--history`'s summary,
    else the earlier runs of the plan's file (its path and content), found in its run folders."""
    from .history import earlier_durations, read_durations
    from .record import runs_folder

    if no_history:
        return None
    if history is not None:
        recorded = read_durations(history)
        if recorded is None:
            raise UsageError(f"--history {history}: not a readable taskrun summary")
        return recorded
    taskfile = plan.taskfile
    return earlier_durations(runs_folder(taskfile.folder, log_dir), taskfile, {t.name for t in plan.tasks})


def _console(taskfile: TaskFile, plan: Plan, display: Display, *, remote: bool, masker, to_stdout: bool):
    from .console import Console, is_terminal, want_color
    from .output import ci_flavor

    stream = sys.stderr if to_stdout else sys.stdout
    return Console(stream, width=max(len(t.name) for t in plan.tasks), color=want_color(stream, display.color),
                   mode=display.output or taskfile.output or "stream", ci=ci_flavor(os.environ),
                   live=is_terminal(stream), total=len(plan), remote=remote,
                   masker=masker, github=os.environ.get("GITHUB_ACTIONS") == "true")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """What the dry run and the run share: the plan, where it runs, its console, its estimates."""

    plan: Plan
    executor: Executor
    masker: Masker
    console: Console
    estimated: Estimate | None  # None without history


def prepare(file: str, selection: Selection, display: Display, where: Where, *,
            makespan: bool = False) -> Prepared | None:
    """The plan and everything around it, or None when a rerun finds nothing to do;
    `makespan`: the estimates include the simulated makespan (the dry run shows it)."""
    from .executor import choose_executor
    from .history import estimate
    from .secrets import masker_for_file

    from .target import names_stdout

    taskfile, plan = load_plan(file, selection, where.log_dir)
    refuse_task_as_summary(where, taskfile)
    if plan is None:
        return None
    chosen = choose_executor(taskfile, kind=where.executor, scheduler=where.scheduler,
                             connect_timeout_s=where.connect_timeout_s)
    masker = masker_for_file(taskfile, os.environ, [t.env for t in plan.tasks])
    console = _console(taskfile, plan, display, remote=chosen.kind != "local", masker=masker,
                       to_stdout=where.summary == "-" or names_stdout(where.summary))
    recorded = recorded_durations(plan, history=where.history, no_history=where.no_history, log_dir=where.log_dir)
    return Prepared(plan=plan, executor=chosen, masker=masker, console=console,
                    estimated=estimate(plan, recorded, makespan=makespan) if recorded else None)


def dry_run(file: str, selection: Selection, display: Display, where: Where) -> int:
    """The plan in the order the run would start it, with estimates when there is history."""
    prepared = prepare(file, selection, display, where, makespan=True)
    if prepared is not None:
        prepared.console.show_plan(prepared.plan, prepared.estimated, checks_preview(prepared.plan))
    return EXIT_OK


def checks_preview(plan: Plan) -> dict[str, str]:
    """For each task with a condition or up-to-date checks, what the run would decide (no command runs)."""
    if not any(t.spec.checked for t in plan.tasks):
        return {}
    from .fingerprint import Store
    from .gate import preview

    store = Store(plan.taskfile.path)
    try:
        return {t.name: note for t in plan.tasks if t.spec.checked
                and (note := preview(t, store, force=plan.force)) is not None}
    finally:
        store.close()


def run(file: str, selection: Selection, display: Display, where: Where) -> int:
    """Run the plan: console lines, the closing report, the summary and the other records."""
    from .executor import backend_factory
    from .session import RunOptions, run_session

    prepared = prepare(file, selection, display, where)
    if prepared is None:
        return EXIT_OK
    from .target import open_target

    plan, console, masker, estimated = prepared.plan, prepared.console, prepared.masker, prepared.estimated
    from .target import names_stdout
    from .terminal import confirm_plan, refuse_interactive

    refuse_interactive(plan, prepared.executor.kind,
                       summary_on_stdout=where.summary == "-" or names_stdout(where.summary))
    not_confirmed = confirm_plan(plan, yes=where.yes)
    # Each target is opened (or refused) before anything runs.
    summary_target = None if where.summary == "-" else open_target(where.summary, "-o")
    writers = []
    if where.junit is not None:
        from .junit import write_junit

        junit_target = open_target(where.junit, "--junit")
        writers.append(lambda record: write_junit(junit_target, record))
    html_target, trace_target = _drawing_targets(where.html, where.trace)
    if html_target is not None:
        from .htmlreport import write_html

        writers.append(lambda record: write_html(html_target, record))
    if trace_target is not None:
        from .trace import write_trace

        writers.append(lambda record: write_trace(record, trace_target))
    if display.timeline:  # first: right after the closing report
        writers.insert(0, console.show_timeline)
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from .ci import github_writers

        writers += github_writers(plan, console.line)
    options = RunOptions(summary_path=where.summary, log_dir=where.log_dir, tail_lines=where.tail_lines,
                         keep_runs=where.keep_runs, argv=tuple(sys.argv),
                         priority=estimated.priority if estimated else None, summary_target=summary_target,
                         cancelled=not_confirmed)
    try:
        # For Dask this connects now: an unreachable scheduler is reported before anything runs.
        factory = backend_factory(prepared.executor, slots=min(plan.pool, len(plan)), masked=bool(masker))
        return run_session(
            plan, console,
            lambda results, duration_s, path: console.report(plan, results, duration_s=duration_s, summary_path=path),
            options, backend_factory=factory, pump=console,
            writers=writers, masker=masker,
        )
    finally:
        console.close()
