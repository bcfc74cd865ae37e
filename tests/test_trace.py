"""--trace PATH: the run as Chrome trace event JSON, checked event by event against the
summary and against the Trace Event Format's rules for each kind of event."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from conftest import MIXED_RUN, by_name, check
from runner.trace import write_trace


# The Trace Event Format (the JSON Object Format): what each phase must carry.
PHASES = set("BEXiIC") | set("bnesStTfpPNODMVvRc") | {"(", ")"}
METADATA = {"process_name": "name", "thread_name": "name", "process_labels": "labels",
            "process_sort_index": "sort_index", "thread_sort_index": "sort_index"}
TOP_LEVEL = {"traceEvents", "displayTimeUnit", "systemTraceEvents", "otherData", "stackFrames", "samples",
             "controllerTraceDataKey", "powerTraceAsString", "metadata"}


def check_trace_format(trace: dict) -> None:
    """Every rule of the format that applies to the events taskrun writes."""
    assert set(trace) <= TOP_LEVEL, set(trace) - TOP_LEVEL
    assert isinstance(trace["traceEvents"], list)
    assert trace.get("displayTimeUnit", "ms") in ("ms", "ns")
    assert isinstance(trace.get("otherData", {}), dict)
    for e in trace["traceEvents"]:
        ph = e["ph"]
        assert isinstance(ph, str) and len(ph) == 1 and ph in PHASES, e
        assert isinstance(e["name"], str) and e["name"], e
        assert isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int), e
        assert isinstance(e.get("cat", ""), str) and isinstance(e.get("args", {}), dict), e
        if ph != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0, e  # microseconds
        if ph == "X":  # complete: its duration, in microseconds
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0, e
        elif ph == "M":  # metadata: a known name and its one argument
            key = METADATA[e["name"]]
            value = e["args"][key]
            assert isinstance(value, int) if key == "sort_index" else isinstance(value, str), e
        elif ph == "C":  # counter: each argument a series, its value a number
            assert e["args"] and all(isinstance(v, (int, float)) for v in e["args"].values()), e
        elif ph in "iI":
            assert e.get("s", "t") in ("g", "p", "t"), e
    # Complete events of one thread nest or follow each other; the tracks here never nest.
    tracks: dict[int, list] = {}
    for e in trace["traceEvents"]:
        if e["ph"] == "X":
            tracks.setdefault(e["tid"], []).append((e["ts"], e["ts"] + e["dur"], e["name"]))
    for tid, spans in tracks.items():
        spans.sort()
        for (_, end, before), (start, _, after) in zip(spans, spans[1:]):
            assert end <= start, f"track {tid}: {after} starts inside {before}"


def us_since(start: str, origin: str) -> int:
    return round((datetime.fromisoformat(start) - datetime.fromisoformat(origin)).total_seconds() * 1_000_000)


@pytest.fixture
def traced(taskrun):
    taskrun.write("tasks.yaml", MIXED_RUN)
    check(taskrun("tasks.yaml", "--trace", "out/trace.json"), 1)
    return json.loads((taskrun.cwd / "out" / "trace.json").read_text()), taskrun.summary()


def test_the_trace_follows_the_format(traced):
    trace, _ = traced
    check_trace_format(trace)
    assert trace["displayTimeUnit"] == "ms"


def test_each_attempt_is_a_complete_event_on_its_slots_track(traced):
    trace, summary = traced
    bars = {(e["args"]["task"], e["args"]["attempt"]): e for e in trace["traceEvents"]
            if e["ph"] == "X" and e.get("cat") != "retry_wait"}
    attempts = {(t["name"], n): a for t in summary["tasks"] for n, a in enumerate(t["attempts"], start=1)}
    assert set(bars) == set(attempts)
    outcomes = {("lint", 1): "failed", ("flaky", 1): "failed", ("slow", 1): "timeout"}
    for key, a in attempts.items():
        e = bars[key]
        assert (e["name"], e["pid"], e["tid"]) == (key[0], 1, a["slot"])
        assert e["ts"] == us_since(a["started_at"], summary["started_at"])
        # from its start stamp to its end stamp, both to the millisecond
        assert e["dur"] == us_since(a["finished_at"], summary["started_at"]) - e["ts"]
        assert abs(e["dur"] - round(a["duration_s"] * 1_000_000)) <= 1000
        outcome = outcomes.get(key, "success")
        assert (e["args"]["outcome"], e["args"]["exit_code"], e["args"]["signal"]) == (
            outcome, a["exit_code"], a["signal"])
        assert e["cat"].split(",")[0] == outcome
        assert ("critical_path" in e["cat"].split(",")) == (key[0] in ("compile", "integration", "package"))
    assert bars[("lint", 1)]["args"]["stderr_tail"] == "bad\n"
    assert bars[("slow", 1)]["args"]["reason"] == by_name(summary)["slow"]["attempts"][0]["reason"]


def test_tracks_are_named_and_the_retry_wait_has_its_own(traced):
    trace, summary = traced
    names = {e["tid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}
    assert names == {0: "slot 0", 1: "slot 1", 2: "slot 2", 3: "retry wait 0"}
    (process,) = [e for e in trace["traceEvents"] if e["name"] == "process_name"]
    assert process["args"]["name"] == f"taskrun tasks.yaml (run {summary['run_id']})"
    (wait,) = [e for e in trace["traceEvents"] if e.get("cat") == "retry_wait"]
    first, second = by_name(summary)["flaky"]["attempts"]
    assert (wait["name"], wait["tid"], wait["args"]) == (
        "flaky (waiting to retry)", 3, {"task": "flaky", "after_attempt": 1, "next_attempt": 2})
    assert wait["ts"] == us_since(first["finished_at"], summary["started_at"])
    assert wait["ts"] + wait["dur"] == us_since(second["started_at"], summary["started_at"])
    assert abs(wait["ts"] + wait["dur"] - us_since(second["started_at"], summary["started_at"])) <= 1
    assert wait["dur"] >= 200_000 - 1_000  # the retry delay at least (the summary's stamps are milliseconds)


def test_the_running_counter_and_the_runs_data(traced):
    trace, summary = traced
    counter = [e for e in trace["traceEvents"] if e["ph"] == "C"]
    assert counter[0]["ts"] == 0 and counter[-1]["args"] == {"attempts": 0}
    assert max(e["args"]["attempts"] for e in counter) <= summary["pool"]
    assert [e["ts"] for e in counter] == sorted(e["ts"] for e in counter)
    other = trace["otherData"]
    assert (other["run_id"], other["file"], other["status"], other["exit_code"]) == (
        summary["run_id"], "tasks.yaml", "failed", 1)
    assert other["critical_path"] == ["compile", "integration", "package"]
    assert other["not_run"] == {"docs": "skipped"}


def test_a_stored_summary_draws_the_same_trace(traced, taskrun):
    trace, summary = traced
    write_trace(summary, str(taskrun.cwd / "again.json"))
    assert json.loads((taskrun.cwd / "again.json").read_text()) == trace


def test_a_trace_path_that_cannot_be_written_is_refused_before_anything_runs(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    (taskrun.cwd / "folder").mkdir()
    r = check(taskrun("tasks.yaml", "--trace", "folder"), 2)
    assert r.stderr == "taskrun: --trace folder: is a folder; give a file path, e.g. folder/taskrun-trace.json\n"
    r = check(taskrun("tasks.yaml", "--trace", ""), 2)
    assert r.stderr == "taskrun: --trace: give a file path\n"
    assert not (taskrun.cwd / "ran").exists()


def test_a_trace_that_cannot_be_written_at_the_end_is_exit_3_after_the_summary(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: 'true'\n")
    r = check(taskrun("tasks.yaml", "--trace", "tasks.yaml/trace.json"), 3)
    assert r.stderr == "taskrun: cannot write tasks.yaml/trace.json: tasks.yaml is not a folder\n"
    assert taskrun.summary()["status"] == "success"
