"""The command line is a contract (schemas/cli.json): the real command offers exactly
the documented options, the exit codes are the documented ones, and the README
names every option and variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer.main

from runner import errors
from runner.cli import app

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = json.loads((ROOT / "schemas" / "cli.json").read_text())
README = (ROOT / "README.md").read_text()


def _offered() -> dict[tuple[str, ...], bool]:
    command = typer.main.get_command(app)
    return {tuple(p.opts): not p.is_flag for p in command.params if p.param_type_name == "option"}


def test_the_command_offers_exactly_the_documented_options():
    documented = {tuple(o["flags"]): o["takes_value"] for o in CONTRACT["options"]}
    offered = _offered()
    assert sorted(set(documented) - set(offered)) == [], "documented options the command lost"
    assert sorted(set(offered) - set(documented)) == [], "new options: add them to schemas/cli.json and README.md"
    assert offered == documented, "an option changed between a flag and an option with a value"


def test_the_documented_options_work_through_the_real_command(taskrun):
    r = taskrun("--help")
    assert r.returncode == 0
    for option in CONTRACT["options"]:
        assert option["flags"][-1] in r.stdout, option["flags"]


def test_exit_codes_are_the_documented_ones():
    constants = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert constants == {int(code) for code in CONTRACT["exit_codes"] if code.isdigit()}
    assert set(CONTRACT["exit_codes"]) - {str(c) for c in constants} == {"128+N"}  # every other signal


def test_the_readme_documents_every_option_and_variable():
    for option in CONTRACT["options"]:
        assert re.search(rf"(?<![\w-]){re.escape(option['flags'][-1])}\b", README), option["flags"][-1]
    for name in (*CONTRACT["environment"], *CONTRACT["task_environment"]):
        assert re.search(rf"\b{name}\b", README), name
