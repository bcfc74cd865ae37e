"""`--junit PATH` through the real command: the report validates against the
JUnit schema Jenkins reads (tests/data/junit-10.xsd) and a JUnit parser reads
back exactly what the summary says."""

from __future__ import annotations

from pathlib import Path

import junitparser
import pytest
import xmlschema

from runner.junit import classname, clean_text

XSD = Path(__file__).resolve().parent / "data" / "junit-10.xsd"

# One task per way a task can end. `noisy` writes colours, a window title (OSC),
# control characters XML cannot hold, a NUL, invalid UTF-8 and markup.
TASKS = r"""
version: 1
pool: 1
kill_grace: 0.5s
tasks:
  ok: echo fine
  noisy:
    cmd: printf '\033[1;31mred\033[0m\001\013 \033]0;title\007<b>&amp;]]>\000\377\n' >&2; exit 3
    retries: 1
  slow: {cmd: sleep 30, timeout: 0.2s}
  after: {cmd: echo never, needs: [noisy]}
  missing: {cmd: [./no-such-program]}
  allowed: {cmd: "echo allowed >&2; exit 4", allow_failure: true}
"""


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(XSD)


def read_back(path: Path):
    suites = list(junitparser.JUnitXml.fromfile(str(path)))
    assert len(suites) == 1
    return suites[0]


def test_every_way_a_task_ends_validates_and_reads_back(taskrun, schema):
    taskrun.write("sub/ci.yaml", TASKS)
    r = taskrun("sub/ci.yaml", "--junit", "report.xml")
    assert r.returncode == 1, r.stderr
    report = taskrun.cwd / "report.xml"
    schema.validate(str(report))
    summary = taskrun.summary()
    suite = read_back(report)
    assert (suite.name, suite.tests, suite.failures, suite.errors, suite.skipped) == (
        "taskrun sub/ci.yaml", 6, 4, 0, 1)
    assert suite.time == pytest.approx(summary["duration_s"], abs=0.001)
    assert suite.hostname == summary["host"]
    cases = {c.name: c for c in suite}
    assert list(cases) == ["ok", "noisy", "slow", "after", "missing", "allowed"]
    assert {c.classname for c in suite} == {"sub.ci"}
    by_name = {t["name"]: t for t in summary["tasks"]}
    for name, case in cases.items():
        assert case.time == pytest.approx(by_name[name]["duration_s"] or 0.0, abs=0.001)

    ok = cases["ok"]
    assert (ok.is_passed, ok.result, ok.system_out, ok.system_err) == (True, [], "fine\n", None)

    [failure] = cases["noisy"].result
    assert isinstance(failure, junitparser.Failure)
    assert (failure.type, failure.message) == ("failed", "exit code 3; 2 attempts")
    assert failure.text == "red <b>&amp;]]>\ufffd\n"
    assert cases["noisy"].system_err == "red <b>&amp;]]>\ufffd\n"

    [failure] = cases["slow"].result
    assert (failure.type, failure.message) == ("timeout", "timed out after 200ms (signal SIGTERM); 1 attempt")

    [skipped] = cases["after"].result
    assert isinstance(skipped, junitparser.Skipped)
    assert (skipped.type, skipped.message) == ("skipped", "skipped: needs 'noisy', which failed")

    [failure] = cases["missing"].result
    assert failure.message == ("exit code 127: command not found: ./no-such-program; 1 attempt")

    [failure] = cases["allowed"].result
    assert failure.message == "exit code 4; allowed to fail (allow_failure), the run did not fail for it; 1 attempt"
    assert failure.text == "allowed\n"


def test_cancelled_tasks_are_skipped_with_the_reason(taskrun, schema):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 1
        fail_fast: true
        tasks:
          first: exit 1
          second: echo never
    """)
    r = taskrun("tasks.yaml", "--junit", "out/report.xml")
    assert r.returncode == 1, r.stderr
    schema.validate(str(taskrun.cwd / "out" / "report.xml"))
    [skipped] = {c.name: c for c in read_back(taskrun.cwd / "out" / "report.xml")}["second"].result
    assert (skipped.type, skipped.message) == ("cancelled", "cancelled: fail_fast: 'first' failed")


def test_a_green_run_has_no_failure(taskrun, schema):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n  b: 'true'\n")
    r = taskrun("tasks.yaml", "--junit", "report.xml")
    assert r.returncode == 0, r.stderr
    schema.validate(str(taskrun.cwd / "report.xml"))
    suite = read_back(taskrun.cwd / "report.xml")
    assert (suite.tests, suite.failures, suite.skipped) == (2, 0, 0)
    assert all(c.is_passed for c in suite)


def test_a_report_that_cannot_be_written_is_exit_3_after_the_summary(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
    r = taskrun("tasks.yaml", "--junit", "tasks.yaml/report.xml")
    assert r.returncode == 3
    assert r.stderr == "taskrun: cannot write tasks.yaml/report.xml: tasks.yaml is not a folder\n"
    assert taskrun.summary()["status"] == "success"


@pytest.mark.parametrize(("text", "clean"), [
    ("\x1b[1;31mred\x1b[0m", "red"),
    ("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
    ("tab\tnl\ncr\r", "tab\tnl\ncr\r"),
    ("\x00\x01\x08\x0b\x0c\x0e\x1f\x7f|\ufffe\uffff", "\x7f|"),
    ("emoji 🚀 and ü", "emoji 🚀 and ü"),
])
def test_clean_text_keeps_only_what_xml_holds(text, clean):
    assert clean_text(text) == clean


@pytest.mark.parametrize(("file", "name"), [
    ("tasks.yaml", "tasks"), ("tasks/ci.yaml", "tasks.ci"), ("./ops/nightly.yml", "ops.nightly"),
    ("/abs/path/deploy.yaml", "deploy"), ("../up/t.yaml", "up.t"),
])
def test_classname_comes_from_the_task_file(file, name):
    assert classname(file) == name


def test_an_empty_junit_path_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    r = taskrun("tasks.yaml", "--junit", "")
    assert r.returncode == 2
    assert r.stderr.strip() == "taskrun: --junit: give a file path"
    assert not (taskrun.cwd / "ran").exists()
