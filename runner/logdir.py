"""The run's log folder, made so that nobody else can read it or redirect it.

Every folder taskrun makes for its logs (`.taskrun`, `.taskrun/runs`, or the
folder given with --log-dir, then the run's own folder) is opened with
O_NOFOLLOW and checked: a symbolic link is refused (someone could point it at a
file of yours), and so is a folder owned by another user (they could read or
swap your logs). Folders taskrun creates get mode 0700 and files 0600, set
with fchmod so the umask cannot widen or narrow them; the run's folder is
created fresh (never reused), so no file in it can have been planted.

A live run holds its folder (`RunDir`): the folder stays open, and an
exclusive flock on `run.lock` inside it, taken the moment the folder is made,
lasts the run's whole life (the kernel drops it when taskrun exits, however it
exits). Pruning (`claim_ended_runs`) deletes only folders whose lock it can
take without waiting, and not those of a run whose commands are still alive
(a runner killed by SIGKILL leaves its lock free, but its commands carry
TASKRUN_RUN_ID, found with one scan of /proc, made only when a run to delete
has no `run_end` in its event log). A folder with no lock file is a run of an
older taskrun (it has files) or one being made this instant (it is empty;
kept). After each attempt the run checks that its folder is still the
one it made; if a task deleted it (`rm -rf .taskrun`, `git clean -fdx`), the
folder is made again, with the same checks, so later tasks still run and log.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pwd
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError
from .events import EVENTS_NAME
from .proc import carriers
from .recover import RUN_VAR

DIR_MODE = 0o700
LOCK_NAME = "run.lock"


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def open_private_dir(path: Path, *, create: bool, alt: str, dir_fd: int | None = None,
                     what: str = "log folder") -> int:
    """An fd of the folder `path` (created 0700 if missing); refused if it is a link or not ours.
    `what` names it in messages."""
    name = path.name if dir_fd is not None else str(path)
    created = False
    if create:
        try:
            os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot create the {what} {path}: {exc.strerror or exc} ({alt})") from exc
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR and _is_link(name, dir_fd):
            exc.errno = errno.ELOOP
        if exc.errno == errno.ELOOP:
            raise OutputError(f"the {what} {path} is a symbolic link, which taskrun does not follow "
                              f"(remove it, or {alt})") from exc
        if exc.errno == errno.ENOTDIR:
            raise OutputError(f"the {what} {path} is not a folder (remove it, or {alt})") from exc
        raise OutputError(f"cannot open the {what} {path}: {exc.strerror or exc} ({alt})") from exc
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise OutputError(f"the {what} {path} belongs to {_owner(st.st_uid)}, not to you: taskrun "
                              f"keeps logs only in folders of your own ({alt})")
        if created:
            os.fchmod(fd, DIR_MODE)  # whatever the umask
        elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            raise OutputError(f"the {what} {path} can be written by others (mode "
                              f"{stat.S_IMODE(st.st_mode):o}): chmod go-w it, or {alt}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int | None) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def make_run_dir(runs: Path, run_id: str, *, default: bool) -> tuple[Path, int]:
    """Create `runs/run_id` (mode 0700): its absolute path, and an fd of it.

    `default`: `runs` is taskrun's own `.taskrun/runs`, so `.taskrun` is checked too.
    """
    runs = runs.absolute()  # commands start in their own folder: no relative path may leak
    alt = "use --log-dir DIR" if default else "choose another --log-dir"
    checked = [runs.parent, runs] if default else [runs]
    try:
        checked[0].parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the log folder {checked[0].parent}: {exc.strerror or exc} ({alt})") from exc
    fd = None
    try:
        for folder in checked:
            parent_fd = fd
            fd = open_private_dir(folder, create=True, alt=alt, dir_fd=parent_fd)
            if parent_fd is not None:
                os.close(parent_fd)
        path = runs / run_id
        try:
            os.mkdir(run_id, DIR_MODE, dir_fd=fd)
        except OSError as exc:
            raise OutputError(f"cannot create the log folder {path}: {exc.strerror or exc} ({alt})") from exc
        run_fd = open_private_dir(path, create=False, alt=alt, dir_fd=fd)
        os.fchmod(run_fd, DIR_MODE)
        return path, run_fd
    finally:
        if fd is not None:
            os.close(fd)


class RunDir:
    """A live run's hold on its folder: the folder open, its lock taken, and a
    check that the path still leads to it."""

    def __init__(self, runs: Path, run_id: str, *, default: bool) -> None:
        self._where = (runs, run_id, default)
        self._fd = self._lock = -1
        self.path = self._make()

    def _make(self) -> Path:
        path, fd = make_run_dir(*self._where[:2], default=self._where[2])
        try:
            lock = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                           dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            raise OutputError(f"cannot create {path / LOCK_NAME}: {exc.strerror or exc}") from exc
        os.fchmod(lock, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # a filesystem without locks: the run's commands still show it alive (see the docstring)
        self.close()
        self._fd, self._lock = fd, lock
        self._id = _identity(os.fstat(fd))
        return path

    def gone(self) -> bool:
        """Whether the path no longer leads to the folder this run made (deleted, moved, replaced)."""
        try:
            return _identity(os.stat(self.path, follow_symlinks=False)) != self._id
        except OSError:
            return True

    def remake(self) -> None:
        """Make the folder again, fresh and locked, at the same path (`OutputError` if it cannot be)."""
        self._make()

    def close(self) -> None:
        for fd in (self._lock, self._fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock = -1


class FolderWatch:
    """A listener, first in line: after each attempt, the run's folder and its event
    log must still be there. What was lost is made again (the folder, then a fresh
    event log) before any other listener writes or the next task starts, and each
    loss is kept in `problems`, a sentence each, for the session to report. A
    folder that cannot be made again stops the run (`stop(reason)`): later tasks
    could not log, so they are cancelled, with that reason, instead of failing."""

    def __init__(self, run_dir: RunDir, events, stop: Callable[[str], None]) -> None:
        self.run_dir = run_dir
        self.events = events  # `deleted()` and `reopen(why)`, as `events.EventLog`
        self.stop = stop
        self.problems: list[str] = []
        self.broken = False  # the folder could not be made again: said once, nothing more is written there

    def task_started(self, task, attempt: int, pid: int | None, slot: int) -> None:
        pass

    def attempt_ended(self, task, attempt: int, result, retry_in_s: float | None) -> None:
        self.check(f"after task '{task.name}' ended")

    def task_ended(self, result) -> None:
        pass

    def check(self, when: str) -> None:
        if self.broken:
            return
        if self.run_dir.gone():
            what = f"the run's log folder {self.run_dir.path} was deleted during the run (noticed {when})"
            try:
                self.run_dir.remake()
            except OutputError as exc:
                self.broken = True
                self.problems.append(f"{what} and could not be made again: {exc}")
                self.stop("stopped: the run's log folder is gone")
                return
            self.problems.append(f"{what}: it was made again, and what it held before is lost")
            self.events.reopen(what)
        elif self.events.deleted():
            what = f"the event log {self.events.path} was deleted during the run (noticed {when})"
            self.problems.append(f"{what}: a new one was started, and the lines before are lost")
            self.events.reopen(what)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


@contextmanager
def claim_ended_runs(folders: list[str]) -> Iterator[list[str]]:
    """The folders among `folders` whose run is over, each held locked until the
    caller, who deletes them, leaves the block (another pruner leaves them alone)."""
    held: list[int] = []
    ended: list[str] = []
    try:
        for folder in folders:
            claim = _claim(folder)
            if claim is not None:
                ended.append(folder)
                if claim >= 0:
                    held.append(claim)
        # A runner that wrote run_end had swept its commands; one killed by SIGKILL may have left some
        # running: one scan of /proc for all of those.
        unsure = {os.path.basename(f).encode() for f in ended if not _ended_whole(f)}
        if unsure:
            alive = set(carriers(RUN_VAR, unsure).values())
            ended = [f for f in ended if os.path.basename(f).encode() not in alive]
        yield ended
    finally:
        for fd in held:
            os.close(fd)


def _ended_whole(folder: str) -> bool:
    """Whether the run's event log ends with its `run_end` line."""
    try:
        with open(os.path.join(folder, EVENTS_NAME), "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 65536))
            last = f.read().rstrip(b"\n").rpartition(b"\n")[2]
    except OSError:
        return False
    return last.startswith(b'{"event": "run_end"')


def _claim(folder: str) -> int | None:
    """The lock of the run in `folder` (an fd, or -1 when it has no lock to take), or None while it may live."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        lock = os.open(LOCK_NAME, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except FileNotFoundError:
        try:  # an older taskrun's run has files; an empty folder is a run being made right now
            return -1 if os.listdir(fd) else None
        except OSError:
            return None
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock)
        return None
    except OSError:
        pass  # no locks on this filesystem: the scan for the run's commands decides
    return lock
