"""The `taskrun` command: flags in, exit code out. Parsing and printing only;
the work is done by load, plan, session and console.

Exit codes: 0 every task succeeded (or failed with allow_failure); 1 a task
failed, timed out or was skipped; 2 invalid task file or command line, nothing
ran; 3 taskrun itself failed; 128+N stopped by signal N (130 SIGINT, 143 SIGTERM).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated, Optional

import typer

from . import __version__
from .errors import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_SIGINT, TaskFileError, TaskrunError

DEBUG_VAR = "TASKRUN_DEBUG"

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)


def _err(text: str) -> None:
    try:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
    except OSError:
        pass


@app.command(context_settings={"help_option_names": ["-h", "--help"]})
def main_command(
    file: Annotated[Optional[str], typer.Argument(help="The task file (YAML).", show_default=False)] = None,
    targets: Annotated[Optional[list[str]], typer.Argument(help="Tasks to run, with what they need; default all.",
                                                           show_default=False)] = None,
    pool: Annotated[Optional[int], typer.Option("-j", "--pool", min=1, max=4096,
                                                help="How many tasks run at once (overrides the file).")] = None,
    timeout: Annotated[Optional[str], typer.Option(help="Default timeout of each task, e.g. 90s, 5m (overrides the file).")] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="On the first failure, start nothing new and stop what runs.")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Only check the file; exit 0 if valid, 2 if not.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and run nothing.")] = False,
    summary: Annotated[str, typer.Option("-o", "--summary", help="Where to write the JSON summary; '-' for stdout.")] = "taskrun-summary.json",
    log_dir: Annotated[Optional[str], typer.Option("--log-dir", help="Folder for the runs' logs (default: .taskrun/runs next to the task file).")] = None,
    history: Annotated[Optional[str], typer.Option("--history", help="An earlier summary of this file: start the longest remaining chains first (default: the previous summary, if any).")] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Start ready tasks in file order, ignoring earlier runs.")] = False,
    output: Annotated[Optional[str], typer.Option("--output", help="Tasks' output on the console: stream, group or quiet (overrides the file; default stream).",
                                                  show_default=False)] = None,
    color: Annotated[str, typer.Option("--color", help="Colour: auto (a terminal without NO_COLOR, or FORCE_COLOR), always or never.")] = "auto",
    tail_lines: Annotated[int, typer.Option("--tail-lines", min=0, help="Last lines of each task's output kept in the summary.")] = 50,
    keep_runs: Annotated[int, typer.Option("--keep-runs", min=0, help="Run log folders kept (the oldest are deleted); 0 keeps all.")] = 20,
    schema: Annotated[bool, typer.Option("--schema", help="Print the task file's JSON Schema and exit.")] = False,
    version: Annotated[bool, typer.Option("--version", help="Print taskrun's version and exit.")] = False,
) -> None:
    """Run the tasks of a YAML task file in parallel and write a JSON summary."""
    try:
        code = _dispatch(file=file, targets=tuple(targets or ()), pool=pool, timeout=timeout,
                         fail_fast=fail_fast, validate=validate, dry_run=dry_run, summary=summary,
                         log_dir=log_dir, history=history, no_history=no_history, schema=schema,
                         version=version, output=output, color=color, tail_lines=tail_lines, keep_runs=keep_runs)
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


def _dispatch(*, file, targets, pool, timeout, fail_fast, validate, dry_run, summary, log_dir,
              history, no_history, schema, version, output=None, color="auto", tail_lines=50,
              keep_runs=20) -> int:
    if version:
        print(f"taskrun {__version__}")
        return EXIT_OK
    if schema:
        from .load import schema_text

        sys.stdout.write(schema_text())
        return EXIT_OK
    if file is None:
        _err("taskrun: missing the task file: taskrun FILE [TASK ...] (see --help)")
        return EXIT_INVALID

    from .durations import parse_duration
    from .errors import UsageError
    from .load import load_taskfile
    from .plan import make_plan

    from .output import COLOR_CHOICES, MODES

    if output is not None and output not in MODES:
        raise UsageError(f"--output: {output!r} is not one of {', '.join(MODES)}")
    if color not in COLOR_CHOICES:
        raise UsageError(f"--color: {color!r} is not one of {', '.join(COLOR_CHOICES)}")
    timeout_s = None
    if timeout is not None:
        try:
            timeout_s = parse_duration(timeout)
        except ValueError as exc:
            raise UsageError(f"--timeout: {exc}") from None
    if not summary:
        raise UsageError("--summary: give a file path, or - for stdout")
    taskfile = load_taskfile(file)
    plan = make_plan(taskfile, targets, pool=pool, timeout_s=timeout_s, fail_fast=fail_fast or None)
    if validate:
        _err(f"{file}: valid ({len(taskfile.tasks)} tasks)")
        return EXIT_OK

    from .console import Console, is_terminal, want_color
    from .history import estimate, read_durations
    from .output import ci_flavor

    to_stdout = summary == "-"
    stream = sys.stderr if to_stdout else sys.stdout
    console = Console(stream, width=max(len(t.name) for t in plan.tasks), color=want_color(stream, color),
                      mode=output or taskfile.output or "stream", ci=ci_flavor(os.environ),
                      live=is_terminal(stream), total=len(plan))
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

    from .backends import LocalBackend
    from .session import RunOptions, run_session

    options = RunOptions(summary_path=summary, log_dir=log_dir, tail_lines=tail_lines, keep_runs=keep_runs,
                         argv=tuple(sys.argv), priority=estimated.priority if estimated else None)
    try:
        return run_session(
            plan, console,
            lambda results, duration_s, path: console.report(plan, results, duration_s=duration_s, summary_path=path),
            options, backend_factory=lambda wake_fd: LocalBackend(wake_fd=wake_fd), pump=console,
        )
    finally:
        console.close()


def main() -> None:
    app()
