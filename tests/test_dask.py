"""The dask executor on a real local cluster: a `dask scheduler` and two `dask
worker` processes (one thread each, the second advertising `gpu=1`), every
port on 127.0.0.1, started once for this module and stopped by process group.

The cluster is started without the test mark; the commands it runs get
taskrun's environment, mark included, so the `taskrun` fixture still proves
that nothing a test ran is left alive on the workers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import MARK_VAR, ROOT, by_name, check, read_events_file, reap_while, slots_of_run
from conftest import wait_for as wait_until

pytestmark = pytest.mark.dask

DASK = shutil.which("dask")
WORKER_ADDRESS = re.compile(r"^tcp://127\.0\.0\.1:\d+$")
HOST = socket.gethostname()
START_TIMEOUT_S = 60


def _require_distributed() -> None:
    if importlib.util.find_spec("distributed") is None or DASK is None:
        message = "the dask extra is not installed: pip install -e '.[test,dask]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Cluster:
    address: str
    folder: Path
    procs: list[subprocess.Popen]
    gpu_worker: str  # address of the worker advertising gpu=1

    def workers(self, at_least: int = 1) -> dict[str, dict]:
        """The workers, once at least `at_least` have joined."""
        out = subprocess.run([sys.executable, "-c", _WAIT_FOR_WORKERS, self.address, str(at_least)], env=_cluster_env(),
                             capture_output=True, text=True, timeout=START_TIMEOUT_S, check=True)
        return json.loads(out.stdout)


_WAIT_FOR_WORKERS = """
import json, sys
from distributed import Client
with Client(sys.argv[1], timeout=30) as c:
    c.wait_for_workers(int(sys.argv[2]), timeout=60)
    print(json.dumps({a: {"resources": w.get("resources", {}), "name": w.get("name")}
                      for a, w in c.scheduler_info(n_workers=-1)["workers"].items()}))
"""


def _cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != MARK_VAR}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)  # workers import runner
    return env


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    # A process of a group that outlived its parent (a worker's launcher) is handed to this process,
    # a subreaper: wait for the groups to be empty, reaping those, so no later test inherits them.
    groups = {proc.pid for proc in procs}
    reap_while(lambda: _group_members(groups))


def _group_members(groups: set[int]) -> list[int]:
    """Pids of the processes (zombies included) whose process group is one of `groups`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    pgrp = int(f.read().rsplit(b")", 1)[1].split()[2])
            except (OSError, IndexError, ValueError):
                continue
            if pgrp in groups:
                found.append(int(entry))
    return found


