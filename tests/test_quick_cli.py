"""The quick path of the command line (`runner.cli.quick_params`): what it reads, it reads
exactly as Typer does (the same values reach the mode), and everything else is Typer's."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import typer.main

from runner import cli

COMMAND = typer.main.get_command(cli.app)
OPTIONS = {flag: p for p in COMMAND.params if p.param_type_name == "option" for flag in p.opts}


@pytest.mark.parametrize("flag", sorted(cli.QUICK_OPTIONS))
def test_each_quick_option_is_the_commands_option_read_the_same_way(flag):
    name, kind = cli.QUICK_OPTIONS[flag]
    param = OPTIONS[flag]
    assert param.name == name
    assert all(cli.QUICK_OPTIONS.get(other) == (name, kind) for other in param.opts)  # -j and --pool alike
    assert not param.secondary_opts  # no --no-FLAG for the quick path to miss
    assert param.is_flag == (kind == cli._FLAG)
    assert param.multiple == (kind == cli._LIST)
    if isinstance(kind, range):
        assert (param.type.min, param.type.max) == (kind.start, None if kind.stop == sys.maxsize else kind.stop - 1)
        assert not (param.type.min_open or param.type.max_open or param.type.clamp)
    elif kind != cli._FLAG:
        assert type(param.type).__name__ == "StringParamType"
    assert param.nargs == 1


# Options Typer itself must answer: the completion installers (help is not a parameter of the command).
TYPER_ONLY = {"--install-completion", "--show-completion"}


def test_every_option_of_the_command_is_read_by_the_quick_path_or_is_typers_own():
    """An option added to the command and not to QUICK_OPTIONS would quietly make every
    command line that uses it pay for building Typer: a new flag is listed in both."""
    assert set(OPTIONS) - set(cli.QUICK_OPTIONS) == TYPER_ONLY


class _Chosen(BaseException):  # not an Exception: main_command's own handlers let it through
    pass


@pytest.fixture
def chosen(monkeypatch):
    """What main_command hands to the modes, by Typer and by the quick path."""

    def capture(**kwargs):
        raise _Chosen(kwargs)

    monkeypatch.setattr(cli, "_choose_mode", capture)

    def by_typer(argv: list[str]) -> dict:
        with pytest.raises(_Chosen) as caught:
            COMMAND.main(args=argv, prog_name="taskrun", standalone_mode=False, obj={"args": ("x y",)})
        return caught.value.args[0]

    def by_quick(argv: list[str]) -> dict | None:
        given = cli.quick_params(argv)
        if given is None:
            return None
        with pytest.raises(_Chosen) as caught:
            cli.main_command(SimpleNamespace(obj={"args": ("x y",)}), **given)
        return caught.value.args[0]

    return by_typer, by_quick


QUICK = [
    [], ["tasks.yaml"], ["tasks.yaml", "build", "test"], ["build"], ["-"], ["tasks.yaml", "-"],
    ["tasks.yaml", "-o", "s.json"], ["-o", "s.json", "tasks.yaml"], ["--summary=s.json", "tasks.yaml"],
    ["--summary=", "tasks.yaml"], ["-o", "-"], ["-o", "--weird"], ["--summary", "-x"], ["-o", "a", "--summary", "b"],
    ["-j", "4", "tasks.yaml"], ["--pool=0004"], ["-j", "4096"], ["--tail-lines", "0"], ["--keep-runs=900000"],
    ["--tag", "a", "--tag=b", "x", "--skip", "c"], ["--var", "A=1", "B=2", "--var=C=3"],
    ["-n", "-y", "-l", "--json", "--all", "--force", "--fail-fast", "--no-history", "--validate"],
    ["--dry-run", "--list", "--yes", "-n", "-n"], ["--version"], ["--schema", "x"], ["--init", "-f", "ops.yaml"],
    ["-f", "ops.yaml", "deploy", "version=1.2"], ["--file", "ops.yaml", "--timeout", "5m", "--color", "never"],
    ["--output", "group", "--junit", "j.xml", "--log-dir", "logs", "--history", "h.json", "--rerun-failed", "s.json"],
    ["--executor", "dask", "--scheduler", "tcp://h:1", "--connect-timeout", "2s"], ["--recover", "RUN"],
    ["--color", "sometimes"], ["--output=loud"], ["tâche", "ünïcode=ü"],
    ["tasks.yaml", "--html", "r.html", "--trace=t.json", "--timeline"], ["--report", "s.json", "--timeline"],
]
TYPERS = [
    ["--help"], ["-h"], ["tasks.yaml", "--help"], ["-j", "0"], ["-j", "4097"], ["-j", "x"], ["-j", "+4"],
    ["-j", " 4"], ["-j", "٤"], ["--tail-lines=-1"], ["-j4"], ["-ny"], ["-o"], ["tasks.yaml", "--tag"],
    ["--dry-run=yes"], ["--no-such-option"], ["-x"], ["---o"], ["--install-completion"], ["--show-completion"],
]


@pytest.mark.parametrize("argv", QUICK, ids=" ".join)
def test_a_quick_command_line_reaches_the_mode_as_typer_reads_it(chosen, argv):
    by_typer, by_quick = chosen
    quick = by_quick(argv)
    assert quick is not None
    assert quick == by_typer(argv)


@pytest.mark.parametrize("argv", TYPERS, ids=" ".join)
def test_help_usage_errors_and_what_the_quick_path_does_not_know_go_to_typer(argv):
    assert cli.quick_params(argv) is None


def test_a_completion_request_goes_to_typer(monkeypatch):
    monkeypatch.setenv("_TASKRUN_COMPLETE", "complete_bash")
    assert cli.quick_params(["tasks.yaml"]) is None


_IMPORTS_OF = """
import sys
sys.argv = ["taskrun", *sys.argv[1:]]
from runner.cli import main
try:
    main()
except SystemExit as exc:
    print("typer imported:", "typer" in sys.modules, file=sys.stderr)
    sys.exit(exc.code)
"""


@pytest.mark.parametrize(("args", "code", "imported"), [
    (["tasks.yaml", "-o", "s.json"], 0, False), (["tasks.yaml", "--dry-run"], 0, False),
    (["tasks.yaml", "--", "x"], 0, False), (["--help"], 0, True), (["tasks.yaml", "-j", "0"], 2, True),
])
def test_a_plain_run_is_read_without_typer(taskrun, args, code, imported):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
    r = subprocess.run([sys.executable, "-c", _IMPORTS_OF, *args], cwd=taskrun.cwd, env=taskrun.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == code, r.stderr
    assert r.stderr.splitlines()[-1] == f"typer imported: {imported}"
