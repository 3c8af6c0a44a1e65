"""Figures from computed tables: every function takes DataFrames (with their CIs already computed) and returns a
matplotlib Figure; `save` writes it as PNG and SVG. Nothing here resamples or fits: bands and error bars are the
intervals from `stats`, `effects` and `gradvar` (seaborn supplies only the colour-blind palette).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from ablations.config import AXES
from ablations.report.text import level_name
from ablations.train.scores import UNIT_WORDS

STYLE = {"svg.hashsalt": "ablations-report", "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
LINESTYLES = ["-", "--", ":", "-."]


def palette(n: int) -> list[tuple[float, float, float]]:
    """The seaborn "colorblind" palette, cycled to n colours."""
    base = sns.color_palette("colorblind")
    return [base[i % len(base)] for i in range(n)]


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write `name`.png and `name`.svg (no timestamps in either) and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.svg"]
    with plt.rc_context(STYLE):
        fig.savefig(paths[0], dpi=110, metadata={"Software": None})
        fig.set_layout_engine("none")  # keep the layout computed for the PNG; don't solve it again for the SVG
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return paths


def _suptitle(fig: plt.Figure, title: str) -> None:
    """The figure's title, wrapped to its width (~11 characters an inch) so a narrow figure does not cut it off."""
    fig.suptitle(textwrap.fill(title, width=max(40, int(11 * fig.get_figwidth()))))


def _grid(n: int, ncols: int = 2, size: tuple[float, float] = (4.6, 3.2)) -> tuple[plt.Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols)) if n else 1
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                                 layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _band(ax: plt.Axes, x: np.ndarray, g: pd.DataFrame, color, label: str, y: str = "mean",
          style: str = "-") -> None:
    ax.plot(x, g[y], color=color, label=label, linestyle=style, linewidth=1.4)
    ax.fill_between(x, g["ci_low"], g["ci_high"], color=color, alpha=0.2, linewidth=0)


def _axis_order(axis: str, values: pd.Series) -> list[str]:
    """Distinct values in the order of `config.AXES[axis]`, unknown values last."""
    known = AXES.get(axis, ())
    return sorted(dict.fromkeys(values), key=lambda v: (known.index(v) if v in known else len(known), v))


def _factor_panels(df: pd.DataFrame, levels: dict[str, list[str]], *, x: str, y: str, xlabel: str, ylabel: str,
                   title: str, legend: str, ylim: tuple[float, float] | None = None,
                   hline: tuple[float, str] | None = None) -> plt.Figure:
    """One panel per factor (`df` columns factor, level, x, y, ci_low, ci_high): a line with its CI band per level;
    `hline` (value, legend label): a dashed grey horizontal line in every panel."""
    factors = list(dict.fromkeys(df["factor"]))
    fig, axes = _grid(len(factors))
    with plt.rc_context(STYLE):
        for ax, f in zip(axes, factors):
            sub = df[df["factor"] == f]
            no_factor = f == "config" and list(levels[f]) == ["all"]  # a study without factors: one line
            for color, lv in zip(palette(len(levels[f])), levels[f]):
                g = sub[sub["level"] == lv]
                if len(g):
                    _band(ax, g[x].to_numpy(), g, color, "all runs" if no_factor else level_name(f, lv), y=y)
            if hline is not None:
                ax.axhline(hline[0], color="0.35", linestyle="--", linewidth=1.0, label=hline[1])
            ax.set(title="" if no_factor else f"by {f}", xlabel=xlabel, ylabel=ylabel)
            if ylim is not None:
                ax.set_ylim(*ylim)
            ax.legend(loc=legend)
    _suptitle(fig, title)
    return fig


def _budget_axis(df: pd.DataFrame) -> str:
    """The x column of a curve table: `episodes` for an episode budget (`build.budget_unit_of`), else `env_steps`."""
    return "episodes" if "episodes" in df.columns else "env_steps"


