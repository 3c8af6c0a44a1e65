"""What adaptive seeding saved, and whether its verdicts agree with the fixed design's: a sequential study's results
against the fixed design with the same maximum (every config at every seed), whose rows are a published study's.

    python benchmarks/adaptive_saving.py                      # studies/adaptive_cartpole.toml vs the CartPole factorial
    python benchmarks/adaptive_saving.py --designs            # + the rule replayed on every sub-design of the factorial

The fixed design's rows: the runs of the sequential study at every seed, looked up by run id in `--fixed` (the
CartPole factorial trains every config of adaptive_cartpole.toml at the same 20 seeds, so no training is needed).
Prints: runs and env steps (taken, from runs.csv) of both; how many of the sequential study's rows are identical to
the fixed design's (the same run ids: invariant 1 across studies); the waves the rule gives when replayed on the
fixed design's rows (must equal the trained ones); and per contrast the sequential verdict (anytime-valid) beside the
fixed design's at every seed: the same rule's fixed-n t-interval (Bonferroni) and the report's paired t-test with
Holm's correction (helps / hurts when p_holm < α, else not significant). `--designs` replays the rule (main effects,
min 5, step 5, max 20) on every sub-design of the factorial (each factor's first level and any of its others, at
least two factors swept, at most 48 configs) and summarizes the share of runs each would have used.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ablations.report.comparisons import holm  # noqa: E402
from ablations.study import sequential as sq  # noqa: E402
from ablations.study.design import grid, load_study, parse_study  # noqa: E402
from ablations.study.margin import ALPHA  # noqa: E402
from ablations.study.results_format import read_text_table  # noqa: E402


def holm_verdicts(study, rows: pd.DataFrame) -> list[str]:
    """Per contrast, the fixed design's paired t-test at every seed, Holm within each family and env."""
    cs = sq.study_contrasts(study)
    value = dict(zip(rows["run_id"], pd.to_numeric(rows[study.sequential.metric], errors="coerce")))
    status = dict(zip(rows["run_id"], rows["status"]))
    ids = sq.run_ids(study)
    Y = np.vectorize(lambda r: value.get(r, np.nan) if status.get(r) == "done" else np.nan, otypes=[float])(ids).T
    D = sq.per_seed(Y, sq.weights(cs, len(grid(study))))
    from scipy import stats

    p = np.array([stats.ttest_1samp(d[np.isfinite(d)], 0.0).pvalue if np.ptp(d[np.isfinite(d)]) > 0 else np.nan
                  for d in D.T])
    groups = [(c.family, c.env) for c in cs]
    adj = np.full(len(cs), np.nan)
    for g in set(groups):
        k = np.array([x == g for x in groups])
        adj[k] = holm(p[k])
    mean = np.nanmean(D, axis=0)
    return ["helps" if a < ALPHA and m > 0 else "hurts" if a < ALPHA and m < 0 else "not significant"
            for a, m in zip(adj, mean)]


def compare(study_path: Path, results: Path, fixed: Path) -> None:
    study = load_study(study_path)
    mine = read_text_table(results / "runs.csv")
    full = read_text_table(fixed / "runs.csv")
    ids = sq.run_ids(study).ravel()
    fixed_rows = full[full["run_id"].isin(set(ids))]
    missing = len(set(ids) - set(fixed_rows["run_id"]))
    if missing:
        raise SystemExit(f"{fixed} lacks {missing} of the fixed design's {len(ids)} runs")
    steps = lambda df: int(pd.to_numeric(df["env_steps"]).sum())  # noqa: E731
    print(f"sequential ({results}): {len(mine):,} runs, {steps(mine):,} env steps")
    print(f"fixed design at {len(study.seeds)} seeds ({fixed}): {len(fixed_rows):,} runs, {steps(fixed_rows):,} env "
          f"steps")
    print(f"saving: {1 - len(mine) / len(fixed_rows):.1%} of the runs, {1 - steps(mine) / steps(fixed_rows):.1%} of "
          "the env steps")
    cols = [c for c in mine.columns if c not in ("study",) and c in fixed_rows.columns]
    joined = mine[cols].merge(fixed_rows[cols], on="run_id", suffixes=("", "_fixed"))
    same = np.all([joined[c] == joined[f"{c}_fixed"] for c in cols if c != "run_id"], axis=0)
    print(f"rows identical to the fixed design's (every runs.csv column but `study`): {int(same.sum())} of "
          f"{len(mine)}")
    trained = sq.replay(study, mine)
    offline = sq.replay(study, fixed_rows)
    same_waves = offline.waves == trained.waves and offline.counts == trained.counts
    print(f"waves replayed on the fixed design's rows equal the trained waves: {same_waves}")
    d = trained.decisions.copy()
    full_state = sq.looks(sq.per_seed(_matrix(study, fixed_rows), sq.weights(trained.contrasts, len(grid(study)))),
                          [len(study.seeds)], np.array(trained.alpha), np.array(trained.g),
                          np.array([trained.margins[c.env] for c in trained.contrasts]), interval="fixed")
    d["fixed_design"] = [sq.CLASS_NAMES[int(v)] for v in full_state["cls"][0]]
    d["fixed_design_holm"] = holm_verdicts(study, fixed_rows)
    pd.set_option("display.width", 250)
    print(d[["family", "contrast", "look", "n", "estimate", "run_low", "run_high", "verdict", "fixed_design",
             "fixed_design_holm"]].to_string(index=False))
    sig = d["fixed_design_holm"].isin(["helps", "hurts"])
    opposite = ((d["verdict"] == "helps") & (d["fixed_design_holm"] == "hurts")) | (
        (d["verdict"] == "hurts") & (d["fixed_design_holm"] == "helps"))
    print(f"verdicts: {int((d['verdict'] == d['fixed_design']).sum())} of {len(d)} equal the same rule's at every seed "
          f"(fixed-n Bonferroni); of the {int(sig.sum())} the fixed design's Holm tests call significant, "
          f"{int((d['verdict'][sig] == d['fixed_design_holm'][sig]).sum())} are decided the same way here, the others "
          f"undecided; opposite verdicts: {int(opposite.sum())}")


