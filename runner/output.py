"""Task output on the console: the log files followed, whole lines prefixed.

Model: commands write straight to their log files (no pipe to the runner). The
console follows the files of the running attempts: each time the loop wakes it
reads what is new (at most `CHUNK` bytes per file per wake, so memory stays
bounded whatever a task prints), keeps the partial last line for the next read,
and turns the complete lines into console text in one pass over the chunk
(`render`), never line by line. A partial line longer than `MAX_LINE` is cut
on the console with a marker; the log keeps it whole.

`render` is the only place where task output becomes console
text: a filter (masking secrets, say) belongs there. A bare `\r` ends a console
line there too, so a progress bar cannot overwrite its task's prefix.
"""

from __future__ import annotations

import os
import re
import zlib

from .proc import last_lines

CHUNK = 1 << 20  # bytes read from one file per wake
MAX_LINE = 64 * 1024  # the longest partial line kept for the console
CUT_MARK = b" [... line cut at 64 KiB on the console; the log has it whole]\n"

_BARE_CR = re.compile(rb"\r+(?![\r\n])")  # carriage returns not ending a line with \r\n
MODES = ("stream", "group", "quiet")
COLOR_CHOICES = ("auto", "always", "never")

# Task colours: stable per name, never red (red means failure).
_PALETTE = ("36", "35", "34", "33", "32", "96", "95", "94", "93", "92")


def task_color(name: str) -> str:
    """The SGR colour code of a task, the same on every run."""
    return _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


def render(data: bytes, prefix: bytes) -> bytes:
    """Complete lines of task output (ending in a newline) -> console bytes (UTF-8), each
    line prefixed; bytes that are not UTF-8 become U+FFFD. Nothing in, nothing out."""
    return b"".join(render_chunk(b"", data, len(data), prefix)) if data else b""


def render_chunk(carry: bytes, data: bytes, end: int, prefix: bytes) -> list:
    """The one place where task output becomes console text.

    `carry + data[:end]` are complete lines (end is just past a newline); returns
    the console bytes as a list of buffers for one `writev`: each line prefixed,
    and bytes that are not UTF-8 shown as U+FFFD. Whole chunks, never line by
    line: bytes.replace runs at memory speed, a Python loop over lines or
    str.replace costs ten times more. The common case (ASCII) copies the chunk
    once.

    A bare carriage return (progress bars: `40%\r50%\r`) ends a console line like a
    newline: written as is, it would send the cursor back over the task's prefix and
    the next segment would overwrite it. `\r\n` stays as it is. The log keeps every byte."""
    if b"\r" in data or b"\r" in carry:  # a search at memory speed; the rare case pays for the rest
        whole = _BARE_CR.sub(b"\n", carry + data[:end])
        carry, data, end = b"", whole, len(whole)
    if not (data.isascii() and carry.isascii()):
        whole = carry + data[:end]
        try:
            whole.decode("utf-8")  # valid UTF-8 is kept as it is
        except UnicodeDecodeError:
            whole = whole.decode("utf-8", "replace").encode()
        carry, data, end = b"", whole, len(whole)
    if not prefix:
        return [carry, memoryview(data)[:end]]
    # The first line continues `carry`, which has no prefix yet; the replace also
    # prefixes the partial line after `end`, which is cut off by the view.
    lined = data.replace(b"\n", b"\n" + prefix)
    cut = lined.rfind(b"\n", 0, len(lined) - (len(data) - end)) + 1
    return [prefix, carry, memoryview(lined)[:cut]]


def ci_flavor(env: os._Environ | dict) -> str | None:
    """The CI whose log viewer folds sections: "github", "gitlab", or None."""
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("GITLAB_CI") == "true":
        return "gitlab"
    return None


QUIET_FIRST_S, QUIET_MAX_S = 0.05, 0.4  # see `LogFollower.read`


