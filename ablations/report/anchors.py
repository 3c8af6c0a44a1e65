"""External anchors: a study's `[[report.anchors]]` (a published number of a well-known implementation on one env,
with its source, budget, what it measures and how its algorithm differs) set beside the study's best config on that
env, so a reader sees where REINFORCE at this budget stands against the literature.

"Best config" is the config with the highest mean final return over the evaluation seeds (the report's `summary`
table); beside the anchor the table gives that config's final return (t-interval over seeds) and, where the anchor's
budget is inside ours, its learning curve's value at the anchor's budget (the binned curve of `train.scores`, the
report's learning curves, with the same seed-block bootstrap band). An anchor with `points` (the source's curve)
gets a figure: our best config's curve with its band, the source's points on it. Nothing here changes a verdict: an
anchor is context, and the table says what each number measures (the sources' metrics differ from ours and from one
another: training batches, deterministic evaluation, one run or ten seeds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ablations.report import bootstrap as bs
from ablations.report import plots
from ablations.report.load import ENV, study_spec
from ablations.report.model import Report
from ablations.report.text import fmt, md_table
from ablations.train import scores as sc

ANCHOR_COLUMNS = ["env_id", "source", "value", "spread", "steps", "measures", "differs", "best_config",
                  "best_steps", "best_final_return", "best_ci_low", "best_ci_high", "best_n", "best_at_steps",
                  "best_at_steps_ci_low", "best_at_steps_ci_high"]
CURVE_COLUMNS = ["env_id", "config", "env_steps", "n", "mean", "ci_low", "ci_high"]


def anchors_of(rep: Report, env: str | None) -> list[dict[str, Any]]:
    """The study's anchors for `env` (a multi-env study's one env) or for the single env of `rep`'s runs."""
    anchors = (study_spec(rep.results.manifest).get("report") or {}).get("anchors") or []
    if env is None:
        runs = rep.results.runs
        envs = list(pd.unique(runs[ENV].astype(str))) if ENV in runs.columns else []
        env = envs[0] if len(envs) == 1 else None
    return [a for a in anchors if a.get("env_id") == env]


def compute(rep: Report, *, env: str | None = None) -> None:
    """Add the tables `anchors` (one row per anchor of this env) and `anchor_curve` (the best config's learning
    curve, when an anchor has points) to `rep`. A no-op without anchors, or with an episode budget (the anchors'
    budgets are env steps)."""
    anchors = anchors_of(rep, env)
    if not anchors or rep.budget_unit != "env_steps" or "summary" not in rep.tables:
        return
    final = rep.tables["summary"]
    final = final[(final["metric"] == "final_return") & final["mean"].notna()]
    if final.empty:
        return
    best = final.sort_values("mean", ascending=False, kind="stable").iloc[0]
    done = rep.results.done
    scores = rep.tables["scores"]
    runs = scores.loc[scores["config"] == best["config"], ["run_id", "seed"]]
    budget = float(pd.to_numeric(done.loc[done["run_id"].isin(runs["run_id"]), "total_steps"]).max())
    grid = sc.env_step_grid(budget)
    y = sc.binned_curves(rep.results.curves, runs["run_id"].tolist(), grid)
    band = bs.curve_bands(y, pd.Series([best["config"]] * len(runs)), grid, seeds=runs["seed"].to_numpy(),
                          seed=rep.seed, n_resamples=rep.n_resamples, level=rep.level, key="anchor")
    env_id = anchors[0]["env_id"]
    rows = []
    for a in anchors:
        at = band.iloc[int(np.argmin(np.abs(band["env_steps"].to_numpy() - a["steps"])))] \
            if a["steps"] <= budget else None
        rows.append({"env_id": env_id, "source": a["source"], "value": float(a["value"]),
                     "spread": float(a["spread"]) if "spread" in a else np.nan, "steps": int(a["steps"]),
                     "measures": a["measures"], "differs": a["differs"], "best_config": best["config"],
                     "best_steps": int(budget), "best_final_return": float(best["mean"]),
                     "best_ci_low": float(best["ci_low"]), "best_ci_high": float(best["ci_high"]),
                     "best_n": int(best["n"]),
                     "best_at_steps": np.nan if at is None else float(at["mean"]),
                     "best_at_steps_ci_low": np.nan if at is None else float(at["ci_low"]),
                     "best_at_steps_ci_high": np.nan if at is None else float(at["ci_high"])})
    rep.tables["anchors"] = pd.DataFrame(rows, columns=ANCHOR_COLUMNS)
    if any(a.get("points") for a in anchors):
        rep.tables["anchor_curve"] = band.assign(env_id=env_id, config=band["group"])[CURVE_COLUMNS]


