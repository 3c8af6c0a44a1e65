"""The report orchestrator: `build_report(results_dir, out_dir)` loads, computes every table, draws every figure,
writes `tables/*.csv`, `figures/*.{png,svg}` and `README.md`, and returns the README's path.

Owns the order of the work and the choices that tie modules together (which metric each figure shows, the seed
that every bootstrap derives from, defaults read from the manifest, the equivalence margin from `[report] margin`).
Computing lives in `bootstrap`, `intervals`, `comparisons`, `power`, `survival`, `effects`, `contexts`, `verdicts`,
`gradvar`, `tuning` and `across`; the run scores in `ablations.train.scores`; drawing in `plots`; text in
`markdown`, `markdown_across` and `markdown_tuning`. It runs no env and records no video: the caller hands those in
(and says why there is none).

Over 450 lines, kept whole: it is the one place that states the report's order of work and the choices between the
modules it calls, and each section's wiring (a few lines of reading what the previous steps produced) would only move
into a second orchestrator that calls back into this one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ablations.report import across
from ablations.report import effects as fx
from ablations.report import gradvar as gv
from ablations.report import plots
from ablations.report import bootstrap as bs
from ablations.report import comparisons as cmp
from ablations.report import metrics as mt
from ablations.report import power as pw
from ablations.report import survival as sv
from ablations.train import scores as sc
from ablations.report import tuning as tn
from ablations.report import anchors as an
from ablations.report import sequential as sq
from ablations.report.load import ENV, Results, load_results, study_spec
from ablations.report import pooled
from ablations.report.markdown import render
from ablations.report.markdown_across import render_across
from ablations.report.text import AGGREGATE_TITLES
from ablations.report.model import Report
from ablations.study.random_scores import FILE as RANDOM_SCORES_FILE
from ablations.report import contexts as cx
from ablations.report import intervals as iv
from ablations.report import verdicts as vd
from ablations.report.equivalence import parse_margin, pooled_sd
from ablations.report.text import fmt

FIGURE_METRIC = "final_return"
#: The best run's video, relative to the report's directory (recorded by the caller: `records_video`).
VIDEO = "figures/best_run.gif"


def _report_setting(results: Results, key: str) -> Any:
    report = study_spec(results.manifest).get("report")
    return report.get(key) if isinstance(report, dict) else None


def budget_unit_of(results: Results) -> str:
    """The finished runs' budget unit, the report's x-axis: "env_steps", or "episodes" for a study whose runs set
    `total_episodes` (`train.scores.budget_unit`; a `ValueError` when the runs mix the two)."""
    return sc.budget_unit(results.done)


def budget_of(results: Results) -> float:
    """The largest budget of the finished runs, in their unit (`budget_unit_of`); without budget columns, the
    largest env_steps of the curves."""
    done = results.done
    column = "total_episodes" if budget_unit_of(results) == "episodes" else "total_steps"
    if column in done.columns and pd.to_numeric(done[column], errors="coerce").notna().any():
        return float(pd.to_numeric(done[column], errors="coerce").max())
    return float(pd.to_numeric(results.curves["env_steps"], errors="coerce").max())


def _env_id(results: Results) -> str | None:
    if "env_id" in results.runs.columns and results.runs["env_id"].notna().any():
        return str(results.runs["env_id"].dropna().iloc[0])
    fixed = study_spec(results.manifest).get("fixed")
    return str(fixed.get("env_id")) if isinstance(fixed, dict) and fixed.get("env_id") else None


def compute(results: Results, *, seed: int = 0, n_resamples: int = 10_000, all_pairs: bool = False,
            threshold: float | None = None, level: float = 0.95,
            effect_sizes: Sequence[float] = (0.5, 0.8, 1.0, 1.5), random_policy: bool = True) -> Report:
    """Every table of the report (no files written). `random_policy`: add the table `random_policy` (the
    uniform-random policy's mean return with its t-interval) when the results hold a `random_scores.csv` with the
    study's env; the per-env reports of a multi-env study pass False (their top README normalizes by it)."""
    done = results.done.reset_index(drop=True)
    if done.empty:
        raise ValueError(f"{results.path}: no run has status 'done'; nothing to report")
    scores, budget, threshold, threshold_source = run_scores_of(results, threshold)
    unit = budget_unit_of(results)
    grid = sc.env_step_grid(budget)
    curves = results.curves[results.curves["run_id"].isin(set(done["run_id"]))]
    y = sc.binned_curves(curves, done["run_id"].tolist(), grid, unit)
    factors = results.factors
    metrics = [m for m in mt.METRICS if m in scores.columns and scores[m].notna().any()]
    # steps to threshold is right-censored: Kaplan–Meier / RMST / log-rank only, never t-tests or the ANOVA
    tested = [m for m in metrics if m not in mt.CENSORED]
    primary = str(_report_setting(results, "primary") or FIGURE_METRIC)
    if primary not in tested:
        rep_note = f"The primary metric {primary!r} is not available; final return is used."
        primary = FIGURE_METRIC if FIGURE_METRIC in tested else tested[0]
    else:
        rep_note = ""
    long = scores.melt(id_vars=["run_id", "config", "seed", *factors], value_vars=tested, var_name="metric",
                       value_name="value")
    n_per_config = scores.groupby("config").size()
    rep = Report(results=results, seed=seed, n_resamples=n_resamples, level=level, all_pairs=all_pairs,
                 budget=budget, grid=grid, threshold=threshold, threshold_source=threshold_source, metrics=metrics,
                 n_seeds=int(n_per_config.median()) if len(n_per_config) else 0, primary=primary, budget_unit=unit)
    if rep_note:
        rep.notes.append(rep_note)
    if unit == "episodes":
        rep.notes.append("The budget is in episodes (`total_episodes`): the budget, the curves' x-axis and the time to "
                         "threshold (`steps_to_threshold`) count episodes, not env steps; the final return is the "
                         "mean over the last 10% of the episodes.")
    t = rep.tables
    t["scores"] = scores
    configs = [c for c in results.configs if c in set(scores["config"])]
    t["aliases"] = cmp.aliases(scores, metrics, configs)
    alias_of = dict(zip(t["aliases"]["config"], t["aliases"]["alias_of"]))
    t["summary"] = _with_factors(iv.config_summary(long, ["metric", "config"], level=level), results, configs)
    t["summary"]["alias_of"] = t["summary"]["config"].map(alias_of).fillna(t["summary"]["config"])
    ref = results.reference_label
    t["threshold"] = sv.km_table(scores, configs, ref if ref in configs else None, budget, seed=seed,
                                 n_resamples=n_resamples, level=level, alias_of=alias_of)
    t["km_curves"] = sv.km_curves(scores, factors).rename(columns={"env_steps": unit})
    representatives = [c for c in configs if alias_of.get(c, c) == c]  # one config per alias group
    pairs = cmp.comparison_pairs(representatives, alias_of.get(ref, ref), all_pairs)
    if ref not in configs and not all_pairs:
        rep.notes.append(f"The reference config {ref} has no finished runs, so no comparison against it is made.")
        pairs = []
    t["comparisons"] = pd.concat([cmp.compare(long[long["metric"] == m], pairs, metric=m, seed=seed,
                                             n_resamples=n_resamples, level=level) for m in tested],
                                 ignore_index=True)
    t.update(_factor_tables(long, tested if factors else [], results, seed, n_resamples, level))
    _verdict_tables(rep, long[long["metric"] == primary])
    t["power"], t["seeds_needed"] = pw.power_tables(t["comparisons"], effect_sizes=effect_sizes)
    t["learning_curves"] = factor_bands(y, done, factors, grid, seed, n_resamples, level, unit)
    t["performance_profile"] = _profiles(long, factors, seed, n_resamples, level)
    rp = _random_policy(results, level) if random_policy else pd.DataFrame()
    if len(rp):
        t["random_policy"] = rp
    _probe_tables(rep, done)
    t["missing"] = _missing(results)
    return rep


def run_scores_of(results: Results, threshold: float | None = None
                  ) -> tuple[pd.DataFrame, float, float, str]:
    """The finished runs' scores (`run_id, config, seed`, the factors, then `train.scores.run_scores`' columns),
    with the budget, the threshold and where it came from (`threshold_of`): what the report and `ablations.api`
    compute first."""
    done = results.done.reset_index(drop=True)
    budget, unit = budget_of(results), budget_unit_of(results)
    curves = results.curves[results.curves["run_id"].isin(set(done["run_id"]))]
    threshold, source = threshold_of(results, threshold, curves, done, budget)
    scores = sc.run_scores(curves, done, budget=budget, threshold=threshold, unit=unit)
    return done[["run_id", "config", "seed", *results.factors]].merge(scores, on="run_id"), budget, threshold, source


def threshold_of(results: Results, threshold: float | None, curves: pd.DataFrame, done: pd.DataFrame,
               budget: float) -> tuple[float, str]:
    """(threshold, where it came from): the option, else the manifest's study.report.threshold, else the env's
    default (`metrics.default_threshold` of the runs' final returns)."""
    if threshold is not None:
        return threshold, "the --threshold option"
    if _report_setting(results, "threshold") is not None:
        return float(_report_setting(results, "threshold")), "the manifest (study.report.threshold)"
    finals = sc.run_scores(curves, done, budget=budget, threshold=np.inf,
                           unit=budget_unit_of(results))["final_return"].to_numpy(float)
    return mt.default_threshold(_env_id(results), finals)


def _factor_tables(long: pd.DataFrame, tested: list[str], results: Results, seed: int, n_resamples: int,
                   level: float) -> dict[str, pd.DataFrame]:
    """effects, simple_effects, marginal_means and anova over the `tested` metrics of long `long`."""
    factors = results.factors
    effect_frames, margin_frames, anova_frames, simple_frames = [], [], [], []
    for m in tested:
        lm = long[long["metric"] == m]
        e, mm = fx.factor_effects(lm, factors, results.levels, metric=m, seed=seed, n_resamples=n_resamples,
                                  level=level)
        effect_frames.append(e)
        margin_frames.append(mm)
        anova_frames.append(fx.anova(lm, factors, metric=m))
        simple_frames.append(fx.simple_effects(lm, factors, results.levels, fx.interacting_pairs(e), metric=m,
                                               level=level))
    return {"effects": _concat(effect_frames, fx.EFFECT_COLUMNS),
            "simple_effects": _concat(simple_frames, fx.SIMPLE_COLUMNS),
            "marginal_means": _concat(margin_frames, fx.MARGINAL_COLUMNS),
            "anova": _concat(anova_frames, fx.ANOVA_COLUMNS)}


def _verdict_tables(rep: Report, primary: pd.DataFrame) -> None:
    """The margin (`[report] margin`, resolved on the primary metric's pooled within-config SD), the verdicts
    (`verdicts.verdicts`: averaged only where no interaction of any order says otherwise), their partner contexts,
    and every factor level's effect in every context of the other factors (`contexts`, summarized)."""
    t, results = rep.tables, rep.results
    rep.margin_rule = parse_margin(_report_setting(results, "margin"))
    sd = t["summary"][t["summary"]["metric"] == rep.primary]
    rep.margin = rep.margin_rule.resolve(pooled_sd(sd["n"].to_numpy(float), sd["std"].to_numpy(float)))
    factors = [f for f in results.factors if len(results.levels[f]) > 1]
    if not len(t["effects"]) or not factors:
        t["verdicts"] = pd.DataFrame(columns=vd.VERDICT_COLUMNS)
        return
    kw = dict(metric=rep.primary, margin=rep.margin, higher_is_better=mt.METRICS[rep.primary][1])
    t["verdicts"], t["verdict_contexts"] = vd.verdicts(t["effects"], primary, factors, results.levels, **kw)
    t["contexts"] = cx.context_effects(primary, factors, results.levels, level=rep.level, **kw)
    t["context_summary"] = cx.summarize_contexts(t["contexts"], fmt)


def _probe_tables(rep: Report, done: pd.DataFrame) -> None:
    """gradvar, gradient_quality and variance_ratio from the done runs' probes (none without probes)."""
    probes, t = rep.results.probes, rep.tables
    if probes is not None and len(probes):
        probes = probes[probes["run_id"].isin(set(done["run_id"]))]
    if probes is None or not len(probes):
        return
    kw = dict(seed=rep.seed, n_resamples=rep.n_resamples, level=rep.level)
    t["gradvar"] = gv.gradvar_summary(probes, **kw)
    t["gradient_quality"] = gv.gradient_quality(probes, **kw)
    t["variance_ratio"] = gv.variance_ratios(probes, **kw)
    curve = gv.lambda_curve(probes, **kw)
    if len(curve):
        t["gae_lambda_curve"] = curve
    if t["variance_ratio"].empty:
        rep.notes.append("The vanilla estimator (full/none/none/0) was not probed, so no variance ratios.")


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def _with_factors(summary: pd.DataFrame, results: Results, configs: list[str]) -> pd.DataFrame:
    """Add one column per factor and order rows by metric, then config level order."""
    for i, f in enumerate(results.factors):
        summary.insert(2 + i, f, summary["config"].str.split("/").str[i])
    order = {c: i for i, c in enumerate(configs)}
    metric_order = {m: i for i, m in enumerate(mt.METRICS)}
    key = summary["metric"].map(metric_order) * 10**6 + summary["config"].map(order)
    summary = summary.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    summary.attrs["factors"] = results.factors
    return summary


def factor_bands(y: np.ndarray, done: pd.DataFrame, factors: list[str], grid: np.ndarray, seed: int,
                  n_resamples: int, level: float, unit: str = "env_steps") -> pd.DataFrame:
    """The learning-curve bands per factor level (`bootstrap.curve_bands`); the grid's column is named after the
    budget `unit` (env_steps or episodes)."""
    frames = []
    for f in factors or ["config"]:
        b = bs.curve_bands(y, done[f], grid, seeds=done["seed"].to_numpy(), seed=seed, n_resamples=n_resamples,
                           level=level, key=f)
        frames.append(b.rename(columns={"group": "level"}).assign(factor=f))
    out = pd.concat(frames, ignore_index=True).rename(columns={"env_steps": unit})
    return out[["factor", "level", *[c for c in out.columns if c not in ("factor", "level")]]]


def _profiles(long: pd.DataFrame, factors: list[str], seed: int, n_resamples: int, level: float) -> pd.DataFrame:
    x = long[long["metric"] == FIGURE_METRIC]
    finite = x["value"].dropna()
    taus = np.linspace(finite.min(), finite.max(), 61) if len(finite) else np.zeros(1)
    frames = []
    for f in factors or ["config"]:
        p = bs.performance_profile(x, taus, group=f, seed=seed, n_resamples=n_resamples, level=level)
        frames.append(p.rename(columns={f: "level"}).assign(factor=f, metric=FIGURE_METRIC))
    out = pd.concat(frames, ignore_index=True)
    return out[["metric", "factor", "level", "tau", "fraction", "ci_low", "ci_high", "ci_level", "ci_method"]]


def _random_policy(results: Results, level: float) -> pd.DataFrame:
    """The uniform-random policy's row of the results' `random_scores.csv` (`metrics.random_policy`); no rows when the
    file is absent or does not hold the study's env."""
    path = Path(results.path) / RANDOM_SCORES_FILE
    env = _env_id(results)
    if env is None or not path.exists():
        return pd.DataFrame(columns=mt.RANDOM_POLICY_COLUMNS)
    return mt.random_policy(pd.read_csv(path), env, level)


def _random_line(rep: Report) -> tuple[float, int] | None:
    """(mean return, episodes) of the uniform-random policy for the learning curves' dashed line, or None."""
    rp = rep.tables.get("random_policy")
    return None if rp is None or rp.empty else (float(rp["mean"].iloc[0]), int(rp["episodes"].iloc[0]))


def _missing(results: Results) -> pd.DataFrame:
    """Runs that are not done (failed, diverged, other) and runs with no curve rows."""
    runs = results.runs
    with_curves = set(results.curves["run_id"])
    bad = runs[(runs["status"] != "done") | ~runs["run_id"].isin(with_curves)]
    out = bad[["run_id", "config", "seed", "status", "error"]].copy()
    out.loc[~out["run_id"].isin(with_curves), "error"] = out["error"].where(out["error"] != "", "no rows in curves.csv")
    return out.reset_index(drop=True)


def draw(rep: Report, out_dir: Path) -> dict[str, str]:
    """Draw every figure into out_dir/figures; returns name → PNG path relative to out_dir."""
    fig_dir = out_dir / "figures"
    t, levels = rep.tables, rep.results.levels
    if not rep.results.factors:
        levels = {"config": list(dict.fromkeys(rep.tables["scores"]["config"]))}
    label = mt.METRICS[FIGURE_METRIC][0]
    figures: dict[str, Any] = {
        "learning_curves": lambda: plots.learning_curves(t["learning_curves"], levels, random=_random_line(rep)),
        "final_return_by_config": lambda: plots.config_estimates(
            t["summary"][t["summary"]["metric"] == FIGURE_METRIC], rep.results.reference_label, xlabel=label),
        "performance_profile": lambda: plots.performance_profiles(t["performance_profile"], levels,
                                                                  xlabel="final return"),
    }
    if len(t.get("km_curves", [])):
        figures["time_to_threshold"] = lambda: plots.km_curves(t["km_curves"], levels, budget=rep.budget)
    if len(t["effects"]):
        main = t["effects"][(t["effects"]["kind"] == "main") & t["effects"]["metric"].isin(["final_return", "auc"])]
        figures["main_effects"] = lambda: plots.forest(
            main, metrics=[m for m in ("final_return", "auc") if m in rep.metrics],
            xlabels={m: mt.METRICS[m][0].split(" (")[0] for m in mt.METRICS})
    margins = t["marginal_means"]
    if len(margins) and (margins["factor2"] != "").any():
        figures["interactions"] = lambda: plots.interactions(margins[margins["metric"] == FIGURE_METRIC], levels,
                                                             ylabel="final return")
    ctx = t.get("verdict_contexts", pd.DataFrame())
    for _, v in t.get("verdicts", pd.DataFrame()).iterrows():  # one forest per verdict read in contexts
        if v["verdict"] == "depends" and len(ctx):
            figures[context_figure(v)] = (lambda f=v["factor"], lv=str(v["level"]): plots.context_forest(
                ctx, f, lv, xlabel=mt.METRICS[rep.primary][0].split(" (")[0]))
    if "gradvar" in t and len(t["gradvar"]) and t["gradvar"]["update"].nunique() >= 2:  # no figure without curves
        figures["gradient_variance"] = lambda: plots.gradient_variance(t["gradvar"])
    if len(t.get("gae_lambda_curve", [])):
        figures["gae_lambda"] = lambda: plots.lambda_curves(t["gae_lambda_curve"])
    out = {}
    for name, make in figures.items():
        paths = plots.save(make(), fig_dir, name)
        out[name] = paths[0].relative_to(out_dir).as_posix()
    return out


def context_figure(verdict: pd.Series) -> str:
    """The figure name of a "depends" verdict's contexts: contexts_<factor>_<level>."""
    return f"contexts_{verdict['factor']}_{verdict['level']}".replace("/", "-").replace(" ", "")


def write_tables(rep: Report, out_dir: Path) -> None:
    table_dir = out_dir / "tables"
    table_dir.mkdir(parents=True, exist_ok=True)
    for name, df in rep.tables.items():
        df.to_csv(table_dir / f"{name}.csv", index=False, float_format="%.10g", lineterminator="\n")


def report_dir(results: Results, out_dir: str | Path | None = None) -> Path:
    """Where the report of `results` goes: `out_dir`, else report/<study name>/ under the current directory when the
    results directory is named after the study (its default, results/<study>), else report/<results directory
    name>/, so the report of another results directory (e.g. `ablations run … --out results/other`) never
    overwrites the study's default report."""
    if out_dir is not None:
        return Path(out_dir)
    name = Path(results.path).resolve().name
    return Path("report") / (results.study if name == results.study else name)


def records_video(results: Results) -> bool:
    """Whether the report embeds a video of the best run (a single-env study that saved policies): the caller
    records it first, at `VIDEO` under the report's directory (`ablations report` does, through `evaluate`)."""
    return not across.env_levels(results) and (Path(results.path) / "policies").is_dir()


def build_report(results_dir: str | Path | Results, out_dir: str | Path | None = None, *, seed: int | None = 0,
                 n_resamples: int = 10_000, all_pairs: bool = False, threshold: float | None = None,
                 level: float = 0.95, effect_sizes: Sequence[float] = (0.5, 0.8, 1.0, 1.5),
                 figures: bool = True, untuned: bool = False, random_scores: pd.DataFrame | None = None,
                 video: str | None = None, video_note: str | None = None) -> Path:
    """Build `out_dir`/README.md (default: `report_dir`) from a results directory (or its loaded `Results`).

    seed=None takes the manifest's study.report.seed (else 0); threshold=None takes study.report.threshold, else
    an env default (see `metrics.default_threshold`). Same inputs and seed ⇒ byte-identical tables and README.
    A tuned study's report adds the chosen values and sensitivity curves (`report.tuning`); `untuned=True` adds
    the factor verdicts at each candidate. The report only reads files: `random_scores` is the random-policy table
    the caller measured for a multi-env study whose results lack it (`across.random_scores_request` says what to
    measure), and `video` the path, relative to out_dir, of the best run's video the caller recorded there
    (`video_note`: why there is none, said in the report).
    """
    results = results_dir if isinstance(results_dir, Results) else load_results(results_dir)
    if seed is None:
        seed = int(_report_setting(results, "seed") or 0)
    out = report_dir(results, out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if across.env_levels(results):  # env_id swept: a report per env, then the aggregate across envs
        return _build_across(results, out, seed=seed, n_resamples=n_resamples, all_pairs=all_pairs, level=level,
                             effect_sizes=effect_sizes, figures=figures, measured=random_scores)
    rep = compute(results, seed=seed, n_resamples=n_resamples, all_pairs=all_pairs, threshold=threshold,
                  level=level, effect_sizes=effect_sizes)
    tn.compute(rep, untuned=untuned)
    an.compute(rep)
    sq.compute(rep)
    if video is None and video_note:
        rep.notes.append(f"No video of the best run: {video_note}.")
    write_tables(rep, out)
    if figures:
        rep.figures = draw(rep, out)
        _tuning_figure(rep, out)
        an.draw(rep, out)
        if video is not None:
            rep.figures["best_run"] = video
    readme = out / "README.md"
    readme.write_text(render(rep), encoding="utf-8")
    return readme


def _tuning_figure(rep: Report, out: Path) -> None:
    """A tuned study's sensitivity figure (the tuning section links it)."""
    if "tune_sensitivity" not in rep.tables:
        return
    rep.figures["tune_sensitivity"] = plots.save(plots.sensitivity(
        rep.tables["tune_sensitivity"], rep.results.configs, ylabel=mt.METRICS[rep.tables[
            "tune_sensitivity"]["metric"].iloc[0]][0].split(" (")[0] + " (tuning seeds)",
        xlabel="/".join(rep.results.manifest["tune"]["candidates"])), out / "figures",
        "tune_sensitivity")[0].relative_to(out).as_posix()


def _build_across(results: Results, out: Path, *, figures: bool, measured: pd.DataFrame | None, **kw: Any) -> Path:
    """A multi-env study: envs/<env_id>/README.md per env (the single-env pipeline), then the aggregate README."""
    envs = across.env_levels(results)
    rs, source = across.random_scores(results, envs, measured)
    reps, links = {}, {}
    for env in envs:
        sub = across.env_subset(results, env, across.env_reference(results, env, rs))
        env_out = out / "envs" / env
        env_out.mkdir(parents=True, exist_ok=True)
        rep = compute(sub, threshold=None, random_policy=False, **kw)
        tn.compute(rep, env=env)
        an.compute(rep, env=env)
        sq.compute(rep, env=env, results=results)
        write_tables(rep, env_out)
        if figures:
            rep.figures = draw(rep, env_out)
            _tuning_figure(rep, env_out)
            an.draw(rep, env_out, env)
        (env_out / "README.md").write_text(render(rep), encoding="utf-8")
        reps[env], links[env] = rep, f"envs/{env}/README.md"
    agg = across.compute_across(results, reps, rs, source)
    write_tables(agg, out)
    if figures:
        agg.figures = _draw_across(agg, out)
        agg.figures.update({f"anchor_curve:{e}": f"envs/{e}/{r.figures['anchor_curve']}" for e, r in reps.items()
                            if "anchor_curve" in r.figures})
    readme = out / "README.md"
    readme.write_text(render_across(agg, links), encoding="utf-8")
    return readme


def _draw_across(rep: Report, out_dir: Path) -> dict[str, str]:
    """Draw the multi-env README's figures into out_dir/figures; returns name → PNG path relative to out_dir."""
    t = rep.tables
    levels = {f: rep.results.levels[f] for f in rep.results.factors if f != ENV} or {
        "config": list(t["aggregate"]["config"].unique())}
    figures: dict[str, Any] = {
        "aggregate_intervals": lambda: plots.aggregate_intervals(t["aggregate"],
                                                                 [AGGREGATE_TITLES[m] for m in pooled.AGG_METRICS]),
        "aggregate_profile": lambda: plots.performance_profiles(t["aggregate_profile"], levels,
                                                                xlabel="normalized score"),
    }
    if len(t.get("effects_by_env", [])):
        main = t["aggregate_effects"][t["aggregate_effects"]["kind"] == "main"]
        figures["effects_by_env"] = lambda: plots.effects_by_env(t["effects_by_env"], main)
    out = {}
    for name, make in figures.items():
        out[name] = plots.save(make(), out_dir / "figures", name)[0].relative_to(out_dir).as_posix()
    return out
