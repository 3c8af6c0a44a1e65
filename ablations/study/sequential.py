"""Adaptive seeding (`[sequential]`): seeds are trained in waves, and a wave adds seeds only to the configs of a
contrast whose verdict is still undecided, with inference that stays valid under this optional stopping.

**The waves.** Wave 1 trains every config's first `min` seeds; after each wave comes a *look*: every contrast of the
study's families (`study.contrasts`) still undecided gets its confidence sequence at the seeds its configs now have,
and is decided when the sequence excludes 0 (helps / hurts: the first config set is better / worse) or lies inside
(−margin, margin) (equivalent). The next wave adds `step` seeds (up to the study's `seeds`) to every config of a
contrast still undecided; a config whose contrasts are all decided trains no more. The study stops when every
contrast is decided or its configs have every seed. Seeds are added in the order of the study's seed list, so a
config's seeds are always a prefix of that list, and a contrast undecided at look j has exactly the first n_j seeds
in each of its configs: its looks read its own per-seed values d_1 … d_{n_j} only.

**The decision is a pure function of the study file and runs.csv's rows** (`replay`): the looks are recomputed from
the rows on disk, each look from the seeds its wave had, so rerunning (or resuming a killed run) gives the same waves,
and the report recomputes the same intervals.

**The confidence sequence** (`confidence_sequence`): per contrast, the per-seed values d_s are assumed i.i.d.
normal with unknown mean θ and unknown variance (seed-blocked: common random numbers make the seeds the units). The
sequence is the set of θ₀ not rejected by the scale-invariant mixture likelihood ratio (Lai 1976; Wang & Ramdas 2023,
"Anytime-valid t-tests and confidence sequences for Gaussian means with unknown variance", its Gaussian-mixture
form): with t the one-sample t statistic of d_1 … d_n against θ₀ and ν = n − 1,

    M_n(θ₀) = (1 + n g)^(−1/2) · [(1 + t²/ν) / (1 + t²/(ν (1 + n g)))]^(n/2),

the likelihood ratio of the scale-invariant statistic (d_s − θ₀)/|d_1 − θ₀|, mixed over the standardized effect
(θ − θ₀)/σ ~ N(0, g). Under θ = θ₀ it is a nonnegative martingale with M_1 = 1, so by Ville's inequality
P(∃ n: M_n ≥ 1/α) ≤ α: exact for normal d_s at every n, not asymptotic. Inverting M_n < 1/α gives
|d̄ − θ₀| < s/√n · √(ν x), x = (K − 1)/(1 − K/(1 + n g)), K = ((1 + n g)^(1/2)/α)^(2/n) (the whole line when
K ≥ 1 + n g). g is tuned per family to make the sequence narrowest at the first look (n = min), where the largest
effects can be decided; later looks lose little (`tuned_g`). The interval used at a look is the intersection of the
contrast's sequence over this and every earlier look (still a confidence sequence). Family-wise: Bonferroni within
each family and env, α/K for K contrasts, at the report's α (`margin.ALPHA`); so with probability ≥ 1 − α every
contrast of a family is covered at every look, and no verdict is wrong. Hand-written with numpy/scipy: `confseq`
(the reference implementation of Howard et al.'s bounds) has no wheel for this Python and no unknown-variance
normal sequence.

**Assumptions and limits**: normal per-seed differences (CartPole's final returns are bounded and skewed: the
simulation test `tests/study/test_sequential.py` measures coverage on resampled real per-seed contrasts too);
runs that fail or diverge are missing data (the seed is left out of the contrasts that read that config), as the
report treats them. The margin, when given in SDs (`[report] margin = "0.25sd"`, the default), is resolved on the
first wave's runs (pooled within-config SD per env), so it is fixed before any decision is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..config import RunConfig
from .contrasts import Contrast, contrasts
from .design import Study, expand, grid, point_fields, seed_fields
from .margin import ALPHA, parse_margin
from .results_format import read_text_table
from .store import ResultsDir

#: The kind of confidence sequence and its assumptions, as the manifest and the report state it.
CS_METHOD = ("Lai's (1976) t confidence sequence in Wang & Ramdas's (2023) Gaussian-mixture form: the scale-invariant "
             "likelihood ratio of the per-seed contrasts, mixed over the standardized effect ~ N(0, g), inverted "
             "at level α/K by Ville's inequality; exact for i.i.d. normal per-seed contrasts with unknown variance; "
             "g tuned per family for the narrowest interval at the first look; the interval at a look is the "
             "running intersection over the looks so far")
#: The stopping rule, as the manifest and the report state it.
RULE = ("wave 1 trains every config's first `min` seeds; after each wave, every contrast of the study's families "
        "still undecided is decided when its anytime-valid interval excludes 0 (helps / hurts) or lies inside "
        "(−margin, margin) (equivalent); the next wave adds `step` seeds to every config of an undecided contrast; "
        "stop when every contrast is decided or has every seed (`seeds`)")
CORRECTION = "Bonferroni within each family and env (α/K for K contrasts), α = the report's family-wise α"
#: Class codes of `looks` and their words (higher scores are better for every sequential metric).
UNDECIDED, HELPS, HURTS, EQUIVALENT = 0, 1, 2, 3
CLASS_NAMES = {UNDECIDED: "undecided", HELPS: "helps", HURTS: "hurts", EQUIVALENT: "equivalent"}


# ---- the confidence sequence (vectorized) -----------------------------------------------------------------------
def cs_radius(n: Any, alpha: Any, g: Any) -> np.ndarray:
    """√(ν x / n) of the module docstring: the sequence's half-width in units of the sample SD (inf where the
    sequence is the whole line, n < 2 included). Arrays broadcast."""
    n, alpha, g = np.broadcast_arrays(*(np.asarray(v, float) for v in (n, alpha, g)))
    out = np.full(n.shape, np.inf)
    ok = n >= 2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        big = 1.0 + n * g
        k = np.exp((2.0 / np.where(ok, n, 2.0)) * (0.5 * np.log(big) - np.log(alpha)))
        finite = ok & (k < big)
        x = (k - 1.0) / (1.0 - k / big)
        out = np.where(finite, np.sqrt(np.where(finite, (n - 1.0) * x / np.where(ok, n, 1.0), 0.0)), out)
    return out


def confidence_sequence(mean: Any, sd: Any, n: Any, alpha: Any, g: Any) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the t confidence sequence at level 1 − α after n per-seed values with this mean and sample
    SD (ddof = 1); (−inf, inf) where it is the whole line; the point where sd = 0."""
    r = cs_radius(n, alpha, g) * np.asarray(sd, float)
    r = np.where(np.asarray(sd, float) == 0, 0.0, r)
    return np.asarray(mean, float) - r, np.asarray(mean, float) + r


