"""The run as one self-contained HTML page (`--html PATH`, `--report SUMMARY --html PATH`).

Built from the summary dict through `runview` (the run model every drawing of a run
shares: bars per slot, the critical path, concurrency), so the page says what the
summary says. The page is one file with nothing to fetch: the template, its CSS and its
script (runner/report/) are inlined, the timeline and the concurrency graph are SVG the
script builds, and a Content-Security-Policy lets no request out and no script run but
the page's own (its hash), so it reads the same from a CI artifact, offline.

The run goes into the page as compact JSON (arrays, not objects, per attempt and per
task: a 10,000-task run stays near a megabyte; the stderr tails share a budget, so
thousands of verbose tasks do not make it tens) in a `<script type="application/json">`
block, every `<` written `\\u003c` so that no task output can close the block; the
script puts task data into the page only as text (textContent, attributes), never as
markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from pathlib import Path

from . import __version__
from .runview import RunView, build_view

PAGE = Path(__file__).resolve().parent / "report"
TAIL_CHARS = 4000  # of each attempt's stderr tail, in the page (the summary keeps all it has)
TAILS_BUDGET = 1_500_000  # characters of tails in all: thousands of verbose tasks share it, down to TAIL_MIN each
TAIL_MIN = 200
OUTCOMES = ("success", "failed", "timeout", "cancelled")  # the bars' outcomes, in the page's order (page.js)
_FIELD = re.compile(r"@(TITLE|VERSION|STYLE|SCRIPT|SCRIPT_HASH|DATA)@")


def render_html(view: RunView) -> str:
    """The page of a run (its `RunView`)."""
    script = (PAGE / "page.js").read_text(encoding="utf-8")
    fields = {
        "TITLE": html.escape(f"taskrun {view.header.status}: {view.header.file}"),
        "VERSION": html.escape(__version__),
        "STYLE": (PAGE / "page.css").read_text(encoding="utf-8"),
        "SCRIPT": script,
        "SCRIPT_HASH": "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii"),
        "DATA": embed_json(page_data(view)),
    }
    # One pass: what is put in is never searched for fields again.
    return _FIELD.sub(lambda m: fields[m.group(1)], (PAGE / "page.html").read_text(encoding="utf-8"))


def embed_json(value) -> str:
    """JSON that can stand inside a <script> element whatever its strings hold: `<` only
    occurs inside strings, where `\\u003c` means the same, and without it neither
    `</script>` nor `<!--` can appear."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def write_html(target, view_or_summary: RunView | dict) -> None:
    """Write the page of a run (its `RunView`, or its summary dict) to a `target.Target`
    (opened, or refused, before the run)."""
    view = view_or_summary if isinstance(view_or_summary, RunView) else build_view(view_or_summary)
    target.write(render_html(view))


def page_data(view: RunView) -> dict:
    """What the page's script reads (page.js names the columns): the run model of `runview`
    with tasks as indexes into `names`, times in milliseconds' precision, tails once each."""
    from .junit import clean_text

    index = {row.name: i for i, row in enumerate(view.tasks)}
    tails: list[str] = []
    keep = max(TAIL_MIN, min(TAIL_CHARS, TAILS_BUDGET // max(1, sum(1 for b in view.bars if b.stderr_tail))))
    bars = []
    for b in view.bars:
        tail = -1
        if b.stderr_tail:
            tails.append(clean_text(b.stderr_tail)[-keep:])
            tail = len(tails) - 1
        bars.append([index[b.task], b.attempt, b.slot, _ms(b.start_s), _ms(b.end_s), OUTCOMES.index(b.outcome),
                     b.exit_code, b.signal, tail])
    h = view.header
    return {
        "head": {"file": h.file, "status": h.status, "exit_code": h.exit_code, "signal": h.signal, "reason": h.reason,
                 "duration_s": h.duration_s, "pool": h.pool, "host": h.host, "taskrun_version": h.taskrun_version,
                 "run_id": h.run_id, "started_at": h.started_at, "counts": dict(h.counts)},
        # Rows above the highest slot used are never used (the lowest free slot is taken): not drawn.
        "slots": max((b.slot + 1 for b in view.bars), default=1),
        "slots_assigned": view.slots_assigned,
        "span": _ms(view.span_s),
        "names": [row.name for row in view.tasks],
        "tasks": [[row.status, _ms(row.duration_s) if row.attempts else None, row.exit_code, row.signal, row.attempts,
                   row.reason] for row in view.tasks],
        "bars": bars,
        "gaps": [[index[g.task], g.attempt, _ms(g.start_s), _ms(g.end_s)] for g in view.gaps],
        "tails": tails,
        "critical": [index[name] for name in view.critical.tasks],
        "critical_s": _ms(view.critical.length_s),
        "conc": [v for at, running in view.concurrency for v in (_ms(at), running)],
        "order": [index[row.name] for row in view.table],
    }


def _ms(seconds: float) -> float:
    return round(seconds, 3)
