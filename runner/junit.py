"""The run as JUnit XML (`--junit PATH`), for CI systems that show test reports.

Built from the summary dict, so it says exactly what the summary says: one
`testsuite` for the run, one `testcase` per task in file order. Failed and
timed-out tasks get a `failure` (exit code or signal and attempts in its
message, the stderr tail as its text), skipped, cancelled and up-to-date ones
a `skipped` with the reason (`up_to_date: 2 sources, commands and env unchanged ...`), every task its output tails as `system-out`/`system-err`.
The widely used Jenkins/Ant schema allows no properties inside a testcase,
hence everything else goes into the failure message. Task output is cleaned of
ANSI escapes and of the characters XML 1.0 cannot hold.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from .durations import format_duration

# CSI (colours, cursor moves), OSC (titles, links; ended by BEL or ST), and two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean_text(text: str | None) -> str:
    """`text` without ANSI escapes and without characters XML 1.0 forbids."""
    if not text:
        return ""
    return _NOT_XML.sub("", _ANSI.sub("", text))


def classname(file: str) -> str:
    """`tasks/ci.yaml` -> `tasks.ci`: the task file as a dotted name, as test reports group by it."""
    path = PurePath(file)
    parts = [p for p in path.with_suffix("").parts if p not in ("/", ".", "..")]
    if path.is_absolute():
        parts = parts[-1:]  # a machine's folders say nothing about the project
    return ".".join(parts) or "taskrun"


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


def _attempts(task: dict) -> str:
    n = len(task.get("attempts") or ())
    return f"{n} attempt{'s' if n != 1 else ''}"


def at_step(task: dict) -> str:
    """` at step 2 (lint)`: the step that ended a task with steps without success; "" otherwise."""
    from .model import step_label

    step = task.get("failed_step")
    return f" at step {step['index']} ({step_label(step['name'], step['cmd'])})" if step else ""


def failure_message(task: dict) -> str:
    """`exit code 2; 2 attempts`, `timed out after 30s (ended by SIGKILL); 1 attempt` ..."""
    code, sig = task.get("exit_code"), task.get("signal")
    ended = f"signal {sig}" if sig else f"exit code {code}"
    if task["status"] == "timeout":
        what = f"timed out after {format_duration(task.get('timeout_s'))} ({ended})"
    elif code is not None and task.get("pid") is None and task.get("reason"):
        what = f"{ended}: {task['reason']}"  # it could not start
    else:
        what = ended
    what += at_step(task)
    if task.get("allow_failure"):
        what += "; allowed to fail (allow_failure), the run did not fail for it"
    return clean_text(f"{what}; {_attempts(task)}")


def junit_xml(summary: dict) -> str:
    """The JUnit XML text of a summary dict (schemas/summary.schema.json)."""
    import xml.etree.ElementTree as ET  # here: `import runner.cli` must stay fast

    tasks = summary.get("tasks", [])
    counts = summary.get("counts", {})
    cls = classname(summary.get("file", "taskrun"))
    suite = ET.Element("testsuite", {
        "name": f"taskrun {summary.get('file', '')}".strip(),
        "tests": str(len(tasks)),
        "failures": str(counts.get("failed", 0) + counts.get("timeout", 0)),
        "errors": "0",
        "skipped": str(counts.get("skipped", 0) + counts.get("cancelled", 0) + counts.get("up_to_date", 0)),
        "time": _seconds(summary.get("duration_s")),
        "timestamp": (summary.get("started_at") or "").removesuffix("Z"),
        "hostname": summary.get("host", ""),
    })
    for task in tasks:
        case = ET.SubElement(suite, "testcase", {
            "name": task["name"], "classname": cls, "time": _seconds(task.get("duration_s")),
        })
        status = task["status"]
        if status in ("failed", "timeout"):
            failure = ET.SubElement(case, "failure", {"type": status, "message": failure_message(task)})
            failure.text = clean_text(task.get("stderr_tail"))
        elif status in ("skipped", "cancelled", "up_to_date"):
            reason = clean_text(task.get("reason") or status)
            ET.SubElement(case, "skipped", {"type": status, "message": f"{status}: {reason}"})
        for key, tag in (("stdout_tail", "system-out"), ("stderr_tail", "system-err")):
            text = clean_text(task.get(key))
            if text:
                ET.SubElement(case, tag).text = text
    ET.indent(suite, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def write_junit(target, summary: dict) -> None:
    """Write the report to `target` (see `target.open_target`: replaced atomically, its
    folder made first, or written into a device or a pipe)."""
    target.write(junit_xml(summary))
