"""Per-task overhead of the dask executor against the local pool.

Starts a local cluster (a `dask scheduler` and two `dask worker` processes of
one thread each, on 127.0.0.1), then runs the same file of N trivial tasks
(`true`) with a pool of 2, locally and on the cluster, and prints the run's
duration (from the summary: connecting and importing are not counted) per task
for each, and their ratio.

    python3 bench/dask_overhead.py [--tasks 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_cluster(folder: Path) -> tuple[str, list[subprocess.Popen]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    local = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")
    procs = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen(["dask", *args], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    scheduler_file = folder / "scheduler.json"
    start("scheduler", "--host", "127.0.0.1", "--port", "0", *local, "--scheduler-file", str(scheduler_file))
    deadline = time.monotonic() + 60
    while not (scheduler_file.exists() and scheduler_file.read_text().strip()):
        if time.monotonic() > deadline:
            raise SystemExit("the scheduler did not start")
        time.sleep(0.05)
    address = json.loads(scheduler_file.read_text())["address"]
    for name in ("w1", "w2"):
        start("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--name", name, *local,
              "--memory-limit", "0", "--local-directory", str(folder / name))
    subprocess.run([sys.executable, "-c", "import sys; from distributed import Client; "
                    "Client(sys.argv[1], timeout=30).wait_for_workers(2, timeout=60)", address], check=True, env=env)
    return address, procs


def stop_cluster(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run(folder: Path, *args: str) -> float:
    summary = folder / "summary.json"
    r = subprocess.run(["taskrun", str(folder / "tasks.yaml"), "-j", "2", "-o", str(summary), *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    data = json.loads(summary.read_text())
    if r.returncode != 0 or data["counts"]["success"] != len(data["tasks"]):
        raise SystemExit(f"taskrun {' '.join(args)} failed: {r.stderr}")
    return data["duration_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="taskrun-bench-"))
    try:
        (folder / "tasks.yaml").write_text(
            "version: 1\ntasks:\n" + "".join(f"  t{i}: 'true'\n" for i in range(opts.tasks)))
        address, procs = start_cluster(folder)
        try:
            local = min(run(folder) for _ in range(opts.repeat))
            remote = min(run(folder, "--scheduler", address) for _ in range(opts.repeat))
        finally:
            stop_cluster(procs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n = opts.tasks
    print(f"{n} trivial tasks, pool 2, best of {opts.repeat}")
    print(f"local pool:          {local:7.2f}s  {local / n * 1000:6.2f} ms per task")
    print(f"dask (2 workers):    {remote:7.2f}s  {remote / n * 1000:6.2f} ms per task")
    print(f"dask / local:        {remote / local:7.1f}x")


if __name__ == "__main__":
    main()
