#!/usr/bin/env python3
"""How fast task output gets through taskrun, in each output mode.

A task writes SIZE bytes of 100-byte lines: `--writer fold` (default) is the
pipeline `head -c SIZE /dev/zero | tr '\\0' x | fold -w 99`, a fast producer
of the kind real tools are (about 200 MB/s); `--writer python` writes 1 MiB
blocks from Python, more than ten times faster than any real tool, which
makes every figure a measure of taskrun's own cost. Peer: the same command run by /bin/sh with its output redirected to
a file. Then taskrun runs it with --output quiet (log file only), stream and
group (log file, plus every line prefixed on the console, itself redirected
to a file). Each figure is the best of --repeat runs; the ratio is against the
peer measured in the same run. Targets: quiet >= 70%, stream >= 40%.

    python3 bench/output.py                     # 1 GiB through fold, best of 3
    python3 bench/output.py --writer python     # 1 GiB from Python, best of 3
    python3 bench/output.py --size 256M --repeat 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

WRITER = ("import os,sys\n"
          "n=int(sys.argv[1]); line=b'x'*99+b'\\n'; block=line*10486\n"
          "while n>0:\n"
          "    b=block[:n]; n-=os.write(1,b)\n")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("IB")
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def timed(argv: list[str], cwd: str, stdout) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=stdout, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1G", help="bytes the task writes (K, M, G suffixes); default 1G")
    ap.add_argument("--writer", choices=("fold", "python"), default="fold", help="the producer (see above)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per case; the best counts")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                    help="folder for the files (default /dev/shm: memory, so the disk's writeback "
                         "does not drown what is measured)")
    args = ap.parse_args()
    size = parse_size(args.size)
    taskrun = shutil.which("taskrun") or sys.exit("the taskrun command is not on PATH (pip install -e .)")
    work = tempfile.mkdtemp(prefix="taskrun-bench-", dir=args.dir)
    try:
        with open(os.path.join(work, "writer.py"), "w") as f:
            f.write(WRITER)
        with open(os.path.join(work, "writer.sh"), "w") as f:  # one command, the same for every case
            if args.writer == "python":
                f.write(f"exec {sys.executable} writer.py {size}\n")
            else:
                f.write(f"head -c {size} /dev/zero | tr '\\0' x | fold -w 99\n")
        cmd = "/bin/sh writer.sh"
        with open(os.path.join(work, "tasks.yaml"), "w") as f:
            f.write(textwrap.dedent(f"""\
                version: 1
                tasks:
                  writer: {cmd}
                """))
        console = os.path.join(work, "console.out")
        runs = os.path.join(work, ".taskrun", "runs")
        cases = {"direct": ["/bin/sh", "-c", f"{cmd} > direct.out"]}
        for mode in ("quiet", "stream", "group"):
            cases[mode] = [taskrun, "tasks.yaml", "--output", mode, "--keep-runs", "0"]
        results = {name: float("inf") for name in cases}
        for _ in range(args.repeat):  # rounds over every case, so a slow moment hits them all alike
            for name, argv in cases.items():
                # Every case writes fresh files into a page cache with no dirty backlog.
                for path in (console, os.path.join(work, "direct.out")):
                    if os.path.exists(path):
                        os.unlink(path)
                shutil.rmtree(runs, ignore_errors=True)
                os.sync()
                with open(console, "wb") as out:
                    results[name] = min(results[name], timed(argv, work, out))
        mb = size / 1e6
        print(f"task output: {size} bytes of 100-byte lines from {args.writer}, best of {args.repeat}, files in {args.dir}")
        print(f"{'case':<8} {'seconds':>8} {'MB/s':>8} {'vs direct':>10}")
        for name, secs in results.items():
            print(f"{name:<8} {secs:8.2f} {mb / secs:8.0f} {results['direct'] / secs:9.0%}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
