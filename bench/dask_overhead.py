"""Per-task overhead of the dask executor, against plain Dask and the local pool.

Starts a local cluster (a `dask scheduler` and two `dask worker` processes of
one thread each, on 127.0.0.1), then runs, interleaved, `--repeat` times each:
- taskrun on that cluster: a file of N trivial tasks (`true`), pool 2;
- plain `distributed` on the same cluster: N `client.submit` of a function that
  runs `true` (`subprocess.run`), two in flight at a time like a pool of 2,
  each fetched as it ends (`as_completed`) and the next one submitted;
- the same two with everything sent at once: taskrun with a pool of N, and the
  N submits made at once (Dask's own queue decides what runs);
- taskrun's local pool on the same file, pool 2.
It prints each one's duration per task (taskrun's from its summary, plain
Dask's from its first submit to its last result: connecting and importing are
not counted) and the ratios, run by run.

    python3 bench/dask_overhead.py [--tasks 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_PLAIN = """
import subprocess, sys, time
from distributed import Client, as_completed

def trivial():
    return subprocess.run(["true"]).returncode

n, pool = int(sys.argv[2]), int(sys.argv[3])
with Client(sys.argv[1], timeout=30) as client:
    client.submit(trivial, pure=False).result()  # the function is on the workers: not counted
    start = time.monotonic()
    sent = 0
    running = as_completed()
    for _ in range(min(pool, n)):
        running.add(client.submit(trivial, pure=False))
        sent += 1
    for future in running:
        assert future.result() == 0
        if sent < n:
            running.add(client.submit(trivial, pure=False))
            sent += 1
    print(time.monotonic() - start)
"""


def start_cluster(folder: Path) -> tuple[str, list[subprocess.Popen]]:
    env = _env()
    local = ("--no-dashboard", "--dashboard-address", "127.0.0.1:0")
    procs = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen(["dask", *args], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))

    scheduler_file = folder / "scheduler.json"
    try:  # whatever fails here, what was started is stopped
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
    except BaseException:
        stop_cluster(procs)
        raise
    return address, procs


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}


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


def run(folder: Path, pool: int, *args: str) -> float:
    summary = folder / "summary.json"
    r = subprocess.run(["taskrun", str(folder / "tasks.yaml"), "-j", str(pool), "-o", str(summary), *args],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    data = json.loads(summary.read_text())
    if r.returncode != 0 or data["counts"]["success"] != len(data["tasks"]):
        reasons = sorted({t["attempts"][-1]["reason"] for t in data["tasks"] if t["status"] != "success"})
        raise SystemExit(f"taskrun -j {pool} {' '.join(args)} failed (exit {r.returncode}): {r.stderr}{reasons[:3]}")
    return data["duration_s"]


def run_plain(address: str, n: int, pool: int = 2) -> float:
    r = subprocess.run([sys.executable, "-c", _PLAIN, address, str(n), str(pool)], env=_env(),
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"plain submit failed: {r.stderr}")
    return float(r.stdout.split()[-1])


def main() -> None:
    if importlib.util.find_spec("distributed") is None or shutil.which("dask") is None:
        raise SystemExit(f"{sys.executable} has no `distributed`, or no `dask` command is on PATH:"
                         " run this from the venv of pip install '.[dask]'")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    opts = parser.parse_args()
    n = opts.tasks
    folder = Path(tempfile.mkdtemp(prefix="taskrun-bench-"))
    times: dict[str, list[float]] = {"taskrun dask, pool 2": [], "plain submit, 2 in flight": [],
                                     f"taskrun dask, pool {n}": [], "plain submit, all at once": [],
                                     "taskrun local, pool 2": []}
    try:
        (folder / "tasks.yaml").write_text(  # `true` run directly, as the plain submits run it: no shell
            "version: 1\ntasks:\n" + "".join(f"  t{i}: {{cmd: [\"true\"]}}\n" for i in range(n)))
        address, procs = start_cluster(folder)
        try:
            for _ in range(opts.repeat):  # interleaved: a load that comes and goes touches them all
                times["taskrun dask, pool 2"].append(run(folder, 2, "--scheduler", address))
                times["plain submit, 2 in flight"].append(run_plain(address, n))
                times[f"taskrun dask, pool {n}"].append(run(folder, n, "--scheduler", address))
                times["plain submit, all at once"].append(run_plain(address, n, n))
                times["taskrun local, pool 2"].append(run(folder, 2))
        finally:
            stop_cluster(procs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{n} trivial tasks, 2 one-thread workers, {opts.repeat} interleaved runs (ms per task)")
    for what, got in times.items():
        ms = sorted(t / n * 1000 for t in got)
        print(f"{what:26s} best {ms[0]:6.2f}  median {statistics.median(ms):6.2f}  worst {ms[-1]:6.2f}")
    for what, dask, plain in (("pool 2", "taskrun dask, pool 2", "plain submit, 2 in flight"),
                              ("all at once", f"taskrun dask, pool {n}", "plain submit, all at once")):
        ratios = [d / p for d, p in zip(times[dask], times[plain])]
        print(f"taskrun dask / plain submit, {what}, run by run: {' '.join(f'{r:.2f}x' for r in ratios)}"
              f" (median {statistics.median(ratios):.2f}x)")


if __name__ == "__main__":
    main()
