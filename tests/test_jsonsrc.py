"""Task files written as JSON (as programs write large ones): read by the json module where
YAML reads the text the same way (`runner.jsonsrc`), by the YAML reader everywhere else.
Either way the data, the positions and the messages are the YAML reader's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import by_name, check, spot
from runner import jsonsrc, load, yamlsrc


def yaml_reading(text: str) -> yamlsrc.Source:
    """The text as the YAML reader alone reads it."""
    return yamlsrc._read(text, "tasks.json", load._key_noun, load.holds_text)


def task_file(n: int, **extra) -> dict:
    tasks = {f"t{i}": {"cmd": f"echo {i}", "needs": [f"t{j}" for j in (i - 1, i - 7) if j >= 0 and i % 3],
                       "timeout": "5m", "tags": ["bulk"]} for i in range(n)}
    return {"version": 1, "pool": 4, "timeout": "10m", "tasks": tasks, **extra}


FAST = {
    "one line": json.dumps(task_file(50)),
    "indented": json.dumps(task_file(50), indent=2),
    "no spaces": json.dumps(task_file(20), separators=(",", ":")),
    "blank lines and spaces": '\n\n  {"version": 1,\n "tasks":\n\n {"a": {"cmd": "x"},\n   "b": {"cmd": "y"}}}  \n',
    "escapes": json.dumps({"version": 1, "tasks": {"a": {"cmd": "printf '\\t%s\\n' \"\u00e9\" \\\\"}}}),
    "null, lists, numbers where no text is expected": json.dumps(
        {"version": 1, "pool": 2, "fail_fast": True, "tasks": {"a": {"cmd": ["true"], "retries": 2, "description": None}}}),
    "empty": "{}",
    "empty tasks": '{"version": 1, "tasks": {}}',
    "steps and env": json.dumps({"version": 1, "env": {"A": "1"}, "tasks": {
        "a": {"steps": ["echo 1", {"cmd": "echo 2"}], "env": {"B": "x"}}}}),
}


@pytest.mark.parametrize("text", FAST.values(), ids=FAST.keys())
def test_the_json_module_reads_the_same_data_and_positions_as_yaml(text):
    fast = jsonsrc.read_json(text, load.holds_text)
    assert fast is not None
    data, positions = fast
    full = yaml_reading(text)
    assert data == full.data and full.problems == []
    assert positions and all(full.positions[path] == at for path, at in positions.items())
    if isinstance(data.get("tasks"), dict):  # each task's key: its line is part of its record
        assert {("tasks", name) for name in data["tasks"]} <= positions.keys()


@pytest.mark.parametrize("text", FAST.values(), ids=FAST.keys())
def test_the_other_positions_are_found_when_one_is_asked_for(text):
    source = yamlsrc.parse_yaml(text, file="tasks.json", key_noun=load._key_noun, is_text=load.holds_text)
    full = yaml_reading(text)
    assert source.complete is not None  # read by the json module
    for path in full.positions:
        assert source.position(path) == full.positions[path]
    assert source.all_positions() == full.positions and source.complete is None


FALLBACK = {  # each one read otherwise by YAML, or refused by it: the YAML reader reads them
    "an exponent (YAML 1.1: text)": '{"version": 1, "tasks": {"a": {"cmd": "x", "timeout": 1e3}}}',
    "a fraction": '{"version": 1, "tasks": {"a": {"cmd": "x", "timeout": 1.5}}}',
    "a number where text is expected": '{"version": 1, "tasks": {"a": {"cmd": 5}}}',
    "a boolean where text is expected": '{"version": 1, "tasks": {"a": {"cmd": "x", "env": {"X": true}}}}',
    "a duplicate task": '{"version": 1, "tasks": {"a": {"cmd": "x"}, "a": {"cmd": "y"}}}',
    "a duplicate key below": '{"version": 1, "tasks": {"a": {"cmd": "x", "cmd": "y"}}}',
    "a duplicate key at the top": '{"version": 1, "version": 1, "tasks": {}}',
    "not ASCII": '{"version": 1, "tasks": {"\u00e9t\u00e9": "x"}}',
    "a tab": '{"version": 1,\t"tasks": {}}',
    "a carriage return": '{"version": 1,\r\n"tasks": {}}',
    "an escaped slash": '{"version": 1, "tasks": {"a": "x\\/y"}}',
    "a surrogate pair": '{"version": 1, "tasks": {"a": "\\ud83d\\ude00"}}',
    "a NUL escape": '{"version": 1, "tasks": {"a": "x\\u0000"}}',
    "a long key": '{"version": 1, "tasks": {"' + "k" * 1001 + '": "x"}}',
    "deep nesting": '{"version": 1, "tasks": {"a": {"cmd": "x", "vars": ' + "[" * 120 + "]" * 120 + "}}}",
    "something after the document": '{"version": 1, "tasks": {}} {}',
    "not a mapping": '["version", 1]',
    "YAML, not JSON": "version: 1\ntasks:\n  a: x\n",
}


@pytest.mark.parametrize("text", FALLBACK.values(), ids=FALLBACK.keys())
def test_a_text_json_could_read_otherwise_goes_to_the_yaml_reader(text):
    assert jsonsrc.read_json(text, load.holds_text) is None
    try:
        source = yamlsrc.parse_yaml(text, file="tasks.json", key_noun=load._key_noun, is_text=load.holds_text)
    except Exception as exc:  # noqa: BLE001 - refused by both alike
        with pytest.raises(type(exc)):
            yaml_reading(text)
        return
    full = yaml_reading(text)
    assert (source.data, source.problems) == (full.data, full.problems)
    assert source.all_positions() == full.positions


@pytest.mark.parametrize("indent", [None, 2], ids=["one line", "indented"])
def test_problems_deep_in_a_large_json_file_point_at_their_place(taskrun, indent):
    doc = task_file(2000)
    doc["tasks"]["t1500"]["timeout"] = "5x"
    doc["tasks"]["t1700"]["needs"] = ["nope"]
    doc["tasks"]["t1999"]["cmd"] = "touch ran"
    text = json.dumps(doc, indent=indent)
    taskrun.write("tasks.json", text)
    r = check(taskrun("tasks.json"), 2)
    timeout_at = spot(text, '"timeout": "5x"')
    needs_at = spot(text, '"nope"')
    assert f"tasks.json:{timeout_at}: tasks.t1500.timeout: '5x' is not a duration" in r.stderr
    assert f"tasks.json:{needs_at}: tasks.t1700.needs.0: unknown task 'nope'" in r.stderr
    assert not (taskrun.cwd / "ran").exists()


def test_a_large_json_file_runs_and_lists_each_task_at_its_line(taskrun):
    text = json.dumps(task_file(300), indent=1)
    taskrun.write("tasks.json", text)
    listed = json.loads(check(taskrun("tasks.json", "--list", "--json"), 0).stdout)
    rows = listed["tasks"] if isinstance(listed, dict) else listed
    assert {t["name"]: t["line"] for t in rows} == {
        f"t{i}": int(spot(text, f'"t{i}": {{').split(":")[0]) for i in range(300)}
    check(taskrun("tasks.json", "-o", "summary.json"), 0)
    tasks = by_name(taskrun.summary("summary.json"))
    assert len(tasks) == 300 and {t["status"] for t in tasks.values()} == {"success"}
    assert tasks["t299"]["stdout_tail"] == "299\n"


def test_a_json_file_with_a_matrix_and_vars_runs_as_its_yaml_reading_says(taskrun):
    doc = {"version": 1, "vars": {"greeting": "hi"}, "tasks": {
        "test": {"cmd": "echo ${{ vars.greeting }} ${{ matrix.py }} > out-${{ matrix.py }}",
                 "matrix": {"py": ["3.11", "3.12"]}},
        "after": {"cmd": "cat out-3.11 out-3.12", "needs": ["test"]}}}
    taskrun.write("tasks.json", json.dumps(doc))
    check(taskrun("tasks.json", "-o", "summary.json"), 0)
    tasks = by_name(taskrun.summary("summary.json"))
    assert tasks["after"]["stdout_tail"] == "hi 3.11\nhi 3.12\n"
    doc["tasks"]["test"]["timeout"] = "soon"
    text = json.dumps(doc)
    taskrun.write("tasks.json", text)
    r = check(taskrun("tasks.json"), 2)
    assert f"tasks.json:{spot(text, chr(34) + 'timeout')}: tasks.test.timeout: 'soon' is not a duration" in r.stderr


def test_a_json_file_is_read_without_importing_the_yaml_library(tmp_path):
    """PyYAML's import is part of every start that reads YAML; a JSON file the json module
    reads does without it, until a position it lacks is asked for."""
    (tmp_path / "t.json").write_text(json.dumps(task_file(20)))
    (tmp_path / "t.yaml").write_text("version: 1\ntasks:\n  a: echo a\n")
    probe = ("import sys; from runner.load import load_taskfile; load_taskfile(sys.argv[1]); "
             "print('yaml' in sys.modules)")
    imported = {name: subprocess.run([sys.executable, "-c", probe, str(tmp_path / name)], capture_output=True,
                                     text=True, check=True).stdout.strip() for name in ("t.json", "t.yaml")}
    assert imported == {"t.json": "False", "t.yaml": "True"}
