#!/usr/bin/env python3
"""taskrun against its peers, side by side in one run: medians and ratios.

    pip install . && apt-get install parallel make ninja-build   # peers (optional ones are skipped)
    pip install go-task-bin                                      # go-task
    python3 bench/bench.py                  # every section
    python3 bench/bench.py dispatch startup # some sections
    python3 bench/bench.py --quick          # fewer runs and smaller N, to try it out
    python3 bench/bench.py --before OLD/bin/taskrun dispatch   # an earlier taskrun too, in the same runs
    python3 bench/bench.py --tmp /dev/shm dispatch   # files and logs on tmpfs (default: the temporary folder)

Sections:
  dispatch    N trivial tasks at pool P: ms per task and the ratio to xargs -P (paired, same run),
              with make -j, ninja -j, GNU parallel and go-task
  scale       per-task cost of N `true`s at pool 2, 8 and 64 (5,000 tasks), and at 1,000, 10,000
              and (not with --quick) 100,000 tasks (pool 8): ms a task and the ratio to the
              smallest case of each group (target: flat within 15%)
  efficiency  makespan / ideal for sleeps on a pool, with a timeout on every task
  startup     --version, --validate, a one-task run, against `python -c pass` and go-task
              (cold: with TASKRUN_CACHE_DIR=-, every run validates against the schema); the
              one-task run against its target (warm: <= 100 ms)
  bigfile     load + validate + plan (--dry-run) of 5,000-, 10,000- and (not with --quick)
              100,000-task files, written as JSON and as block YAML: time, peak memory
              (targets at 100,000: <= 6 s, <= 400 MiB)
  history     makespan with and without --history on a file whose order is bad
  output      bench/output.py: 1 GiB through a task in each output mode, against a direct redirect

With --before, an earlier install of taskrun (another venv's `taskrun` script) is measured in
the same interleaved runs as "taskrun (before)" in dispatch, startup and bigfile (files it can
read), so a change is judged against the old code on the same machine at the same moment.

Every figure is the median of several runs; ratios are taken run by run (A1/B1,
A2/B2, ...) with the runs interleaved, so drift of a shared machine cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import yaml  # taskrun's own dependency: the block-YAML twin of the big files

ROOT = Path(__file__).resolve().parent.parent


def find_taskrun() -> str:
    """The installed console script itself (a version manager's shim would add its own start-up)."""
    script = Path(sysconfig.get_path("scripts")) / "taskrun"
    return str(script) if script.exists() else (shutil.which("taskrun") or sys.exit("taskrun is not installed"))


BEFORE: str | None = None  # --before: an earlier taskrun, measured alongside


def find_gotask() -> str | None:
    script = Path(sysconfig.get_path("scripts")) / "task"
    if script.exists():
        return str(script)
    found = shutil.which("go-task") or shutil.which("task")
    return found


COLD = {**os.environ, "TASKRUN_CACHE_DIR": "-"}
STARTUP_TARGET_MS = 100  # a one-task run, whole process, warm
BIGFILE_TARGET_S, BIGFILE_TARGET_MIB = 6, 400  # --dry-run of 100,000 tasks  # no remembered validity: the schema pass every time


def timed(cmd: list[str] | str, cwd: Path, shell: bool = False, env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, the largest process of the tree) of one run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, shell=shell, stdin=subprocess.DEVNULL, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {cmd}")
    return wall, usage.ru_maxrss


def compare(commands: dict[str, tuple], runs: int, cwd: Path) -> dict[str, list[tuple[float, int]]]:
    """Run every command `runs` times, interleaved, after one warm-up each.
    A command is (argv or shell line, shell?) or (..., shell?, env)."""
    for cmd, shell, *env in commands.values():
        timed(cmd, cwd, shell, *env)
    out: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, (cmd, shell, *env) in commands.items():
            out[name].append(timed(cmd, cwd, shell, *env))
    return out


def med(values) -> float:
    return statistics.median(values)


def paired_ratio(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> float:
    return med([x[0] / y[0] for x, y in zip(a, b)])


def ratio_spread(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> str:
    """The median of the run-by-run ratios, and their lowest and highest: on a shared machine
    one run's neighbour can move a ratio by a tenth, and the spread shows how far."""
    ratios = [x[0] / y[0] for x, y in zip(a, b)]
    if len(ratios) < 3 or max(ratios) - min(ratios) < 0.005:
        return f"{med(ratios):.2f}x"
    return f"{med(ratios):.2f}x ({min(ratios):.2f} - {max(ratios):.2f})"


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}\n")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    sys.stdout.flush()


def write_taskfile(path: Path, tasks: dict, pool: int, **top) -> Path:
    doc = {"version": 1, "pool": pool, **top, "tasks": tasks}
    path.write_text(json.dumps(doc))  # JSON is YAML
    return path


# -- sections ------------------------------------------------------------------

def bench_dispatch(tmp: Path, quick: bool, runs: int) -> None:
    taskrun = find_taskrun()
    gotask = find_gotask()
    rows = []
    for n in ((300,) if quick else (1000, 5000)):
        for pool in (2, 8):
            d = tmp / f"dispatch-{n}-{pool}"
            d.mkdir()
            write_taskfile(d / "tasks.yaml", {f"t{i}": {"cmd": ["true"], "timeout": "1m"} for i in range(n)}, pool)
            (d / "Makefile").write_text(
                ".PHONY: all " + " ".join(f"t{i}" for i in range(n)) + "\nall: "
                + " ".join(f"t{i}" for i in range(n)) + "\n"
                + "".join(f"t{i}:\n\t@true\n" for i in range(n)))
            cmds = {
                "xargs -P": (f"seq {n} | xargs -P {pool} -n 1 true", True),
                "taskrun": ([taskrun, "tasks.yaml", "-o", "summary.json"], False),
                "make -j": (["make", "-s", f"-j{pool}", "all"], False),
            }
            if BEFORE:
                cmds["taskrun (before)"] = ([BEFORE, "tasks.yaml", "-o", "summary.json"], False)
            if shutil.which("ninja"):
                # No output is ever written and there is no restat: every edge is dirty, each run runs all N.
                (d / "build.ninja").write_text(
                    "rule t\n  command = true\n" + "".join(f"build o{i}: t\n" for i in range(n)))
                cmds["ninja -j"] = (["ninja", "--quiet", f"-j{pool}"], False)
            if shutil.which("parallel"):
                cmds["GNU parallel"] = (f"seq {n} | parallel -j {pool} true", True)
            if gotask:
                (d / "Taskfile.yml").write_text(
                    "version: '3'\ntasks:\n  default:\n    deps: [" + ", ".join(f"t{i}" for i in range(n)) + "]\n"
                    + "".join(f"  t{i}:\n    cmds: [/bin/true]\n" for i in range(n)))
                cmds["go-task"] = ([gotask, f"--concurrency={pool}", "--silent"], False)
            res = compare(cmds, runs, d)
            base = res["xargs -P"]
            for name, samples in res.items():
                rows.append([n, pool, name, f"{med(s[0] for s in samples) / n * 1000:.3f}",
                             ratio_spread(samples, base), f"{med(s[1] for s in samples) / 1024:.0f}"])
    table("Dispatch overhead: N trivial tasks (`true`, run directly), pool P",
          ["N", "P", "runner", "ms/task", "vs xargs -P", "peak MiB"], rows)


def bench_scale(tmp: Path, quick: bool, runs: int) -> None:
    """Per-task cost as the pool and the number of tasks grow, all records on (summary, event
    log, per-task logs). Each case is its own row; the ratio is to the smallest case's ms a task."""
    taskrun = find_taskrun()
    at = 1000 if quick else 5000  # tasks of the pool group
    cases = [("pool", at, 2), ("pool", at, 8), ("pool", at, 64),
             ("tasks", 1000, 8), ("tasks", 10000, 8)] + ([] if quick else [("tasks", 100000, 8)])
    rows = []
    smallest: dict[str, float] = {}
    measured: dict[tuple[int, int], list[tuple[float, int]]] = {}
    for what, n, pool in cases:
        if (n, pool) not in measured:  # 1,000 tasks at pool 8 is in both groups
            d = tmp / f"scale-{n}-{pool}"
            d.mkdir()
            write_taskfile(d / "tasks.yaml", {f"t{i}": {"cmd": ["true"], "timeout": "1m"} for i in range(n)}, pool)
            # 100,000 tasks take minutes a run: fewer runs there.
            measured[n, pool] = compare({"taskrun": ([taskrun, "tasks.yaml", "-o", "summary.json"], False)},
                                        runs if n <= 10000 else min(runs, 2), d)["taskrun"]
        res = measured[n, pool]
        per_task = med(s[0] for s in res) / n * 1000
        smallest.setdefault(what, per_task)
        rows.append([f"{n:,}", pool, f"{med(s[0] for s in res):.2f}", f"{per_task:.3f}",
                     f"{per_task / smallest[what]:.2f}x", f"{med(s[1] for s in res) / 1024:.0f}"])
    table("Scale: N tasks of `true` at pool P, all records on; ratio to the smallest case of each group "
          f"(pool 2 at {at:,} tasks; 1,000 tasks at pool 8); target: flat within 15%",
          ["N", "P", "whole process s", "ms/task", "vs smallest", "peak MiB"], rows)


def bench_efficiency(tmp: Path, quick: bool, runs: int) -> None:
    taskrun = find_taskrun()
    rows = []
    for n, secs, pool in ((64, 0.25, 8), (200, 0.05, 16)):
        d = tmp / f"eff-{n}"
        d.mkdir()
        write_taskfile(d / "tasks.yaml", {f"s{i}": {"cmd": ["sleep", str(secs)], "timeout": "1m"} for i in range(n)}, pool)
        ideal = -(-n // pool) * secs  # whole rounds of the pool
        spans, walls = [], []
        for _ in range(runs):
            wall, _ = timed([taskrun, "tasks.yaml", "-o", "summary.json"], d)
            spans.append(json.loads((d / "summary.json").read_text())["duration_s"])
            walls.append(wall)
        rows.append([f"{n} x sleep {secs}", pool, f"{ideal:.2f}", f"{med(spans):.3f}", f"{med(spans) / ideal:.3f}x",
                     f"{med(walls):.3f}"])
    table("Parallel efficiency (every task with a timeout)",
          ["tasks", "pool", "ideal s", "makespan s", "makespan/ideal", "whole process s"], rows)


def bench_startup(tmp: Path, quick: bool, runs: int) -> None:
    taskrun = find_taskrun()
    gotask = find_gotask()
    d = tmp / "startup"
    d.mkdir()
    shutil.copy(ROOT / "tasks" / "demo.yaml", d / "demo.yaml")
    write_taskfile(d / "one.yaml", {"one": {"cmd": ["true"]}}, 1)  # JSON, as the other sections' files
    (d / "block.yaml").write_text("version: 1\npool: 1\ntasks:\n  one:\n    cmd: [\"true\"]\n")  # as people write
    cmds = {
        "python -c pass": ([sys.executable, "-c", "pass"], False),
        "taskrun --version": ([taskrun, "--version"], False),
        "taskrun demo.yaml --validate": ([taskrun, "demo.yaml", "--validate"], False),
        "taskrun demo.yaml --validate (cold)": ([taskrun, "demo.yaml", "--validate"], False, COLD),
        "taskrun one.yaml (true)": ([taskrun, "one.yaml", "-o", "summary.json"], False),
        "taskrun one.yaml (true, cold)": ([taskrun, "one.yaml", "-o", "summary.json"], False, COLD),
        "taskrun block.yaml (true, block YAML)": ([taskrun, "block.yaml", "-o", "summary.json"], False),
    }
    if BEFORE:
        cmds["taskrun (before) --version"] = ([BEFORE, "--version"], False)
        cmds["taskrun (before) one.yaml (true)"] = ([BEFORE, "one.yaml", "-o", "summary.json"], False)
    if gotask:
        (d / "Taskfile.yml").write_text("version: '3'\ntasks:\n  default:\n    cmds: [/bin/true]\n")
        cmds["go-task --version"] = ([gotask, "--version"], False)
        cmds["go-task one task (true)"] = ([gotask, "--silent"], False)
    res = compare(cmds, runs * 2, d)
    base = res["python -c pass"]
    rows = [[name, f"{med(s[0] for s in samples) * 1000:.1f}", f"{paired_ratio(samples, base):.2f}x"]
            for name, samples in res.items()]
    table("Start-up (whole process)", ["command", "median ms", "vs python -c pass"], rows)
    # the target holds for the file as people write it too (PyYAML's import: JSON files skip it)
    one = max(med(s[0] for s in res[name]) * 1000
              for name in ("taskrun one.yaml (true)", "taskrun block.yaml (true, block YAML)"))
    print(f"\none-task run, whole process, warm, the slower of JSON and block YAML: {one:.1f} ms "
          f"(target <= {STARTUP_TARGET_MS} ms: {'met' if one <= STARTUP_TARGET_MS else 'not met'})")


def big_file(path: Path, n: int) -> Path:
    tasks = {}
    for i in range(n):
        needs = [f"t{j}" for j in (i - 1, i - 7, i - 31) if j >= 0 and i % 3]
        tasks[f"t{i}"] = {"cmd": f"echo {i}", "needs": needs, "timeout": "5m", "tags": ["bulk"]}
    return write_taskfile(path, tasks, 8, timeout="10m")


def big_files(d: Path, n: int) -> None:
    """tasks.yaml, written as JSON (read by the json module), and block.yaml, the same tasks
    written as block YAML, as people write files (read by the YAML reader)."""
    big_file(d / "tasks.yaml", n)
    doc = json.loads((d / "tasks.yaml").read_text())
    (d / "block.yaml").write_text(yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                                            sort_keys=False, default_flow_style=False))


def bench_bigfile(tmp: Path, quick: bool, runs: int) -> None:
    taskrun = find_taskrun()
    rows = []
    for n in ((2000, 10000) if quick else (5000, 10000, 100000)):
        d = tmp / f"big-{n}"
        d.mkdir()
        # Written by a child process: Linux carries a process's peak memory across the fork and
        # exec that start a command, so the bench's own would count in every command's peak.
        subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import bench; "
                        "bench.big_files(bench.Path(sys.argv[2]), int(sys.argv[3]))",
                        str(Path(__file__).resolve().parent), str(d), str(n)], check=True)
        cmds = {"cold": ([taskrun, "tasks.yaml", "--dry-run"], False, COLD),
                "warm": ([taskrun, "tasks.yaml", "--dry-run"], False),
                "yaml cold": ([taskrun, "block.yaml", "--dry-run"], False, COLD),
                "yaml warm": ([taskrun, "block.yaml", "--dry-run"], False)}
        if BEFORE and n <= 10000:  # earlier versions refused files over 8 MiB
            cmds["before cold"] = ([BEFORE, "tasks.yaml", "--dry-run"], False, COLD)
            cmds["before warm"] = ([BEFORE, "tasks.yaml", "--dry-run"], False)
        res = compare(cmds, runs if n <= 10000 else min(runs, 3), d)
        for label, prefix in (("taskrun, JSON", ""), ("taskrun, block YAML", "yaml "),
                              ("taskrun (before), JSON", "before ")):
            if prefix + "cold" in res:
                rows.append([f"{n:,}", label, *(f"{med(s[0] for s in res[prefix + k]):.3f}" for k in ("cold", "warm")),
                             *(f"{max(s[1] for s in res[prefix + k]) / 1024:.0f}" for k in ("cold", "warm"))])
    table("Big files: load + validate + plan (--dry-run); warm: the file's validity remembered "
          f"(targets at 100,000 tasks: <= {BIGFILE_TARGET_S} s, <= {BIGFILE_TARGET_MIB} MiB)",
          ["tasks", "runner", "cold median s", "warm median s", "cold peak MiB", "warm peak MiB"], rows)