def fixed_interval(mean: Any, sd: Any, n: Any, alpha: Any) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-n t-interval at level 1 − α (valid only for an n fixed in advance), for comparison."""
    from scipy import stats as sps  # here, not at the top: every CLI command imports this module, few need scipy

    n = np.asarray(n, float)
    with np.errstate(invalid="ignore"):
        q = sps.t.ppf(1 - np.asarray(alpha, float) / 2, np.where(n >= 2, n - 1, np.nan))
    r = np.where(n >= 2, q * np.asarray(sd, float) / np.sqrt(np.maximum(n, 1)), np.inf)
    return np.asarray(mean, float) - r, np.asarray(mean, float) + r


def tuned_g(n_star: int, alpha: float) -> float:
    """The mixture variance g that minimizes the sequence's half-width at n = n_star (bounded search on log g)."""
    from scipy import optimize  # here, not at the top (see `fixed_interval`)

    def width(log_g: float) -> float:
        r = float(cs_radius(n_star, alpha, np.exp(log_g)))
        return r if np.isfinite(r) else 1e12 - log_g  # the whole line: larger g shrinks it, so move up
    res = optimize.minimize_scalar(width, bounds=(-10.0, 15.0), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x))


def looks(D: np.ndarray, counts: Sequence[int], alpha: Any, g: Any, margin: Any,
          interval: str = "sequence") -> dict[str, np.ndarray]:
    """Every look of every contrast from per-seed contrast values `D` [..., S, K] (NaN: missing; seed s of look j
    is used when s < counts[j]), with per-contrast α, g and margin (broadcast to [..., K]).

    Returns arrays [..., L, K]: n (finite values used), mean, sd, low / high (the look's own interval), run_low /
    run_high (the intersection over looks 0..j), cls (`UNDECIDED` … `EQUIVALENT` from the running interval; a
    significant difference wins over equivalence); and decided_at [..., K] (the first look whose class is not
    undecided, −1 if none). `interval="fixed"` uses the fixed-n t-interval at every look instead (the error it
    makes under optional stopping is what the tests show)."""
    D = np.asarray(D, float)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("n", "mean", "sd", "low", "high", "run_low", "run_high",
                                                          "cls")}
    run_low = np.full(D.shape[:-2] + D.shape[-1:], -np.inf)
    run_high = np.full_like(run_low, np.inf)
    m = np.broadcast_to(np.asarray(margin, float), run_low.shape)
    for c in counts:
        x = D[..., :c, :]
        ok = np.isfinite(x)
        n = ok.sum(axis=-2).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(ok, x, 0.0).sum(axis=-2) / n
            sd = np.sqrt((np.where(ok, x - mean[..., None, :], 0.0) ** 2).sum(axis=-2) / (n - 1))
        if interval == "fixed":
            low, high = fixed_interval(mean, sd, n, alpha)
        else:
            low, high = confidence_sequence(mean, sd, n, alpha, g)
        low = np.where(np.isfinite(mean), low, -np.inf)
        high = np.where(np.isfinite(mean), high, np.inf)
        run_low, run_high = np.maximum(run_low, low), np.minimum(run_high, high)
        cls = np.select([run_low > 0, run_high < 0, (run_low > -m) & (run_high < m)], [HELPS, HURTS, EQUIVALENT],
                        UNDECIDED)
        for k, v in (("n", n), ("mean", mean), ("sd", sd), ("low", low), ("high", high), ("run_low", run_low),
                     ("run_high", run_high), ("cls", cls)):
            out[k].append(v)
    res = {k: np.stack(v, axis=-2) for k, v in out.items()}
    decided = res["cls"] != UNDECIDED
    res["decided_at"] = np.where(decided.any(axis=-2), decided.argmax(axis=-2), -1)
    return res


