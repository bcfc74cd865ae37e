"""Each run's record in its own folder, and the earlier runs of a task file.

Every run writes its summary twice: where `-o` says (by default
`taskrun-summary.json` in the current folder, the last run's), and as
`summary.json` in its own run folder (`RUN_DIR`, under the runs folder:
`.taskrun/runs` next to the task file, or `--log-dir`). The run folder's copy
is never replaced by another run, so no run's record is lost to the next one.

The earlier runs of a task file are the run folders whose summary names the
same file (its real path) with the same content (sha256), newest first: two
files run from one folder share a runs folder but never each other's history.
A summary whose first lines already name another file, other content or
another run is passed over without being read whole (at 1,000 tasks a
summary is 1 MB).

Beside its summary a run folder keeps `durations.json` (RUN_DURATIONS): each
task's name, status and duration, all that history reads of a run, in a
fiftieth of the summary's bytes (parsing a 20,000-task summary whole took
0.28 s and 85 MiB). It is derived from the summary, which stays the record:
where it is missing or does not match the summary's run, the summary is read.

A summary is read only from a regular file of at most SUMMARY_LIMIT bytes: a
FIFO, a device or a pipe is refused, never read (it could block forever, or
never end).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .model import TaskFile

RUN_SUMMARY = "summary.json"
RUN_DURATIONS = "durations.json"
SUMMARY_LIMIT = 256 * 1024 * 1024  # 32 KiB of tails a task: thousands of verbose tasks fit
EARLIER_RUNS_READ = 10  # history merges at most this many earlier summaries of the file
RUNS_READ = 50  # and reads at most this many run folders' summaries to find them (--keep-runs 0 keeps all)
FEW_TASKS = 64  # tasks still without a duration that are looked up line by line in an earlier summary


class NotASummary(Exception):
    """Why a path could not be read as JSON: the text says it, after the path."""


def runs_folder(taskfile_folder: str | os.PathLike, log_dir: str | None) -> Path:
    """Where a task file's runs keep their folders: `--log-dir`, or `.taskrun/runs` next to the file."""
    return Path(log_dir) if log_dir else Path(taskfile_folder) / ".taskrun" / "runs"


def read_json(path: str | os.PathLike, limit: int = SUMMARY_LIMIT):
    """The JSON value in the regular file `path`; NotASummary (with the reason) otherwise."""
    return _parse(read_bytes(path, limit))


