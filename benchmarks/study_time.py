"""Wall time and peak memory of a whole study, end to end through the CLI (`ablations run`).

Peak memory is the largest total resident set size of the driver and all its worker processes, sampled every
0.2 s from /proc (Linux). The study runs in a fresh results directory unless --out names one (a rerun resumes).

    python benchmarks/study_time.py                                  # studies/cartpole_factorial.toml
    python benchmarks/study_time.py studies/quick.toml --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return out


def _rss_bytes(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", nargs="?", default="studies/cartpole_factorial.toml")
    ap.add_argument("--out", default=None, help="results directory (default: a fresh temporary one)")
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="study_time_")
    cmd = [sys.executable, "-m", "ablations.cli", "run", args.study, "--out", out]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "COLUMNS": "120"})
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _rss_bytes(_children(proc.pid)))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    print(f"{args.study}: exit {proc.returncode}, wall {wall:.1f} s ({wall / 60:.1f} min), "
          f"peak memory {peak / 2**30:.2f} GiB over driver + workers, {os.cpu_count()} cores; results in {out}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
