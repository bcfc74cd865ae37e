"""Shared test helpers: run the real `taskrun` command, and prove nothing is left running.

Every `taskrun` started through the `taskrun` fixture carries a marker in its
environment (TASKRUN_TEST_MARK). Commands inherit it, grandchildren and
processes that escaped with setsid included, so after each test a scan of
/proc finds anything the test left alive; the test then fails (and the
leftovers are killed so they cannot spoil the next test).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TASKRUN = shutil.which("taskrun")
MARK_VAR = "TASKRUN_TEST_MARK"


def taskrun_argv() -> list[str]:
    if TASKRUN is None:  # pragma: no cover - the suite needs the installed command
        pytest.fail("the `taskrun` command is not on PATH: pip install -e '.[test]' first")
    return [TASKRUN]


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
                 input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            taskrun_argv() + [str(a) for a in args],
            cwd=self.cwd, env=self.env(env), capture_output=True, text=True,
            timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL,
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


@pytest.fixture
def taskrun(tmp_path: Path):
    """A `Runner` in a fresh folder; fails the test if it leaves a process alive."""
    mark = uuid.uuid4().hex
    runner = Runner(tmp_path, mark)
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
    assert not left, f"processes left running after the test: {left}"


def by_name(summary: dict) -> dict[str, dict]:
    return {t["name"]: t for t in summary["tasks"]}


def check(r: subprocess.CompletedProcess[str], code: int) -> subprocess.CompletedProcess[str]:
    """Assert the exit code of a finished `taskrun`, and that no traceback reached the user."""
    assert r.returncode == code, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    assert "Traceback" not in r.stderr
    assert "Traceback" not in r.stdout
    return r


PY = sys.executable
