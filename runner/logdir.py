"""The run's log folder, made so that nobody else can read it or redirect it.

Every folder taskrun makes for its logs (`.taskrun`, `.taskrun/runs`, or the
folder given with --log-dir, then the run's own folder) is opened with
O_NOFOLLOW and checked: a symbolic link is refused (someone could point it at a
file of yours), and so is a folder owned by another user (they could read or
swap your logs). Folders taskrun creates get mode 0700 and files 0600, set
with fchmod so the umask cannot widen or narrow them; the run's folder is
created fresh (never reused), so no file in it can have been planted.
"""

from __future__ import annotations

import errno
import os
import pwd
import stat
from pathlib import Path

from .errors import OutputError

DIR_MODE = 0o700


def _owner(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _open_private_dir(path: Path, *, create: bool, alt: str, dir_fd: int | None = None) -> int:
    """An fd of the folder `path` (created 0700 if missing); refused if it is a link or not ours."""
    name = path.name if dir_fd is not None else str(path)
    created = False
    if create:
        try:
            os.mkdir(name, DIR_MODE, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot create the log folder {path}: {exc.strerror or exc} ({alt})") from exc
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ENOTDIR and _is_link(name, dir_fd):
            exc.errno = errno.ELOOP
        if exc.errno == errno.ELOOP:
            raise OutputError(f"the log folder {path} is a symbolic link, which taskrun does not follow "
                              f"(remove it, or {alt})") from exc
        if exc.errno == errno.ENOTDIR:
            raise OutputError(f"the log folder {path} is not a folder (remove it, or {alt})") from exc
        raise OutputError(f"cannot open the log folder {path}: {exc.strerror or exc} ({alt})") from exc
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise OutputError(f"the log folder {path} belongs to {_owner(st.st_uid)}, not to you: taskrun "
                              f"keeps logs only in folders of your own ({alt})")
        if created:
            os.fchmod(fd, DIR_MODE)  # whatever the umask
        elif st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
            raise OutputError(f"the log folder {path} can be written by others (mode "
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


def make_run_dir(runs: Path, run_id: str, *, default: bool) -> Path:
    """Create `runs/run_id` (mode 0700) and return its absolute path.

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
            fd = _open_private_dir(folder, create=True, alt=alt, dir_fd=parent_fd)
            if parent_fd is not None:
                os.close(parent_fd)
        path = runs / run_id
        try:
            os.mkdir(run_id, DIR_MODE, dir_fd=fd)
        except OSError as exc:
            raise OutputError(f"cannot create the log folder {path}: {exc.strerror or exc} ({alt})") from exc
        run_fd = _open_private_dir(path, create=False, alt=alt, dir_fd=fd)
        os.fchmod(run_fd, DIR_MODE)
        os.close(run_fd)
        return path
    finally:
        if fd is not None:
            os.close(fd)