def read_bytes(path: str | os.PathLike, limit: int = SUMMARY_LIMIT) -> bytes:
    """The bytes of the regular file `path`, at most `limit`; NotASummary (with the reason) otherwise."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; regular files ignore it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotASummary("does not exist") from None
    except OSError as exc:
        raise NotASummary(f"cannot be read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise NotASummary("is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise NotASummary("is not a regular file (a summary is read only from a file)")
        if st.st_size > limit:
            raise NotASummary(f"is too big for a summary ({st.st_size} bytes; at most {limit})")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise NotASummary(f"cannot be read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew while read
        raise NotASummary(f"is too big for a summary (over {limit} bytes)")
    return data


def _parse(data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise NotASummary(f"is not JSON ({exc})") from None


SUMMARY_SCHEMA = Path(__file__).resolve().parent / "schemas" / "summary.schema.json"


def read_summary(path: str | os.PathLike) -> dict:
    """The summary in the regular file `path`, checked against the summary's JSON Schema
    (what draws a run reads it whole, without a question left); NotASummary with the
    first problem, and where it is, otherwise."""
    from .schemacheck import compiled

    data = read_json(path)
    schema = json.loads(SUMMARY_SCHEMA.read_text(encoding="utf-8"))
    if compiled(schema)(data):  # the common case, fast; after a no, jsonschema says where and why
        return data
    import jsonschema  # tens of milliseconds: only a summary that is refused pays them

    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(data))
    if error is None:
        return data
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
    raise NotASummary(f"is not a taskrun summary (schemas/summary.schema.json): {where or 'the top level'}: {message}")


def file_of(summary: dict) -> str | None:
    """The real path of the task file a summary records (its `file`, from its `cwd`)."""
    file, cwd = summary.get("file"), summary.get("cwd")
    if not isinstance(file, str) or not isinstance(cwd, (str, type(None))):
        return None
    return os.path.realpath(os.path.join(cwd or ".", file))


def is_of(summary: dict, taskfile: TaskFile) -> bool:
    """Whether a summary records a run of this task file, as it is now (path and content)."""
    return file_of(summary) == os.path.realpath(taskfile.path) and summary.get("file_sha256") == taskfile.sha256


def run_summaries(runs: Path, taskfile: TaskFile,
                  wanted: Callable[[], set[str]] | None = None) -> Iterator[tuple[Path, dict | None]]:
    """(path, summary) of the runs under `runs` that left one, newest first. A run
    folder counts when the summary in it names it (its run id is the folder's name).

    A summary whose first lines show it is not a run of `taskfile` as it is now
    (`_not_of`) is passed over unread: its summary is None. With `wanted` (the names
    of the tasks still looked for), a summary whose first lines show it is a run of
    that file is not parsed whole when there is a shorter way (`_tasks_of`): its
    tasks may then hold only their name, status and duration, or only the tasks
    looked for."""
    try:
        entries = [e for e in os.scandir(runs) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return

    def newest(entry: os.DirEntry) -> tuple[str, float]:  # a run id starts with its UTC second
        try:
            return entry.name[:16], os.stat(os.path.join(entry.path, RUN_SUMMARY)).st_mtime
        except OSError:
            return entry.name[:16], 0.0

    for entry in sorted(entries, key=newest, reverse=True):
        path = Path(entry.path) / RUN_SUMMARY
        head = _head(str(path))
        if _not_of(head, entry.name, taskfile):
            yield path, None
            continue
        try:
            names = wanted() if wanted is not None and _is_of(head, entry.name, taskfile) else None
            data = _parse(read_bytes(path)) if names is None else _tasks_of(path, head, names)
        except NotASummary:
            continue  # still running, killed, or from before run folders kept a summary
        if isinstance(data, dict) and data.get("run_id") == entry.name and isinstance(data.get("tasks"), list):
            yield path, data


def earlier_runs(runs: Path, taskfile: TaskFile, limit: int = EARLIER_RUNS_READ,
                 wanted: Callable[[], set[str]] | None = None) -> Iterator[dict]:
    """The summaries of the earlier runs of `taskfile` (same real path, same content), newest
    first; with `wanted`, one may hold only the tasks it names (`run_summaries`)."""
    found = 0
    for _, data in itertools.islice(run_summaries(runs, taskfile, wanted), RUNS_READ):
        if found == limit:
            return
        if data is not None and is_of(data, taskfile):
            found += 1
            yield data


def _not_of(head: dict[str, str | None], run_id: str, taskfile: TaskFile) -> bool:
    """Whether the first lines of a summary (`_head`) already show that it is not the record
    of run `run_id` of `taskfile` as it is now: each field they hold is checked, and a field
    they do not hold (a summary laid out otherwise, a command line over 4 KiB) proves nothing."""
    if "run_id" in head and head["run_id"] != run_id:
        return True
    if "file_sha256" in head and head["file_sha256"] != taskfile.sha256:
        return True
    if "file" in head and "cwd" in head:
        return file_of(head) != os.path.realpath(taskfile.path)
    return False


def _is_of(head: dict[str, str | None], run_id: str, taskfile: TaskFile) -> bool:
    """Whether the first lines of a summary show, every field held, that it is the record of
    run `run_id` of `taskfile` as it is now."""
    return head.get("run_id") == run_id and "cwd" in head and is_of(head, taskfile)


def _tasks_of(path: Path, head: dict[str, str | None], names: set[str]) -> dict:
    """The summary at `path` (a run of the file, its first lines `head`) as far as history
    needs it for the tasks `names`: the tasks of the run's durations file if it has a valid
    one; else, for at most FEW_TASKS names, the lines of those tasks (`_task_lines`); else
    the whole summary. NotASummary when it cannot be read."""
    tasks = _durations(path.parent / RUN_DURATIONS, head["run_id"])
    if tasks is not None:
        return {**head, "tasks": tasks}
    raw = read_bytes(path)
    tasks = _task_lines(raw, names) if len(names) <= FEW_TASKS else None
    return _parse(raw) if tasks is None else {**head, "tasks": tasks}


def durations_text(summary: dict) -> str:
    """The run's durations file: its run id, and the name, status and duration of each task."""
    return json.dumps({"run_id": summary["run_id"], "tasks": [
        {"name": t["name"], "status": t["status"], "duration_s": t["duration_s"]} for t in summary["tasks"]]},
        ensure_ascii=False) + "\n"


def _durations(path: Path, run_id: str) -> list[dict] | None:
    """The tasks of the durations file at `path` if it is run `run_id`'s, each a dict with a
    string name and status and a number (or null) for duration; None when it is missing,
    unreadable or not one."""
    try:
        data = read_json(path)
    except NotASummary:
        return None
    tasks = data.get("tasks") if isinstance(data, dict) and data.get("run_id") == run_id else None
    if not isinstance(tasks, list) or not all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("status"), str)
            and isinstance(t.get("duration_s"), (int, float, type(None))) for t in tasks):
        return None
    return tasks