def draw(rep: Report, out_dir: Path, env: str | None = None) -> None:
    """The figure `anchor_curve`: the best config's curve (mean, 95% band) and each anchor's points."""
    if "anchor_curve" not in rep.tables:
        return
    curve = rep.tables["anchor_curve"]
    anchors = anchors_of(rep, env)
    with plt.rc_context(plots.STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        color, *others = plots.palette(1 + len(anchors))
        ax.plot(curve["env_steps"], curve["mean"], color=color, linewidth=1.5,
                label=f"ours: {curve['config'].iloc[0]} (mean of {int(curve['n'].iloc[0])} seeds, 95% band)")
        ax.fill_between(curve["env_steps"], curve["ci_low"], curve["ci_high"], color=color, alpha=0.2, linewidth=0)
        for c, a in zip(others, anchors):
            pts = np.asarray(a.get("points") or [[a["steps"], a["value"]]], float)
            ax.plot(pts[:, 0], pts[:, 1], color=c, marker="o", linestyle="--", linewidth=1.0,
                    label=a["source"].split(" (")[0])
        ax.set(xlabel="env steps", ylabel="episode return", title=f"{curve['env_id'].iloc[0]}: our best config "
               "beside the external anchor")
        ax.legend(loc="best")
        fig.tight_layout()
    rep.figures["anchor_curve"] = plots.save(fig, out_dir / "figures", "anchor_curve")[0].relative_to(
        out_dir).as_posix()


def _pm(value: float, spread: float) -> str:
    return fmt(value) + ("" if not np.isfinite(spread) else f" ± {fmt(spread)}")


def _ours(r: pd.Series) -> str:
    return f"{fmt(r['best_final_return'])} [{fmt(r['best_ci_low'])}, {fmt(r['best_ci_high'])}]"


def _at(r: pd.Series) -> str:
    if not np.isfinite(r["best_at_steps"]):
        return "beyond our budget"
    return f"{fmt(r['best_at_steps'])} [{fmt(r['best_at_steps_ci_low'])}, {fmt(r['best_at_steps_ci_high'])}]"


def table_lines(table: pd.DataFrame) -> list[str]:
    """The anchors table as markdown: their number and budget, what it measures, ours beside it, the differences."""
    shown = table.assign(_theirs=[_pm(v, s) for v, s in zip(table["value"], table["spread"])],
                         _steps=[f"{int(s):,}" for s in table["steps"]],
                         _ours=[_ours(r) for _, r in table.iterrows()],
                         _at=[_at(r) for _, r in table.iterrows()],
                         _best=[f"{c} ({int(s):,} steps, {int(n)} seeds)" for c, s, n in
                                zip(table["best_config"], table["best_steps"], table["best_n"])])
    return [md_table(shown, {"env_id": "env", "source": "anchor", "_theirs": "their number", "_steps": "their budget",
                             "measures": "what it measures", "_best": "our best config (by final return)",
                             "_ours": "our final return [95% CI]", "_at": "ours at their budget [95% CI]",
                             "differs": "how their algorithm differs"}), ""]


NOTE = ("Context, not a test: each number is quoted from its source (docs/external_anchors.md says where and how it "
        "was read) and measures what its row says, which is not always what ours measures. Our final return is the "
        "mean return of the training episodes in the last 10% of the budget (the stochastic policy), with a "
        "t-interval over the evaluation seeds; 'ours at their budget' is our best config's learning curve at the "
        "anchor's budget, with its seed-block bootstrap band.")


def section(rep: Report) -> list[str]:
    """The "## External anchors" section of a report (no lines without anchors)."""
    if "anchors" not in rep.tables or rep.tables["anchors"].empty:
        return []
    lines = ["## External anchors", "", NOTE, "", *table_lines(rep.tables["anchors"])]
    if "anchor_curve" in rep.figures:
        lines += [f"![Our best config beside the external anchor]({rep.figures['anchor_curve']})", ""]
    return lines
