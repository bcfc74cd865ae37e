"""Where taskrun writes a file it was asked for (`-o`, `--junit`, the GitHub step
summary, and any later writer), and how. One decision for all of them,
`open_target`, made before anything runs:

- a regular file, nothing yet, or a symbolic link to either (or to nowhere):
  replaced atomically when written (a temporary file in the same folder, fsync,
  rename, fsync of the folder); a link is replaced, not followed. Atomic replace
  is for these only: `write_atomic` refuses to rename over anything else;
- one of taskrun's own descriptors (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`,
  `/proc/self/fd/N`, such as the `/dev/fd/63` of `-o >(jq .)`): written into a
  duplicate of it, at its offset, whatever it is (pipe, terminal, file); one
  open only for reading, or not open, is refused;
- a character device (`/dev/null`, a terminal) or a FIFO that has a reader:
  opened now without blocking, held open until written, written into as it is;
  never renamed over, never truncated;
- a folder, a block device, a socket, a FIFO nobody has opened for reading:
  refused before anything runs (exit 2), with what to do instead. A FIFO's
  reader must be there first: waiting for one could wait forever.

Writes into something that is not a regular file wait for room with poll, at
most STALL_S seconds without progress, so a reader that stops reading cannot
hold the end of a run (nor its record on stderr) forever.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import stat
import tempfile
from pathlib import Path

from .errors import OutputError, UsageError

STALL_S = 10.0  # a reader that takes nothing for this long is given up on
_CHUNK = select.PIPE_BUF  # a pipe with room for one chunk takes it whole, without blocking


class Target:
    """A path to write, as decided by `open_target`: replaced (`fd` None) or written into (`fd`)."""

    def __init__(self, path: str, fd: int | None = None, descriptor: int | None = None) -> None:
        self.path = path
        self.fd = fd
        self.descriptor = descriptor  # the number of taskrun's own descriptor it names, if it does

    @property
    def replaces(self) -> bool:
        """Whether writing replaces a regular file (rather than write into something)."""
        return self.fd is None

    def write(self, text: str) -> None:
        """The whole of `text` as the target's content (replaced, or written into)."""
        if self.fd is None:
            write_atomic(self.path, text)
        else:
            self._write_into(text)

    def append(self, text: str) -> None:
        """`text` added at the end of a regular file, or written into anything else."""
        if self.fd is not None:
            self._write_into(text)
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self.fd = fd
        self._write_into(text)

    def size(self) -> int:
        """Bytes already in a regular file; 0 for anything else (or nothing yet)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return 0
        return st.st_size if self.fd is None and stat.S_ISREG(st.st_mode) else 0

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)

    def _write_into(self, text: str) -> None:
        try:
            write_all(self.fd, text.encode("utf-8"), STALL_S)
        except OSError as exc:
            why = "its reader went away" if exc.errno == errno.EPIPE else exc.strerror or exc
            raise OutputError(f"cannot write {self.path}: {why}") from exc
        finally:
            self.close()  # a FIFO's reader sees the end only once no writer is left


def open_target(path: str, flag: str, example: str = "taskrun-summary.json") -> Target:
    """Decide how `path` will be written, opening now what is written into;
    refuse (UsageError, exit 2) what cannot be written. `flag` names it in messages,
    `example` is the file name a refused folder is told to hold."""
    descriptor = own_descriptor(path)
    if descriptor is not None:
        try:
            readable_only = fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY
            if not readable_only:
                return Target(path, os.dup(descriptor), descriptor)
        except OSError as exc:
            raise UsageError(f"{flag} {path}: {exc.strerror or exc}") from None
        raise UsageError(f"{flag} {path}: is taskrun's descriptor {descriptor}, open for reading only")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return Target(path)  # nothing there yet, a dangling link, or a folder in the way: seen when written
    if stat.S_ISREG(mode):
        return Target(path)
    if stat.S_ISDIR(mode):
        raise UsageError(f"{flag} {path}: is a folder; give a file path, e.g. {os.path.join(path, example)}")
    if stat.S_ISBLK(mode):
        raise UsageError(f"{flag} {path}: is a block device; taskrun does not write onto a disk")
    if stat.S_ISSOCK(mode):
        raise UsageError(f"{flag} {path}: is a socket; give a file path, a FIFO or a character device")
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise UsageError(f"{flag} {path}: is not a file taskrun can write")
    try:
        # O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of waiting for one.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO and stat.S_ISFIFO(mode):
            raise UsageError(f"{flag} {path}: is a FIFO that nobody reads; start its reader first "
                             f"(e.g. cat {path} &)") from None
        raise UsageError(f"{flag} {path}: cannot be opened for writing: {exc.strerror or exc}") from None
    return Target(path, fd)


def own_descriptor(path: str) -> int | None:
    """N when `path` names taskrun's own descriptor N, through however many links
    (`/dev/stdout` -> `/proc/self/fd/1`, `/dev/fd/63` -> `/proc/<pid>/fd/63`)."""
    fds = f"/proc/{os.getpid()}/fd"
    p = os.path.abspath(path)
    for _ in range(40):  # the kernel's own limit on links followed
        head, name = os.path.split(p)
        if name.isdigit() and os.path.realpath(head) == fds:
            return int(name)
        try:
            link = os.readlink(p)
        except OSError:
            return None
        p = os.path.normpath(os.path.join(head, link))
    return None


def names_stdout(path: str) -> bool:
    """Whether `path` is taskrun's own stdout (`-o /dev/stdout`): then, as with
    `-o -`, the console goes to stderr so that the summary reaches the pipe whole."""
    return own_descriptor(path) == 1


def write_all(fd: int, data: bytes, stall_s: float) -> None:
    """Write all of `data` to `fd` (blocking or not), giving up (TimeoutError)
    after `stall_s` seconds in which the reader made no room."""
    view = memoryview(data)
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    while view:
        if not poller.poll(stall_s * 1000):
            raise TimeoutError(errno.ETIMEDOUT, f"nobody read it for {stall_s:g}s")
        try:
            view = view[os.write(fd, view[:_CHUNK]):]
        except (BlockingIOError, InterruptedError):
            continue


def write_atomic(path: str | os.PathLike, text: str, *, durable: bool = True) -> None:
    """Replace the regular file at `path` with `text` so that a crash at any
    moment leaves the old or the new file; refuse to replace anything else.

    The temporary file is created with O_EXCL and mode 0600 (never through a
    planted link), and the rename replaces a link at `path` rather than follow it.
    `durable=False` skips the two fsyncs (about 10 ms on a journaled disk): the
    rename stays atomic for readers, but a power cut may lose the file."""
    target = Path(path)
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)  # `-o reports/summary.json` just works
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write {target}: {_first_non_folder(folder)} is not a folder") from None
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        _check_replaceable(target)
        os.replace(tmp, target)  # the temporary file was made 0600 (mkstemp) and stays so
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if not durable:
        return
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass  # the rename is done; some filesystems cannot fsync a folder


def _check_replaceable(target: Path) -> None:
    """Only a regular file (or a link to one, or nothing) may be renamed over:
    never a device, a FIFO or a folder that appeared since `open_target` looked."""
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return  # nothing there, or a link to nowhere
    if not stat.S_ISREG(mode):
        raise OSError(errno.EEXIST, "it is no longer a regular file; taskrun replaces only regular files")


def _first_non_folder(folder: Path) -> Path:
    """The part of `folder` that exists and is not a folder (what blocked mkdir)."""
    for part in reversed([folder, *folder.parents]):
        if part.exists() and not part.is_dir():
            return part
    return folder
