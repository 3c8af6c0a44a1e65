"""Whole-process A/B of two source trees: the same `ablations` command under each tree, alternated A B A B, as ratios.

Each trial runs the CLI in a fresh process (`python -m ablations.cli ...`) with PYTHONPATH set to one tree, in a
fresh results directory, and times the whole command (imports, workers, training, evaluation, writing the CSVs).
The rate is the env steps in the results' runs.csv (training steps, as the budget counts them) over that wall time.
Trials alternate between the trees so both see the same machine state (the machine may be shared); the ratio B/A is
given per pair (trial i of B over trial i of A) with its spread, and of the median rates.

    # `ablations train`, CartPole default config, 32 seeds x 100k steps, both cores (the engine's headline rate)
    python benchmarks/engine_ab.py /tmp/base /work/wt/mine --repeats 3
    # a study (or a slice of one: --set fields of [fixed])
    python benchmarks/engine_ab.py /tmp/base . --study studies/quick.toml
    python benchmarks/engine_ab.py /tmp/base . --study studies/cartpole_factorial.toml --set total_steps=10000
    # LunarLander: gymnasium under A against EnvPool under B (a slice: 60 runs x 15k steps)
    python benchmarks/engine_ab.py /tmp/base . --study studies/lunarlander.toml --set total_steps=15000 \\
        --set-b env_backend=envpool

A tree is a checkout of this repository (e.g. `git worktree add --detach /tmp/base <commit>`).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def command(args: argparse.Namespace, out: str, tree: str = "A") -> list[str]:
    """The CLI command of one trial of `tree` (A or B), writing into `out`."""
    cli = [sys.executable, "-m", "ablations.cli"]
    if args.study:
        sets = [x for s in args.set + (args.set_b if tree == "B" else []) for x in ("--set", s)]
        return [*cli, "run", str(Path(args.study).resolve()), "--out", out, "--workers", str(args.workers), *sets]
    return [*cli, "train", "--env", args.env, "--seeds", args.seeds, "--steps", str(args.steps), "--workers",
            str(args.workers), "--out", out, *args.extra]


def env_steps(out: str) -> int:
    with open(Path(out) / "runs.csv", newline="") as f:
        return sum(int(r["env_steps"]) for r in csv.DictReader(f) if r["env_steps"])


def trial(tree: str, args: argparse.Namespace, name: str) -> tuple[float, int]:
    """(wall seconds, env steps) of one run of the command under `tree`."""
    with tempfile.TemporaryDirectory(prefix="engine_ab_") as tmp:
        out = str(Path(tmp) / "results")
        env = {**os.environ, "PYTHONPATH": str(Path(tree).resolve())}
        t0 = time.perf_counter()
        subprocess.run(command(args, out, name), env=env, cwd=tmp, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        return wall, env_steps(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="tree A (the baseline)")
    ap.add_argument("b", help="tree B (the change)")
    ap.add_argument("--repeats", type=int, default=2, help="trials per tree, alternated A B A B ...")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--seeds", default="0-31")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--study", help="time `ablations run STUDY` instead of `ablations train`")
    ap.add_argument("--set", action="append", default=[], help="with --study: FIELD=VALUE, repeatable")
    ap.add_argument("--set-b", action="append", default=[], help="with --study: FIELD=VALUE for tree B only (e.g. "
                    "env_backend=envpool against a tree A that steps gymnasium)")
    ap.add_argument("extra", nargs="*", help="more `ablations train` options (after --)")
    args = ap.parse_args()
    print("command A:", " ".join(command(args, "<tmp>", "A")))
    print("command B:", " ".join(command(args, "<tmp>", "B")))
    rates: dict[str, list[float]] = {"A": [], "B": []}
    for i in range(args.repeats):
        for name, tree in (("A", args.a), ("B", args.b)):
            wall, steps = trial(tree, args, name)
            rates[name].append(steps / wall)
            print(f"trial {i} {name}: {wall:7.1f} s  {steps:,} env steps  {steps / wall:,.0f} env steps/s", flush=True)
    ratios = [b / a for a, b in zip(rates["A"], rates["B"])]
    med_a, med_b = statistics.median(rates["A"]), statistics.median(rates["B"])
    print(f"A median {med_a:,.0f} env steps/s, B median {med_b:,.0f} env steps/s, ratio of medians {med_b / med_a:.3f}")
    print("per-pair ratios B/A: " + ", ".join(f"{r:.3f}" for r in ratios)
          + f" (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