def learning_curves(bands: pd.DataFrame, levels: dict[str, list[str]], *, ylabel: str = "episode return",
                    random: tuple[float, int] | None = None) -> plt.Figure:
    """One panel per factor: mean return vs env steps per level (pooled over the other factors) with its CI band.

    `bands` columns: factor, level, env_steps (or episodes: the x-axis is then episodes), mean, ci_low, ci_high.
    `random`: the uniform-random policy's (mean return, episodes), drawn as a dashed horizontal line in every panel
    (the legend then goes where it hides least).
    """
    hline = None if random is None else (random[0], f"uniform-random policy (mean of {random[1]} episodes)")
    x = _budget_axis(bands)
    return _factor_panels(bands, levels, x=x, y="mean", xlabel=UNIT_WORDS[x], ylabel=ylabel,
                          title="Learning curves (mean over runs, 95% seed-block bootstrap CI)",
                          legend="lower right" if hline is None else "best", hline=hline)


def config_estimates(summary: pd.DataFrame, reference: str, *, xlabel: str) -> plt.Figure:
    """Mean of a metric per config with its CI, sorted by mean; the reference config is marked."""
    s = summary.dropna(subset=["mean"]).sort_values("mean", kind="stable")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.22 * len(s)), layout="constrained")
        y = np.arange(len(s))
        colors = palette(2)
        is_ref = (s["config"] == reference).to_numpy()
        err = np.vstack([s["mean"] - s["ci_low"], s["ci_high"] - s["mean"]]).clip(min=0)
        for mask, color, label in ((~is_ref, colors[0], "config"), (is_ref, colors[1], "reference")):
            if mask.any():
                ax.errorbar(s["mean"].to_numpy()[mask], y[mask], xerr=err[:, mask], fmt="o", color=color,
                            markersize=3.5, capsize=2, label=label)
        ax.set_yticks(y, s["config"])
        ax.set(xlabel=xlabel, ylabel="config (" + "/".join(summary.attrs.get("factors", [])) + ")",
               title="Per-config mean with 95% bootstrap CI")
        ax.legend(loc="lower right")
    return fig


def forest(effects: pd.DataFrame, *, metrics: Sequence[str], xlabels: dict[str, str]) -> plt.Figure:
    """Main effects (level vs first level) with CIs, one panel per metric; zero marked."""
    rows_per_metric = max(1, len(effects) // max(1, len(metrics)))
    fig, axes = _grid(len(metrics), ncols=len(metrics), size=(5.2, 0.9 + 0.32 * rows_per_metric))
    with plt.rc_context(STYLE):
        for ax, m in zip(axes, metrics):
            e = effects[effects["metric"] == m].iloc[::-1]
            y = np.arange(len(e))
            colors = dict(zip(dict.fromkeys(e["factor"]), palette(e["factor"].nunique())))
            for yi, (_, r) in zip(y, e.iterrows()):
                ax.errorbar(r["estimate"], yi, xerr=[[max(r["estimate"] - r["ci_low"], 0)],
                                                     [max(r["ci_high"] - r["estimate"], 0)]],
                            fmt="o", color=colors[r["factor"]], capsize=2, markersize=4)
            ax.axvline(0, color="0.3", linewidth=0.8)
            ax.set_yticks(y, [f"{r['factor']}: {r['level']} vs {r['vs']}" for _, r in e.iterrows()])
            ax.set(xlabel=f"main effect on {xlabels.get(m, m)}", title=m)
    _suptitle(fig, "Main effects (averaged over the other factors), 95% seed-level bootstrap CI")
    return fig


def interactions(margins: pd.DataFrame, levels: dict[str, list[str]], *, ylabel: str) -> plt.Figure:
    """One panel per factor pair: marginal mean vs the first factor's level, a line per level of the second."""
    pairs = margins[margins["factor2"] != ""][["factor", "factor2"]].drop_duplicates().to_records(index=False)
    fig, axes = _grid(len(pairs), ncols=3, size=(4.0, 3.0))
    with plt.rc_context(STYLE):
        for ax, (fa, fb) in zip(axes, pairs):
            sub = margins[(margins["factor"] == fa) & (margins["factor2"] == fb)]
            for i, (color, lb) in enumerate(zip(palette(len(levels[fb])), levels[fb])):
                g = sub[sub["level2"] == lb].set_index("level").reindex(levels[fa]).dropna(subset=["mean"])
                x = np.array([levels[fa].index(a) for a in g.index], float) + (i - len(levels[fb]) / 2) * 0.04
                ax.errorbar(x, g["mean"], yerr=np.vstack([g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]]).clip(0),
                            color=color, marker="o", markersize=3.5, capsize=2, label=f"{fb}={lb}",
                            linestyle=LINESTYLES[i % len(LINESTYLES)])
            ax.set_xticks(range(len(levels[fa])), levels[fa])
            ax.set(xlabel=fa, ylabel=ylabel)
            ax.legend(fontsize=7)
    _suptitle(fig, "Interaction plots: marginal means with 95% seed-level bootstrap CI "
                   "(parallel lines = no interaction)")
    return fig