# ---- the study's contrasts and data ------------------------------------------------------------------------------
def study_contrasts(study: Study) -> list[Contrast]:
    """The contrasts of the study's `[sequential] families`, over `design.grid(study)`."""
    spec = _spec(study)
    return contrasts(grid(study), study.factors, spec.families, study.report.get("reference"))


def weights(cs: Sequence[Contrast], n_points: int) -> np.ndarray:
    """[P, K]: contrast k's weight on grid point p."""
    W = np.zeros((n_points, len(cs)))
    for k, c in enumerate(cs):
        for i, w in c.weights.items():
            W[i, k] = w
    return W


def per_seed(Y: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Per-seed contrast values D [..., S, K] = Y [..., S, P] @ W, NaN where a config the contrast reads is NaN."""
    Y = np.asarray(Y, float)
    missing = (~np.isfinite(Y)).astype(float) @ (W != 0).astype(float) > 0
    y = np.where(np.isfinite(Y), Y, 0.0)
    D = y @ W
    # a contrast of identical cells (aliased configs) is 0 up to the dot product's rounding: within that bound, 0
    D = np.where(np.abs(D) <= 64 * np.finfo(float).eps * (np.abs(y) @ np.abs(W)), 0.0, D)
    return np.where(missing, np.nan, D)


def family_alphas(cs: Sequence[Contrast], alpha: float = ALPHA) -> np.ndarray:
    """Each contrast's level: α over the number of contrasts of its (family, env) (Bonferroni)."""
    size: dict[tuple[str, str | None], int] = {}
    for c in cs:
        size[(c.family, c.env)] = size.get((c.family, c.env), 0) + 1
    return np.array([alpha / size[(c.family, c.env)] for c in cs])


def pooled_sd(Y: np.ndarray) -> float:
    """√(Σ_c (n_c − 1) s_c² / Σ_c (n_c − 1)) over the columns (configs) of Y [S, C], NaN ignored (the formula of
    `report.equivalence.pooled_sd`)."""
    ok = np.isfinite(Y)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, Y, 0.0).sum(axis=0) / n
        ss = (np.where(ok, Y - mean, 0.0) ** 2).sum(axis=0)
    dof = np.maximum(n - 1, 0)
    return float(np.sqrt(ss[dof > 0].sum() / dof.sum())) if dof.sum() > 0 else float("nan")


def run_ids(study: Study) -> np.ndarray:
    """[P, S] run ids: grid point p at the study's seed s (the full design, `design.expand`'s order)."""
    ids = [c.run_id for c in expand(study)]
    return np.array(ids, dtype=object).reshape(len(grid(study)), len(study.seeds))


