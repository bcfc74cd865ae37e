"""Which backend runs the plan: the command line's choice, else the file's, else local.

`--executor` wins over the file's `executor.kind`, `--scheduler` over its
`executor.scheduler`; `--scheduler` alone means `dask`. A Dask backend connects
when it is made (`backend_factory`), before the run starts, so an unreachable
scheduler is reported in one line and nothing runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import UsageError
from .model import TaskFile

EXECUTORS = ("local", "dask")
DEFAULT_CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Executor:
    kind: str  # "local" or "dask"
    scheduler: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S


def choose_executor(taskfile: TaskFile, *, kind: str | None = None, scheduler: str | None = None,
                    connect_timeout_s: float | None = None) -> Executor:
    if kind is not None and kind not in EXECUTORS:
        raise UsageError(f"--executor: unknown executor {kind!r} (use local or dask)")
    chosen = kind or ("dask" if scheduler else None) or taskfile.executor or "local"
    if chosen == "local":
        if scheduler:
            raise UsageError("--scheduler needs the dask executor (drop --executor local)")
        return Executor(kind="local")
    address = scheduler or taskfile.scheduler
    if not address:
        raise UsageError(f"the dask executor needs a scheduler address: --scheduler tcp://HOST:8786,"
                         f" or executor.scheduler in {taskfile.path}")
    return Executor(kind="dask", scheduler=address,
                    connect_timeout_s=DEFAULT_CONNECT_TIMEOUT_S if connect_timeout_s is None else connect_timeout_s)


def backend_factory(executor: Executor, *, slots: int = 1, masked: bool = False):
    """A function of the wake fd making the backend; for Dask, connected already.
    `slots` and `masked` let the local backend check its open-file limit first."""
    if executor.kind == "dask":
        from .dask_backend import DaskBackend, connect

        client = connect(executor.scheduler, executor.connect_timeout_s)
        return lambda wake_fd: DaskBackend(client, wake_fd=wake_fd)
    from .backends import LocalBackend

    return lambda wake_fd: LocalBackend(wake_fd=wake_fd, slots=slots, masked=masked)
