"""The status area at the bottom of a terminal: running tasks, their time, the count.

Rich's `Live` draws it; everything the console prints goes through Rich's
console so the area is erased, the text written above it, and the area drawn
again. No refresh thread: the run's loop calls `refresh` (it wakes often enough
while the area is shown). Rich is imported only here, only on a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console as RichConsole
from rich.live import Live
from rich.segment import Segment
from rich.text import Text

REFRESH_S = 0.1
MAX_ROWS = 8  # running tasks listed; the rest is counted


def _style(sgr: str | None) -> str | None:
    """An SGR foreground code (`36`, `94`) as a Rich style."""
    if not sgr:
        return None
    code = int(sgr)
    return f"color({code - 30 if code < 90 else code - 82})"


class _Raw:
    """Console text written as it is: no markup, no tab expansion, no wrapping."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console, options):
        yield Segment(self.text)


class LiveArea:
    """`status()` returns (progress line, [(task, started monotonic, colour code)])."""

    def __init__(self, stream: TextIO, *, color: bool,
                 status: Callable[[], tuple[str, list[tuple[str, float, str | None]]]]) -> None:
        self._status = status
        self._color = color
        self.console = RichConsole(file=stream, force_terminal=True, color_system="standard" if color else None,
                                   highlight=False, soft_wrap=True, emoji=False, markup=False)
        self._live = Live(get_renderable=self._render, console=self.console, auto_refresh=False,
                          transient=True, redirect_stdout=False, redirect_stderr=False)
        self._last = 0.0
        self._dirty = False
        self._live.start()

    def _render(self) -> Text:
        progress, running = self._status()
        now = time.monotonic()
        text = Text()
        width = max((len(name) for name, _, _ in running[:MAX_ROWS]), default=0)
        for name, since, color in running[:MAX_ROWS]:
            text.append("  ")
            text.append(name.ljust(width), style=_style(color) if self._color else None)
            text.append(f"  {now - since:6.1f}s\n")
        if len(running) > MAX_ROWS:
            text.append(f"  ... and {len(running) - MAX_ROWS} more\n")
        text.append(progress, style="bold" if self._color else None)
        return text

    def changed(self) -> None:
        """The status changed (a task started or ended): draw it with the next write."""
        self._dirty = True

    def write(self, text: str) -> None:
        # Rich draws the area below each print from its last refresh: refresh
        # first when that is out of date.
        if self._dirty or time.monotonic() - self._last >= REFRESH_S:
            self.refresh(force=True)
        self.console.print(_Raw(text), end="")

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or self._dirty or now - self._last >= REFRESH_S:
            self._live.refresh()
            self._last = now
            self._dirty = False

    def close(self) -> None:
        self._live.stop()  # transient: the area is erased
        self.console.file.flush()