def _task_lines(raw: bytes, names: set[str]) -> list[dict] | None:
    """The records of the tasks `names` in the text of a summary laid out as taskrun writes it
    (`summary.dump_summary`: a task a line, its name first; a line break inside a record is
    written escaped), each parsed from its own line; None for a text laid out otherwise."""
    start = raw.find(b'\n  "tasks": [\n')
    if not raw.startswith(_HEAD_START) or start < 0:
        return None
    records = []
    for name in names:
        at = raw.find(b'\n    {"name": ' + json.dumps(name, ensure_ascii=False).encode() + b", ", start)
        if at < 0:
            continue  # not planned in that run
        end = raw.find(b"\n", at + 1)
        if end < 0:
            return None
        try:
            record = json.loads(raw[at + 1:end].rstrip(b","))
        except ValueError:
            return None
        if not isinstance(record, dict) or record.get("name") != name:
            return None
        records.append(record)
    return records


# A summary as taskrun writes it (`summary.dump_summary`): each top-level key on a line of its
# own, indented by two spaces, `version` first, the tasks last.
_HEAD_BYTES = 4096
_HEAD_START = b'{\n  "version": '
_HEAD_LINE = re.compile(rb'^  "(run_id|status|file|file_sha256|cwd)": ("(?:[^"\\\n]|\\.)*"|null),?$', re.MULTILINE)


def _head(path: str) -> dict[str, str | None]:
    """`run_id`, `status`, `file`, `file_sha256` and `cwd` (each a string or None) of a summary
    laid out as taskrun writes it, as far as the first 4 KiB of the regular file `path` hold
    them (not the whole file: at 10,000 tasks it is 10 MB); {} otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        head = os.pread(fd, _HEAD_BYTES, 0)
    except OSError:
        return {}
    finally:
        os.close(fd)
    if not head.startswith(_HEAD_START):
        return {}
    head = head.partition(b'\n  "tasks": ')[0]  # the top level's keys stand before the tasks
    try:
        return {key.decode(): json.loads(value) for key, value in _HEAD_LINE.findall(head)}
    except ValueError:
        return {}


def displaced_note(path: str, run_id: str, reran: str | None = None) -> str | None:
    """One line when the summary about to be replaced at `path` is another run's
    that did not succeed (its failures would vanish from there): where its own copy is.
    Not for the run this one reran (`reran`): the new summary names it in `rerun_of`.
    The whole file is read only when its first lines do not already say no note is due."""
    head = _head(path)
    if head.get("status") == "success" or (isinstance(head.get("run_id"), str) and head["run_id"] in (run_id, reran)):
        return None
    try:
        old = read_json(path)
    except NotASummary:
        return None
    if (not isinstance(old, dict) or not isinstance(old.get("run_id"), str) or old["run_id"] in (run_id, reran)
            or old.get("status") == "success"):
        return None
    log_dir = old.get("log_dir")
    copy = Path(log_dir) / RUN_SUMMARY if isinstance(log_dir, str) else None
    where = (f"its own copy is {copy}" if copy is not None and copy.is_file()
             else "its run folder keeps no copy")
    return f"taskrun: {path}: replacing the summary of run {old['run_id']} ({old.get('status')}); {where}"