def _launch(folder: Path, procs: list[subprocess.Popen], workers: list[tuple[str, tuple[str, ...]]],
            scheduler_env: dict[str, str] | None = None) -> tuple[str, dict[str, dict]]:
    """Start a scheduler and `workers` ((name, extra arguments) each) on 127.0.0.1, logging into
    `folder`, appending each process to `procs` as it starts (the scheduler first, so a failure
    can still stop them); once every worker joined, return the scheduler's address and the workers."""
    scheduler_file = folder / "scheduler.json"
    env = _cluster_env()

    def start(name: str, *args: str) -> None:
        log = open(folder / f"{name}.log", "wb")
        own_env = {**env, **(scheduler_env or {})} if name == "scheduler" else env
        procs.append(subprocess.Popen([DASK, *args], cwd=folder, env=own_env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))  # own group: stopped whole
        log.close()

    local = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")  # the HTTP server starts anyway: bind it here
    start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0", *local,
          "--scheduler-file", str(scheduler_file))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not scheduler_file.exists() or not scheduler_file.read_text().strip():
        assert procs[0].poll() is None, (folder / "scheduler.log").read_text()
        assert time.monotonic() < deadline, "the scheduler did not start"
        time.sleep(0.05)
    address = json.loads(scheduler_file.read_text())["address"]
    for name, extra in workers:
        start(name, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--name", name, *local,
              "--memory-limit", "0", "--local-directory", str(folder / name), *extra)
    out = subprocess.run([sys.executable, "-c", _WAIT_FOR_WORKERS, address, str(len(workers))], env=env,
                         capture_output=True, text=True, timeout=START_TIMEOUT_S)
    assert out.returncode == 0, out.stderr
    return address, json.loads(out.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _require_distributed()
    folder = tmp_path_factory.mktemp("cluster")
    procs: list[subprocess.Popen] = []
    try:
        address, workers = _launch(folder, procs, [("w1", ()), ("w2", ("--resources", "gpu=1"))])
        gpu = [a for a, w in workers.items() if w["resources"].get("gpu")]
        yield Cluster(address=address, folder=folder, procs=procs, gpu_worker=gpu[0])
    finally:
        _stop(procs)


@pytest.fixture
def own_cluster(tmp_path_factory, request):
    """A cluster of one scheduler and one worker without a nanny, for a test that breaks it.
    Indirect parameters: environment variables of the scheduler (its Dask configuration)."""
    _require_distributed()
    folder = tmp_path_factory.mktemp("own-cluster")
    procs: list[subprocess.Popen] = []
    try:
        address, _ = _launch(folder, procs, [("only", ("--no-nanny",))], getattr(request, "param", None))
        yield Cluster(address=address, folder=folder, procs=procs, gpu_worker="")
    finally:
        _stop(procs)


def _tcp_sockets(pids: set[int]) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
    """(state, local address, remote address) of each TCP socket these processes hold;
    the state as /proc/net/tcp gives it ("0A" listening, "01" established)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue

    def address(text: str, family: int) -> tuple[str, int]:
        ip, port = text.split(":")
        return (socket.inet_ntoa(bytes.fromhex(ip)[::-1]) if family == 4 else ip), int(port, 16)

    found = []
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[9] in inodes:
                found.append((cols[3], address(cols[1], family), address(cols[2], family)))
    return found


def _listening_ports(pids: set[int]) -> list[str]:
    """Local addresses of the TCP sockets these processes listen on."""
    return [f"{ip}:{port}" for state, (ip, port), _ in _tcp_sockets(pids) if state == "0A"]


@contextmanager
def _killed_if_left(proc: subprocess.Popen):
    """The block's taskrun, killed should the block leave it running (a failed wait or assertion)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _tree(root: int) -> set[int]:
    pids = {root}
    changed = True
    while changed:
        changed = False
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in pids:
                st = _stat(int(entry))
                if st and st[1] in pids:
                    pids.add(int(entry))
                    changed = True
    return pids


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def wait_for(path: Path, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def outcome(summary: dict) -> tuple:
    """What must be the same wherever the tasks ran: the run's and each task's status and exit code."""
    return (summary["status"], summary["exit_code"],
            [(t["name"], t["status"], t["exit_code"], t["signal"], len(t["attempts"])) for t in summary["tasks"]])


# --- the cluster itself ------------------------------------------------------------------


def test_every_port_of_the_cluster_is_on_loopback(cluster):
    pids = set().union(*(_tree(p.pid) for p in cluster.procs))
    ports = _listening_ports(pids)
    assert len(ports) >= 5, ports  # scheduler (2), each worker and nanny
    assert all(p.startswith("127.0.0.1:") for p in ports), ports


# --- same file, same outcome -------------------------------------------------------------


def test_the_demo_runs_unchanged_with_the_same_outcome(cluster, taskrun):
    demo = ROOT / "tasks" / "demo.yaml"
    logs = taskrun.cwd / "logs"
    local = taskrun(demo, "--log-dir", logs, "-o", "local.json")
    remote = taskrun(demo, "--log-dir", logs, "-o", "dask.json", "--executor", "dask", "--scheduler", cluster.address)
    assert (local.returncode, remote.returncode) == (0, 0), remote.stderr
    local_summary, dask_summary = taskrun.summary("local.json"), taskrun.summary("dask.json")
    assert outcome(dask_summary) == outcome(local_summary)
    for task in dask_summary["tasks"]:
        assert WORKER_ADDRESS.match(task["worker"]) and task["host"] == HOST, task
        assert task["stdout_tail"], task  # the output reached the run's log files
    assert all(t["worker"] is None for t in local_summary["tasks"])
    assert re.search(r"^\d\d:\d\d:\d\d start fetch +\(sent to the cluster\)$", remote.stdout, re.M), remote.stdout
    assert re.search(r"^\d\d:\d\d:\d\d done  fetch +ok exit 0 in \d+\.\d\ds on tcp://127\.0\.0\.1:\d+$",
                     remote.stdout, re.M), remote.stdout


GRAPH = """
    version: 1
    pool: 2
    kill_grace: 0.5
    tasks:
      left:
        # runs at the same time as `right`: with one thread per worker, on the other worker
        cmd: touch left.ready; for i in $(seq 300); do [ -e right.ready ] && exit 0; sleep 0.1; done; exit 9
      right: touch right.ready; for i in $(seq 300); do [ -e left.ready ] && exit 0; sleep 0.1; done; exit 9
      both:
        cmd: [sh, -c, 'echo "both on $TASKRUN_TASK"; exit 0']
        needs: [left, right]
      broken:
        cmd: echo broken >&2; exit 3
        needs: [left]
      after-broken:
        cmd: echo never
        needs: [broken]
      tolerated:
        cmd: exit 4
        allow_failure: true
      after-tolerated:
        cmd: printf '%s\\n' "$GREETING"
        needs: [tolerated]
        env: {GREETING: hello from the file}
      in-sub:
        cmd: pwd
        cwd: sub
"""


def test_needs_and_pool_2_across_both_workers_as_locally(cluster, taskrun):
    taskrun.write("tasks.yaml", GRAPH)
    (taskrun.cwd / "sub").mkdir()
    local = taskrun("tasks.yaml", "-o", "local.json")
    for f in ("left.ready", "right.ready"):
        (taskrun.cwd / f).unlink()
    remote = taskrun("tasks.yaml", "-o", "dask.json", "--scheduler", cluster.address)
    assert local.returncode == remote.returncode == 1, remote.stdout + remote.stderr
    summary = taskrun.summary("dask.json")
    assert outcome(summary) == outcome(taskrun.summary("local.json"))
    tasks = by_name(summary)
    assert [(n, t["status"], t["exit_code"]) for n, t in tasks.items()] == [
        ("left", "success", 0), ("right", "success", 0), ("both", "success", 0), ("broken", "failed", 3),
        ("after-broken", "skipped", None), ("tolerated", "failed", 4), ("after-tolerated", "success", 0),
        ("in-sub", "success", 0)]
    assert tasks["after-broken"]["reason"] == "needs 'broken', which failed"
    assert {tasks["left"]["worker"], tasks["right"]["worker"]} == set(cluster.workers())
    assert tasks["broken"]["stderr_tail"] == "broken\n"
    assert tasks["after-tolerated"]["stdout_tail"] == "hello from the file\n"
    assert tasks["in-sub"]["stdout_tail"] == f"{taskrun.cwd / 'sub'}\n"
    assert all(t["host"] == HOST for t in tasks.values() if t["attempts"])


def test_each_attempt_has_its_slot_and_its_worker(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        tasks:
          long: sleep 1
          short1: sleep 0.1
          short2: sleep 0.1
          flaky: {cmd: 'test -e marker || { touch marker; exit 1; }', retries: 1}
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address, "--trace", "trace.json")
    assert r.returncode == 0, r.stdout + r.stderr
    summary = taskrun.summary()
    slots = slots_of_run(summary, taskrun.events())  # the scheduler's slots, as locally
    assert slots[("long", 1)] == 0 and set(slots.values()) == {0, 1} and len(slots) == 5
    workers = {(t["name"], n): a["worker"] for t in summary["tasks"] for n, a in enumerate(t["attempts"], start=1)}
    assert all(WORKER_ADDRESS.match(w) for w in workers.values()), workers
    bars = [e for e in json.loads((taskrun.cwd / "trace.json").read_text())["traceEvents"]
            if e["ph"] == "X" and e["cat"] != "retry_wait"]
    assert {(e["args"]["task"], e["args"]["attempt"]): (e["tid"], e["args"]["worker"]) for e in bars} == {
        key: (slots[key], worker) for key, worker in workers.items()}


def test_the_executor_can_come_from_the_file_and_the_flag_wins(cluster, taskrun):
    taskrun.write("tasks.yaml", f"""
        version: 1
        executor: {{kind: dask, scheduler: "{cluster.address}"}}
        tasks:
          where: echo $TASKRUN_TASK
    """)
    r = taskrun("tasks.yaml")
    assert r.returncode == 0, r.stderr
    assert WORKER_ADDRESS.match(taskrun.summary()["tasks"][0]["worker"])
    r = taskrun("tasks.yaml", "--executor", "local")
    assert r.returncode == 0, r.stderr
    assert taskrun.summary()["tasks"][0]["worker"] is None


# --- timeouts, retries, stops ------------------------------------------------------------


def test_a_timeout_kills_the_whole_tree_on_the_worker(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          hang:
            cmd: echo $$ > leader; sleep 300 & echo $! > grandchild; wait
            timeout: 1s
            kill_grace: 0.5
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 1, r.stdout + r.stderr
    task = taskrun.summary()["tasks"][0]
    assert (task["status"], task["exit_code"], task["signal"], task["reason"]) == (
        "timeout", None, "SIGTERM", "timed out after 1s")
    assert WORKER_ADDRESS.match(task["worker"])
    leader, grandchild = (int((taskrun.cwd / f).read_text()) for f in ("leader", "grandchild"))
    worker_pids = set().union(*(_tree(p.pid) for p in cluster.procs))
    assert not alive(leader) and not alive(grandchild)
    assert not {leader, grandchild} & {p for p in worker_pids if alive(p)}


def test_a_stopped_task_on_a_worker_runs_its_cleanup_at_its_timeout(cluster, taskrun):
    # The worker runs the same ladder: SIGCONT follows SIGTERM, so the trap runs now, not after the 60 s grace.
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          frozen:
            cmd: trap 'touch cleaned; exit 7' TERM; kill -STOP $$; sleep 300
            timeout: 1s
            kill_grace: 60s
    """)
    began = time.monotonic()
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 1, r.stdout + r.stderr
    assert time.monotonic() - began < 40  # far below the 60 s grace
    task = taskrun.summary()["tasks"][0]
    assert (task["status"], task["exit_code"], task["signal"], task["reason"]) == (
        "timeout", 7, None, "timed out after 1s")
    assert (taskrun.cwd / "cleaned").exists()


def test_retries_really_run_again(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          flaky:
            cmd: echo "attempt $TASKRUN_ATTEMPT" >> tries; test "$TASKRUN_ATTEMPT" = 3
            retries: 3
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    task = taskrun.summary()["tasks"][0]
    assert task["status"] == "success"
    assert [a["exit_code"] for a in task["attempts"]] == [1, 1, 0]
    assert (taskrun.cwd / "tries").read_text() == "attempt 1\nattempt 2\nattempt 3\n"
    assert [Path(a["stdout_log"]).name for a in task["attempts"]] == ["flaky.stdout", "flaky~2.stdout",
                                                                       "flaky~3.stdout"]


def test_the_longest_durations_fit_every_wait_on_both_sides(cluster, taskrun):
    # 366 days, far beyond one epoll wait (about 24.8 days): a timeout and a grace on the worker,
    # a retry delay in the runner's wait; SIGTERM ends the wait for the retry at once.
    taskrun.write("tasks.yaml", """
        version: 1
        output: quiet
        tasks:
          quick: {cmd: echo done, timeout: 8784h, kill_grace: 8784h}
          flaky: {cmd: "exit 1", needs: [quick], retries: 1, retry_delay: 8784h}
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", cluster.address)

    def retry_planned():
        logs = list((taskrun.cwd / ".taskrun" / "runs").glob("*/events.jsonl"))
        lines = read_events_file(logs[0]) if logs else []
        return [e for e in lines if e["event"] == "attempt_end" and e.get("retry_in_s")]

    with _killed_if_left(proc):
        wait_until(retry_planned, what="`flaky` to fail with a retry planned")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "OverflowError" not in err
    tasks = by_name(taskrun.summary())
    assert (tasks["quick"]["status"], tasks["quick"]["stdout_tail"]) == ("success", "done\n")
    assert (tasks["flaky"]["status"], [a["exit_code"] for a in tasks["flaky"]["attempts"]]) == ("cancelled", [1])


def test_sigint_cancels_queued_work_and_kills_running_commands_on_workers(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 3
        kill_grace: 0.5
        tasks:
          long-1: echo $$ > long-1.pid; exec sleep 300
          long-2: echo $$ > long-2.pid; exec sleep 300
          queued: echo $$ > queued.pid; exec sleep 300
          later:
            cmd: echo never
            needs: [long-1]
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", cluster.address)
    pids = [int(wait_for(taskrun.cwd / f"long-{i}.pid")) for i in (1, 2)]
    assert all(alive(p) for p in pids)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert not any(alive(p) for p in pids)
    assert not (taskrun.cwd / "queued.pid").exists()  # two workers of one thread: it never started
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"], summary["signal"]) == ("cancelled", 130, "SIGINT")
    tasks = by_name(summary)
    assert {n: t["status"] for n, t in tasks.items()} == dict.fromkeys(tasks, "cancelled")
    for name in ("long-1", "long-2"):
        assert (tasks[name]["signal"], tasks[name]["reason"]) == ("SIGTERM", "interrupted (SIGINT)")
        assert WORKER_ADDRESS.match(tasks[name]["worker"])
    assert tasks["queued"]["reason"] == "interrupted (SIGINT)"
    assert tasks["queued"]["exit_code"] is None
    assert tasks["later"]["attempts"] == []


def test_attempts_sent_all_at_once_share_a_few_connections_to_the_scheduler(cluster, taskrun):
    # Each word to an attempt's Variable in flight holds a connection of its own: sent all at
    # once, 150 attempts' "go" opened about 150 connections (300: about 290). They go out on a
    # few lanes instead; and an interrupt's 150 "stop"s too.
    from runner.dask_backend import WORD_LANES

    n = 150
    taskrun.write("tasks.yaml", "version: 1\nkill_grace: 0.5\ntasks:\n" + "".join(
        f"  t{i}: echo $$ > t{i}.pid; exec sleep 300\n" for i in range(n)))
    port = int(cluster.address.rsplit(":", 1)[1])
    proc = taskrun.popen("tasks.yaml", "-j", str(n), "--scheduler", cluster.address)
    with _killed_if_left(proc):
        wait_until(lambda: len(list(taskrun.cwd.glob("t*.pid"))) >= 2, timeout=60, what="two attempts started")
        most = 0
        for _ in range(20):  # the words go out in the first moments; a connection stays open once made
            mine = [s for s in _tcp_sockets({proc.pid}) if s[0] == "01" and s[2][1] == port]
            most = max(most, len(mine))
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=90)
    # the client's own stream, its probes and the lanes
    assert 1 <= most <= WORD_LANES + 3, most
    assert proc.returncode == 130, out + err
    tasks = by_name(taskrun.summary())
    assert {t["status"] for t in tasks.values()} == {"cancelled"}
    started = [int(pid.read_text()) for pid in taskrun.cwd.glob("t*.pid")]
    assert 2 <= len(started) <= 4  # two workers of one thread
    assert not any(alive(p) for p in started)


def test_sigterm_is_honoured_while_nobody_reads_the_console(cluster, taskrun):
    import array
    import fcntl
    import termios

    def queued(fd: int) -> int:
        buf = array.array("i", [0])
        fcntl.ioctl(fd, termios.FIONREAD, buf)
        return buf[0]

    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        kill_grace: 0.5
        tasks:
          noisy: seq 200000
          long: echo $$ > long.pid; exec sleep 300
    """)
    r, w = os.pipe()
    proc = taskrun.popen("tasks.yaml", "--scheduler", cluster.address, stdout=w, stderr=w)
    os.close(w)
    try:
        pid = int(wait_for(taskrun.cwd / "long.pid"))
        deadline = time.monotonic() + 30
        while queued(r) < 32 * 1024:  # the console is blocked: nobody reads the pipe
            assert time.monotonic() < deadline, "the console never filled its pipe"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        summary = json.loads(wait_for(taskrun.cwd / "taskrun-summary.json"))
        assert (summary["status"], summary["exit_code"], summary["signal"]) == ("cancelled", 143, "SIGTERM")
        assert by_name(summary)["long"]["status"] == "cancelled"
        assert not alive(pid)
        assert proc.wait(timeout=60) == 143  # it gives up on a reader that never reads
    finally:
        os.close(r)


def test_fail_fast_stops_what_runs_on_the_workers(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        fail_fast: true
        kill_grace: 0.5
        tasks:
          long: echo $$ > long.pid; exec sleep 300
          fails: while [ ! -e long.pid ]; do sleep 0.05; done; exit 2
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 1, r.stdout + r.stderr
    assert not alive(int((taskrun.cwd / "long.pid").read_text()))
    tasks = by_name(taskrun.summary())
    assert (tasks["fails"]["status"], tasks["fails"]["exit_code"]) == ("failed", 2)
    assert (tasks["long"]["status"], tasks["long"]["signal"], tasks["long"]["reason"]) == (
        "cancelled", "SIGTERM", "fail_fast: 'fails' failed")


# --- resources ---------------------------------------------------------------------------


def test_resources_pick_the_workers_that_have_them(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        tasks:
          gpu-a: {cmd: sleep 0.3, resources: {gpu: 1}}
          gpu-b: {cmd: sleep 0.3, resources: {gpu: 1}}
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    a, b = taskrun.summary()["tasks"]
    assert a["worker"] == b["worker"] == cluster.gpu_worker
    first, second = sorted((a, b), key=lambda t: t["started_at"])
    assert second["started_at"] >= first["finished_at"]  # one gpu: one at a time
    r = taskrun("tasks.yaml")  # the local executor checks them against nothing
    assert r.returncode == 0, r.stdout + r.stderr


def test_when_and_declared_resources_have_the_local_semantics(cluster, taskrun):
    """`when:` is the scheduler's, shared by both executors; a declared resource is taskrun's
    own lock (not a worker resource: no worker advertises `deploy`, and the tasks run)."""
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        resources: {deploy: 1}
        tasks:
          host1: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          host2: {cmd: 'sleep 0.3', resources: {deploy: 1}}
          host3: {cmd: 'sleep 0.3; exit 4', resources: {deploy: 1}}
          rollback: {cmd: 'true', needs: [host1, host2, host3], when: on_failure}
          cleanup: {cmd: 'true', needs: [host1, host2, host3], when: always}
          unneeded: {cmd: 'true', needs: [host1], when: on_failure}
          report: {cmd: 'true', needs: [host3]}
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 1, r.stdout + r.stderr
    tasks = by_name(taskrun.summary())
    hosts = sorted((tasks[f"host{i}"] for i in (1, 2, 3)), key=lambda t: t["started_at"])
    assert {t["worker"] for t in hosts} <= {w for w in cluster.workers()}
    for before, after in zip(hosts, hosts[1:]):
        assert after["started_at"] >= before["finished_at"], (before, after)
    assert {n: (t["status"], t["reason"]) for n, t in tasks.items() if not n.startswith("host")} == {
        "rollback": ("success", None), "cleanup": ("success", None),
        "unneeded": ("skipped", "when: on_failure, and nothing it needs failed"),
        "report": ("skipped", "needs 'host3', which failed")}
    assert tasks["rollback"]["worker"] and tasks["cleanup"]["worker"]


def test_a_matrix_runs_on_dask_as_locally(cluster, taskrun):
    """Instances are tasks like any other: each its own Dask task with its own values, the
    declared lock held one instance at a time, what needs the matrix after every instance."""
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 4
        resources: {deploy: 1}
        tasks:
          deploy:
            matrix: {host: [a, b, c], tier: [web, db]}
            cmd: echo ${{ matrix.tier }}-${{ matrix.host }}; sleep 0.2
            resources: {deploy: 1}
          after: {cmd: 'true', needs: [deploy]}
    """)
    local = check(taskrun("tasks.yaml", "-o", "local.json", "--executor", "local"), 0)
    remote = check(taskrun("tasks.yaml", "-o", "dask.json", "--scheduler", cluster.address), 0)
    assert local.returncode == remote.returncode
    summary = taskrun.summary("dask.json")
    assert outcome(summary) == outcome(taskrun.summary("local.json"))
    tasks = by_name(summary)
    instances = [f"deploy[{h},{t}]" for h in "abc" for t in ("web", "db")]
    workers = cluster.workers()
    assert list(tasks) == instances + ["after"]
    for name in instances:
        host, tier = name[len("deploy["):-1].split(",")
        assert tasks[name]["matrix"] == {"host": host, "tier": tier}
        assert tasks[name]["stdout_tail"] == f"{tier}-{host}\n"
        assert tasks[name]["worker"] in workers
    held = sorted((tasks[n]["started_at"], tasks[n]["finished_at"]) for n in instances)
    for (_, end), (start, _) in zip(held, held[1:]):
        assert end <= start, held
    assert tasks["after"]["started_at"] >= held[-1][1]


def test_an_interactive_task_is_refused_on_dask_before_connecting(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: {cmd: 'true', interactive: true}\n")
    r = check(taskrun("tasks.yaml", "--scheduler", "tcp://127.0.0.1:9"), 2)
    assert r.stderr == ("taskrun: interactive task 'a' needs taskrun's terminal and runs on the local executor"
                        " only, not on dask: run it with --executor local\n")


def test_confirm_is_asked_on_taskruns_side_before_connecting(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: {cmd: 'true', confirm: Go?}\n")
    r = check(taskrun("tasks.yaml", "--scheduler", "tcp://127.0.0.1:9", start_new_session=True), 2)
    assert r.stderr == ("taskrun: task asks for confirmation ('a') and there is no terminal to ask on;"
                        " nothing ran (answer yes with --yes)\n")
    r = check(taskrun("tasks.yaml", "--scheduler", "tcp://127.0.0.1:9", "--yes", "--connect-timeout", "1s"), 2)
    assert r.stderr.startswith("taskrun: cannot reach the Dask scheduler at tcp://127.0.0.1:9")  # then it connects


# --- failures of the cluster -------------------------------------------------------------


def test_a_worker_killed_mid_task_fails_the_attempt_and_the_retry_runs(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.5
        tasks:
          victim:
            cmd: |
              if [ "$TASKRUN_ATTEMPT" = 1 ]; then
                sleep 300 & echo $! > grandchild; echo $$ > leader; wait
              fi
              echo "attempt $TASKRUN_ATTEMPT ran"
            retries: 1
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", cluster.address)
    leader = int(wait_for(taskrun.cwd / "leader"))
    grandchild = int((taskrun.cwd / "grandchild").read_text())
    launcher = _stat(leader)[1]  # the worker process's launcher runs the command
    worker_pid = _stat(launcher)[1]
    assert worker_pid in set().union(*(_tree(p.pid) for p in cluster.procs))
    os.kill(worker_pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    task = taskrun.summary()["tasks"][0]
    first, second = task["attempts"]
    assert re.fullmatch(rf"the worker tcp://127\.0\.0\.1:\d+ on {re.escape(HOST)} was lost while it ran this attempt",
                        first["reason"]), first
    assert (first["exit_code"], first["signal"], first["worker"] in first["reason"]) == (None, None, True)
    assert (second["exit_code"], task["status"], task["stdout_tail"]) == (0, "success", "attempt 2 ran\n")
    deadline = time.monotonic() + 10  # the worker's launcher stops what the dead worker ran
    while (alive(leader) or alive(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(leader) and not alive(grandchild)
    assert len(cluster.workers(2)) == 2  # the nanny started the worker again, for the tests that follow


def test_a_launcher_killed_mid_task_fails_the_attempt_its_command_is_stopped_and_the_retry_runs(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.5
        tasks:
          victim:
            cmd: |
              if [ "$TASKRUN_ATTEMPT" = 1 ]; then
                trap '' TERM; sleep 300 & echo $! > grandchild; echo $$ > leader; wait
              fi
              echo "attempt $TASKRUN_ATTEMPT ran"
            retries: 1
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", cluster.address)
    leader = int(wait_for(taskrun.cwd / "leader"))
    grandchild = int((taskrun.cwd / "grandchild").read_text())
    launcher = _stat(leader)[1]
    assert launcher in set().union(*(_tree(p.pid) for p in cluster.procs))
    os.kill(launcher, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    task = taskrun.summary()["tasks"][0]
    first, second = task["attempts"]
    assert first["reason"] == "the launcher process on the worker ended (exit -9)"
    assert (first["exit_code"], first["signal"], first["host"]) == (None, None, HOST)
    assert WORKER_ADDRESS.match(first["worker"])
    assert (second["exit_code"], task["status"], task["stdout_tail"]) == (0, "success", "attempt 2 ran\n")
    # The ladder ran on the command's group before the attempt failed: SIGKILL after the grace for
    # a leader that ignores SIGTERM.
    assert not alive(leader) and not alive(grandchild)


def test_the_only_worker_killed_mid_task_is_noticed_and_the_retry_waits_no_longer_than_its_timeout(
        own_cluster, taskrun):
    from runner.dask_backend import STOP_MARGIN_S

    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.5
        tasks:
          victim:
            cmd: sleep 300 & echo $! > grandchild; echo $$ > leader; wait
            retries: 1
            timeout: 5s
          after:
            cmd: echo never
            needs: [victim]
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", own_cluster.address)
    leader = int(wait_for(taskrun.cwd / "leader"))
    grandchild = int((taskrun.cwd / "grandchild").read_text())
    worker = own_cluster.procs[1]
    assert _stat(_stat(leader)[1])[1] == worker.pid  # no nanny: the worker process's launcher runs the command
    worker.kill()
    killed = time.monotonic()
    out, err = proc.communicate(timeout=120)
    r = check(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), 1)
    # No worker is left: the retry waits for one, bounded by its timeout, grace and the runner's margin.
    assert time.monotonic() - killed < 5 + 0.5 + STOP_MARGIN_S + 30
    wait_until(lambda: not alive(leader) and not alive(grandchild), 10, "the launcher to stop the command")
    tasks = by_name(taskrun.summary())
    victim = tasks["victim"]
    first, second = victim["attempts"]
    assert WORKER_ADDRESS.match(first["worker"]) and first["host"] == HOST
    assert first["reason"] == f"the worker {first['worker']} on {HOST} was lost while it ran this attempt"
    assert (first["exit_code"], first["signal"], first["timed_out"], first["cancelled"]) == (None, None, False, False)
    assert (second["exit_code"], second["timed_out"], second["worker"]) == (None, True, None)
    assert second["reason"] == ("timed out after 5s: no answer from the cluster within its timeout and grace (no free"
                                " worker, or its worker hangs): its Dask task was cancelled")
    assert (victim["status"], tasks["after"]["status"], tasks["after"]["reason"]) == (
        "timeout", "skipped", "needs 'victim', which timed out")
    assert re.search(rf"^\d\d:\d\d:\d\d retry victim failed \({re.escape(first['reason'])}\) on "
                     rf"{re.escape(first['worker'])}; attempt 2 of 2 in 0ms$", r.stdout, re.M), r.stdout
    assert re.search(r"^victim +timeout +- +\d+\.\d\ds \(total \d+\.\d\ds\) +2$", r.stdout, re.M), r.stdout
    assert f"root cause: victim timed out ({second['reason']}); because of it 1 skipped (after)" in r.stdout
    assert "None" not in r.stdout


@pytest.mark.parametrize("own_cluster", [{"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}], indirect=True)
def test_an_attempt_dask_gives_up_on_when_its_worker_dies_fails_with_killedworker(own_cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        kill_grace: 0.5
        tasks:
          running: sleep 300 & echo $! > grandchild; echo $$ > leader; wait
          # sent to the same worker of one thread (Dask fills a worker past its threads), waiting behind `running`
          held: touch held.ran
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", own_cluster.address)
    leader = int(wait_for(taskrun.cwd / "leader"))
    worker = own_cluster.procs[1]
    worker.kill()
    out, err = proc.communicate(timeout=60)
    r = check(subprocess.CompletedProcess(proc.args, proc.returncode, out, err), 1)
    wait_until(lambda: not alive(leader), 10, "the launcher to stop the dead worker's command")
    tasks = by_name(taskrun.summary())
    (running,), (held,) = tasks["running"]["attempts"], tasks["held"]["attempts"]
    assert WORKER_ADDRESS.match(running["worker"])
    assert running["reason"] == f"the worker {running['worker']} on {HOST} was lost while it ran this attempt"
    assert held["reason"] == (f"Dask gave up on this attempt after the worker {running['worker']} was lost"
                              " (KilledWorker)")
    assert (tasks["held"]["status"], held["exit_code"], held["signal"]) == ("failed", None, None)
    assert not (taskrun.cwd / "held.ran").exists()
    assert "None" not in r.stdout


@pytest.mark.parametrize(("signum", "why"), [(signal.SIGKILL, "its connection closed"),
                                              (signal.SIGSTOP, "no answer within 10s")], ids=["killed", "hung"])
def test_a_lost_scheduler_ends_the_run_with_exit_3_and_the_worker_stops_the_command(own_cluster, taskrun, signum, why):
    taskrun.write("tasks.yaml", """
        version: 1
        kill_grace: 0.5
        tasks:
          long:
            cmd: sleep 300 & echo $! > grandchild; echo $$ > leader; wait
            timeout: 120s
          after:
            cmd: echo never
            needs: [long]
    """)
    proc = taskrun.popen("tasks.yaml", "--scheduler", own_cluster.address)
    leader = int(wait_for(taskrun.cwd / "leader"))
    grandchild = int((taskrun.cwd / "grandchild").read_text())
    scheduler = own_cluster.procs[0]
    scheduler.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        scheduler.kill()  # a stopped one too
    lost = f"lost the Dask scheduler at {own_cluster.address}: {why}"
    assert (proc.returncode, err) == (3, f"taskrun: {lost}; the summary has what ran\n"), out + err
    # Its stop checks fail: the worker runs the ladder, long before the command's timeout.
    wait_until(lambda: not alive(leader) and not alive(grandchild), 30, "the worker to stop the command")
    summary = taskrun.summary()
    assert (summary["status"], summary["exit_code"], summary["signal"], summary["reason"]) == ("failed", 3, None, lost)
    tasks = by_name(summary)
    (attempt,) = tasks["long"]["attempts"]
    assert (tasks["long"]["status"], tasks["long"]["reason"]) == ("cancelled", lost)
    assert (attempt["exit_code"], attempt["signal"], attempt["cancelled"], attempt["reason"]) == (
        None, None, True, lost)
    assert (tasks["after"]["status"], tasks["after"]["reason"], tasks["after"]["attempts"]) == ("cancelled", lost, [])
    assert re.search(r"^long +cancelled +- +\d+\.\d\ds +1$", out, re.M), out
    assert f"done  long  CANCELLED ({lost})" in out
    assert "None" not in out


def test_conditions_and_up_to_date_checks_as_locally(cluster, taskrun):
    """Checked on the runner's machine, in the task's folder, before anything is sent to a worker."""
    taskrun.write("tasks.yaml", """
        version: 1
        tasks:
          build:
            cmd: cat src.txt > out.txt && echo built >> ran.log
            sources: [src.txt]
            generates: [out.txt]
          test:
            cmd: echo tested >> ran.log
            needs: [build]
          deploy:
            cmd: echo deployed >> ran.log
            if: {sh: test -f deploy.ok}
          after-deploy:
            cmd: echo after >> ran.log
            needs: [deploy]
    """)
    taskrun.write("src.txt", "v1\n")

    def run(*args) -> dict:
        r = taskrun("tasks.yaml", "--scheduler", cluster.address, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return {n: (t["status"], t["reason"]) for n, t in by_name(taskrun.summary()).items()}

    assert run() == {"build": ("success", None), "test": ("success", None),
                     "deploy": ("skipped", "condition false: `test -f deploy.ok` exited 1"),
                     "after-deploy": ("skipped", "needs 'deploy', which was skipped (condition false)")}
    first = taskrun.summary()["run_id"]
    (taskrun.cwd / "deploy.ok").touch()
    second = run()
    assert second["build"] == ("up_to_date", f"1 source, commands and env unchanged since run {first}; generates exist")
    assert (second["deploy"], second["after-deploy"]) == (("success", None), ("success", None))
    (taskrun.cwd / "src.txt").write_text("v2\n")
    assert run()["build"] == ("success", None)
    assert (taskrun.cwd / "out.txt").read_text() == "v2\n"
    assert sorted((taskrun.cwd / "ran.log").read_text().split()) == sorted(
        ["built", "tested"] + ["tested", "deployed", "after"] + ["built", "tested", "deployed", "after"])


def test_an_expression_condition_as_locally(cluster, taskrun):
    """`if: ${{ ... }}` is decided on the runner's side: a false one sends nothing to a worker."""
    taskrun.write("tasks.yaml", """
        version: 1
        vars:
          env: {default: dev}
        tasks:
          deploy:
            cmd: echo deployed >> ran.log
            if: ${{ vars.env == 'prod' }}
          after-deploy:
            cmd: echo after >> ran.log
            needs: [deploy]
          preview:
            cmd: echo preview >> ran.log
            if: ${{ vars.env != 'prod' }}
    """)

    def run(*args) -> dict:
        r = taskrun("tasks.yaml", "--scheduler", cluster.address, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return {n: (t["status"], t["reason"]) for n, t in by_name(taskrun.summary()).items()}

    assert run() == {"deploy": ("skipped", "condition false: ${{ vars.env == 'prod' }}"),
                     "after-deploy": ("skipped", "needs 'deploy', which was skipped (condition false)"),
                     "preview": ("success", None)}
    assert (taskrun.cwd / "ran.log").read_text().split() == ["preview"]
    assert run("env=prod") == {"deploy": ("success", None), "after-deploy": ("success", None),
                               "preview": ("skipped", "condition false: ${{ vars.env != 'prod' }}")}
    assert sorted((taskrun.cwd / "ran.log").read_text().split()) == ["after", "deployed", "preview"]


def test_a_setsid_escapee_is_killed_on_the_worker(cluster, taskrun):
    taskrun.write("tasks.yaml", """
        version: 1
        pool: 2
        kill_grace: 0.5
        tasks:
          timed:
            # deaf to SIGTERM, out of the command's group: only the SIGKILL after the grace ends it
            cmd: setsid sh -c 'trap "" TERM; echo $$ > timed.escapee; exec sleep 300' & wait
            timeout: 1s
          leaves:
            cmd: >-
              setsid sh -c 'echo $$ > leaves.escapee; exec sleep 300' &
              while [ ! -s leaves.escapee ]; do sleep 0.05; done
    """)
    r = check(taskrun("tasks.yaml", "--scheduler", cluster.address), 1)
    escapees = {name: int((taskrun.cwd / f"{name}.escapee").read_text()) for name in ("timed", "leaves")}
    assert not [name for name, pid in escapees.items() if alive(pid)]  # gone before their attempts ended
    tasks = by_name(taskrun.summary())
    assert (tasks["timed"]["status"], tasks["timed"]["reason"], tasks["timed"]["stray_killed"]) == (
        "timeout", "timed out after 1s", 1)
    assert (tasks["leaves"]["status"], tasks["leaves"]["exit_code"], tasks["leaves"]["stray_killed"]) == (
        "success", 0, 1)
    assert all(WORKER_ADDRESS.match(t["worker"]) for t in tasks.values()), r.stdout


def test_an_unreachable_scheduler_is_reported_at_once(taskrun):
    _require_distributed()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    started = time.monotonic()
    r = taskrun("tasks.yaml", "--scheduler", f"tcp://127.0.0.1:{port}", "--connect-timeout", "1s")
    assert time.monotonic() - started < 30  # not the default minutes of retries
    assert r.returncode == 2
    assert r.stderr == (f"taskrun: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1s (Timed out "
                        f"trying to connect to tcp://127.0.0.1:{port} after 1 s): start it with `dask scheduler`, "
                        "check --scheduler, or raise --connect-timeout\n")
    assert not (taskrun.cwd / "ran").exists() and not (taskrun.cwd / "taskrun-summary.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--scheduler", "tcp://127.0.0.1:x"],
     "taskrun: the scheduler address 'tcp://127.0.0.1:x' is not valid: invalid literal for int() with base 10: 'x'"
     " (use one such as tcp://10.0.0.5:8786)"),
    (["--executor", "dask"],
     "taskrun: the dask executor needs a scheduler address: --scheduler tcp://HOST:8786, or executor.scheduler"
     " in tasks.yaml"),
    (["--executor", "local", "--scheduler", "tcp://127.0.0.1:1"],
     "taskrun: --scheduler needs the dask executor (drop --executor local)"),
    (["--executor", "loc"], "taskrun: --executor: unknown executor 'loc' (use local or dask)"),
    (["--scheduler", "tcp://127.0.0.1:1", "--connect-timeout", "soon"],
     "taskrun: --connect-timeout: 'soon' is not a duration (use 90s, 5m, 1h30m or seconds)"),
])
def test_executor_flags_are_checked_before_anything_runs(taskrun, args, message):
    _require_distributed()
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    r = taskrun("tasks.yaml", *args)
    assert (r.returncode, r.stderr) == (2, message + "\n")
    assert not (taskrun.cwd / "ran").exists()


# --- without the extra -------------------------------------------------------------------

_WITHOUT_DISTRIBUTED = """
import sys
sys.modules["distributed"] = None  # what an environment without the package looks like to `import`
sys.argv = ["taskrun", *sys.argv[1:]]
from runner.cli import main
try:
    main()
except SystemExit as exc:
    sys.exit(exc.code)
"""

_IMPORTS_OF = """
import sys
sys.argv = ["taskrun", *sys.argv[1:]]
from runner.cli import main
try:
    main()
except SystemExit as exc:
    heavy = sorted(m for m in ("distributed", "dask", "tornado") if m in sys.modules)
    print("imported:", heavy, file=sys.stderr)
    sys.exit(exc.code)
"""


def test_without_distributed_the_dask_executor_says_how_to_install_it(taskrun):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: touch ran\n")
    r = subprocess.run([sys.executable, "-c", _WITHOUT_DISTRIBUTED, "tasks.yaml", "--scheduler", "tcp://127.0.0.1:1"],
                       cwd=taskrun.cwd, env=taskrun.env(), capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (
        2, "taskrun: the dask executor needs the 'distributed' package: pip install 'distributed>=2024.1'"
           " (the dask extra: pip install '.[dask]' in taskrun's folder)\n")
    assert not (taskrun.cwd / "ran").exists()


@pytest.mark.parametrize("args", [["--version"], ["tasks.yaml"], ["tasks.yaml", "--validate"]])
def test_local_runs_and_version_never_import_distributed(taskrun, args):
    taskrun.write("tasks.yaml", "version: 1\ntasks:\n  a: {cmd: 'true', resources: {gpu: 2}}\n")
    r = subprocess.run([sys.executable, "-c", _IMPORTS_OF, *args], cwd=taskrun.cwd, env=taskrun.env(),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[-1] == "imported: []"


# --- the worker side, without a cluster ---------------------------------------------------

_RUN_REMOTE = """
import dataclasses, json, os, sys
from runner.model import AttemptSpec
from runner.remote import MARKER, run_remote
folder, shared = sys.argv[1], sys.argv[2] == "shared"
if shared:
    with open(os.path.join(folder, MARKER), "w") as f:
        f.write("tok\\n")
spec = AttemptSpec(task="t", attempt=1, argv=("/bin/sh", "-c", sys.argv[3]), env=tuple(os.environ.items()),
                   cwd=folder, timeout_s=None, kill_grace_s=0.5,
                   stdout_path=os.path.join(folder, "t.stdout"), stderr_path=os.path.join(folder, "t.stderr"))
out = run_remote(spec, "tok", should_stop=lambda: False, worker="tcp://w:1", host="h")
print(json.dumps({"exit": out.result.exit_code, "worker": out.result.worker, "host": out.result.host,
                  "stdout": None if out.stdout is None else out.stdout.decode(),
                  "stderr": None if out.stderr is None else out.stderr.decode(),
                  "in_folder": sorted(n for n in os.listdir(folder) if n != MARKER)}))
"""


@pytest.mark.parametrize("mode", ["shared", "not-shared"])
def test_logs_go_to_the_shared_folder_or_come_back_with_the_result(taskrun, mode):
    r = subprocess.run([sys.executable, "-c", _RUN_REMOTE, str(taskrun.cwd), mode, "echo out; echo err >&2; exit 5"],
                       env={**taskrun.env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["exit"], got["worker"], got["host"]) == (5, "tcp://w:1", "h")
    if mode == "shared":
        assert (got["stdout"], got["stderr"], got["in_folder"]) == (None, None, ["t.stderr", "t.stdout"])
        assert (taskrun.cwd / "t.stdout").read_text() == "out\n"
    else:
        assert (got["stdout"], got["stderr"], got["in_folder"]) == ("out\n", "err\n", [])


def test_output_sent_back_is_capped_at_its_end(tmp_path):
    from runner.remote import read_capped

    path = tmp_path / "log"
    path.write_bytes(b"x" * 100 + b"tail\n")
    assert read_capped(str(path), cap=200) == b"x" * 100 + b"tail\n"
    assert read_capped(str(path), cap=10) == (
        b"[taskrun: the first 95 bytes of this output were cut; the last 10 follow]\nxxxxx" + b"tail\n")


# --- steps ------------------------------------------------------------------------------------

STEPS = """
    version: 1
    kill_grace: 0.5
    tasks:
      other: {cmd: echo other, needs: [first]}
      first: echo first
      steps:
        steps:
          - echo one
          - {cmd: 'echo tolerated >&2; exit 3', name: tolerated, allow_failure: true}
          - {task: other}
          - printf partial
      failing:
        steps: [echo before, {cmd: exit 4, name: four}, touch never]
      slow:
        timeout: 1
        steps: [sleep 0.6, sleep 0.6, touch never-either]
"""


def test_steps_run_on_a_worker_with_the_same_semantics_as_locally(cluster, taskrun):
    taskrun.write("tasks.yaml", STEPS)
    local = taskrun("tasks.yaml", "-o", "local.json")
    remote = taskrun("tasks.yaml", "-o", "dask.json", "--scheduler", cluster.address)
    assert local.returncode == remote.returncode == 1, remote.stdout + remote.stderr
    assert not (taskrun.cwd / "never").exists() and not (taskrun.cwd / "never-either").exists()

    def steps(summary: dict) -> dict:
        return {t["name"]: (t["failed_step"], t["needs"], [[(s["index"], s["cmd"], s["exit_code"], s["signal"])
                                                            for s in a["steps"]] for a in t["attempts"]])
                for t in summary["tasks"] if "steps" in t}

    summary = taskrun.summary("dask.json")
    assert outcome(summary) == outcome(taskrun.summary("local.json"))
    assert steps(summary) == steps(taskrun.summary("local.json")) == {
        "steps": (None, ["first"], [[(1, "echo one", 0, None), (2, "echo tolerated >&2; exit 3", 3, None),
                                     (3, "echo other", 0, None), (4, "printf partial", 0, None)]]),
        "failing": ({"index": 2, "name": "four", "cmd": "exit 4"}, [],
                    [[(1, "echo before", 0, None), (2, "exit 4", 4, None)]]),
        "slow": ({"index": 2, "name": None, "cmd": "sleep 0.6"}, [],
                 [[(1, "sleep 0.6", 0, None), (2, "sleep 0.6", None, "SIGTERM")]]),
    }
    tasks = by_name(summary)
    assert tasks["steps"]["stdout_tail"] == "one\nother\npartial"
    assert all(WORKER_ADDRESS.match(t["worker"]) for t in tasks.values())
    # the worker records each step's start next to the logs, so the console echoes it in its place
    echoed = [line for line in remote.stdout.splitlines() if re.match(r"steps +[$|!] ", line)]
    assert echoed == ["steps   $ echo one", "steps   | one", "steps   $ echo tolerated >&2; exit 3",
                      "steps   ! tolerated", "steps   $ echo other", "steps   | other",
                      "steps   $ printf partial", "steps   | partial"]


TEMPLATES = """
version: 1
vars:
  greeting: hello
  stamp: {sh: echo computed-once >> sh-ran; echo s1}
  level: {default: low, enum: [low, high]}
env:
  WHO: ${{ task.name }}
tasks:
  show:
    cwd: ${{ vars.greeting }}-dir
    steps:
      - echo "${{ vars.greeting | quote }} $WHO $(basename "$PWD") ${{ vars.stamp }} ${{ vars.level }} ${{ args }}"
      - {task: other, vars: {greeting: 'ciao ${{ vars.level }}'}}
  other: echo ${{ vars.greeting }} ${{ vars.stamp }} '$${{ x }}'
"""


def test_templates_render_before_anything_runs_with_the_same_outcome_as_locally(cluster, taskrun):
    (taskrun.cwd / "hello-dir").mkdir()
    taskrun.write("tasks.yaml", TEMPLATES)
    local = taskrun("tasks.yaml", "level=high", "-o", "local.json", "--", "a b")
    remote = taskrun("tasks.yaml", "level=high", "-o", "dask.json", "--scheduler", cluster.address, "--", "a b")
    assert local.returncode == remote.returncode == 0, remote.stdout + remote.stderr
    assert (taskrun.cwd / "sh-ran").read_text() == "computed-once\n" * 2  # once per run, on the runner's side
    summary = taskrun.summary("dask.json")
    assert outcome(summary) == outcome(taskrun.summary("local.json"))
    tasks = by_name(summary)
    assert all(WORKER_ADDRESS.match(t["worker"]) for t in tasks.values())
    assert tasks["show"]["stdout_tail"] == "hello show hello-dir s1 high 'a b'\nciao high s1 ${{ x }}\n"
    assert tasks["other"]["stdout_tail"] == "hello s1 ${{ x }}\n"
    assert [s["cmd"] for s in tasks["show"]["attempts"][0]["steps"]] == [
        "echo \"hello $WHO $(basename \"$PWD\") s1 high 'a b'\"", "echo ciao high s1 '${{ x }}'"]
    refused = taskrun("tasks.yaml", "level=mid", "--scheduler", cluster.address)
    assert (refused.returncode, refused.stderr) == (2, "taskrun: level=mid: 'mid' is not one of low, high\n")


_RUN_REMOTE_STEPS = """
import json, os, sys
from runner import remote
from runner.model import AttemptSpec, StepSpec
remote.LOG_CAP = 20  # bytes of each stream sent back: the first step's output is cut
folder = sys.argv[1]
steps = tuple(StepSpec(argv=("/bin/sh", "-c", cmd), shown=cmd) for cmd in ("printf 'a%.0s' $(seq 29); echo", "echo b"))
spec = AttemptSpec(task="t", attempt=1, argv=steps[0].argv, env=tuple(os.environ.items()), cwd=folder,
                   timeout_s=None, kill_grace_s=0.5, stdout_path=os.path.join(folder, "t.stdout"),
                   stderr_path=os.path.join(folder, "t.stderr"), steps=steps, steps_path=os.path.join(folder, "t.steps"))
out = remote.run_remote(spec, "tok", should_stop=lambda: False, worker="tcp://w:1", host="h")
print(json.dumps({"exit": out.result.exit_code, "stdout": out.stdout.decode(),
                  "steps": [json.loads(line) for line in out.steps.decode().splitlines()]}))
"""


def test_the_record_of_steps_sent_back_points_into_the_output_sent_back(taskrun):
    r = subprocess.run([sys.executable, "-c", _RUN_REMOTE_STEPS, str(taskrun.cwd)],
                       env={**taskrun.env(), "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    note = "[taskrun: the first 12 bytes of this output were cut; the last 20 follow]\n"
    assert (got["exit"], got["stdout"]) == (0, note + "a" * 17 + "\nb\n")
    assert [(m["step"], m["stdout"]) for m in got["steps"]] == [(1, len(note)), (2, len(note) + 18)]
    assert got["stdout"][got["steps"][1]["stdout"]:] == "b\n"


def test_included_tasks_run_on_the_workers_in_their_own_folders(cluster, taskrun):
    """Namespaced names, needs across files, the included file's folder, env and vars, as locally."""
    taskrun.write("tasks.yaml", """
        version: 1
        includes:
          lib: {file: lib/tasks.yaml, vars: {mode: release}}
        tasks:
          all:
            needs: [lib:build]
            steps:
              - cat lib/out.txt
              - task: lib:build
    """)
    taskrun.write("lib/tasks.yaml", """
        version: 1
        env: {WHO: lib}
        vars: {mode: debug}
        tasks:
          build: echo "${{ vars.mode }} $WHO $PWD" > out.txt && cat out.txt
    """)
    r = taskrun("tasks.yaml", "--scheduler", cluster.address)
    assert r.returncode == 0, r.stdout + r.stderr
    tasks = by_name(taskrun.summary())
    line = f"release lib {taskrun.cwd / 'lib'}\n"
    assert [(n, t["status"]) for n, t in tasks.items()] == [("all", "success"), ("lib:build", "success")]
    assert tasks["lib:build"]["stdout_tail"] == line
    assert tasks["all"]["stdout_tail"] == line + f"release  {taskrun.cwd / 'lib'}\n"
    assert {t["worker"] for t in tasks.values()} <= set(cluster.workers())