class LogFollower:
    """The new complete lines of one growing log file, read in bounded chunks.

    The file is opened on the first read that finds bytes in it (it may not exist
    yet, or ever, when the command could not start; most short tasks write nothing)
    and read with `pread` at a kept offset.
    """

    __slots__ = ("path", "offset", "_fd", "_carry", "_skipping", "_missing", "_pending_cut", "_quiet_until",
                 "_quiet_s")

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0
        self._fd: int | None = None
        self._carry = b""  # the partial last line, at most MAX_LINE bytes
        self._skipping = False  # inside a line already cut: drop bytes up to its newline
        self._missing = False
        self._pending_cut = b""  # a cut line to show after the complete lines of this read
        self._quiet_until = 0.0  # (monotonic) a periodic read looks for the file again from then
        self._quiet_s = QUIET_FIRST_S

    def _open(self, now: float | None) -> int | None:
        if self._fd is None and not self._missing:
            if now is not None and now < self._quiet_until:
                return None
            try:
                if os.stat(self.path).st_size > self.offset:
                    self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                pass
            if self._fd is None and now is not None:  # nothing to read yet (most short tasks': ever)
                self._quiet_until = now + self._quiet_s
                self._quiet_s = min(self._quiet_s * 2, QUIET_MAX_S)
        return self._fd

    def read(self, limit: int = CHUNK, now: float | None = None) -> tuple[bytes, bytes, int, bool]:
        """(carry, data, end, more): `carry + data[:end]` are the complete lines read
        now (the partial line before them, then the new bytes); `more`: whether
        more bytes may be waiting. The bytes after `end` are kept for the next read.
        `now` (monotonic), from a periodic read: a file not yet open that showed nothing
        the last time is not looked for again before a pause that doubles at each look that
        finds nothing, from QUIET_FIRST_S to QUIET_MAX_S (a pool of hundreds of attempts, most
        of them silent or still queued on a cluster, would cost a stat of each log at every
        read). Once a file has shown bytes it is open, and every read reads it."""
        fd = self._open(now)
        if fd is None:
            return b"", b"", 0, False
        try:
            data = os.pread(fd, limit, self.offset)
        except OSError:
            return b"", b"", 0, False
        self.offset += len(data)
        return (*self._lines(data), len(data) == limit)

    def _lines(self, data: bytes) -> tuple[bytes, bytes, int]:
        if self._skipping:  # drop the rest of a line already cut
            nl = data.find(b"\n")
            if nl < 0:
                return b"", b"", 0
            data = data[nl + 1:]
            self._skipping = False
        nl = data.rfind(b"\n")
        if nl >= 0:
            carry, self._carry = self._carry, data[nl + 1:]
        else:
            carry, self._carry, data = b"", self._carry + data, b""
        if len(self._carry) > MAX_LINE:  # a line too long for the console: show its start
            cut = MAX_LINE
            while cut > MAX_LINE - 4 and 0x80 <= self._carry[cut] < 0xC0:  # not inside a UTF-8 character
                cut -= 1
            if nl >= 0:  # the complete lines first, then the cut one on its own
                self._pending_cut = self._carry[:cut] + CUT_MARK
            else:
                carry, data, nl = b"", self._carry[:cut] + CUT_MARK, cut + len(CUT_MARK) - 1
            self._carry = b""
            self._skipping = True
        return carry, data, nl + 1

    def take_cut(self) -> bytes:
        """A cut long line waiting behind the complete lines just returned, if any."""
        cut, self._pending_cut = self._pending_cut, b""
        return cut

    def upto(self, offset: int):
        """(carry, data, end) for what was written before `offset`, chunk by chunk, its last line
        ended there even without a newline (a step's output ends where the next step's starts)."""
        while self.offset < offset:
            before = self.offset
            carry, data, end, _ = self.read(min(CHUNK, offset - self.offset))
            if end:
                yield carry, data, end
            cut = self.take_cut()
            if cut:
                yield b"", cut, len(cut)
            if self.offset == before:  # the file is shorter than the mark says (gone, or not ours)
                break
        if self._carry and not self._skipping:
            last = self._carry + b"\n"
            yield b"", last, len(last)
        self._carry = b""
        self._skipping = False

    def drain(self, limit: int = CHUNK):
        """(carry, data, end) for every complete line left, chunk by chunk, then the
        unterminated last line with a newline added; then the file is closed. A
        generator: memory stays bounded."""
        while True:
            carry, data, end, more = self.read(limit)
            if end:
                yield carry, data, end
            cut = self.take_cut()
            if cut:
                yield b"", cut, len(cut)
            if not more:
                break
        if self._carry and not self._skipping:
            last = self._carry + b"\n"
            yield b"", last, len(last)
        self._carry = b""
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._missing = True  # never reopened


def read_tail_bytes(path: str | None, lines: int, max_bytes: int = 16 * 1024) -> bytes:
    """The last `lines` lines of a file (at most `max_bytes`), newline-terminated."""
    tail = last_lines(path, lines, max_bytes) or b""
    return tail if not tail or tail.endswith(b"\n") else tail + b"\n"


def gitlab_section_id(name: str, attempt: int) -> str:
    """GitLab section names allow letters, digits, `_`, `.` and `-`."""
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in name)
    return f"taskrun_{safe}_{attempt}"


def fold_start(flavor: str | None, title: str, section: str, ts: float, *, collapsed: bool = True) -> str:
    """The line that opens a foldable block in a CI log ("" when not in such a CI)."""
    if flavor == "github":
        return f"::group::{title}\n"
    if flavor == "gitlab":
        flag = "[collapsed=true]" if collapsed else ""
        return f"\x1b[0Ksection_start:{int(ts)}:{section}{flag}\r\x1b[0K{title}\n"
    return ""


def fold_end(flavor: str | None, section: str, ts: float) -> str:
    if flavor == "github":
        return "::endgroup::\n"
    if flavor == "gitlab":
        return f"\x1b[0Ksection_end:{int(ts)}:{section}\r\x1b[0K\n"
    return ""
