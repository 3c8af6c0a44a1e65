"""The probed estimators: `Estimator` (one update direction's ablation levels and its label), `estimator_grid` (the
rows of probes.csv at a checkpoint, in order) and `reference_of` (the unbiased reference U).

Estimators (rows, in this order): entropy_coef β ∈ {0, the run's β} (one level when the run's β is 0) × aggregate
{episode, step} × [returns {full, rtg, gpomdp} × baseline {none, mean, loo, value, optimal} × normalize {none, returns,
advantages} (`optimal`: none only; `loo` needs N ≥ 2), then the GAE estimators: returns {gae, gae_gpomdp} × λ
(`GAE_LAMBDAS`, and the run's own λ when it trains a GAE level) × normalize {none, advantages}, baseline value].
Labels are "returns/baseline/normalize/β", β formatted `%g` ("rtg/loo/none/0.01"), with "/step" appended under the
step aggregation ("rtg/loo/none/0.01/step"); a GAE estimator's returns carry its λ ("gae(0.95)/value/none/0").
Every probed estimator treats a truncated episode as terminated, as the reference does (a run that trains with
`bootstrap_truncated` has no row of its own: `is_trained_estimator` is false on all its rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..config import AXES, GAE_RETURNS, RunConfig

OPTIMAL = "optimal"
#: The Monte-Carlo returns levels, probed with every baseline and normalization.
MC_RETURNS: tuple[str, ...] = tuple(r for r in AXES["returns"] if r not in GAE_RETURNS)
#: The λ levels of the probed GAE estimators (0: the one-step TD error; 1: G_t − V(s_t)).
GAE_LAMBDAS: tuple[float, ...] = (0.0, 0.5, 0.9, 0.95, 0.97, 1.0)
#: The normalize levels of the probed GAE estimators (`returns` does not apply to them).
GAE_NORMALIZE: tuple[str, ...] = ("none", "advantages")


@dataclass(frozen=True)
class Estimator:
    """One probed estimator: the ablation levels of the update direction it measures."""

    returns: str
    baseline: str
    normalize: str
    entropy_coef: float
    aggregate: str = "episode"
    gae_lambda: float = 1.0  # λ of a GAE estimator; 1.0 for the others (as `RunConfig.gae_lambda`)

    @property
    def label(self) -> str:
        """"returns/baseline/normalize/β", with "/step" appended for the step aggregation; a GAE estimator's returns
        as "gae(λ)"."""
        tail = "" if self.aggregate == "episode" else f"/{self.aggregate}"
        ret = f"{self.returns}({self.gae_lambda:g})" if self.returns in GAE_RETURNS else self.returns
        return f"{ret}/{self.baseline}/{self.normalize}/{self.entropy_coef:g}{tail}"

    def trained_by(self, cfg: RunConfig) -> bool:
        return not cfg.bootstrap_truncated and (
            self.returns, self.baseline, self.normalize, self.entropy_coef, self.aggregate, self.gae_lambda) == (
            cfg.returns, cfg.baseline, cfg.normalize, cfg.entropy_coef, cfg.aggregate, cfg.gae_lambda)


def probe_lambdas(cfg: RunConfig) -> tuple[float, ...]:
    """The λ levels probed for a run: `GAE_LAMBDAS`, and the run's own λ when it trains a GAE level, ascending."""
    own = (cfg.gae_lambda,) if cfg.returns in GAE_RETURNS else ()
    return tuple(sorted(set(GAE_LAMBDAS) | set(own)))


def estimator_grid(entropy_coefs: Sequence[float], n_episodes: int,
                   lambdas: Sequence[float] = GAE_LAMBDAS) -> list[Estimator]:
    """The probed estimators in row order (see the module docstring); `lambdas`: the GAE estimators' λ levels."""
    out = []
    for beta in entropy_coefs:
        for agg in AXES["aggregate"]:
            for ret in MC_RETURNS:
                for base in (*AXES["baseline"], OPTIMAL):
                    if base == "loo" and n_episodes < 2:
                        continue
                    for nz in ("none",) if base == OPTIMAL else AXES["normalize"]:
                        out.append(Estimator(ret, base, nz, float(beta), agg))
            for ret in GAE_RETURNS:
                for lam in lambdas:
                    for nz in GAE_NORMALIZE:
                        out.append(Estimator(ret, "value", nz, float(beta), agg, float(lam)))
    return out


def reference_of(n_episodes: int) -> Estimator:
    """The reference U (at β = 0), unbiased for ∇J_γ: full/loo/none, episode aggregation (full/none/none when N = 1)."""
    return Estimator("full", "loo" if n_episodes >= 2 else "none", "none", 0.0, "episode")