def bench_history(tmp: Path, quick: bool, runs: int) -> None:
    """File order is bad: short tasks first, the long ones and a hidden chain last."""
    taskrun = find_taskrun()
    d = tmp / "history"
    d.mkdir()
    unit = 0.1 if quick else 0.2
    tasks = {f"short{i}": {"cmd": ["sleep", f"{unit:g}"]} for i in range(16)}
    tasks["chain1"] = {"cmd": ["sleep", f"{unit:g}"]}
    tasks["chain2"] = {"cmd": ["sleep", f"{2 * unit:g}"], "needs": ["chain1"]}
    tasks["chain3"] = {"cmd": ["sleep", f"{4 * unit:g}"], "needs": ["chain2"]}
    for i in range(2):
        tasks[f"long{i}"] = {"cmd": ["sleep", f"{8 * unit:g}"]}
    pool = 4
    write_taskfile(d / "tasks.yaml", tasks, pool)
    total = sum(float(t["cmd"][1]) for t in tasks.values())
    bound = max(8 * unit, total / pool)  # critical path: a long task, or the chain (7 units)
    subprocess.run([taskrun, "tasks.yaml", "-o", "history.json"], cwd=d, check=True, capture_output=True)

    def spans(extra: list[str]) -> list[float]:
        out = []
        for _ in range(runs):
            subprocess.run([taskrun, "tasks.yaml", "-o", "summary.json", *extra], cwd=d, check=True,
                           capture_output=True)
            out.append(json.loads((d / "summary.json").read_text())["duration_s"])
        return out

    plain = spans(["--no-history"])
    smart = spans(["--history", "history.json"])
    table("Scheduling with history (pool 4)", ["order", "makespan s", "vs lower bound"], [
        ["lower bound max(critical path, work/pool)", f"{bound:.2f}", "1.00x"],
        ["file order (--no-history)", f"{med(plain):.2f}", f"{med(plain) / bound:.2f}x"],
        ["longest remaining path first (--history)", f"{med(smart):.2f}", f"{med(smart) / bound:.2f}x"],
    ])


