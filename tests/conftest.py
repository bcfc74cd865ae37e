"""Shared test helpers: run the real `taskrun` command, and prove nothing is left running.

Every `taskrun` started through the `taskrun` fixture carries a marker in its
environment (TASKRUN_TEST_MARK). Commands inherit it, grandchildren and
processes that escaped with setsid included, so after each test a scan of
/proc finds anything the test left alive; the test then fails (and the
leftovers are killed so they cannot spoil the next test).

The test process is also a child subreaper: whatever a runner leaves behind
when it exits, alive or a zombie it never reaped, is handed to the test
process instead of init, where the fixture sees it. A zombie handed over that
way fails the test too (`expect_orphans()` allows it for tests that kill the
runner with SIGKILL, which cannot reap anything).
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TASKRUN = shutil.which("taskrun")
MARK_VAR = "TASKRUN_TEST_MARK"


# A run of every kind of outcome on a pool of 3: a chain (the critical path), a failure and the
# task it skips, a retry after a wait, a timeout. The drawings' tests (trace, timeline) run it.
MIXED_RUN = """
    version: 1
    pool: 3
    tasks:
      compile: sleep 0.4
      integration: {cmd: sleep 0.8, needs: [compile]}
      package: {cmd: sleep 0.1, needs: [integration]}
      lint: {cmd: echo bad >&2; exit 2}
      flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1, retry_delay: 0.3}
      slow: {cmd: sleep 30, timeout: 0.3, kill_grace: 0.2}
      docs: {cmd: echo never, needs: [lint]}
"""


def taskrun_argv() -> list[str]:
    if TASKRUN is None:  # pragma: no cover - the suite needs the installed command
        pytest.fail("the `taskrun` command is not on PATH: pip install -e '.[test]' first")
    return [TASKRUN]


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        pytest.fail("cannot become a child subreaper (prctl)")


def _stat(pid: int) -> tuple[bytes, int] | None:
    """(state, session id) of a process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return fields[0], int(fields[3])
    except (OSError, IndexError, ValueError):
        return None


def adopted_zombies() -> list[int]:
    """Zombie children of this process that it never started: handed over when their parent exited.
    (Children started by the tests share this process's session; a command runs in a session of its own.)"""
    me = os.getsid(0)
    found = []
    for pid in children_of(os.getpid()):
        st = _stat(pid)
        if st is not None and st[0] == b"Z" and st[1] != me:
            found.append(pid)
    return found


def children_of(pid: int) -> list[int]:
    """The children of a process now, over all its threads (each thread has its own list)."""
    children = []
    for tid in _listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                children += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return children


def reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def reap_while(still_there, timeout_s: float = 15.0) -> None:
    """While `still_there()` lists processes (zombies included), reap what is handed to this
    process, a subreaper, as their parents end: a fixture that stops a tree of processes (a
    Dask cluster, a browser) leaves no zombie for a later test to find. Those it lists are
    reaped too once they are this process's zombies: a browser's processes share this
    process's session, so `adopted_zombies` leaves them (and the wait would last to its end)."""
    deadline = time.monotonic() + timeout_s
    while (left := still_there()) and time.monotonic() < deadline:
        mine = set(children_of(os.getpid()))
        reap([pid for pid in left if pid in mine and (_stat(pid) or (b"",))[0] == b"Z"] + adopted_zombies())
        time.sleep(0.02)
    reap(adopted_zombies())


