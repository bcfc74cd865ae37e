"""The `taskrun` command: flags in, exit code out. Parsing flags and choosing
the mode only; each mode is one function of `mode` taking plain values.

Exit codes: 0 every task succeeded, was up to date, was skipped by a false
condition, or failed with allow_failure; 1 a task failed, timed out or was
skipped because a need failed (or a confirm: was answered no); 2 invalid task
file or command line, or an unusable executor (no `distributed`, scheduler
unreachable), nothing ran; 3 taskrun itself failed, or lost the Dask scheduler;
128+N stopped by signal N (130 SIGINT, 143 SIGTERM).

Typer is the command line's one definition (`main_command`), and it answers
--help, completion and every usage error. Importing and building it is about a
fifth of a one-task run, so a command line made only of arguments and the
options of `QUICK_OPTIONS` is read by `quick_params` without it, exactly as
Typer reads it (tests/test_quick_cli.py holds the two together); anything else
(an option it does not list, a value Typer would check or refuse, --help, a
completion request) goes to Typer.
"""

from __future__ import annotations  # Typer evaluates them when it builds the app: the quick path never does

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Optional  # names in the annotations Typer evaluates

from . import channel, mode
from .errors import EXIT_INTERNAL, EXIT_SIGINT, TaskFileError, TaskrunError, UsageError
from .mode import say as _err

DEBUG_VAR = "TASKRUN_DEBUG"


def _finish_output(code: int) -> int:
    """Write what is still queued for stdout and stderr while their readers read (bounded:
    see `channel`). A second Ctrl-C ends the wait; the exit code is then 130."""
    try:
        channel.drain_all()
    except KeyboardInterrupt:
        return EXIT_SIGINT
    return code


def _completion_file(ctx: typer.Context):
    """The task file named on the command line being completed. Click stops
    parsing at an option still waiting for its value (`--tag <TAB>`), so the
    file may be left among the unparsed arguments. With no file named, the one
    taskrun would find from here."""
    from .discovery import find_taskfile, names_a_file

    named = ctx.params.get("file_option") or ctx.params.get("file") or next(iter(ctx.args), None)
    if named is not None and (ctx.params.get("file_option") or names_a_file(named)):
        return named
    try:
        return find_taskfile(Path.cwd())
    except TaskrunError:
        return None


def _complete_names(ctx: typer.Context, incomplete: str) -> list[str]:
    from .listing import task_names

    given = set(ctx.params.get("targets") or ()) | set(ctx.params.get("skip") or ()) | {ctx.params.get("file")}
    return [n for n in task_names(_completion_file(ctx)) if n.startswith(incomplete) and n not in given]


def _complete_first(ctx: typer.Context, incomplete: str) -> list[str]:
    """The first argument: the tasks of the file taskrun would find. Nothing offered (no file
    found, no task matches, a path being typed) lets the shell offer file names."""
    if "/" in incomplete:
        return []
    return _complete_names(ctx, incomplete)


def _complete_tags(ctx: typer.Context, incomplete: str) -> list[str]:
    from .listing import tag_names

    given = set(ctx.params.get("tag") or ())
    return [t for t in tag_names(_completion_file(ctx)) if t.startswith(incomplete) and t not in given]


def _complete_outputs(incomplete: str) -> list[str]:
    from .output import MODES

    return [m for m in MODES if m.startswith(incomplete)]


def _complete_colors(incomplete: str) -> list[str]:
    from .output import COLOR_CHOICES

    return [c for c in COLOR_CHOICES if c.startswith(incomplete)]


# Click rewraps the epilog's paragraphs; a paragraph after a line holding only \b keeps its lines.
EPILOG = """Examples:

\b
  taskrun                         run the default (else every task) of taskrun.yaml, here or above
  taskrun build -j 4              run build and what it needs, 4 tasks at a time
  taskrun -f ops/deploy.yaml -n   show the plan of another file, run nothing
  taskrun release version=1.2     run release with the parameter version set
  taskrun test -- -k fast         run test; ${{ args }} in the file is -k fast

Exit codes:

\b
  0    every task succeeded (or failed with allow_failure)
  1    a task failed, timed out, or was skipped because a need failed
  2    invalid task file or command line, or an unusable executor; nothing ran
  3    taskrun itself failed (TASKRUN_DEBUG=1 shows the traceback)
  130  stopped by SIGINT (129 SIGHUP, 143 SIGTERM); tasks stopped, summary written
"""