def gradient_variance(summary: pd.DataFrame, *, metrics: Sequence[str] = ("total_var", "snr")) -> plt.Figure:
    """Gradient variance and SNR vs env steps (log y), columns = normalize, colour = baseline, line style = returns.

    With several entropy coefficients only the smallest is drawn (the title says so). Checkpoints probed in fewer
    than half of the runs (late updates that only some runs reach) are left out: their means are from few runs.
    """
    s = summary[summary["metric"].isin(metrics)]
    s = s[s["n"] >= 0.5 * s.groupby(["estimator", "metric"])["n"].transform("max")]
    ent = sorted(s["entropy_coef"].unique(), key=float)
    s = s[s["entropy_coef"] == ent[0]]
    norms, baselines, returns = (_axis_order(name, s[name]) for name in ("normalize", "baseline", "returns"))
    colors = dict(zip(baselines, palette(len(baselines))))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(len(metrics), len(norms), figsize=(4.2 * len(norms), 3.2 * len(metrics)),
                                 squeeze=False, layout="constrained", sharex=True)
        labels = {"total_var": "total gradient variance (trace)", "snr": "gradient SNR ‖E g‖² / tr Var g"}
        for i, m in enumerate(metrics):
            for j, nz in enumerate(norms):
                ax = axes[i, j]
                for (b, r), g in s[(s["metric"] == m) & (s["normalize"] == nz)].groupby(["baseline", "returns"],
                                                                                         sort=False):
                    g = g.sort_values("env_steps")
                    g = g.assign(ci_low=g["ci_low"].where(g["ci_low"] > 0))
                    if (g["mean"] > 0).any():
                        _band(ax, g["env_steps"].to_numpy(), g, colors[b], f"{b}, {r}",
                              style=LINESTYLES[returns.index(r) % len(LINESTYLES)])
                ax.set_yscale("log")
                ax.set(title=f"normalize={nz}", xlabel="environment steps", ylabel=labels.get(m, m))
        handles = {}
        for ax in axes.flat:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles), title="baseline, returns", loc="outside right upper")
    _suptitle(fig, f"Gradient-estimator statistics across runs (entropy_coef={ent[0]}; 95% bootstrap CI)")
    return fig


def performance_profiles(profile: pd.DataFrame, levels: dict[str, list[str]], *, xlabel: str) -> plt.Figure:
    """Fraction of runs with score > τ vs τ, one panel per factor, a line (with CI band) per level."""
    return _factor_panels(profile, levels, x="tau", y="fraction", xlabel=f"τ ({xlabel})",
                          ylabel="fraction of runs with score > τ", ylim=(-0.02, 1.02), legend="lower left",
                          title="Performance profiles (95% seed-block bootstrap band)")


