"""The family-wise error of a sequential study's decisions over all looks, measured by simulation through the
package's own functions (`ablations.study.sequential`): the anytime-valid confidence sequence against the fixed-n
t-interval used at every look.

    python benchmarks/sequential_error.py                 # 4,000 simulated studies a line

Two populations, each with every contrast 0 (so any helps / hurts is an error; the margin is too small for any
contrast to stop as equivalent, so every look is taken):
- normal: a 3 × 2 × 2 factorial, per-seed scores = a seed effect shared by every config (common random numbers) +
  normal noise (the sequence's assumption);
- CartPole: the committed factorial's per-seed contrasts (final returns capped at 500: skewed), centred, resampled
  by seed (`results/cartpole_factorial`), for each family of the 36-config design of studies/adaptive_cartpole.toml
  and for the main effects of the whole factorial.
Each line: the schedule (min, step, max) and the error of the sequence and of the fixed-n interval at every look;
last, the fixed-n interval at one look only (20 seeds: the fixed design), for reference.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ablations.study import sequential as sq  # noqa: E402
from ablations.study.contrasts import contrasts  # noqa: E402
from ablations.study.design import grid, load_study, parse_study  # noqa: E402
from ablations.study.results_format import read_text_table  # noqa: E402


def error(D: np.ndarray, counts: list[int], alphas: np.ndarray, g: np.ndarray, interval: str) -> float:
    """Share of studies in which some contrast's interval excludes its true value 0 at some look."""
    res = sq.looks(D, counts, alphas, g, 1e-12, interval=interval)
    return float(1 - ((res["low"] <= 0) & (res["high"] >= 0)).all(axis=(1, 2)).mean())


def line(name: str, D: np.ndarray, alphas: np.ndarray, schedules: list[tuple[int, int, int]]) -> None:
    for lo, step, hi in schedules:
        counts = sorted({*range(lo, hi, step), hi})
        g = np.array([sq.tuned_g(lo, a) for a in alphas])
        print(f"{name:42s} min {lo:2d} step {step} max {hi}: sequence {error(D, counts, alphas, g, 'sequence'):.3f}, "
              f"fixed-n at every look {error(D, counts, alphas, g, 'fixed'):.3f}")
    print(f"{name:42s} fixed-n at {hi} seeds only: {error(D, [hi], alphas, g, 'fixed'):.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    b = args.studies

    normal = parse_study({"name": "sim", "seeds": 30, "fixed": {"total_steps": 400},
                          "factors": {"baseline": ["none", "mean", "value"], "normalize": ["none", "advantages"],
                                      "entropy_coef": [0.0, 0.01]}, "sequential": {"min": 3}}, where="sim")
    cs = sq.study_contrasts(normal)
    Y = 2 * rng.standard_normal((b, 30, 1)) + rng.standard_normal((b, 30, 12))
    line("normal, main effects (4)", sq.per_seed(Y, sq.weights(cs, 12)), sq.family_alphas(cs),
         [(3, 1, 30), (5, 5, 20), (5, 1, 20)])

    runs = read_text_table(ROOT / "results" / "cartpole_factorial" / "runs.csv")
    value = dict(zip(runs["run_id"], pd.to_numeric(runs["final_return"])))
    adaptive = load_study(ROOT / "studies" / "adaptive_cartpole.toml")
    raw = tomllib.loads((ROOT / "studies" / "cartpole_factorial.toml").read_text())
    raw["sequential"] = {"min": 5}
    factorial = parse_study(raw, where="cartpole_factorial")
    for study, families in ((adaptive, ("main", "interactions", "configs")), (factorial, ("main",))):
        Yc = np.vectorize(value.get)(sq.run_ids(study)).T.astype(float)
        Yc = Yc - Yc.mean(axis=0)
        idx = rng.integers(0, len(Yc), size=(b, len(Yc)))
        for family in families:
            fcs = contrasts(grid(study), study.factors, [family], study.report.get("reference"))
            D = sq.per_seed(Yc, sq.weights(fcs, len(grid(study))))[idx]
            line(f"CartPole {len(grid(study))} configs, {family} ({len(fcs)})", D, sq.family_alphas(fcs),
                 [(3, 1, 20), (5, 5, 20), (5, 1, 20), (10, 5, 20)])


if __name__ == "__main__":
    main()
