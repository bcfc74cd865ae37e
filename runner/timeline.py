"""A run as a text timeline (`--timeline`), for terminals and CI logs.

One row per task that ran, in order of its first start (within one millisecond, of its slot): its name (`*` before it
on the critical path), then a bar between `|`s scaled so the run fills the
width (one column is `span / columns` seconds), each attempt drawn with its
outcome's mark (`=` success, `X` failed, `T` timed out, `/` cancelled), the
wait before a retry with `.`, then the task's time and, unless it succeeded,
how it ended. A legend of the marks, wrapped to the width, heads it. The marks read without colour; `paint` (the console's) colours
them on a terminal. Past `MAX_ROWS` tasks, the critical path, the failures and
the longest tasks are drawn, and one line says how many were left out. Then the
critical path (`* critical path 2.93s: compile -> test`) and the tasks that did not run.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .runview import Bar, RunView

MAX_ROWS = 50
MARKS = {"success": "=", "failed": "X", "timeout": "T", "cancelled": "/"}
WAIT = "."
STYLES = {"=": "ok", "X": "fail", "T": "fail", "/": "warn", WAIT: "dim"}
WORDS = {"success": "succeeded", "failed": "failed", "timeout": "timed out", "cancelled": "cancelled",
         "skipped": "skipped", "up_to_date": "up to date"}
LEGEND = ("= success", "X failed", "T timed out", "/ cancelled", ". waiting to retry")
LISTED = 10  # tasks named in the line of those that did not run


def _plain(text: str, _style: str) -> str:
    return text


def seconds_text(s: float) -> str:
    return f"{s:.2f}s" if s < 60 else f"{int(s // 60)}m{s % 60:04.1f}s"


def render_timeline(view: RunView, *, width: int = 80,
                    paint: Callable[[str, str], str] | None = None) -> list[str]:
    """The timeline's lines (no newlines), at most `width` columns wide when the width allows a bar."""
    paint = paint or _plain
    lines = legend(width)
    own: dict[str, list[Bar]] = {}
    for b in view.bars:
        own.setdefault(b.task, []).append(b)
    if own:
        rows, left_out = _rows(view, own)
        lines += _draw(view, rows, own, width, paint)
        if left_out:
            lines.append(f"... and {left_out} more task(s) not drawn: the shortest that succeeded")
        path = view.critical
        lines.append(f"{paint('*', 'bold')} critical path {seconds_text(path.length_s)}: " + " -> ".join(path.tasks))
    else:
        lines.append("no task ran")
    if view.not_run:
        named = ", ".join(f"{n.task} ({WORDS.get(n.status, n.status)})" for n in view.not_run[:LISTED])
        more = len(view.not_run) - LISTED
        lines.append(f"not run: {named}" + (f" and {more} more" if more > 0 else ""))
    return lines


def legend(width: int) -> list[str]:
    """`timeline  = success  X failed ...`, wrapped to `width` between the marks."""
    lines = ["timeline"]
    for item in LEGEND:
        if len(lines[-1]) + 2 + len(item) > width and lines[-1].strip():
            lines.append(" " * len("timeline"))
        lines[-1] += "  " + item
    return lines


def _rows(view: RunView, own: dict[str, list[Bar]]) -> tuple[list[str], int]:
    """The tasks drawn, by first start, and how many were left out."""
    ran = sorted(own, key=lambda name: own[name][0].start_s)
    if len(ran) <= MAX_ROWS:
        return ran, 0
    kept = set(view.critical.tasks[:MAX_ROWS])
    for row in view.table:  # failures first, then the longest
        if len(kept) >= MAX_ROWS:
            break
        if row.name in own:
            kept.add(row.name)
    return [n for n in ran if n in kept], len(ran) - len(kept)


def _right(bars: list[Bar]) -> str:
    last = bars[-1]
    text = seconds_text(last.end_s - bars[0].start_s)
    if last.outcome != "success":
        how = f"exit {last.exit_code}" if last.exit_code is not None else last.signal
        text += f" {WORDS[last.outcome]}" + (f" ({how})" if how else "")
    if len(bars) > 1:
        text += f", {len(bars)} tries"
    return text


def _draw(view: RunView, rows: list[str], own: dict[str, list[Bar]], width: int, paint) -> list[str]:
    critical = set(view.critical.tasks)
    name_w = min(max(len(n) for n in rows), max(12, width // 4))
    rights = {n: _right(own[n]) for n in rows}
    right_w = max(len(r) for r in rights.values())
    cols = max(10, width - (2 + name_w + 1) - 2 - 1 - right_w)
    span = view.span_s or 1.0

    def column(t: float) -> int:
        return min(cols - 1, max(0, int(t / span * cols)))

    def last_column(start: float, end: float) -> int:
        return min(cols - 1, max(column(start), math.ceil(end / span * cols) - 1))

    pad = " " * (2 + name_w + 1)
    left, middle, right = "0s", seconds_text(span / 2), seconds_text(span)
    axis = [" "] * (cols + 2)
    for at, text in ((1, left), ((cols + 2 - len(middle)) // 2, middle), (cols + 1 - len(right), right)):
        axis[at:at + len(text)] = text
    lines = [pad + "".join(axis).rstrip()]
    for name in rows:
        cells = [" "] * cols
        bars = own[name]
        for a, b in zip(bars, bars[1:]):  # the wait before each retry, drawn under the attempts
            for c in range(column(a.end_s), last_column(a.end_s, b.start_s) + 1):
                cells[c] = WAIT
        for b in bars:
            for c in range(column(b.start_s), last_column(b.start_s, b.end_s) + 1):
                cells[c] = MARKS[b.outcome]
        shown = name if len(name) <= name_w else name[:name_w - 1] + "~"
        mark = paint("*", "bold") if name in critical else " "
        lines.append(f"{mark} {shown:<{name_w}} |{_painted(cells, paint)}| {rights[name]}")
    return lines


def _painted(cells: list[str], paint) -> str:
    """The cells, each run of one mark painted once."""
    out, i = [], 0
    while i < len(cells):
        j = i
        while j < len(cells) and cells[j] == cells[i]:
            j += 1
        run = "".join(cells[i:j])
        out.append(paint(run, STYLES[cells[i]]) if cells[i] in STYLES else run)
        i = j
    return "".join(out)