def main_command(
    ctx: typer.Context,
    file: Annotated[Optional[str], typer.Argument(
        metavar="[FILE]", autocompletion=_complete_first, help="The task file (YAML). Default: the first of taskrun.yaml, taskrun.yml, tasks.yaml, tasks.yml here "
             "or in a parent folder, up to the repository root; a first argument that is not a file is a TASK.",
        show_default=False)] = None,
    targets: Annotated[Optional[list[str]], typer.Argument(
        metavar="[TASK]... [NAME=VALUE]...",
        help="Tasks to run (a name or an alias), with what they need; default: the file's default, else every "
             "task that is not internal. NAME=VALUE sets a variable of the file. With --validate: more task "
             "files to check. After --: ARGs, the file's ${{ args }}.",
        show_default=False, autocompletion=_complete_names)] = None,
    file_option: Annotated[Optional[str], typer.Option(
        "-f", "--file", metavar="PATH", help="The task file, named explicitly (every argument is then a TASK).",
        show_default=False)] = None,
    pool: Annotated[Optional[int], typer.Option("-j", "--pool", min=1, max=4096, metavar="N",
                                                help="How many tasks run at once (overrides the file).")] = None,
    timeout: Annotated[Optional[str], typer.Option("--timeout", metavar="DURATION", help="Default timeout of each task, e.g. 90s, 5m (overrides the file).")] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="On the first failure, start nothing new and stop what runs.")] = False,
    tag: Annotated[Optional[list[str]], typer.Option(
        "--tag", metavar="TAG", help="Run the tasks with this tag, with what they need (repeatable).",
        autocompletion=_complete_tags)] = None,
    skip: Annotated[Optional[list[str]], typer.Option(
        "--skip", metavar="TASK", help="Leave out this task and every task that needs it (repeatable).",
        autocompletion=_complete_names)] = None,
    var: Annotated[Optional[list[str]], typer.Option(
        "--var", metavar="NAME=VALUE", show_default=False,
        help="Set a variable of the file (repeatable; same as a NAME=VALUE argument). The command line wins over "
             "the file's vars.")] = None,
    rerun_failed: Annotated[Optional[str], typer.Option(
        "--rerun-failed", metavar="SUMMARY",
        help="Run only what did not succeed in the run this summary (or run id) records, with what it needs.")] = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Run the tasks that are up to date too; with --rerun-failed, also rerun if the task file "
                        "changed since.")] = False,
    yes: Annotated[bool, typer.Option("-y", "--yes", help="Answer yes to every task's confirm: question (needed without a terminal).")] = False,
    validate: Annotated[bool, typer.Option("--validate", help="Only check the file(s); exit 0 if valid, 2 if not.")] = False,
    dry_run: Annotated[bool, typer.Option("-n", "--dry-run", help="Print the plan and run nothing.")] = False,
    list_: Annotated[bool, typer.Option("-l", "--list", help="List the tasks (name, needs, tags, description) and run nothing.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="With --list: print JSON, for scripts.")] = False,
    all_: Annotated[bool, typer.Option("--all", help="With --list: show the internal tasks too.")] = False,
    summary: Annotated[Optional[str], typer.Option(
        "-o", "--summary", metavar="PATH", show_default=False,
        help=f"Where to write the JSON summary (default {mode.DEFAULT_SUMMARY}); '-' for stdout. A PATH starting "
             "with '-' or naming a task is refused: write --summary=./NAME to mean it.")] = None,
    junit: Annotated[Optional[str], typer.Option("--junit", metavar="PATH", help="Also write the results as JUnit XML.")] = None,
    html: Annotated[Optional[str], typer.Option(
        "--html", metavar="PATH", help="Also write the run as one self-contained HTML page: a timeline per pool slot, "
                                       "the critical path, concurrency, the tasks.")] = None,
    report: Annotated[Optional[str], typer.Option(
        "--report", metavar="SUMMARY", help="Run nothing: draw the run an earlier summary records "
                                            "(with --html PATH, --trace PATH, --timeline).")] = None,
    trace: Annotated[Optional[str], typer.Option(
        "--trace", metavar="PATH", help="Also write the run as Chrome trace JSON, one track per pool slot (open it "
                                        "in Perfetto or chrome://tracing).")] = None,
    timeline: Annotated[bool, typer.Option(
        "--timeline", help="After the closing table, draw the run as a text timeline, one row per task.")] = False,
    log_dir: Annotated[Optional[str], typer.Option("--log-dir", metavar="PATH", help="Folder for the runs' logs (default: .taskrun/runs next to the task file).")] = None,
    history: Annotated[Optional[str], typer.Option("--history", metavar="PATH", help="An earlier summary of this file: start the longest remaining chains first (default: earlier runs of this file).")] = None,
    no_history: Annotated[bool, typer.Option("--no-history", help="Start ready tasks in file order, ignoring earlier runs.")] = False,
    output: Annotated[Optional[str], typer.Option(
        "--output", metavar="MODE", autocompletion=_complete_outputs, show_default=False,
        help="Tasks' output on the console. MODE: stream, group or quiet (overrides the file; default stream).")] = None,
    color: Annotated[str, typer.Option(
        "--color", metavar="WHEN", autocompletion=_complete_colors,
        help="Colour. WHEN: auto (a terminal without NO_COLOR, or FORCE_COLOR), always or never.")] = "auto",
    tail_lines: Annotated[int, typer.Option("--tail-lines", min=0, metavar="N", help="Last lines of each task's output kept in the summary.")] = 50,
    keep_runs: Annotated[int, typer.Option("--keep-runs", min=0, metavar="N", help="Run log folders kept (the oldest are deleted); 0 keeps all.")] = 20,
    executor: Annotated[Optional[str], typer.Option("--executor", metavar="KIND", help="Where tasks run. KIND: local (default) or dask (overrides the file).")] = None,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --executor dask).")] = None,
    connect_timeout: Annotated[Optional[str], typer.Option("--connect-timeout", metavar="DURATION", help="How long to try reaching the Dask scheduler (default 5s).")] = None,
    schema: Annotated[bool, typer.Option("--schema", help="Print the task file's JSON Schema and exit.")] = False,
    recover: Annotated[Optional[str], typer.Option("--recover", metavar="RUN",
                                                   help="Stop what is left of a run whose taskrun was killed "
                                                        "(RUN: a run id or its log folder).")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print taskrun's version and exit.")] = False,
    init: Annotated[bool, typer.Option(
        "--init", help="Write a commented starter taskrun.yaml (or -f PATH) here, never over an existing file; "
                       "print the lines for .gitignore.")] = False,
) -> None:
    """Run the tasks of a YAML task file in parallel and write a JSON summary."""
    try:
        code = _choose_mode(
            file=file, file_option=file_option, targets=tuple(targets or ()), pool=pool, timeout=timeout, fail_fast=fail_fast,
            tags=tuple(tag or ()), skip=tuple(skip or ()), rerun_failed=rerun_failed, force=force,
            validate=validate, dry_run=dry_run, list_tasks=list_, as_json=json_, show_all=all_, summary=summary, junit=junit,
            trace=trace, timeline=timeline,
            log_dir=log_dir, history=history, no_history=no_history, schema=schema, version=version,
            output=output, color=color, tail_lines=tail_lines, keep_runs=keep_runs, executor=executor,
            scheduler=scheduler, connect_timeout=connect_timeout, recover=recover, init=init, yes=yes,
            var=tuple(var or ()), args=tuple((ctx.obj or {}).get("args", ())),
            html=html, report=report)
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
            import traceback

            traceback.print_exc()
        _err(f"taskrun: internal error: {exc!r} (set {DEBUG_VAR}=1 to see the traceback)")
        code = EXIT_INTERNAL
    sys.exit(_finish_output(code))


def _app():
    """The Typer app of `main_command`, made on first use."""
    global app, typer  # Typer evaluates the annotations in this module: `typer` must be one of its names
    if "app" not in globals():
        import typer

        app = typer.Typer(add_completion=True, pretty_exceptions_enable=False, rich_markup_mode=None)
        app.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)(main_command)
    return app