def km_curves(km: pd.DataFrame, levels: dict[str, list[str]], *, budget: float) -> plt.Figure:
    """Kaplan–Meier curves of steps to threshold: fraction of runs not yet at the threshold vs env steps, one panel
    per factor, a step line per level (runs pooled over the other factors). `km` columns: factor, level, env_steps
    (or episodes: the x-axis is then episodes), survival."""
    factors = list(dict.fromkeys(km["factor"]))
    unit = _budget_axis(km)
    fig, axes = _grid(len(factors))
    with plt.rc_context(STYLE):
        for ax, f in zip(axes, factors):
            sub = km[km["factor"] == f]
            order = levels.get(f, list(dict.fromkeys(sub["level"])))
            for color, lv in zip(palette(len(order)), order):
                g = sub[sub["level"] == str(lv)]
                if len(g):
                    x = np.append(g[unit].to_numpy(float), budget)
                    s = np.append(g["survival"].to_numpy(float), g["survival"].to_numpy(float)[-1])
                    ax.step(x, s, where="post", color=color, label=level_name(f, lv), linewidth=1.4)
            ax.set(title=f"by {f}", xlabel=UNIT_WORDS[unit], ylabel="fraction not yet at threshold",
                   ylim=(-0.02, 1.02))
            ax.legend(loc="lower left")
    _suptitle(fig, "Time to threshold (Kaplan–Meier; censored at the budget)")
    return fig


def effects_by_env(by_env: pd.DataFrame, aggregate: pd.DataFrame) -> plt.Figure:
    """Forest plot per effect (`aggregate` rows: term, estimate, ci_low, ci_high): one row per env (`by_env`: term,
    env_id, estimate, ci_low, ci_high) and the aggregate in black; zero marked."""
    terms = list(aggregate["term"])
    envs = list(dict.fromkeys(by_env["env_id"]))
    fig, axes = _grid(len(terms), ncols=min(3, max(1, len(terms))), size=(4.2, 0.9 + 0.3 * (len(envs) + 1)))
    colors = palette(len(envs))
    with plt.rc_context(STYLE):
        for ax, term in zip(axes, terms):
            rows = [(e, by_env[(by_env["term"] == term) & (by_env["env_id"] == e)]) for e in envs]
            a = aggregate[aggregate["term"] == term].iloc[0]
            items = [(e, g.iloc[0], colors[i]) for i, (e, g) in enumerate(rows) if len(g)] + [("aggregate", a, "k")]
            for yi, (label, r, color) in enumerate(reversed(items)):
                ax.errorbar(r["estimate"], yi, xerr=[[max(r["estimate"] - r["ci_low"], 0)],
                                                     [max(r["ci_high"] - r["estimate"], 0)]],
                            fmt="D" if label == "aggregate" else "o", color=color, capsize=2, markersize=4)
            ax.set_yticks(range(len(items)), [lab for lab, _, _ in reversed(items)])
            ax.axvline(0, color="0.3", linewidth=0.8)
            ax.set(title=term, xlabel="effect on normalized score")
    _suptitle(fig, "Effects by environment (95% CIs): does it hold on every env?")
    return fig


def aggregate_intervals(aggregate: pd.DataFrame, titles: Sequence[str]) -> plt.Figure:
    """rliable-style interval estimates: one panel per statistic (`aggregate` columns config, statistic, estimate,
    ci_low, ci_high, in `titles` order), configs on the y axis."""
    stats_ = list(dict.fromkeys(aggregate["statistic"]))
    configs = list(dict.fromkeys(aggregate["config"]))
    fig, axes = _grid(len(stats_), ncols=len(stats_), size=(3.0, 1.0 + 0.25 * len(configs)))
    colors = palette(len(configs))
    with plt.rc_context(STYLE):
        for i, (ax, st_) in enumerate(zip(axes, stats_)):
            s = aggregate[aggregate["statistic"] == st_].set_index("config").reindex(configs)
            for yi, (_, r) in enumerate(s.iterrows()):
                ax.barh(yi, r["ci_high"] - r["ci_low"], left=r["ci_low"], height=0.6, color=colors[yi], alpha=0.6)
                ax.plot([r["estimate"]] * 2, [yi - 0.3, yi + 0.3], color="k", linewidth=1.2)
            ax.set_yticks(range(len(configs)), configs if i == 0 else [""] * len(configs))
            ax.set(title=titles[i] if i < len(titles) else st_, xlabel="normalized score")
    _suptitle(fig, "Aggregate normalized scores (95% stratified bootstrap CIs)")
    return fig


