"""Whether a task's work is already done: its fingerprint, and where it is kept.

A task's fingerprint is what defines its work as it will run (`definition`: its
commands as run, its env, its folder, its `sources` and `generates` globs) and
the content of every file its `sources` match, read when the task is ready.
After a task succeeds, the fingerprint taken before it started is recorded; a
task whose fingerprint matches the record and whose every `generates` glob
matches a file is up to date. The sources are read before the task starts, so
a file edited while it runs makes it run again next time; the record is
removed before the task starts, so a task that fails or is stopped leaves none.

Records live in `.taskrun/fingerprints/FILE/` next to the task file (FILE: the
task file's name, so two files in one folder keep their own), one JSON file per
task written atomically (a temporary file renamed over it), with a lock file
beside it. A run holds a task's lock (flock) from its check to its record:
another run that reaches the same task waits, then checks against what the
first one recorded. The folders are made as the log folders are (`logdir`):
never through a link, ours, 0700.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError
from .model import PlannedTask

OWN = ".taskrun"  # taskrun's folder next to a task file
FOLDER = "fingerprints"
RECORD_VERSION = 1
LOCK_POLL_S = 0.05  # a lock held by another run is tried this often (a blocked flock cannot be interrupted)
SHOWN_CHANGES = 3  # changed sources named in a reason


def definition(task: PlannedTask) -> dict:
    """What defines a task's work, from the task as it will run: any value that reaches its
    commands (rendered templates included) is in its argv, steps, env or cwd."""
    return {
        "argv": [list(s.argv) for s in task.steps] if task.steps else [list(task.argv)],
        "env": sorted([k, v] for k, v in task.env),
        "cwd": task.cwd,
        "sources": list(task.spec.sources),
        "generates": list(task.spec.generates),
    }


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def matches(cwd: str, pattern: str) -> list[str]:
    """Paths `pattern` matches, relative to `cwd` as the pattern is: `**` spans folders."""
    return glob.glob(pattern, root_dir=cwd, recursive=True)


def source_files(cwd: str, patterns: tuple[str, ...]) -> list[str]:
    """The files the patterns name, sorted; a matched folder stands for every file under it.
    Never taskrun's own `.taskrun` (its logs change at every run: the task would never be up to date)."""
    found: set[str] = set()
    for pattern in patterns:
        for rel in matches(cwd, pattern):
            full = os.path.join(cwd, rel)
            if os.path.isdir(full):
                for folder, folders, files in os.walk(full):
                    folders[:] = [f for f in folders if f != OWN]
                    found.update(os.path.normpath(os.path.relpath(os.path.join(folder, f), cwd)) for f in files)
            else:
                found.add(os.path.normpath(rel))
    return sorted(p for p in found if OWN not in Path(p).parts)


def content_hash(path: str) -> str:
    """sha256 of a regular file's content; for anything else its kind only (a FIFO or a
    device is never opened for reading: it could block, or never end)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a device can act on it: never
            return "not a regular file"
        # O_NONBLOCK: should it turn into a FIFO after the stat, open() must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise OutputError(f"cannot read the source {path}: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return "not a regular file"
        digest = hashlib.sha256()
        while chunk := os.read(fd, 1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    except OSError as exc:
        raise OutputError(f"cannot read the source {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def take(task: PlannedTask) -> dict:
    """The task's fingerprint now: its definition's digest and each source's content hash."""
    return {"definition": _digest(definition(task)),
            "sources": {rel: content_hash(os.path.join(task.cwd, rel))
                        for rel in source_files(task.cwd, task.spec.sources)}}


def missing_generates(task: PlannedTask) -> list[str]:
    return [p for p in task.spec.generates if not matches(task.cwd, p)]


def changes(recorded: dict | None, now: dict) -> str | None:
    """Why `now` differs from the record, in words; None when it does not."""
    if recorded is None:
        return "no successful run recorded"
    if recorded.get("definition") != now["definition"]:
        return "its commands, env or folder changed"
    old, new = recorded.get("sources") or {}, now["sources"]
    changed = [f"{p} changed" for p in new if p in old and old[p] != new[p]]
    changed += [f"{p} is new" for p in new if p not in old]
    changed += [f"{p} is gone" for p in old if p not in new]
    if not changed:
        return None
    more = len(changed) - SHOWN_CHANGES
    return "sources changed: " + ", ".join(changed[:SHOWN_CHANGES]) + (f" and {more} more" if more > 0 else "")


def up_to_date_reason(recorded: dict, task: PlannedTask) -> str:
    """`sources, commands and env unchanged since run ID (3 sources); generates exist`."""
    count = len(recorded.get("sources") or {})
    what = f"{count} source{'s' if count != 1 else ''}, commands and env" if task.spec.sources else "commands and env"
    said = f"{what} unchanged since run {recorded.get('run_id')}"
    return said + ("; generates exist" if task.spec.generates else "")


class Store:
    """The records of one task file's tasks; made on first use, safe for several threads."""

    def __init__(self, taskfile_path: str) -> None:
        path = Path(os.path.abspath(taskfile_path))
        self.path = path.parent / OWN / FOLDER / path.name
        self._fd: int | None = None
        self._made = threading.Lock()

    def _folder(self, create: bool = True) -> int:
        """The folder's fd; made (with `.taskrun` and `fingerprints`) when missing and `create`."""
        from .logdir import open_private_dir

        with self._made:
            if self._fd is None:
                alt = "drop sources, generates and status from the file"
                fd = None
                for folder in (self.path.parent.parent, self.path.parent, self.path):
                    parent, fd = fd, open_private_dir(folder, create=create, alt=alt, dir_fd=fd,
                                                  what="fingerprint folder")
                    if parent is not None:
                        os.close(parent)
                self._fd = fd
            return self._fd

    def read(self, name: str) -> dict | None:
        """The record of `name`, or None (none, or not one taskrun wrote: the task runs).
        Reading makes no folder (--dry-run reads)."""
        try:
            fd = os.open(f"{name}.json", os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                         dir_fd=self._folder(create=False))
        except (OSError, OutputError):
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            with os.fdopen(os.dup(fd), "rb") as f:
                data = json.loads(f.read())
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)
        return data if isinstance(data, dict) and data.get("version") == RECORD_VERSION else None

    def write(self, name: str, record: dict) -> None:
        """Replace the record atomically: a reader sees the old one or the new one, whole."""
        folder = self._folder()
        tmp = f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
        data = (json.dumps({"version": RECORD_VERSION, **record}, ensure_ascii=False) + "\n").encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=folder)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, f"{name}.json", src_dir_fd=folder, dst_dir_fd=folder)
            os.fsync(folder)
        except OSError as exc:
            try:
                os.unlink(tmp, dir_fd=folder)
            except OSError:
                pass
            raise OutputError(f"cannot record the fingerprint {self.path / name}.json: {exc.strerror or exc}") from exc

    def forget(self, name: str) -> None:
        try:
            os.unlink(f"{name}.json", dir_fd=self._folder())
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot remove the fingerprint {self.path / name}.json: {exc.strerror or exc}") from exc

    def lock(self, name: str, stopping: Callable[[], bool]) -> int | None:
        """Hold `name`'s lock (an fd to close to release it); None if `stopping()` came first."""
        try:
            fd = os.open(f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=self._folder())
        except OSError as exc:
            raise OutputError(f"cannot open the lock {self.path / name}.lock: {exc.strerror or exc}") from exc
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if stopping():
                    os.close(fd)
                    return None
                time.sleep(LOCK_POLL_S)
            except OSError:
                return fd  # no locks on this filesystem: records are still replaced whole

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