def descendants(root: int) -> set[int]:
    """The processes below `root`, now."""
    found: set[int] = set()
    parents = [root]
    while parents:
        for child in children_of(parents.pop()):
            if child not in found:
                found.add(child)
                parents.append(child)
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def processes_with_mark(mark: str) -> list[int]:
    """Pids of live (non-zombie) processes whose environment holds the mark."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != b"Z":
            found.append(int(entry))
    return found


class Runner:
    """Runs `taskrun` in a folder with a marked environment."""

    def __init__(self, cwd: Path, mark: str) -> None:
        self.cwd = cwd
        self.mark = mark
        self.orphans_expected = False

    def expect_orphans(self) -> None:
        """This test kills a runner with SIGKILL: what it leaves unreaped is not a defect."""
        self.orphans_expected = True

    def run_dirs(self, runs: str = ".taskrun/runs") -> list[Path]:
        folder = self.cwd / runs
        return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def events(self, run_dir: Path | None = None) -> list[dict]:
        """The lines of a run's event log (the only run's, by default), each validated against the schema."""
        if run_dir is None:
            (run_dir,) = self.run_dirs()
        raw = (run_dir / "events.jsonl").read_bytes()
        assert raw.endswith(b"\n"), raw[-200:]
        lines = [json.loads(line) for line in raw.splitlines()]
        for line in lines:
            validate_events_line(line)
        return lines

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "TASKRUN_"))}
        env.pop("CI", None)
        env.pop("NO_COLOR", None)
        env.pop("FORCE_COLOR", None)
        env[MARK_VAR] = self.mark
        env["TASKRUN_CACHE_DIR"] = str(self.cwd.parent / f"{self.cwd.name}-cache")  # each test starts cold
        env.update(extra or {})
        return env

    def write(self, name: str, text: str) -> Path:
        path = self.cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
                 input: str | None = None, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            taskrun_argv() + [str(a) for a in args],
            cwd=self.cwd, env=self.env(env), capture_output=True, text=True,
            timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL, **kw,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen[str]:
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen(
            taskrun_argv() + [str(a) for a in args], cwd=self.cwd, env=self.env(env),
            stdin=subprocess.DEVNULL, text=True, **kw,
        )

    def summary(self, name: str = "taskrun-summary.json") -> dict:
        data = json.loads((self.cwd / name).read_text())
        validate_summary(data)
        return data


def validate_summary(data: dict) -> None:
    import jsonschema

    schema = json.loads((ROOT / "schemas" / "summary.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(data)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """In-process loads keep their validity verdicts out of the user's cache."""
    monkeypatch.setenv("TASKRUN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


_EVENTS_VALIDATOR = None


def validate_events_line(line: dict) -> None:
    global _EVENTS_VALIDATOR
    if _EVENTS_VALIDATOR is None:
        import jsonschema

        schema = json.loads((ROOT / "schemas" / "events.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        _EVENTS_VALIDATOR = jsonschema.Draft202012Validator(schema)
    _EVENTS_VALIDATOR.validate(line)


@pytest.fixture
def taskrun(tmp_path: Path, request):
    """A `Runner` in a fresh folder; fails the test if it leaves a process alive, or a zombie."""
    become_subreaper()
    reap(adopted_zombies())  # from tests that do not use this fixture
    mark = uuid.uuid4().hex
    runner = Runner(tmp_path, mark)
    if request.node.get_closest_marker("dask"):
        # A Dask worker does not adopt its commands' orphans: once stopped they are handed to
        # the nearest subreaper, this process, which reaps them here.
        runner.expect_orphans()
    yield runner
    # Give processes killed at the very end of a run a moment to be reaped by their parent.
    deadline = time.monotonic() + 2.0
    left = processes_with_mark(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_with_mark(mark)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    zombies = adopted_zombies()
    reap(zombies)
    assert not left, f"processes left running after the test: {left}"
    assert runner.orphans_expected or not zombies, f"the runner exited leaving unreaped children: {zombies}"


def by_name(summary: dict) -> dict[str, dict]:
    return {t["name"]: t for t in summary["tasks"]}


def slots_of_run(summary: dict, events: list[dict]) -> dict[tuple[str, int], int]:
    """(task, attempt number) -> slot, checked: every attempt has a slot of the pool, the
    attempts of one slot never overlap in time, and the event log's `task_start` lines say
    the same slots."""
    slots, spans = {}, {}
    for t in summary["tasks"]:
        for n, a in enumerate(t["attempts"], start=1):
            assert 0 <= a["slot"] < summary["pool"], (t["name"], n, a["slot"])
            slots[(t["name"], n)] = a["slot"]
            spans.setdefault(a["slot"], []).append((datetime.fromisoformat(a["started_at"]),
                                                    datetime.fromisoformat(a["finished_at"]), t["name"]))
    for slot, held in spans.items():
        held.sort()
        for (_, end, before), (start, _, after) in zip(held, held[1:]):
            assert end <= start, f"slot {slot}: {after} started before {before} ended"
    assert {(e["task"], e["attempt"]): e["slot"] for e in events if e["event"] == "task_start"} == slots
    return slots


def spot(text: str, needle: str) -> str:
    """`line:column` of the first `needle` in `text`, as taskrun's messages write a place."""
    at = text.index(needle)
    return f"{text.count(chr(10), 0, at) + 1}:{at - (text.rfind(chr(10), 0, at) + 1) + 1}"


def check(r: subprocess.CompletedProcess[str], code: int) -> subprocess.CompletedProcess[str]:
    """Assert the exit code of a finished `taskrun`, and that no traceback reached the user."""
    assert r.returncode == code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    assert "Traceback" not in r.stdout
    return r


def wait_for(predicate, timeout: float = 30.0, what: str = "a condition"):
    """Poll `predicate` (a file appearing, a line in the event log) until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def read_events_file(path: Path) -> list[dict]:
    """Complete lines of an event log that may still be written (or cut by a SIGKILL)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in raw.split(b"\n")[:-1]]


PY = sys.executable
