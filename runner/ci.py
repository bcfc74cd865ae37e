"""What a run shows inside GitHub Actions, and nowhere else.

When `GITHUB_ACTIONS=true` (GitHub sets it in every job):
- one `::error` workflow command per failed or timed-out task, printed after
  the closing report, pointing at the task's line in the task file, so the
  failure shows on the job's page and in the pull request's files;
- a Markdown table of the run appended to the file named by
  `$GITHUB_STEP_SUMMARY`, kept under GitHub's 1 MiB limit by shortening the
  output tails first, then the table; above it, the measured critical path and
  a Mermaid `gantt` chart of the attempts (`gantt_chart`).
All are built from the summary dict. (GitLab's and GitHub's folding of output
belongs to the console.)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from .junit import at_step, clean_text
from .runview import RunView, build_view, seconds

STEP_SUMMARY_LIMIT = 1024 * 1024  # bytes GitHub accepts per step summary
GANTT_BARS = 200  # Mermaid lays out every bar on the reader's side: past a few hundred the page crawls
# Words that open a statement of Mermaid's gantt syntax when a line starts with them (any case)
MERMAID_KEYWORDS = ("title", "section", "dateformat", "axisformat", "tickinterval", "includes", "excludes",
                    "todaymarker", "weekday", "weekend", "inclusiveenddates", "topaxis", "acctitle", "accdescr",
                    "click", "call", "href", "displaymode")
# `:` ends a bar's label, `#` and `;` end its data: look-alikes read the same
MERMAID_LOOKALIKES = str.maketrans({":": "\u2236", "#": "\uff03", ";": "\uff1b"})
_GANTT_TAGS = {"success": "done", "failed": "crit", "timeout": "crit", "cancelled": "active"}
ANNOTATION_TAIL_LINES = 20
_WORDS = {"success": "succeeded", "up_to_date": "up to date", "failed": "failed", "timeout": "timed out", "skipped": "skipped",
          "cancelled": "cancelled"}
_ICONS = {"success": "✅", "up_to_date": "☑️", "failed": "❌", "timeout": "⏱️", "skipped": "⏭️", "cancelled": "🚫"}


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHub:
    """Where GitHub Actions wants its extras; `from_env` says whether we run there."""

    step_summary: str | None  # the file behind $GITHUB_STEP_SUMMARY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GitHub | None:
        env = os.environ if env is None else env
        if env.get("GITHUB_ACTIONS") != "true":
            return None
        return cls(step_summary=env.get("GITHUB_STEP_SUMMARY") or None)


def github_writers(plan, print_line, env: Mapping[str, str] | None = None) -> list:
    """The summary writers a run inside GitHub Actions gets: its step summary, then
    an annotation per failed task (printed with `print_line`)."""
    github = GitHub.from_env(env)
    if github is None:
        return []
    writers = []
    if github.step_summary:
        from .target import open_target

        target = open_target(github.step_summary, "GITHUB_STEP_SUMMARY")  # refused before anything runs
        writers.append(lambda record: append_step_summary(target, record))
    lines = {t.name: t.spec.line for t in plan.tasks}
    files = {t.name: o.path for t in plan.tasks if (o := plan.taskfile.origin_of(t.spec)) is not None}
    writers.append(lambda record: [print_line(a) for a in annotations(record, lines, files)])
    return writers


# --- annotations --------------------------------------------------------------------


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotations(summary: dict, lines: Mapping[str, int], files: Mapping[str, str] | None = None) -> list[str]:
    """`::error file=...,line=...,title=...::message` for each failed or timed-out task.

    `lines` maps task names to their line in the task file, `files` a task of an
    included file to that file (its line is in it). A task allowed to
    fail gets a `::warning` instead: the run did not fail for it.
    """
    from .junit import failure_message

    out = []
    for task in summary.get("tasks", []):
        if task["status"] not in ("failed", "timeout"):
            continue
        name = task["name"]
        word = "timed out" if task["status"] == "timeout" else "failed"
        level = "warning" if task.get("allow_failure") else "error"
        props = [f"file={_escape_property((files or {}).get(name, summary.get('file', '')))}"]
        if lines.get(name):
            props.append(f"line={lines[name]}")
        props.append(f"title={_escape_property(f'taskrun: task {name} {word}')}")
        message = failure_message(task)
        tail = clean_text(task.get("stderr_tail")).rstrip("\n")
        if tail:
            message += "\n" + "\n".join(tail.splitlines()[-ANNOTATION_TAIL_LINES:])
        out.append(f"::{level} {','.join(props)}::{_escape_data(message)}")
    return out


# --- the step summary -----------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _tail_bytes(text: str, limit: int) -> str:
    """The end of `text` in at most `limit` UTF-8 bytes, starting at a line when it was cut."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    cut = data[len(data) - max(0, limit):].decode("utf-8", errors="ignore")
    newline = cut.find("\n")
    return cut[newline + 1:] if 0 <= newline < len(cut) - 1 else cut


def mermaid_label(name: str) -> str:
    """A task name as the label of a gantt bar: `:` `#` `;` as look-alikes, and a zero-width
    space before a name that Mermaid would read as a statement (a task named `title`)."""
    label = name.translate(MERMAID_LOOKALIKES).replace("%%", "%\u200b%")
    return "\u200b" + label if label.lower().startswith(MERMAID_KEYWORDS) else label


