"""Masking of secret values, the one place every writer of output goes through.

A task file's `secrets:` names environment variables; their values, and the
common encodings of those values, must never reach the console, the logs, the
event log or the summary. As GitHub's runner does, masking works on whole
lines: the process layer feeds the output of a command through `Masker`
line by line before it lands in the log file, and the writers mask each string
they print or record.

Encodings masked besides the raw value: base64 (standard and URL-safe, with and
without padding, and the three alignments a value takes inside a longer base64
text), JSON string escaping, and URL encoding (`quote` and `quote_plus`). A
secret spanning several lines is also masked line by line.

Standard library only: the process layer imports it.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "***"
# The fields of the summary and the event log that hold what the task file and its
# commands wrote (command text, descriptions, output tails, reasons, which may quote
# a command, a folder or output). Only these are masked there: every other field is
# taskrun's own (run id, times, hashes, paths of its folders and logs, pids, host,
# user, task names) and must stay intact for what reads it back (--recover, --rerun-failed).
WRITTEN_FIELDS = frozenset({"cmd", "description", "reason", "stdout_tail", "stderr_tail"})
MIN_PART = 3  # lines of a multi-line secret, and base64 fragments, shorter than this would mask everything


def _base64_forms(raw: bytes) -> set[str]:
    forms = set()
    for offset in range(3):
        # A value inside a longer base64 text starts at one of three alignments;
        # the characters that depend on its neighbours are dropped at each end.
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = {0: 0, 1: 2, 2: 3}[offset]
        end_bits = (len(raw) + offset) % 3
        end = len(encoded) - {0: 0, 1: 3, 2: 2}[end_bits]
        part = encoded[start:end]
        if offset == 0:
            forms.add(encoded)
        if len(part) >= MIN_PART:
            forms.add(part)
    forms |= {f.replace("+", "-").replace("/", "_") for f in forms}
    forms |= {f.rstrip("=") for f in forms}
    return {f for f in forms if len(f) >= MIN_PART}


def encodings(value: str) -> set[str]:
    """The value and the forms it commonly takes in output."""
    forms = {value}
    lines = [line for line in value.splitlines() if len(line.strip()) >= MIN_PART]
    if len(lines) > 1:
        forms.update(lines)
    for v in list(forms):
        forms.add(json.dumps(v)[1:-1])
        forms.add(json.dumps(v, ensure_ascii=False)[1:-1])
        forms.add(quote(v, safe=""))
        forms.add(quote_plus(v, safe=""))
        forms |= _base64_forms(v.encode("utf-8"))
    return {f for f in forms if f}


class Masker:
    """Replaces every secret value and its encodings with `***`."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        values = tuple(values)
        self.secret_values = tuple(sorted({v for v in values if v}))  # as given, for the process layer
        forms: set[str] = set()
        for value in values:
            if value:
                forms |= encodings(value)
        # Longest first, so a value wins over its own fragments.
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self.values = tuple(ordered)
        self._text = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self._bytes = (re.compile(b"|".join(re.escape(f.encode("utf-8")) for f in ordered))
                       if ordered else None)
        self.longest = max((len(f.encode("utf-8")) for f in ordered), default=0)

    def __bool__(self) -> bool:
        return self._text is not None

    def mask_text(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text is not None and text else text

    def mask_bytes(self, data: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), data) if self._bytes is not None and data else data

    def mask_obj(self, obj):
        """Every string inside a JSON-like value, keys included, masked (the structure is kept)."""
        if self._text is None:
            return obj
        if isinstance(obj, str):
            return self.mask_text(obj)
        if isinstance(obj, dict):
            return {self.mask_obj(k): self.mask_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.mask_obj(v) for v in obj]
        return obj


    def mask_written(self, record):
        """A summary or an event-log line with its `WRITTEN_FIELDS` masked, at any depth (tasks, attempts)."""
        if self._text is None:
            return record
        if isinstance(record, dict):
            return {k: self.mask_obj(v) if k in WRITTEN_FIELDS else self.mask_written(v) for k, v in record.items()}
        if isinstance(record, (list, tuple)):
            return [self.mask_written(v) for v in record]
        return record


NO_MASK = Masker()


@functools.lru_cache(maxsize=64)
def masker_for(values: tuple[str, ...]) -> Masker:
    return Masker(values) if values else NO_MASK


def secret_values(names: Iterable[str], environ: Mapping[str, str],
                  file_envs: Iterable[Iterable[tuple[str, str]]]) -> tuple[str, ...]:
    """The values of the named variables: from taskrun's environment and from every `env` of the file."""
    wanted = set(names)
    found = {environ[n] for n in wanted if environ.get(n)}
    for env in file_envs:
        found.update(v for k, v in env if k in wanted and v)
    return tuple(sorted(found))


def masker_for_file(taskfile, environ: Mapping[str, str], planned: Iterable[Iterable[tuple[str, str]]] = ()) -> Masker:
    """The masker of a `TaskFile`'s `secrets`, with values from `environ`, the file's `env` mappings
    and `planned`: the environments of the planned tasks (where templates are rendered)."""
    if not taskfile.secrets:
        return NO_MASK
    envs = [taskfile.env, *(t.env for t in taskfile.tasks), *planned]
    return masker_for(secret_values(taskfile.secrets, environ, envs))


class LineMasker:
    """Masks a stream of bytes line by line: whole lines go out masked; a
    partial line waits for its end, or goes out when it grows past `max_line`
    (a secret could then be split, which the log accepts rather than grow without bound)."""

    def __init__(self, masker: Masker, max_line: int = 1 << 20) -> None:
        self.masker = masker
        self.max_line = max_line
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        data = self._pending + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > self.max_line:
            cut = len(data)
        self._pending = data[cut:]
        return self.masker.mask_bytes(data[:cut])

    def flush(self) -> bytes:
        data, self._pending = self._pending, b""
        return self.masker.mask_bytes(data)