def __getattr__(name: str):
    if name == "app":  # `from runner.cli import app`
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _duration(flag: str, value: str | None, parse=None) -> float | None:
    from .durations import parse_duration

    try:
        return None if value is None else (parse or parse_duration)(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _task_file(file: str | None, file_option: str | None, targets: tuple[str, ...],
               validate: bool) -> tuple[str, tuple[str, ...]]:
    """(the task file, the tasks): `-f PATH`, else a first argument that names a file (with
    --validate every argument does), else the file found from the current folder up (said
    on stderr, so nobody guesses)."""
    from .discovery import find_taskfile, names_a_file, shown

    given = (file,) if file is not None else ()
    if file_option is not None:
        return file_option, given + targets
    if file is not None and (validate or names_a_file(file)):
        return file, targets
    found = shown(find_taskfile(Path.cwd()))
    _err(f"taskrun: using {found}")
    return found, given + targets


def _assignments(var: tuple[str, ...], file: str | None, file_option: str | None, targets: tuple[str, ...],
                 validate: bool) -> tuple[dict[str, str], str | None, tuple[str, ...]]:
    """(variables set, the file argument, the tasks): NAME=VALUE arguments are told apart from
    tasks (a task name holds no '='), and a first argument that is one when it is not a file."""
    if validate or not (var or any("=" in a for a in (file or "", *targets))):
        return {}, file, targets
    from .expand import ASSIGNMENT, split_assignments

    if file is not None and file_option is None and ASSIGNMENT.match(file) and not os.path.isfile(file):
        targets, file = (file,) + targets, None
    targets, given = split_assignments(targets)
    for item in var:
        match = ASSIGNMENT.match(item)
        if match is None:
            raise UsageError(f"--var {item}: write NAME=VALUE (NAME: letters, digits and _, not starting with a digit)")
        given[match.group(1)] = match.group(2)
    return given, file, targets


def _choose_mode(*, file, file_option, targets, pool, timeout, fail_fast, tags, skip, rerun_failed, force, validate,
                 dry_run, list_tasks, as_json, show_all, summary, junit, log_dir, history, no_history, schema,
                 version, output, color, tail_lines, keep_runs, executor, scheduler, connect_timeout,
                 recover, init, yes=False, var=(), args=(), trace=None, timeline=False, html=None, report=None) -> int:
    """Check the flags that go together, turn values into their types, and call one mode."""
    if version:
        return mode.show_version()
    if schema:
        return mode.show_schema()
    if recover is not None:
        return mode.recover(recover, file=file_option or file, log_dir=log_dir)
    if init:
        return mode.init(file_option or file or "taskrun.yaml")
    if html is not None and not html:
        raise UsageError("--html: give a file path")
    if trace is not None and not trace:
        raise UsageError("--trace: give a file path")
    if report is not None:
        if file is not None or file_option is not None or targets:
            raise UsageError(f"--report {report}: draws a summary and runs nothing; it takes no task file or TASK")
        return mode.report(report, html=html, trace=trace, timeline=timeline)
    if summary is not None and summary != "-" and summary.startswith("-"):
        raise UsageError(f"--summary {summary}: a path that starts with '-' looks like an option "
                         f"(to write the summary to that path use --summary=./{summary})")
    given, file, targets = _assignments(var, file, file_option, targets, validate)
    file, targets = _task_file(file, file_option, targets, validate)
    if validate:
        return mode.validate((file,) + targets)

    from .output import COLOR_CHOICES, MODES

    if output is not None and output not in MODES:
        raise UsageError(f"--output: {output!r} is not one of {', '.join(MODES)}")
    if color not in COLOR_CHOICES:
        raise UsageError(f"--color: {color!r} is not one of {', '.join(COLOR_CHOICES)}")
    if as_json and not list_tasks:
        raise UsageError("--json goes with --list: taskrun FILE --list --json")
    if show_all and not list_tasks:
        raise UsageError("--all goes with --list: taskrun FILE --list --all")
    from .durations import parse_timeout

    timeout_s = _duration("--timeout", timeout, parse_timeout)
    connect_timeout_s = _duration("--connect-timeout", connect_timeout)
    if summary is not None and not summary:
        raise UsageError("--summary: give a file path, or - for stdout")
    if junit is not None and not junit:
        raise UsageError("--junit: give a file path")
    if history is not None and no_history:
        raise UsageError("--history and --no-history contradict each other")

    selection = mode.Selection(targets=targets, tags=tags, skip=skip, pool=pool, timeout_s=timeout_s,
                               fail_fast=fail_fast or None, rerun_failed=rerun_failed, force=force,
                               given=tuple(given.items()), args=args)
    if list_tasks:
        return mode.list_tasks(file, selection, as_json=as_json, show_all=show_all, log_dir=log_dir)
    display = mode.Display(output=output, color=color, timeline=timeline)
    where = mode.Where(executor=executor, scheduler=scheduler, connect_timeout_s=connect_timeout_s,
                       summary=summary or mode.DEFAULT_SUMMARY, summary_named=summary is not None, junit=junit, trace=trace, html=html, log_dir=log_dir, tail_lines=tail_lines,
                       keep_runs=keep_runs, history=history, no_history=no_history, yes=yes)
    if dry_run:
        return mode.dry_run(file, selection, display, where)
    return mode.run(file, selection, display, where)


# The options `quick_params` reads: option -> (parameter of `main_command`, its kind): a flag, text,
# repeatable text, or a range of whole numbers (what Typer's range allows). One missing here is still
# an option of the command: Typer reads the command lines that use it.
_FLAG, _TEXT, _LIST = "flag", "text", "list"
QUICK_OPTIONS: dict[str, tuple[str, str | range]] = {
    "-f": ("file_option", _TEXT), "--file": ("file_option", _TEXT),
    "-j": ("pool", range(1, 4097)), "--pool": ("pool", range(1, 4097)),
    "--timeout": ("timeout", _TEXT), "--fail-fast": ("fail_fast", _FLAG),
    "--tag": ("tag", _LIST), "--skip": ("skip", _LIST), "--var": ("var", _LIST),
    "--rerun-failed": ("rerun_failed", _TEXT), "--force": ("force", _FLAG),
    "-y": ("yes", _FLAG), "--yes": ("yes", _FLAG), "--validate": ("validate", _FLAG),
    "-n": ("dry_run", _FLAG), "--dry-run": ("dry_run", _FLAG),
    "-l": ("list_", _FLAG), "--list": ("list_", _FLAG), "--json": ("json_", _FLAG), "--all": ("all_", _FLAG),
    "-o": ("summary", _TEXT), "--summary": ("summary", _TEXT), "--junit": ("junit", _TEXT),
    "--log-dir": ("log_dir", _TEXT), "--history": ("history", _TEXT), "--no-history": ("no_history", _FLAG),
    "--output": ("output", _TEXT), "--color": ("color", _TEXT),
    "--tail-lines": ("tail_lines", range(0, sys.maxsize)), "--keep-runs": ("keep_runs", range(0, sys.maxsize)),
    "--executor": ("executor", _TEXT), "--scheduler": ("scheduler", _TEXT),
    "--connect-timeout": ("connect_timeout", _TEXT), "--schema": ("schema", _FLAG),
    "--recover": ("recover", _TEXT), "--version": ("version", _FLAG), "--init": ("init", _FLAG),
    "--html": ("html", _TEXT), "--report": ("report", _TEXT), "--trace": ("trace", _TEXT),
    "--timeline": ("timeline", _FLAG),
}


def quick_params(argv: list[str]) -> dict | None:
    """The parameters Typer would pass to `main_command` for `argv` (what precedes `--`), those given
    only; None when Typer must read it: an option not in QUICK_OPTIONS (--help among them), short
    options written together (-ny, -j4), a value to check (-j 0) or missing, a completion request.
    As Typer: options and arguments in any order, an option's value is the next argument whatever
    it is (or follows '='), the last of a repeated option wins, a lone '-' is an argument."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in os.environ):
        return None  # the shell asks for completions (click's _PROG_COMPLETE)
    given: dict = {}
    arguments: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg[:1] != "-" or arg == "-":
            arguments.append(arg)
            continue
        option, has_value, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if option not in QUICK_OPTIONS:
            return None
        name, kind = QUICK_OPTIONS[option]
        if kind == _FLAG:
            if has_value:
                return None
            given[name] = True
            continue
        if not has_value:
            value = next(rest, None)
            if value is None:
                return None
        if kind == _LIST:
            given.setdefault(name, []).append(value)
        elif kind == _TEXT:
            given[name] = value
        elif value.isascii() and value.isdigit() and int(value) in kind:
            given[name] = int(value)
        else:
            return None
    if arguments:
        given["file"] = arguments[0]
        if arguments[1:]:
            given["targets"] = arguments[1:]
    return given


def main() -> None:
    """What follows the first `--` is not parsed: it is `${{ args }}` (click would take it as TASKs)."""
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    given = quick_params(argv[:cut])
    if given is not None:  # main_command ends the process with its exit code
        main_command(SimpleNamespace(obj={"args": tuple(argv[cut + 1:])}), **given)
    if "--" in argv:
        _app()(args=argv[:cut], obj={"args": tuple(argv[cut + 1:])})
    else:
        _app()()
