"""The `taskrun` command: flags in, exit code out. Parsing and printing only;
the work is done by load, plan, session and console.

Exit codes: 0 every task succeeded (or failed with allow_failure); 1 a task
failed, timed out or was skipped; 2 invalid task file or command line, or an
unusable executor (no `distributed`, scheduler unreachable), nothing
ran; 3 taskrun itself failed; 128+N stopped by signal N (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_SIGINT, TaskFileError, TaskrunError

DEBUG_VAR = "TASKRUN_DEBUG"

app = typer.Typer(add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None)


def _err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:
        pass


def _completion_file(ctx: typer.Context):
    """The task file named on the command line being completed. Click stops
    parsing at an option still waiting for its value (`--tag <TAB>`), so the
    file may be left among the unparsed arguments."""
    return ctx.params.get("file") or next(iter(ctx.args), None)


def _complete_names(ctx: typer.Context, incomplete: str) -> list[str]:
    from .listing import task_names

    given = set(ctx.params.get("targets") or ()) | set(ctx.params.get("skip") or ())
    return [n for n in task_names(_completion_file(ctx)) if n.startswith(incomplete) and n not in given]


def _complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    from .listing import tag_names

    given = set(ctx.params.get("tag") or ())
    return [t for t in tag_names(_completion_file(ctx)) if t.startswith(incomplete) and t not in given]


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def main_command(
    file: Annotated[Optional[str], typer.Argument(help="The task file (YAML).", show_default=False)] = None,
    targets: Annotated[Optional[list[str]], typer.Argument(
        help="Tasks to run, with what they need; default all. With --validate: more task files to check.",
        show_default=False, autocompletion=_complete_names)] = None,
    pool: Annotated[Optional[int], typer.Option("-j", "--pool", min=1, max=4096,
                                                help="How many tasks run at once (overrides the file).")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="Default timeout of each task, e.g. 90s, 5m (overrides the file).")] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="On the first failure, start nothing new and stop what runs.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option(
        "--tag", metavar="TAG", help="Run the tasks with this tag, with what they need (repeatable).",
        autocompletion=_complete_tags)] = None,
    skip: Annotated[Optional[list[str]], typer.Option(
        "--skip", metavar="TASK", help="Leave out this task and every task that needs it (repeatable).",
        autocompletion=_complete_names)] = None,
    rerun_failed: Annotated[Optional[str], typer.Option(
        "--rerun-failed", metavar="SUMMARY",
        help="Run only what did not succeed in the run this summary records, with what it needs.")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --rerun-failed: rerun even if the task file changed since.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Only check the file(s); exit 0 if valid, 2 if not.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and run nothing.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the tasks (name, needs, tags, description) and run nothing.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --list: print JSON, for scripts.")] = False,
    summary: Annotated[str, typer.Option("-o", "--summary", help="Where to write the JSON summary; '-' for stdout.")] = "taskrun-summary.json",
    junit: Annotated[Optional[str], typer.Option("--junit", metavar="PATH", help="Also write the results as JUnit XML.")] = None,
    log_dir: Annotated[Optional[str], typer.Option("--log-dir", help="Folder for the runs' logs (default: .taskrun/runs next to the task file).")] = None,
    history: Annotated[Optional[str], typer.Option("--history", help="An earlier summary of this file: start the longest remaining chains first (default: the previous summary, if any).")] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Start ready tasks in file order, ignoring earlier runs.")] = False,
    output: Annotated[Optional[str], typer.Option("--output", help="Tasks' output on the console: stream, group or quiet (overrides the file; default stream).",
                                                  show_default=False)] = None,
    color: Annotated[str, typer.Option("--color", help="Colour: auto (a terminal without NO_COLOR, or FORCE_COLOR), always or never.")] = "auto",
    tail_lines: Annotated[int, typer.Option("--tail-lines", min=0, help="Last lines of each task's output kept in the summary.")] = 50,
    keep_runs: Annotated[int, typer.Option("--keep-runs", min=0, help="Run log folders kept (the oldest are deleted); 0 keeps all.")] = 20,
    executor: Annotated[Optional[str], typer.Option("--executor", metavar="local|dask", help="Where tasks run: local (default) or dask (overrides the file).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --executor dask).")] = None,
    connect_timeout: Annotated[Optional[str], typer.Option("--connect-timeout", metavar="DURATION", help="How long to try reaching the Dask scheduler (default 5s).")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the task file's JSON Schema and exit.")] = False,
    recover: Annotated[Optional[str], typer.Option("--recover", metavar="RUN",
                                                   help="Stop what is left of a run whose taskrun was killed "
                                                        "(RUN: a run id or its log folder).")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print taskrun's version and exit.")] = False,
) -> None:
    """Run the tasks of a YAML task file in parallel and write a JSON summary."""
    try:
        code = _dispatch(file=file, targets=tuple(targets or ()), pool=pool, timeout=timeout,
                         fail_fast=fail_fast, tags=tuple(tag or ()), skip=tuple(skip or ()),
                         rerun_failed=rerun_failed, force=force, validate=validate, dry_run=dry_run,
                         list_tasks=list_, as_json=json_, summary=summary, junit=junit,
                         log_dir=log_dir, history=history, no_history=no_history, schema=schema,
                         version=version, output=output, color=color, tail_lines=tail_lines, keep_runs=keep_runs,
                         executor=executor, scheduler=scheduler, connect_timeout=connect_timeout, recover=recover)
    except TaskFileError as exc:
        for problem in exc.problems:
            _err(str(problem))
        code = exc.exit_code
    except TaskrunError as exc:
        _err(f"taskrun: {exc}")
        code = exc.exit_code
    except KeyboardInterrupt:
        _err("taskrun: interrupted")
        code = EXIT_SIGINT
    except Exception as exc:  # a bug: one line, the traceback on request
        if os.environ.get(DEBUG_VAR):
            traceback.print_exc()
        _err(f"taskrun: internal error: {exc!r} (set {DEBUG_VAR}=1 to see the traceback)")
        code = EXIT_INTERNAL
    raise typer.Exit(code)


def _validate_files(files: tuple[str, ...]) -> int:
    from .load import load_taskfile

    code = EXIT_OK
    for path in files:
        try:
            taskfile = load_taskfile(path)
        except TaskFileError as exc:
            for problem in exc.problems:
                _err(str(problem))
            code = exc.exit_code
        else:
            for warning in taskfile.warnings:
                _err(str(warning))
            _err(f"{path}: valid ({len(taskfile.tasks)} tasks)")
    return code


def _dispatch(*, file, targets, pool, timeout, fail_fast, tags, skip, rerun_failed, force, validate,
              dry_run, list_tasks, as_json, summary, junit, log_dir, history, no_history, schema,
              version, output=None, color="auto", tail_lines=50, keep_runs=20, executor=None, scheduler=None,
              connect_timeout=None, recover=None) -> int:
    if version:
        print(f"taskrun {__version__}")
        return EXIT_OK
    if schema:
        from .load import schema_text

        sys.stdout.write(schema_text())
        return EXIT_OK
    if recover is not None:
        from .recover import recover_run

        folder = Path(file).parent if file is not None else Path(".")
        runs = Path(log_dir) if log_dir else folder / ".taskrun" / "runs"
        return recover_run(recover, runs, _err)
    if file is None:
        _err("taskrun: missing the task file: taskrun FILE [TASK ...] (see --help)")
        return EXIT_INVALID
    if validate:
        return _validate_files((file,) + targets)

    from .durations import parse_duration
    from .errors import UsageError
    from .load import load_taskfile
    from .output import COLOR_CHOICES, MODES
    from .plan import make_plan

    if output is not None and output not in MODES:
        raise UsageError(f"--output: {output!r} is not one of {', '.join(MODES)}")
    if color not in COLOR_CHOICES:
        raise UsageError(f"--color: {color!r} is not one of {', '.join(COLOR_CHOICES)}")
    if as_json and not list_tasks:
        raise UsageError("--json goes with --list: taskrun FILE --list --json")
    if force and rerun_failed is None:
        raise UsageError("--force goes with --rerun-failed SUMMARY")

    def duration(flag: str, value: str | None) -> float | None:
        try:
            return None if value is None else parse_duration(value)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None

    timeout_s = duration("--timeout", timeout)
    connect_timeout_s = duration("--connect-timeout", connect_timeout)
    if not summary:
        raise UsageError("--summary: give a file path, or - for stdout")
    if junit is not None and not junit:
        raise UsageError("--junit: give a file path")
    taskfile = load_taskfile(file)
    rerun = None
    if rerun_failed is not None:
        from .rerun import read_rerun

        rerun = read_rerun(rerun_failed, taskfile, force=force)
        if not rerun.failed:
            _err(f"taskrun: nothing to rerun: every task of run {rerun.of.run_id} ({rerun_failed}) succeeded")
            return EXIT_OK
    plan = make_plan(taskfile, targets, pool=pool, timeout_s=timeout_s, fail_fast=fail_fast or None,
                     tags=tags, skip=skip, rerun=rerun)
    if list_tasks:
        from .listing import format_list, list_json

        sys.stdout.write(list_json(taskfile, plan) if as_json else format_list(plan))
        return EXIT_OK
    from .console import Console, is_terminal, want_color
    from .executor import choose_executor
    from .history import estimate, read_durations
    from .output import ci_flavor
    from .secrets import masker_for_file

    chosen = choose_executor(taskfile, kind=executor, scheduler=scheduler, connect_timeout_s=connect_timeout_s)

    masker = masker_for_file(taskfile, os.environ)
    to_stdout = summary == "-"
    stream = sys.stderr if to_stdout else sys.stdout
    console = Console(stream, width=max(len(t.name) for t in plan.tasks), color=want_color(stream, color),
                      mode=output or taskfile.output or "stream", ci=ci_flavor(os.environ),
                      live=is_terminal(stream), total=len(plan), remote=chosen.kind != "local",
                      masker=masker, github=os.environ.get("GITHUB_ACTIONS") == "true")
    if history is not None and no_history:
        raise UsageError("--history and --no-history contradict each other")
    recorded = None
    if history is not None:
        recorded = read_durations(history)
        if recorded is None:
            raise UsageError(f"--history {history}: not a readable taskrun summary")
    elif not no_history:
        recorded = read_durations("taskrun-summary.json" if to_stdout else summary, file)
    estimated = estimate(plan, recorded) if recorded else None
    if dry_run:
        console.show_plan(plan, estimated)
        return EXIT_OK

    from .executor import backend_factory
    from .session import RunOptions, run_session

    writers = []
    if junit is not None:
        from .junit import write_junit

        writers.append(lambda record: write_junit(junit, record))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from .ci import github_writers

        writers += github_writers(plan, console.line)
    options = RunOptions(summary_path=summary, log_dir=log_dir, tail_lines=tail_lines, keep_runs=keep_runs,
                         argv=tuple(sys.argv), priority=estimated.priority if estimated else None)
    try:
        # For Dask this connects now: an unreachable scheduler is reported before anything runs.
        factory = backend_factory(chosen, slots=min(plan.pool, len(plan)), masked=bool(masker))
        return run_session(
            plan, console,
            lambda results, duration_s, path: console.report(plan, results, duration_s=duration_s, summary_path=path),
            options, backend_factory=factory, pump=console,
            writers=writers, masker=masker,
        )
    finally:
        console.close()


def main() -> None:
    app()