def bench_output(tmp: Path, quick: bool, runs: int) -> None:
    """The output benchmark of its own script: 1 GiB (256 MiB quick) through each output mode."""
    size = "256M" if quick else "1G"
    for writer in ("fold", "python"):
        print(f"\n## Output: {size} through a task ({writer} writer), best of {runs}\n", flush=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "output.py"), "--size", size, "--writer", writer,
                        "--repeat", str(runs)], check=True)


def filesystem(path: str) -> str:
    """The type of the filesystem holding `path` (the longest mount point over it), from
    /proc/self/mountinfo; "unknown" elsewhere. Creating files costs very different amounts
    on tmpfs and on ext4 (which, without a journal, scans the inodes freed in the last
    minutes before reusing one), and taskrun creates two log files a task."""
    real, best, kind = os.path.realpath(path), "", "unknown"
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                point, fstype = fields[4], fields[fields.index("-") + 1]
                if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                    best, kind = point, fstype
    except (OSError, ValueError, IndexError):
        pass
    return kind


SECTIONS = {"dispatch": bench_dispatch, "scale": bench_scale, "efficiency": bench_efficiency,
            "startup": bench_startup, "bigfile": bench_bigfile, "history": bench_history, "output": bench_output}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sections", nargs="*", choices=[[], *SECTIONS], default=[])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller N")
    parser.add_argument("--runs", type=int, default=None, help="runs per command (default 5, quick 3)")
    parser.add_argument("--before", metavar="TASKRUN", help="an earlier taskrun command to measure alongside")
    parser.add_argument("--tmp", metavar="DIR", default=tempfile.gettempdir(),
                        help="where the task files, run folders and logs go (default: the temporary folder)")
    args = parser.parse_args()
    global BEFORE
    BEFORE = args.before and str(Path(args.before).resolve())
    runs = args.runs or (3 if args.quick else 5)
    print(f"# taskrun benchmarks: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {runs} runs each")
    print(f"# files and logs in {args.tmp} ({filesystem(args.tmp)})")
    with tempfile.TemporaryDirectory(prefix="taskrun-bench-", dir=args.tmp) as tmp:
        for name in args.sections or SECTIONS:
            SECTIONS[name](Path(tmp), args.quick, runs)


if __name__ == "__main__":
    main()