def _time_axis(view: RunView) -> tuple[int, str]:
    """(the run's start in the chart's milliseconds, the axis format). The reader's browser shows
    the times as local times: under a minute, from 0 (1970-01-01T00:00 UTC), where the seconds
    read the same in every time zone; longer, from the run's real start, the clock time of each."""
    if view.span_s < 60 or not view.header.started_at:
        return 0, "%-S.%Ls"
    return round(seconds(view.header.started_at) * 1000), "%H:%M:%S"


def gantt_chart(view: RunView, most: int = GANTT_BARS) -> str:
    """The attempts as a Mermaid gantt block: a section per pool slot, a bar per attempt (the first
    `most` by start; at least 1/200 of the run wide, so that each shows), failures and timeouts
    `crit`, cancelled `active`; a line after it says how many were left out. Empty when nothing ran."""
    if not view.bars:
        return ""
    drawn = view.bars[:most]
    least = max(1, round(view.span_s * 1000 / 200))  # a bar of a millisecond would not show: every bar shows
    origin, axis = _time_axis(view)
    lines = ["```mermaid", "gantt", "    dateFormat x", f"    axisFormat {axis}"]
    for slot in sorted({b.slot for b in drawn}):
        lines.append(f"    section slot {slot}")
        for b in drawn:
            if b.slot == slot:
                label = mermaid_label(b.task) + (f" (try {b.attempt})" if b.attempts > 1 else "")
                start = origin + round(b.start_s * 1000)
                end = max(start + least, origin + round(b.end_s * 1000))
                lines.append(f"    {label} :{_GANTT_TAGS[b.outcome]}, {start}, {end}")
    lines.append("```")
    text = "\n".join(lines) + "\n"
    left = len(view.bars) - len(drawn)
    if left:
        text += f"\n_{len(drawn)} attempts drawn, the first by start time; {left} later attempt(s) left out (the table lists every task)._\n"
    return text


def critical_path_line(view: RunView) -> str:
    """`critical path 2.91s: compile -> integration -> package`, the chain of needs that ended last."""
    path = view.critical
    return f"critical path {path.length_s:.2f}s: " + " -> ".join(_cell(t) for t in path.tasks)


def step_summary(summary: dict, limit: int = STEP_SUMMARY_LIMIT) -> str:
    """The run as Markdown in at most `limit` UTF-8 bytes: a headline, the critical path and a
    gantt chart (left out if it would take more than a quarter of `limit`), a table of every
    task, then the stderr tail of each task that failed or timed out."""
    tasks = summary.get("tasks", [])
    counts = summary.get("counts", {})
    done = ", ".join(f"{counts[s]} {w}" for s, w in _WORDS.items() if counts.get(s)) or "nothing ran"
    view = build_view(summary)
    chart = ""
    if view.bars:
        chart = f"{critical_path_line(view)}\n\n{gantt_chart(view)}\n"
        if len(chart.encode()) > limit // 4:
            chart = f"{critical_path_line(view)}\n\n"
    head = (f"### taskrun {_cell(summary.get('file', ''))}: {summary.get('status')}\n\n"
            f"{done} in {summary.get('duration_s', 0):.2f}s (pool {summary.get('pool')}), "
            f"run `{summary.get('run_id')}`\n\n{chart}"
            "| task | status | exit | time | tries |\n|---|---|---|---|---|\n")
    rows = []
    for t in tasks:
        code = t.get("signal") or ("-" if t.get("exit_code") is None else str(t["exit_code"]))
        secs = "-" if t.get("duration_s") is None else f"{t['duration_s']:.2f}s"
        status = t["status"] + (" (allowed)" if t.get("allow_failure") and t["status"] in ("failed", "timeout") else "")
        status += _cell(at_step(t))
        if (t["status"] == "up_to_date" or t.get("by_condition")) and t.get("reason"):  # why it did not run
            status += f" ({_cell(t['reason'])})"
        rows.append(f"| {_cell(t['name'])} | {_ICONS.get(t['status'], '')} {status} | {code} | {secs} | "
                    f"{len(t.get('attempts') or ())} |\n")
    size = len(head.encode())
    kept = []
    for i, row in enumerate(rows):
        more = f"\n…and {len(rows) - i} more task(s): see the JSON summary\n"
        if size + len(row.encode()) + len(more.encode()) > limit:  # room for the note in any case
            kept.append(more)
            break
        kept.append(row)
        size += len(row.encode())
    text = head + "".join(kept)
    failed = [t for t in tasks if t["status"] in ("failed", "timeout") and clean_text(t.get("stderr_tail")).strip()]
    if failed and len(kept) == len(rows):
        room = limit - len(text.encode())
        share = room // len(failed)
        parts = []
        for t in failed:
            tail = clean_text(t["stderr_tail"]).rstrip("\n")
            fence = _fence(tail)
            frame = f"\n<details><summary>{_cell(t['name'])}: stderr</summary>\n\n{fence}text\n\n{fence}\n</details>\n"
            budget = share - len(frame.encode())
            if budget <= 0:
                continue
            parts.append(frame.replace("text\n\n", "text\n" + _tail_bytes(tail, budget - 1) + "\n", 1))
        text += "".join(parts)
    return text


def append_step_summary(target, summary: dict) -> None:
    """Append the run's Markdown to GitHub's step summary file (a `target.Target`),
    within what is left of 1 MiB."""
    used = target.size()
    room = STEP_SUMMARY_LIMIT - used - 1  # one byte for a separating newline
    if room <= 256:
        return  # the step's summary is already full; the JSON summary has it all
    target.append(("\n" if used else "") + step_summary(summary, room))