def wave_configs(study: Study, counts: Sequence[int]) -> list[RunConfig]:
    """Grid point p's first counts[p] seeds, grid points in order, seeds innermost (`design.expand`'s order)."""
    return [RunConfig.from_dict({**point_fields(study, point), **seed_fields(study, seed)}, where=study.path)
            for point, n in zip(grid(study), counts) for seed in study.seeds[:n]]


def runs_on_disk(out: str | Path, metric: str) -> pd.DataFrame:
    """run_id, status and `metric` of every run with a record in `out`: the latest record in the cohort parts, or
    runs.csv once packed (the parts deleted). Text cells."""
    results = ResultsDir(out)
    cols = ["run_id", "status", metric]
    frames = [read_text_table(p.path / "runs.csv") for p in results.parts()]
    frames = [f.reindex(columns=cols, fill_value="") for f in frames if len(f)]
    if not frames and (Path(out) / "runs.csv").is_file():
        frames = [read_text_table(Path(out) / "runs.csv").reindex(columns=cols, fill_value="")]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True).drop_duplicates("run_id", keep="last").reset_index(drop=True)


def _spec(study: Study) -> Any:
    if study.sequential is None:
        raise ValueError(f"{study.path}: the study has no [sequential] section")
    return study.sequential


# ---- the replay: waves and looks from the rows on disk -----------------------------------------------------------
@dataclass
class SequentialState:
    """Where a sequential study stands, replayed from its rows (`replay`)."""

    contrasts: list[Contrast]
    counts: list[int]  # seeds per grid point through the current wave (the one to train, or the last)
    waves: list[dict[str, Any]]  # per wave: wave (1-based), seeds, configs it grew, runs, budget, complete
    looks: pd.DataFrame  # one row per contrast and look it was looked at (`LOOK_COLUMNS`)
    margins: dict[str | None, float]  # per env: the equivalence margin in metric units
    g: list[float]  # per contrast: the mixture variance
    alpha: list[float]  # per contrast: its level (Bonferroni)
    stopped: bool = False
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def decisions(self) -> pd.DataFrame:
        """Each contrast's last look (its decision, or where it stands)."""
        if not len(self.looks):
            return self.looks
        return self.looks.drop_duplicates(["contrast_index"], keep="last").reset_index(drop=True)


LOOK_COLUMNS = ["contrast_index", "family", "env", "contrast", "look", "n", "estimate", "sd", "cs_low", "cs_high",
                "run_low", "run_high", "verdict", "alpha", "g", "margin", "fixed_low", "fixed_high", "fixed_verdict"]


def replay(study: Study, runs: pd.DataFrame, ids: np.ndarray | None = None) -> SequentialState:
    """The waves and looks of `study` from `runs` (run_id, status, the metric; text or numbers): wave by wave,
    stopping at the first wave that has a run without a row (the wave to train). Pure and deterministic. `ids`
    [P, S]: the run of grid point p at seed s, when not the ids the study's runs have now (`run_ids`; a reader of
    published results matches them by their levels and seed, which a later change of a field's default leaves
    alone)."""
    spec = _spec(study)
    points = grid(study)
    ids = run_ids(study) if ids is None else ids
    P, S = ids.shape
    cs = study_contrasts(study)
    W = weights(cs, P)
    alphas = family_alphas(cs)
    g_of = {a: tuned_g(spec.min, a) for a in sorted(set(alphas))}
    g = np.array([g_of[a] for a in alphas])
    status = dict(zip(runs["run_id"].astype(str), runs["status"].astype(str).str.strip().str.lower()))
    value = dict(zip(runs["run_id"].astype(str), pd.to_numeric(runs[spec.metric], errors="coerce")))
    has_row = np.vectorize(lambda r: r in status, otypes=[bool])(ids)
    Y = np.vectorize(lambda r: value.get(r, np.nan) if status.get(r) == "done" else np.nan, otypes=[float])(ids).T
    envs = [c.env for c in cs]
    env_of_point = [str(p["env_id"]) if "env_id" in study.factors else None for p in points]
    counts = [spec.min] * P
    schedule = spec.counts()
    state = SequentialState(cs, counts, [], pd.DataFrame(columns=LOOK_COLUMNS), {}, g.tolist(), alphas.tolist())
    grown = list(range(P))
    for j, n in enumerate(schedule):
        state.waves.append(_wave(study, j, n, grown, counts, has_row))
        if not state.waves[-1]["complete"]:
            return state
        if j == 0:
            rule = parse_margin(study.report.get("margin"))
            first = Y[: spec.min]
            state.margins = {e: rule.resolve(pooled_sd(first[:, [i for i in range(P) if env_of_point[i] == e]]))
                             for e in dict.fromkeys(envs)}
        margin = np.array([state.margins[e] for e in envs])
        res = looks(per_seed(Y, W), schedule[: j + 1], alphas, g, margin)
        fixed = looks(per_seed(Y, W), schedule[: j + 1], alphas, g, margin, interval="fixed")
        undecided = [k for k in range(len(cs)) if res["decided_at"][k] < 0]
        state.looks = _look_rows(cs, res, fixed, j, alphas, g, margin)
        if not undecided or j == len(schedule) - 1:
            state.stopped = True
            state.reason = ("every contrast is decided" if not undecided else
                            f"every seed is trained ({spec.max}); {len(undecided)} contrast(s) still undecided")
            return state
        grown = sorted({i for k in undecided for i in cs[k].cells})
        for i in grown:
            counts[i] = schedule[j + 1]
    return state


