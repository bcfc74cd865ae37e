"""Durations as the task file and the command line write them: `90s`, `5m`, `1h30m`, `250ms`, or seconds."""

from __future__ import annotations

import functools
import math
import re

# Shared with the JSON Schema (schemas/taskfile.schema.json): keep the two in step.
DURATION_PATTERN = r"^\s*(?:\d+(?:\.\d+)?(?:ms|h|m|s)\s*)+$|^\s*\d+(?:\.\d+)?\s*$"
DURATION_HINT = "use 90s, 5m, 1h30m or seconds"
MAX_DURATION_S = 366 * 24 * 3600.0  # a year: anything longer is a typo, not a plan (waits take it in parts)

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_FULL = re.compile(DURATION_PATTERN)


@functools.lru_cache(maxsize=256, typed=True)  # a file writes the same few durations on every task; typed: 1 is not True
def parse_duration(value: object) -> float:
    """Return seconds for a duration value; raise ValueError with a plain-English reason."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration ({DURATION_HINT})")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and _FULL.match(value):
        text = value.strip()
        seconds = float(text) if _PART.search(text) is None else sum(
            float(n) * _UNIT_S[u] for n, u in _PART.findall(text)
        )
    else:
        raise ValueError(f"{value!r} is not a duration ({DURATION_HINT})")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r} is not a duration: it must be a finite number of seconds >= 0")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is too long: at most {int(MAX_DURATION_S)} seconds (366 days)")
    return seconds


def parse_timeout(value: object) -> float:
    """Seconds of a time limit: a duration that is not zero (no limit is no `timeout` at all)."""
    seconds = parse_duration(value)
    if seconds == 0:
        raise ValueError(f"a timeout must be positive; leave it out for none (got {value!r})")
    return seconds


def format_duration(seconds: float | None) -> str:
    """Short human form: 250ms, 30s, 5m, 1h30m; '-' for none."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"
