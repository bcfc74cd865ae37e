"""Inside CI, through the real command with the CI's variables set: GitHub
annotations and step summary; nothing of it in GitLab or outside CI; the JSON
summary on stdout for a pipe."""

from __future__ import annotations

import re

import json
import subprocess
import sys

from conftest import by_name, taskrun_argv

from runner.ci import STEP_SUMMARY_LIMIT, step_summary

TASKS = """
version: 1
pool: 2
kill_grace: 0.5s
tasks:
  ok: echo fine
  build:
    cmd: "echo 'error: 50% done, a:b' >&2; exit 2"
  slow: {cmd: sleep 30, timeout: 0.2s}
  deploy: {cmd: echo never, needs: [build]}
  lint: {cmd: exit 1, allow_failure: true}
"""


FENCE = re.compile(r"^::(stop-commands::)?[0-9a-f]{32}::?$|^::stop-commands::[0-9a-f]{32}$")


def annotation_lines(text: str) -> list[str]:
    """Workflow commands, without the fences around echoed task output (`::stop-commands::TOKEN`, `::TOKEN::`).
    Every fence must be closed by a line that is exactly `::TOKEN::`, or GitHub would
    ignore every workflow command after it, the annotations included."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("::stop-commands::"):
            token = line.removeprefix("::stop-commands::")
            assert f"::{token}::" in lines[i + 1:], f"fence opened at line {i + 1} is never closed"
        assert not re.search(r".::[0-9a-f]{32}::$", line), f"a fence's end is not alone on its line: {line!r}"
    return [line for line in lines if line.startswith("::") and not FENCE.match(line)]


def test_github_gets_one_annotation_per_failed_task_after_the_report(taskrun):
    taskrun.write("ci/tasks.yaml", TASKS)
    step = taskrun.cwd / "step-summary.md"
    step.write_text("earlier content of this step\n")
    r = taskrun("ci/tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    assert r.returncode == 1, r.stderr
    assert annotation_lines(r.stdout) == [
        "::error file=ci/tasks.yaml,line=6,title=taskrun%3A task build failed::exit code 2; 1 attempt"
        "%0Aerror: 50%25 done, a:b",
        "::error file=ci/tasks.yaml,line=8,title=taskrun%3A task slow timed out::"
        "timed out after 200ms (signal SIGTERM); 1 attempt",
        "::warning file=ci/tasks.yaml,line=10,title=taskrun%3A task lint failed::"
        "exit code 1; allowed to fail (allow_failure), the run did not fail for it; 1 attempt",
    ]
    # printed at the very end, after the closing table
    lines = r.stdout.splitlines()
    assert lines.index("summary: taskrun-summary.json") < lines.index(annotation_lines(r.stdout)[0])

    text = step.read_text()
    assert text.startswith("earlier content of this step\n\n### taskrun ci/tasks.yaml: failed\n")
    run_id = taskrun.summary()["run_id"]
    assert "1 succeeded, 2 failed, 1 timed out, 1 skipped in " in text
    assert f"run `{run_id}`" in text
    assert "| task | status | exit | time | tries |\n|---|---|---|---|---|\n| ok | ✅ success | 0 |" in text
    assert "| deploy | ⏭️ skipped | - | - | 0 |\n" in text
    assert "| lint | ❌ failed (allowed) | 1 |" in text
    assert "<details><summary>build: stderr</summary>\n\n```text\nerror: 50% done, a:b\n```\n</details>" in text


def test_the_step_summary_stays_under_githubs_limit(taskrun):
    # 80 failed tasks with 16 KiB of stderr tails each: 1.3 MiB of tails for a 1 MiB summary
    tasks = "".join(f"  t{i}: {{cmd: [{sys.executable}, -c, \"import sys; sys.stderr.write(('e{i}' + 'x' * 400 + '\\\\n') * 100); sys.exit(1)\"]}}\n"
                    for i in range(80))
    taskrun.write("tasks.yaml", "version: 1\npool: 8\ntasks:\n" + tasks)
    step = taskrun.cwd / "step.md"
    r = taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    assert r.returncode == 1, r.stderr
    size = step.stat().st_size
    assert STEP_SUMMARY_LIMIT * 0.9 < size < STEP_SUMMARY_LIMIT
    text = step.read_text()
    assert text.count("<details>") == 80 and text.count("</details>") == 80  # every tail, each shortened:
    for task in taskrun.summary()["tasks"]:
        full = task["stderr_tail"]
        assert len(full.encode()) > 15_000 and full not in text
        assert "\n".join(full.splitlines()[-20:]) in text
    assert all(f"| t{i} | ❌ failed | 1 |" in text for i in range(80))
    assert len(annotation_lines(r.stdout)) == 80


def test_step_summary_cuts_rows_when_even_the_table_is_too_big():
    tasks = [{"name": f"task-{i}", "status": "failed", "exit_code": 1, "signal": None, "duration_s": 1.0,
              "attempts": [{}], "stderr_tail": "boom\n", "allow_failure": False} for i in range(1000)]
    summary = {"file": "t.yaml", "status": "failed", "counts": {"failed": 1000}, "duration_s": 3.0, "pool": 2,
               "run_id": "r", "tasks": tasks}
    text = step_summary(summary, limit=4096)
    assert len(text.encode()) <= 4096
    assert text.rstrip().endswith("more task(s): see the JSON summary")
    assert "<details>" not in text


def test_a_full_step_summary_gets_nothing_more(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 1\n")
    step = taskrun.cwd / "step.md"
    step.write_bytes(b"x" * (STEP_SUMMARY_LIMIT - 100))
    r = taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    assert r.returncode == 1, r.stderr
    assert step.stat().st_size == STEP_SUMMARY_LIMIT - 100
    assert len(annotation_lines(r.stdout)) == 1


def test_nothing_of_github_in_gitlab_or_outside_ci(taskrun):
    taskrun.write("tasks.yaml", TASKS)
    step = taskrun.cwd / "step.md"
    for env in ({"GITLAB_CI": "true", "CI": "true", "GITHUB_STEP_SUMMARY": str(step)},
                {"GITHUB_ACTIONS": "false", "GITHUB_STEP_SUMMARY": str(step)}, {}):
        r = taskrun("tasks.yaml", env=env)
        assert r.returncode == 1, r.stderr
        assert annotation_lines(r.stdout) == [] and annotation_lines(r.stderr) == []
        assert "::" not in r.stdout + r.stderr
        assert not step.exists()


def test_with_the_summary_on_stdout_annotations_go_to_stderr(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: exit 1\n")
    r = taskrun("tasks.yaml", "--summary", "-", env={"GITHUB_ACTIONS": "true"})
    assert r.returncode == 1
    assert json.loads(r.stdout)["status"] == "failed"
    assert annotation_lines(r.stderr) == ["::error file=tasks.yaml,line=3,title=taskrun%3A task a failed::"
                                          "exit code 1; 1 attempt"]


def test_summary_on_stdout_pipes_into_a_json_reader(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: echo hello\n  b: {cmd: 'exit 3', needs: [a]}\n")
    reader = ("import json, sys; s = json.load(sys.stdin); "
              "print(s['status'], *(t['name'] + '=' + t['status'] for t in s['tasks']))")
    shell = f"{' '.join(taskrun_argv())} tasks.yaml --summary - | {sys.executable} -c \"{reader}\""
    r = subprocess.run(["bash", "-o", "pipefail", "-c", shell], cwd=taskrun.cwd, env=taskrun.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1  # taskrun's own exit code comes through pipefail
    assert r.stdout == "failed a=success b=failed\n"
    assert "task  status" in r.stderr and "summary:" not in r.stderr  # the console went to stderr
    assert not (taskrun.cwd / "taskrun-summary.json").exists()


GANTT_TASKS = """
version: 1
pool: 2
tasks:
  compile: sleep 0.3
  "ns:integration": {cmd: sleep 0.5, needs: [compile]}
  title: {cmd: sleep 0.1, needs: ["ns:integration"]}
  lint: exit 3
  flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1}
  docs: {cmd: echo never, needs: [lint]}
