"""Pooled over environments (the multi-env computations; named `pooled` because `aggregate` is an ablation axis):
normalized scores, rliable's aggregates with stratified seed-blocked bootstrap CIs, aggregate
factor effects, and whether each effect holds on every environment (the consistency table).

Owns (pure numpy / pandas; drawing is in `plots`, text in `markdown_across`):

- normalization: z = (score − random) / (reference − random), per env, with `random` the uniform-random policy's
  mean return (measured: `ablations.envs.random_score`) and `reference` the study's `[report] references` value, else
  the env's registered `reward_threshold`, else the best config's mean score on that env (said so in Methods);
- score tensors X[c, s, e] (config c, seed s, env e) and rliable's aggregates over the [S, E] matrix of one config:
  `agg_mean` (mean over envs of the per-env mean), `agg_median` (median over envs of the per-env mean), `agg_iqm`
  (25%-trimmed mean of all S·E scores), `agg_optimality_gap` (γ − mean of min(z, γ)), `probability_of_improvement`
  (mean over envs of P(X > Y) + ½ P(X = Y)); on a complete matrix each equals `rliable.metrics`' function
  (tests/report/test_pooled.py). Missing runs (NaN) are left out of the means;
- the stratified seed-blocked bootstrap: every resample draws S seed indices per env (a stratum), independently across
  envs (as rliable's `StratifiedBootstrap` does), and applies the same draw to every config, so comparisons between
  configs stay paired by seed; percentile intervals;
- per-env factor effects on normalized scores (`effects.factor_effects` on each env's runs) and aggregate effects
  (`effects.factor_effects` on each (config, seed)'s mean normalized score over envs: the seed remains the block);
- the consistency of each effect across envs: the aggregate's class (helps / hurts / equivalent / undecided, TOST at
  the margin), each env's class under that env's own Holm (`perenv`), a claim that "holds on all envs" only with
  per-env significance or equivalence, and Cochran's Q and I² (`perenv.cochran_q`) for every aggregate effect.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from ablations.report import effects as fx
from ablations.report.bootstrap import derive_rng
from ablations.report.comparisons import holm
from ablations.report.equivalence import DEFAULT_MARGIN, Margin, classify, pooled_sd, tost
from ablations.report.perenv import env_claims, env_labels
from ablations.report.rules import ALPHA
from ablations.report.verdicts import verdicts

NORM_COLUMNS = ["env_id", "random_score", "random_episodes", "random_source", "reference", "reference_source"]
AGG_METRICS = ("iqm", "mean", "median", "optimality_gap")
AGG_COLUMNS = ["config", "statistic", "estimate", "ci_low", "ci_high", "ci_level", "ci_method", "n_seeds", "n_envs"]
POI_COLUMNS = ["config", "reference", "probability", "ci_low", "ci_high", "ci_level", "ci_method"]
#: Each env's own contrasts; `p_holm` is that env's own Holm (its report's families, all orders).
BY_ENV_COLUMNS = ["term", "contrast", "kind", "env_id", "estimate", "ci_low", "ci_high", "se", "p", "p_holm",
                  "n_seeds"]
CONSISTENCY_COLUMNS = ["term", "contrast", "kind", "factor", "level", "vs", "factor2", "level2", "vs2", "estimate",
                       "ci_low", "ci_high", "p_holm", "mdd", "aggregate_verdict", "margin", "ci90_low", "ci90_high",
                       "p_tost_holm", "n_envs", "helps", "hurts", "equivalent", "undecided", "holds_on_all", "claim",
                       "cochran_q", "q_df", "q_p", "i_squared", "heterogeneity"]
CI_METHOD = "stratified seed-block bootstrap (per env), percentile"


# ---------------------------------------------------------------------------------------------------- normalization
def normalize(score: np.ndarray | float, random: np.ndarray | float, reference: np.ndarray | float) -> np.ndarray:
    """z = (score − random) / (reference − random): 0 is the uniform-random policy, 1 the reference score."""
    return (np.asarray(score, float) - random) / (np.asarray(reference, float) - random)


def normalization_table(env_ids: Sequence[str], random_scores: pd.DataFrame, references: Mapping[str, float],
                        thresholds: Mapping[str, float | None], best: Mapping[str, float], *,
                        random_source: str) -> pd.DataFrame:
    """Per env: the random score (from `random_scores`, columns env_id, random_score, episodes), the reference
    (`references` from the study, else the env's `thresholds` (reward_threshold), else the `best` config mean) and
    where each came from. Refuses an env whose reference does not lie above its random score."""
    rs = random_scores.set_index("env_id")
    rows = []
    for env in env_ids:
        if env in references:
            ref, source = float(references[env]), "the study file ([report] references)"
        elif thresholds.get(env) is not None and np.isfinite(thresholds[env]):
            ref, source = float(thresholds[env]), "the env's reward_threshold (gymnasium)"
        else:
            ref, source = float(best[env]), "the best config's mean score (the env has no reward_threshold)"
        rnd = float(rs.loc[env, "random_score"])
        if not ref > rnd:
            raise ValueError(f"{env}: the reference score {ref:g} ({source}) is not above the random policy's "
                             f"{rnd:g}; set [report] references = {{\"{env}\" = ...}} in the study file")
        rows.append({"env_id": env, "random_score": rnd, "random_episodes": int(rs.loc[env, "episodes"]),
                     "random_source": random_source, "reference": ref, "reference_source": source})
    return pd.DataFrame(rows, columns=NORM_COLUMNS)


def normalize_scores(scores: pd.DataFrame, norm: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """`scores` (env_id, `value`, …) with `value` replaced by its normalized score and the raw one kept as `raw`."""
    n = norm.set_index("env_id")
    out = scores.assign(raw=scores[value])
    out[value] = normalize(out["raw"].to_numpy(float), out["env_id"].map(n["random_score"]).to_numpy(float),
                           out["env_id"].map(n["reference"]).to_numpy(float))
    return out


# ---------------------------------------------------------------------------------------------------- aggregates
def score_tensor(df: pd.DataFrame, configs: Sequence[str], envs: Sequence[str], value: str = "value"
                 ) -> tuple[np.ndarray, list[Any]]:
    """(X [C, S, E], seeds): X[c, s, e] = `value` of config c, seed s, env e (NaN where that run is missing)."""
    seeds = sorted(df["seed"].unique())
    wide = df.pivot_table(index="seed", columns=["config", "env_id"], values=value, aggfunc="mean")
    X = np.full((len(configs), len(seeds), len(envs)), np.nan)
    for ci, c in enumerate(configs):
        for ei, e in enumerate(envs):
            if (c, e) in wide.columns:
                X[ci, :, ei] = wide[(c, e)].reindex(seeds).to_numpy(float)
    return X, seeds


def agg_mean(x: np.ndarray) -> np.ndarray:
    """[..., S, E] → [...]: the mean over envs of each env's mean over seeds (rliable `aggregate_mean`)."""
    with np.errstate(invalid="ignore"):
        return np.nanmean(x, axis=-2).mean(axis=-1)


def agg_median(x: np.ndarray) -> np.ndarray:
    """[..., S, E] → [...]: the median over envs of each env's mean over seeds (rliable `aggregate_median`)."""
    with np.errstate(invalid="ignore"):
        return np.median(np.nanmean(x, axis=-2), axis=-1)


def agg_iqm(x: np.ndarray) -> np.ndarray:
    """[..., S, E] → [...]: the interquartile mean of all S·E scores (scipy `trim_mean(·, 0.25)`, as rliable's
    `aggregate_iqm`), NaNs left out: with n valid scores, the mean of sorted scores ⌊n/4⌋ … n − ⌊n/4⌋ − 1."""
    flat = np.sort(x.reshape(*x.shape[:-2], -1), axis=-1)  # NaNs sort last
    n = (~np.isnan(flat)).sum(axis=-1)
    low = (n * 0.25).astype(int)  # scipy: int(proportiontocut * nobs)
    high = n - low
    cs = np.concatenate([np.zeros((*flat.shape[:-1], 1)), np.cumsum(np.nan_to_num(flat), axis=-1)], axis=-1)
    total = np.take_along_axis(cs, high[..., None], -1)[..., 0] - np.take_along_axis(cs, low[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(high > low, total / (high - low), np.nan)


def agg_optimality_gap(x: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """[..., S, E] → [...]: γ − the mean of min(z, γ) over all scores (rliable `aggregate_optimality_gap`)."""
    with np.errstate(invalid="ignore"):
        return gamma - np.nanmean(np.minimum(x, gamma).reshape(*x.shape[:-2], -1), axis=-1)


AGGREGATES = {"iqm": agg_iqm, "mean": agg_mean, "median": agg_median, "optimality_gap": agg_optimality_gap}


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[..., S, E] × [..., S', E] → [...]: the mean over envs of P(X > Y) + ½ P(X = Y) between the runs of each env
    (rliable `probability_of_improvement`, the Mann–Whitney U over n·m per env)."""
    gt = (x[..., :, None, :] > y[..., None, :, :]).astype(float)
    eq = (x[..., :, None, :] == y[..., None, :, :]).astype(float)
    valid = ~(np.isnan(x)[..., :, None, :] | np.isnan(y)[..., None, :, :])
    with np.errstate(invalid="ignore"):
        per_env = ((gt + 0.5 * eq) * valid).sum(axis=(-3, -2)) / valid.sum(axis=(-3, -2))
    return per_env.mean(axis=-1)


def stratified_indices(n_seeds: int, n_envs: int, rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """[B, S, E] seed indices: per resample and env, S draws with replacement from that env's S seeds (one stratum
    per env, independent across envs). Apply the same array to every config: the seed block is kept."""
    return rng.integers(0, n_seeds, size=(n_resamples, n_envs, n_seeds)).transpose(0, 2, 1)


def resample(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """[..., S, E] scores and [B, S, E] indices → [B, ..., S, E]: column e of resample b holds env e's scores at the
    seeds idx[b, :, e] (the envs never mix)."""
    lead = x.shape[:-2]
    S, E = x.shape[-2:]
    flat = x.reshape(-1, S, E)  # [K, S, E]
    out = np.take_along_axis(flat[None, :, :, :], idx[:, None, :, :], axis=2)  # [B, K, S, E]
    return out.reshape(idx.shape[0], *lead, S, E)


def _percentile(boot: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        return np.nanquantile(boot, a, axis=0), np.nanquantile(boot, 1 - a, axis=0)


def aggregate_table(X: np.ndarray, configs: Sequence[str], *, rng: np.random.Generator, n_resamples: int = 10_000,
                    level: float = 0.95) -> tuple[pd.DataFrame, np.ndarray]:
    """Per config (X [C, S, E]) and statistic (`AGG_METRICS`): the estimate and its stratified seed-block bootstrap
    percentile CI (columns `AGG_COLUMNS`); also returns the [B, S, E] indices used, for other intervals."""
    C, S, E = X.shape
    idx = stratified_indices(S, E, rng, n_resamples)
    rows = []
    for ci, c in enumerate(configs):
        boot_x = resample(X[ci], idx)  # [B, S, E]
        n_seeds = int((~np.isnan(X[ci])).any(axis=1).sum())
        for name in AGG_METRICS:
            f = AGGREGATES[name]
            low, high = _percentile(f(boot_x), level)
            rows.append({"config": c, "statistic": name, "estimate": float(f(X[ci])), "ci_low": float(low),
                         "ci_high": float(high), "ci_level": level, "ci_method": CI_METHOD, "n_seeds": n_seeds,
                         "n_envs": E})
    return pd.DataFrame(rows, columns=AGG_COLUMNS), idx


def improvement_table(X: np.ndarray, configs: Sequence[str], reference: str, idx: np.ndarray, *,
                      level: float = 0.95) -> pd.DataFrame:
    """P(config > reference) per config (rliable's probability of improvement), CI from the same seed-blocked draws."""
    if reference not in configs:
        return pd.DataFrame(columns=POI_COLUMNS)
    r = list(configs).index(reference)
    boot_ref = resample(X[r], idx)
    rows = []
    for ci, c in enumerate(configs):
        if ci == r:
            continue
        low, high = _percentile(probability_of_improvement(resample(X[ci], idx), boot_ref), level)
        rows.append({"config": c, "reference": reference, "probability": float(probability_of_improvement(X[ci], X[r])),
                     "ci_low": float(low), "ci_high": float(high), "ci_level": level, "ci_method": CI_METHOD})
    return pd.DataFrame(rows, columns=POI_COLUMNS)


def profile_table(X: np.ndarray, configs: Sequence[str], groups: Mapping[str, Mapping[str, list[str]]],
                  taus: np.ndarray, idx: np.ndarray, *, level: float = 0.95) -> pd.DataFrame:
    """Aggregate performance profiles: per factor and level (`groups[factor][level]` = its configs), the fraction of
    runs with normalized score > τ, averaged over envs (rliable's run-score distribution), with its CI from the
    stratified seed-block draws. Columns: factor, level, tau, fraction, ci_low, ci_high, ci_level, ci_method."""
    frames = []
    pos = {c: i for i, c in enumerate(configs)}
    for factor, by_level in groups.items():
        for lv, members in by_level.items():
            x = X[[pos[c] for c in members if c in pos]]  # [K, S, E]
            if not x.size:
                continue
            boot_x = resample(x, idx)  # [B, K, S, E]
            boot = np.stack([_fraction_above(boot_x, t) for t in taus], axis=-1)  # [B, T]
            low, high = _percentile(boot, level)
            frames.append(pd.DataFrame({"factor": factor, "level": lv, "tau": taus,
                                        "fraction": [float(_fraction_above(x, t)) for t in taus],
                                        "ci_low": low, "ci_high": high, "ci_level": level, "ci_method": CI_METHOD}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fraction_above(x: np.ndarray, tau: float) -> np.ndarray:
    """[..., K, S, E] → [...]: per env the fraction of its (valid) runs scoring above τ, averaged over envs."""
    valid = ~np.isnan(x)
    with np.errstate(invalid="ignore"):
        per_env = ((x > tau) & valid).sum(axis=(-3, -2)) / valid.sum(axis=(-3, -2))
    return np.nanmean(per_env, axis=-1)


# ---------------------------------------------------------------------------------------------------- consistency
def consistency(aggregate: pd.DataFrame, labels: pd.DataFrame, claims: pd.DataFrame, *, margin: float,
                alpha: float = ALPHA) -> pd.DataFrame:
    """One row per effect of `aggregate` (`effects.EFFECT_COLUMNS`, main effects and interactions): the aggregate's
    class (`equivalence.classify`: TOST at ±`margin` on the mean normalized score, Holm over the same family as the
    difference tests), and the per-env claim and heterogeneity of `perenv.env_claims` (`claims`, from the per-env
    `labels` under each env's own Holm). Columns `CONSISTENCY_COLUMNS`."""
    rows = []
    for _kind, fam in aggregate.groupby("kind", sort=False):
        eq = tost(fam["estimate"], fam["se"], fam["df"], margin, alpha)
        p_tost_holm = holm(eq["p_tost"])
        cls = classify(fam["estimate"], fam["ci_low"], fam["ci_high"], fam["p_holm"], p_tost_holm, alpha)
        for i, (_, a) in enumerate(fam.iterrows()):
            c = claims[(claims["term"] == a["term"]) & (claims["contrast"] == a["contrast"])]
            c = c.iloc[0] if len(c) else pd.Series(dtype=object)
            rows.append({**{k: a[k] for k in ("term", "contrast", "kind", "factor", "level", "vs", "factor2",
                                              "level2", "vs2", "estimate", "ci_low", "ci_high", "p_holm", "mdd")},
                         "aggregate_verdict": cls[i], "margin": margin, "ci90_low": eq["ci90_low"][i],
                         "ci90_high": eq["ci90_high"][i], "p_tost_holm": p_tost_holm[i],
                         **{k: c.get(k, np.nan) for k in ("n_envs", "helps", "hurts", "equivalent", "undecided",
                                                           "holds_on_all", "claim", "cochran_q", "q_df", "q_p",
                                                           "i_squared", "heterogeneity")}})
    return pd.DataFrame(rows, columns=CONSISTENCY_COLUMNS)


def env_margins(scores: pd.DataFrame, envs: Sequence[str], rule: Margin, norm: pd.DataFrame | None = None
                ) -> dict[str, float]:
    """The equivalence margin on each env's normalized scores: `rule` resolved on that env's pooled within-config SD
    (an "sd" margin), or a margin in the metric's units divided by the env's (reference − random)."""
    out = {}
    for env in envs:
        g = scores[scores["env_id"] == env].groupby("config")["value"].agg(["size", "std"])
        if rule.unit == "metric" and norm is not None and env in set(norm["env_id"]):
            r = norm.set_index("env_id").loc[env]
            out[env] = float(rule.value / (r["reference"] - r["random_score"]))
        else:
            out[env] = rule.resolve(pooled_sd(g["size"].to_numpy(float), g["std"].to_numpy(float)))
    return out


def _env_mean(df: pd.DataFrame, factors: list[str], n_envs: int) -> pd.DataFrame:
    """Per (config, seed): the mean normalized score over envs (NaN unless the seed ran on every env)."""
    g = df.groupby(["config", "seed", *factors], sort=False)["value"]
    out = g.mean().reset_index()
    out.loc[g.count().to_numpy() < n_envs, "value"] = np.nan
    return out


def across_envs(scores: pd.DataFrame, factors: list[str], levels: dict[str, list[str]], envs: Sequence[str],
                configs: Sequence[str], reference: str, *, metric: str, seed: int = 0, n_resamples: int = 10_000,
                level: float = 0.95, max_order: int | None = None, margin: Margin = DEFAULT_MARGIN,
                norm: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every table of the aggregate section from long normalized `scores` (env_id, config, seed, factor columns,
    value): `aggregate`, `improvement`, `aggregate_effects` (every order up to `max_order`, default all),
    `aggregate_verdicts` and `aggregate_contexts` (`verdicts.verdicts` on the per-seed env means), `effects_by_env`
    (each env's own contrasts, with its own Holm
    `p_holm` over that env's full families), `env_labels` (`perenv.env_labels`: per env, helps / hurts / equivalent
    / undecided under its own Holm, TOST at `env_margins`), `consistency` (the aggregate's class, the per-env claim,
    Cochran's Q and I² of every aggregate effect), `aggregate_profile`. `margin`: the study's `[report] margin`
    rule (`norm`: the normalization table, to convert a margin in the metric's units)."""
    X, _ = score_tensor(scores, configs, envs)
    rng = derive_rng(seed, "aggregate", metric)
    agg, idx = aggregate_table(X, configs, rng=rng, n_resamples=n_resamples, level=level)
    out = {"aggregate": agg, "improvement": improvement_table(X, configs, reference, idx, level=level)}
    finite = X[np.isfinite(X)]
    taus = np.linspace(min(0.0, finite.min()), max(1.0, finite.max()), 61) if finite.size else np.zeros(1)
    groups = {f: {lv: sorted(set(scores.loc[scores[f] == lv, "config"]), key=list(configs).index) for lv in levels[f]}
              for f in factors} if factors else {"config": {c: [c] for c in configs}}
    out["aggregate_profile"] = profile_table(X, configs, groups, taus, idx, level=level)
    if not factors:
        return out
    env_mean = _env_mean(scores, factors, len(envs))
    eff, _ = fx.factor_effects(env_mean, factors, levels, metric=metric, seed=seed, n_resamples=n_resamples,
                               level=level)
    eff = (eff[eff["order"] <= max_order] if max_order else eff).reset_index(drop=True)
    by_env = []
    for env in envs:
        e, _ = fx.factor_effects(scores[scores["env_id"] == env], factors, levels, metric=metric, seed=seed,
                                 n_resamples=n_resamples, level=level)
        by_env.append(e[e["term"].isin(set(eff["term"]))].assign(env_id=env)[BY_ENV_COLUMNS])
    out["aggregate_effects"] = eff
    out["effects_by_env"] = pd.concat(by_env, ignore_index=True) if by_env else pd.DataFrame(columns=BY_ENV_COLUMNS)
    margins = env_margins(scores, envs, margin, norm)
    out["env_labels"] = env_labels(out["effects_by_env"], margin=margins)
    claims = env_claims(out["env_labels"], envs, margin_text="each env's margin")
    sd = env_mean.groupby("config")["value"].agg(["size", "std"])
    agg_margin = (float(np.nanmean(list(margins.values()))) if margin.unit == "metric"
                  else margin.resolve(pooled_sd(sd["size"].to_numpy(float), sd["std"].to_numpy(float))))
    out["consistency"] = consistency(eff, out["env_labels"], claims, margin=agg_margin)
    # the aggregate verdicts: averaged over a factor only where no interaction of any order says otherwise
    out["aggregate_verdicts"], out["aggregate_contexts"] = verdicts(eff, env_mean, factors, levels, metric=metric,
                                                                    margin=agg_margin)
    return out
