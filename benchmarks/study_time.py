"""Wall time and peak memory of a whole study, end to end through the CLI (`ablations run`).

Peak memory is the largest total resident set size (RSS) of the driver and all its worker processes, sampled every
0.2 s from /proc (Linux; reading PSS every 0.2 s as well cost 15% of a core during a 2-GB-per-worker study, so PSS is
sampled every 5 s): pages of shared libraries (libtorch) count once per process, so it is an upper bound. The
peak total proportional set size (PSS, shared pages split between the processes that map them) is printed beside it.
The study runs in a fresh results directory unless --out names one (a rerun resumes).

    python benchmarks/study_time.py                                  # studies/cartpole_factorial.toml
    python benchmarks/study_time.py studies/quick.toml --workers 2
    python benchmarks/study_time.py studies/halfcheetah.toml --set total_steps=50000   # a short slice: the rate

The env-step rate printed is the results' runs.csv env steps over the whole command's wall time.
"""

from __future__ import annotations

import argparse
import csv
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


def _kib_field(path: str, field: str) -> int:
    """Bytes of a "<field>: <n> kB" line of a /proc file (0 if the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _memory_bytes(pids: list[int]) -> tuple[int, int]:
    """(Σ RSS, Σ PSS) over pids."""
    return (sum(_kib_field(f"/proc/{p}/status", "VmRSS:") for p in pids),
            sum(_kib_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids))


def _env_steps(runs_csv: Path) -> int:
    """Σ env_steps over runs.csv (0 if it is not there)."""
    if not runs_csv.is_file():
        return 0
    with runs_csv.open(newline="") as f:
        return sum(int(r["env_steps"]) for r in csv.DictReader(f) if r.get("env_steps"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", nargs="?", default="studies/cartpole_factorial.toml")
    ap.add_argument("--out", default=None, help="results directory (default: a fresh temporary one)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--cohort-size", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], help="FIELD=VALUE for `ablations run --set`, repeatable")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="study_time_")
    cmd = [sys.executable, "-m", "ablations.cli", "run", args.study, "--out", out]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if args.cohort_size:
        cmd += ["--cohort-size", str(args.cohort_size)]
    cmd += [x for s in args.set for x in ("--set", s)]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**os.environ, "COLUMNS": "120"})
    peak = peak_pss = 0
    tick = 0
    while proc.poll() is None:  # RSS every 0.2 s; PSS (smaps_rollup walks page tables: costly) every 5 s
        pids = _children(proc.pid)
        peak = max(peak, sum(_kib_field(f"/proc/{p}/status", "VmRSS:") for p in pids))
        if tick % 25 == 0:
            peak_pss = max(peak_pss, _memory_bytes(pids)[1])
        tick += 1
        time.sleep(0.2)
    wall = time.perf_counter() - start
    steps = _env_steps(Path(out) / "runs.csv")
    print(f"{args.study}: exit {proc.returncode}, wall {wall:.1f} s ({wall / 60:.1f} min), "
          f"{steps:,} env steps ({steps / wall:,.0f} steps/s), "
          f"peak memory {peak / 2**30:.2f} GiB RSS ({peak_pss / 2**30:.2f} GiB PSS) over driver + workers, "
          f"{os.cpu_count()} cores; results in {out}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