def _wave(study: Study, j: int, n: int, grown: Sequence[int], counts: Sequence[int], has_row: np.ndarray
          ) -> dict[str, Any]:
    """The record of wave j + 1: the configs it grew to n seeds, its runs, their budget, whether all have rows."""
    before = study.sequential.counts()[j - 1] if j else 0
    points = grid(study)
    budget = sum(int(point_fields(study, points[i]).get("total_steps", RunConfig().total_steps)) * (n - before)
                 for i in grown)
    complete = all(has_row[i, s] for i in range(len(counts)) for s in range(counts[i]))
    return {"wave": j + 1, "seeds": n, "configs": len(grown), "runs": len(grown) * (n - before),
            "budget_steps": budget, "complete": bool(complete)}


def _look_rows(cs: Sequence[Contrast], res: dict[str, np.ndarray], fixed: dict[str, np.ndarray], last: int,
               alphas: np.ndarray, g: np.ndarray, margin: np.ndarray) -> pd.DataFrame:
    """One row per contrast and look, looks 0..last, each contrast up to the look that decided it."""
    rows = []
    for k, c in enumerate(cs):
        end = res["decided_at"][k] if res["decided_at"][k] >= 0 else last
        for j in range(end + 1):
            rows.append(dict(contrast_index=k, family=c.family, env=c.env or "", contrast=c.label, look=j + 1,
                             n=int(res["n"][j, k]), estimate=res["mean"][j, k], sd=res["sd"][j, k],
                             cs_low=res["low"][j, k], cs_high=res["high"][j, k], run_low=res["run_low"][j, k],
                             run_high=res["run_high"][j, k], verdict=CLASS_NAMES[int(res["cls"][j, k])],
                             alpha=alphas[k], g=g[k], margin=margin[k], fixed_low=fixed["low"][j, k],
                             fixed_high=fixed["high"][j, k],
                             fixed_verdict=CLASS_NAMES[int(_fixed_class(fixed, j, k, margin[k]))]))
    return pd.DataFrame(rows, columns=LOOK_COLUMNS)


def _fixed_class(fixed: dict[str, np.ndarray], j: int, k: int, m: float) -> int:
    """The class of the fixed-n interval at look j alone (no running intersection: a fixed design reads one look)."""
    lo, hi = fixed["low"][j, k], fixed["high"][j, k]
    return HELPS if lo > 0 else HURTS if hi < 0 else EQUIVALENT if -m < lo and hi < m else UNDECIDED


def record(study: Study, state: SequentialState) -> dict[str, Any]:
    """The manifest's `sequential` record: the rule, the interval, the families, the margin, the waves, the
    decisions and whether the study stopped."""
    spec = _spec(study)
    d = state.decisions
    return {**spec.spec(), "rule": RULE, "interval": CS_METHOD, "correction": CORRECTION, "alpha": ALPHA,
            "margin": {"rule": parse_margin(study.report.get("margin")).describe(),
                       "resolved_on": "the first wave's runs (pooled within-config SD)",
                       "value": {str(e or ""): v for e, v in state.margins.items()}},
            "contrasts": len(state.contrasts), "waves": state.waves, "stopped": state.stopped, "reason": state.reason,
            "decided": {name: int((d["verdict"] == name).sum()) if len(d) else 0 for name in CLASS_NAMES.values()}}