def sensitivity(sens: pd.DataFrame, configs: Sequence[str], *, ylabel: str, xlabel: str) -> plt.Figure:
    """Tuning sensitivity: the selection metric (mean, CI error bars) vs candidate, one line per config, the chosen
    candidate filled. `sens`: the report's `tune_sensitivity` table (config, candidate, candidate_index, mean,
    ci_low, ci_high, chosen)."""
    fig, axes = _grid(1, size=(6.4, 3.8))
    ax = axes[0]
    configs = [c for c in configs if c in set(sens["config"])]
    colors = palette(len(configs))
    width = 0.3 / max(1, len(configs) - 1) if len(configs) > 1 else 0.0
    for i, (config, color) in enumerate(zip(configs, colors)):
        g = sens[sens["config"] == config].sort_values("candidate_index")
        x = g["candidate_index"].to_numpy(float) + (i - (len(configs) - 1) / 2) * width
        y = g["mean"].to_numpy(float)
        err = np.vstack([y - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - y])
        ax.errorbar(x, y, yerr=np.clip(err, 0, None), color=color, marker="o", markersize=4, linewidth=1.2,
                    capsize=2, label=config, markerfacecolor="white")
        chosen = g["chosen"].to_numpy(bool)
        ax.plot(x[chosen], y[chosen], linestyle="none", marker="o", markersize=7, color=color, zorder=5)
    ticks = sens.drop_duplicates("candidate_index").sort_values("candidate_index")
    ax.set_xticks(ticks["candidate_index"].to_numpy(float), ticks["candidate"].tolist())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(title="config (filled: chosen)", fontsize=7, loc="best")
    return fig


#: Colour per class (colour-blind palette) — the legend names each.
CLASS_COLOURS = dict(zip(("helps", "hurts", "equivalent", "undecided"), palette(8)[:3] + [(0.55, 0.55, 0.55)]))


def context_forest(contexts: pd.DataFrame, factor: str, level: str, *, xlabel: str) -> plt.Figure:
    """Forest of `factor` = `level` (vs its reference) in every context of `contexts` (one metric), top to bottom in
    the table's order; the y tick labels are the contexts, the x axis the effect in metric units."""
    c = contexts[(contexts["factor"] == factor) & (contexts["level"] == str(level))].reset_index(drop=True)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 1.2 + 0.28 * max(len(c), 1)), layout="constrained")
        y = np.arange(len(c))[::-1]
        margin = float(c["margin"].iloc[0]) if len(c) else np.nan
        if np.isfinite(margin):
            ax.axvspan(-margin, margin, color="0.9", zorder=0, label=f"±margin ({margin:.3g})")
        ax.axvline(0, color="0.3", lw=0.8)
        for cls, colour in CLASS_COLOURS.items():
            sel = (c["verdict"] == cls).to_numpy()
            if sel.any():
                est = c.loc[sel, "estimate"].to_numpy(float)
                low, high = c.loc[sel, "ci_low"].to_numpy(float), c.loc[sel, "ci_high"].to_numpy(float)
                err = np.vstack([est - low, high - est])
                ax.errorbar(est, y[sel], xerr=err, fmt="o", color=colour, ms=4, capsize=2, label=cls)
        ax.set_yticks(y, c["context"].tolist())
        ax.set_xlabel(xlabel)
        ax.legend(loc="best", fontsize=7)
        vs = c["vs"].iloc[0] if len(c) else ""
        _suptitle(fig, f"{level_name(factor, str(level))} vs {level_name(factor, str(vs))} in each context "
                       "(95% CI; Holm over the factor's contexts)")
    return fig