"""


def mermaid_block(text: str) -> list[str]:
    start = text.index("```mermaid\n")
    return text[start:text.index("\n```\n", start)].splitlines()[1:]


def test_the_step_summary_draws_a_gantt_chart_and_the_critical_path(taskrun):
    from datetime import datetime

    taskrun.write("tasks.yaml", GANTT_TASKS)
    step = taskrun.cwd / "step.md"
    r = taskrun("tasks.yaml", env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    assert r.returncode == 1, r.stderr
    text = step.read_text()
    summary = taskrun.summary()
    t0 = datetime.fromisoformat(summary["started_at"])

    def ms(stamp: str) -> int:
        return round((datetime.fromisoformat(stamp) - t0).total_seconds() * 1000)

    # The chain that ended last, measured from its first start to its last end
    tasks = by_name(summary)
    first, last = tasks["compile"]["attempts"][0], tasks["title"]["attempts"][0]
    length = (datetime.fromisoformat(last["started_at"]) - datetime.fromisoformat(first["started_at"])).total_seconds()
    length += last["duration_s"]
    line = next(x for x in text.splitlines() if x.startswith("critical path "))
    measured = re.fullmatch(r"critical path (\d+\.\d\d)s: compile -> ns:integration -> title", line)
    assert measured and abs(float(measured[1]) - length) <= 0.006, line
    assert text.index(line) < text.index("```mermaid") < text.index("| task | status |")

    block = mermaid_block(text)
    assert block[:3] == ["gantt", "    dateFormat x", "    axisFormat %-S.%Ls"]
    least = max(1, round(summary["duration_s"] * 1000 / 200))  # the narrowest bar drawn
    expected = {}  # label -> (slot, tag, start ms, end ms), from the summary
    for t in summary["tasks"]:
        for n, a in enumerate(t["attempts"], start=1):
            label = {"ns:integration": "ns\u2236integration", "title": "\u200btitle"}.get(t["name"], t["name"])
            label += f" (try {n})" if len(t["attempts"]) > 1 else ""
            start = ms(a["started_at"])
            end = max(start + least, round(start + a["duration_s"] * 1000))
            expected[label] = (a["slot"], "done" if a["exit_code"] == 0 else "crit", start, end)
    drawn, sections, slot = {}, [], None
    for row in block[3:]:
        if row.startswith("    section slot "):
            slot = int(row.removeprefix("    section slot "))
            sections.append(slot)
            continue
        label, data = row.strip().rsplit(" :", 1)
        tag, start, end = data.split(", ")
        drawn[label] = (slot, tag, int(start), int(end))
    assert sections == sorted(set(sections)) and set(sections) <= {0, 1}
    assert set(drawn) == set(expected)
    for label, (slot, tag, start, end) in drawn.items():
        want = expected[label]
        assert (slot, tag) == want[:2] and abs(start - want[2]) <= 1 and abs(end - want[3]) <= 1, (label, want)
    assert "docs" not in drawn  # skipped: no bar (the table says why)


def test_the_gantt_chart_is_capped_and_says_what_it_left_out():
    from runner.ci import GANTT_BARS

    tasks = [{"name": f"task-{i}", "status": "success", "exit_code": 0, "signal": None, "duration_s": 0.5,
              "attempts": [{"started_at": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z", "duration_s": 0.5,
                            "exit_code": 0, "slot": i % 8}], "needs": []}
             for i in range(500)]
    summary = {"file": "t.yaml", "status": "success", "counts": {"success": 500}, "duration_s": 500.0, "pool": 8,
               "run_id": "r", "started_at": "2026-01-01T00:00:00.000Z", "tasks": tasks}
    text = step_summary(summary)
    block = mermaid_block(text)
    assert block[2] == "    axisFormat %H:%M:%S"  # past a minute: the clock time, from the run's real start
    bars = [row for row in block if ":done," in row]
    # 2026-01-01T00:00:00Z; half a second, drawn 1/200 of the 500 s run wide so that it shows
    assert bars[0] == "    task-0 :done, 1767225600000, 1767225602500"
    assert len(bars) == GANTT_BARS == 200
    assert {row.split(" :")[0].strip() for row in bars} == {f"task-{i}" for i in range(200)}  # the first by start
    assert "_200 attempts drawn, the first by start time; 300 later attempt(s) left out (the table lists every task)._" in text
    assert all(f"| task-{i} | ✅ success |" in text for i in range(500))


def test_mermaid_labels_escape_what_would_break_the_chart():
    from runner.ci import mermaid_label

    assert mermaid_label("docs:api:build") == "docs\u2236api\u2236build"
    assert mermaid_label("a#b;c") == "a\uff03b\uff1bc"
    assert mermaid_label("title") == "\u200btitle" and mermaid_label("Section2") == "\u200bSection2"
    assert mermaid_label("build") == "build"