def _matrix(study, rows: pd.DataFrame) -> np.ndarray:
    value = dict(zip(rows["run_id"], pd.to_numeric(rows[study.sequential.metric], errors="coerce")))
    status = dict(zip(rows["run_id"], rows["status"]))
    return np.vectorize(lambda r: value.get(r, np.nan) if status.get(r) == "done" else np.nan,
                        otypes=[float])(sq.run_ids(study)).T


def designs(fixed: Path) -> None:
    """The rule (main effects, min 5, step 5, max 20) replayed on every sub-design of the CartPole factorial."""
    base = tomllib.loads((ROOT / "studies" / "cartpole_factorial.toml").read_text())
    runs = read_text_table(fixed / "runs.csv")
    factors = base["factors"]
    options = {f: [[v[0], *rest] for r in range(len(v)) for rest in itertools.combinations(v[1:], r)]
               for f, v in factors.items()}
    used = []
    for combo in itertools.product(*options.values()):
        swept = {f: v for f, v in zip(factors, combo) if len(v) > 1}
        n = int(np.prod([len(v) for v in swept.values()])) if swept else 1
        if len(swept) < 2 or n > 48:
            continue
        raw = copy.deepcopy(base)
        raw["fixed"].update({f: v[0] for f, v in zip(factors, combo) if len(v) == 1})
        raw["factors"] = swept
        raw["report"]["reference"] = {k: v for k, v in raw["report"]["reference"].items() if k in swept}
        raw["sequential"] = {"min": 5, "step": 5}
        state = sq.replay(parse_study(raw, where="sub-design"), runs)
        used.append(sum(state.counts) / (n * 20))
    used = np.array(used)
    print(f"{len(used)} sub-designs (main effects, min 5, step 5, max 20): runs used, median "
          f"{np.median(used):.0%}, mean {used.mean():.1%}, min {used.min():.0%}; {np.mean(used < 0.9):.1%} of them "
          "save more than 10%")
    raw = copy.deepcopy(base)
    raw["sequential"] = {"min": 5, "step": 5}
    state = sq.replay(parse_study(raw, where="cartpole_factorial"), runs)
    d = state.decisions
    print(f"the whole factorial (144 configs, main effects): {sum(state.counts) / (144 * 20):.0%} of its runs; "
          f"undecided at 20 seeds: {', '.join(d.loc[d['verdict'] == 'undecided', 'contrast'])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", nargs="?", type=Path, default=ROOT / "studies" / "adaptive_cartpole.toml")
    ap.add_argument("--results", type=Path, default=ROOT / "results" / "adaptive_cartpole")
    ap.add_argument("--fixed", type=Path, default=ROOT / "results" / "cartpole_factorial")
    ap.add_argument("--designs", action="store_true", help="also replay the rule on every sub-design")
    args = ap.parse_args()
    compare(args.study, args.results, args.fixed)
    if args.designs:
        designs(args.fixed)


if __name__ == "__main__":
    main()
