"""The Ray driver's peak memory and the plan / dry-run time vs the number of runs in a study.

Each size runs in fresh processes. A study of N runs is 100 configs (policy_lr × gamma) × N/100 seeds on CartPole:
* plan: `ablations run <study> --dry-run` through the CLI (wall time of the whole command, imports included), and
  `plan()` alone in-process;
* run: `run_study` with the Ray executor on a local Ray (`--workers` CPUs) and a synthetic trainer that returns
  fake rows at once (`tests.study.ray_trainers:fake_instant`: 1 runs row, 3 curves rows per run), so the driver's
  own work dominates: receive rows, write one part per cohort, combine. Peak driver RSS is the driver process's
  `ru_maxrss` (Ray's raylet, GCS and workers are other processes, not counted); "before" is its RSS after imports.

    python benchmarks/ray_driver_scaling.py                        # 1k, 5k, 20k runs
    python benchmarks/ray_driver_scaling.py --sizes 1000 20000 --cohort-size 16

Measured on 2 shared cores (run s is mostly starting a local Ray; peak RSS grows ~6 KB per run, mostly the final
combine of all parts; before the RunConfig type-hint fix, planning 20k runs took 27 s):

      runs cohorts dry-run s  plan s   run s RSS before MB peak RSS MB results MB
      1000       8      1.91    0.10    24.2           117         171        1.1
      5000      40      3.18    0.78    13.7           119         188        5.5
     20000     158      2.41    1.44    30.9           126         254       22.0
     20000    1250      4.49    2.10    81.9           126         289       23.6   (--cohort-size 16)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LRS = [1e-3 * (i + 1) for i in range(10)]
GAMMAS = [0.9 + 0.009 * i for i in range(10)]


def write_study(path: Path, n_runs: int) -> None:
    seeds = max(1, n_runs // (len(LRS) * len(GAMMAS)))
    path.write_text(f'name = "scale{n_runs}"\nseeds = {seeds}\n[fixed]\nenv_id = "CartPole-v1"\ntotal_steps = 3000\n'
                    f'hidden = [8]\neval_episodes = 0\n[factors]\npolicy_lr = {LRS}\ngamma = {GAMMAS}\n')


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(study_path: Path, out: Path, workers: int, cohort_size: int | None) -> dict:
    """In a fresh process: plan time, then the study on Ray with the synthetic trainer; peak RSS."""
    from ablations.study.design import load_study
    from ablations.study.driver import plan, run_study
    from ablations.study.executors import RayExecutor

    study = load_study(study_path)
    t = time.perf_counter()
    configs, todo = plan(study, out, workers=workers, cohort_size=cohort_size)
    plan_s = time.perf_counter() - t
    ex = RayExecutor(workers=workers, trainer="tests.study.ray_trainers:fake_instant")
    before = rss_mb()
    t = time.perf_counter()
    summary = run_study(study, out, ex, cohort_size=cohort_size)
    run_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert summary.counts["done"] == len(configs), summary.counts
    return {"runs": len(configs), "cohorts": len(todo), "plan_s": plan_s, "run_s": run_s, "rss_before_mb": before,
            "rss_peak_mb": peak, "parts_mb": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cohort-size", type=int, default=None, help="default: auto (as `ablations run`)")
    parser.add_argument("--one", nargs=2, metavar=("STUDY", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(Path(args.one[0]), Path(args.one[1]), args.workers, args.cohort_size)))
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print(f"{'runs':>6} {'cohorts':>7} {'dry-run s':>9} {'plan s':>7} {'run s':>7} {'RSS before MB':>13} "
          f"{'peak RSS MB':>11} {'results MB':>10}")
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            study = Path(tmp) / f"scale{n}.toml"
            write_study(study, n)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "ablations.cli", "run", str(study), "--out", f"{tmp}/dry",
                            "--dry-run", "--workers", str(args.workers)], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            dry = time.perf_counter() - t
            cmd = [sys.executable, __file__, "--one", str(study), f"{tmp}/out", "--workers", str(args.workers)]
            if args.cohort_size:
                cmd += ["--cohort-size", str(args.cohort_size)]
            r = json.loads(subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True,
                                          text=True).stdout.strip().splitlines()[-1])
            print(f"{r['runs']:>6} {r['cohorts']:>7} {dry:>9.2f} {r['plan_s']:>7.2f} {r['run_s']:>7.1f} "
                  f"{r['rss_before_mb']:>13.0f} {r['rss_peak_mb']:>11.0f} {r['parts_mb']:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
