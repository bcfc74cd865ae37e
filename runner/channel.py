"""taskrun's own stdout and stderr while it runs: written without ever blocking the loop.

Model: one `Channel` per file behind fd 1 and fd 2, shared when both are the
same pipe, terminal or socket (`2>&1`), so that their bytes keep their order.
A channel writes through a descriptor on which a write never waits:

- a pipe, FIFO or terminal is reopened through /proc/self/fd/N. That makes a
  new open file description: O_NONBLOCK set on it leaves alone the one taskrun
  shares with its shell and the other writers of the pipe (and an O_NONBLOCK
  left on that one by a parent changes nothing here);
- a socket is written with send(MSG_DONTWAIT), which changes no flag;
- a regular file or a device that is not a terminal is written as it is: such
  a write does not wait for a reader. So is a pipe or terminal that cannot be
  reopened (one of another user's): there the old blocking write remains.

What the reader does not take now stays queued, in order; the loop also wakes
when the descriptor becomes writable (`writable_fd`) and writes more (`flush`).
EAGAIN means later. EPIPE, or any other error, means the reader is gone: the
channel closes and forgets what it held. The channel itself drops nothing:
the console keeps what waits behind it bounded, and hands it over (`source`)
each time the channel is empty. At exit `drain_all` waits for a reader that
keeps reading, and gives up after `STALL_S` without progress: a reader that
never reads cannot keep taskrun alive (the summary file and the logs are the
record).
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time
from collections import deque
from collections.abc import Callable

STALL_S = 10.0  # at exit: how long a reader may take nothing before taskrun gives up on it
_IOV = 256  # buffers per system call


class _Fd:
    """Writes to a descriptor: non-blocking when taskrun made it so, as it is otherwise."""

    def __init__(self, fd: int, *, own: bool) -> None:
        self.fd, self.own = fd, own

    def send(self, views: list) -> int:
        return os.writev(self.fd, views)

    def close(self) -> None:
        if self.own:
            os.close(self.fd)


class _Socket:
    def __init__(self, fd: int) -> None:
        import socket  # rare (systemd's journal): not imported by every run

        self.sock = socket.socket(fileno=os.dup(fd))
        self.fd = self.sock.fileno()
        self.flags = socket.MSG_DONTWAIT

    def send(self, views: list) -> int:
        return self.sock.sendmsg(views, (), self.flags)

    def close(self) -> None:
        self.sock.close()


class _Text:
    """A Python text stream without a descriptor (tests, embedding): written as it is."""

    fd = None

    def __init__(self, stream, encoding: str) -> None:
        self.stream, self.encoding = stream, encoding

    def send(self, views: list) -> int:
        data = b"".join(views)
        self.stream.write(data.decode(self.encoding, "replace"))
        self.stream.flush()
        return len(data)

    def close(self) -> None:
        pass


def _writer_for(fd: int, st: os.stat_result):
    if stat.S_ISSOCK(st.st_mode):
        return _Socket(fd)
    if stat.S_ISFIFO(st.st_mode) or os.isatty(fd):
        try:  # O_NOCTTY: a terminal opened again must not become the controlling one
            own = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # a pipe with no reader left
                return None
        else:
            return _Fd(own, own=True)
    return _Fd(fd, own=False)


class Channel:
    """An ordered queue of bytes in front of one descriptor that never blocks (see the module)."""

    def __init__(self, writer, key: tuple[int, int] | None = None) -> None:
        self._writer = writer
        self.key = key  # (device, inode) of a pipe, terminal or socket: who else writes there
        self._queue: deque[memoryview] = deque()
        self.pending = 0  # bytes queued
        self.closed = writer is None
        self.source: Callable[[], None] | None = None  # called when empty: the console's backlog

    @property
    def writable_fd(self) -> int | None:
        """The descriptor to wait on, while bytes wait for it (a pipe, terminal or socket:
        a file never makes bytes wait, and epoll refuses it)."""
        return self._writer.fd if self.pending and self.key is not None and not self.closed else None

    def write(self, pieces: list) -> None:
        """Queue `pieces` (never refused), and write what the reader takes now."""
        if self.closed:
            return
        for piece in pieces:
            if len(piece):
                self._queue.append(memoryview(piece).cast("B"))
                self.pending += len(piece)
        self.flush()

    def flush(self) -> None:
        """Write what the descriptor takes now, never waiting."""
        while self._queue and not self.closed:
            try:
                written = self._writer.send([self._queue[i] for i in range(min(_IOV, len(self._queue)))])
            except (BlockingIOError, InterruptedError):
                return
            except (OSError, ValueError):  # EPIPE and the like (a closed stream): nobody reads any more
                self.close()
                return
            self.pending -= written
            while written and written >= len(self._queue[0]):
                written -= len(self._queue.popleft())
            if written:
                self._queue[0] = self._queue[0][written:]

    def drain(self, stall_s: float = STALL_S) -> bool:
        """Wait until everything queued (and all the source has) is written, as long as the
        reader makes progress. False: gave up on a reader that took nothing for `stall_s`."""
        progress_at = time.monotonic()
        while not self.closed:
            if not self.pending and self.source is not None:
                self.source()
            if not self.pending:
                break
            left = progress_at + stall_s - time.monotonic()
            if left <= 0:
                self.close()
                return False
            poller = select.poll()
            poller.register(self._writer.fd, select.POLLOUT)
            poller.poll(left * 1000)
            before = self.pending
            self.flush()
            if self.pending < before:
                progress_at = time.monotonic()
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.closed = True
        self._queue.clear()
        self.pending = 0


_channels: dict[int, Channel] = {}  # fd 1 / fd 2 -> its channel


def for_fd(fd: int) -> Channel:
    """The process's channel for its descriptor `fd` (1 or 2), made on first use."""
    channel = _channels.get(fd)
    if channel is not None:
        return channel
    try:
        st = os.fstat(fd)
    except OSError:  # not open: what taskrun would write there goes nowhere
        channel = Channel(None)
    else:
        blocking_kind = stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode) or os.isatty(fd)
        key = (st.st_dev, st.st_ino) if blocking_kind else None
        channel = next((c for c in _channels.values() if key is not None and c.key == key), None)
        if channel is None:
            channel = Channel(_writer_for(fd, st), key)
    _channels[fd] = channel
    return channel


def for_stream(stream) -> Channel:
    """The channel of a Python stream: its descriptor's, once what Python buffered is out."""
    if stream is None:  # Python found no descriptor 1 or 2 at start (`2>&-`)
        return Channel(None)
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, OSError):
        return Channel(_Text(stream, getattr(stream, "encoding", None) or "utf-8"))
    try:
        stream.flush()
    except (ValueError, OSError):
        pass
    return for_fd(fd)


def drain_all(stall_s: float = STALL_S) -> bool:
    """At exit: write what is queued, waiting for readers that read. False: a reader was given up on."""
    done = True
    for channel in {id(c): c for c in _channels.values()}.values():
        done = channel.drain(stall_s) and done
    return done
