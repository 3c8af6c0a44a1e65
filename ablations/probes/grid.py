"""The probed estimators: `Estimator` (one update direction's ablation levels and its label), `estimator_grid` (the
rows of probes.csv at a checkpoint, in order) and `reference_of` (the unbiased reference U).

Estimators (rows, in this order): entropy_coef β ∈ {0, the run's β} (one level when the run's β is 0) × aggregate
{episode, step} × returns {full, rtg, gpomdp} × baseline {none, mean, loo, value, optimal} × normalize {none, returns,
advantages} (`optimal`: none only; `loo` needs N ≥ 2). Labels are "returns/baseline/normalize/β", β formatted `%g`
("rtg/loo/none/0.01"), with "/step" appended under the step aggregation ("rtg/loo/none/0.01/step").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..config import AXES, RunConfig

OPTIMAL = "optimal"


@dataclass(frozen=True)
class Estimator:
    """One probed estimator: the ablation levels of the update direction it measures."""

    returns: str
    baseline: str
    normalize: str
    entropy_coef: float
    aggregate: str = "episode"

    @property
    def label(self) -> str:
        """"returns/baseline/normalize/β", with "/step" appended for the step aggregation."""
        tail = "" if self.aggregate == "episode" else f"/{self.aggregate}"
        return f"{self.returns}/{self.baseline}/{self.normalize}/{self.entropy_coef:g}{tail}"

    def trained_by(self, cfg: RunConfig) -> bool:
        return (self.returns, self.baseline, self.normalize, self.entropy_coef, self.aggregate) == (
            cfg.returns, cfg.baseline, cfg.normalize, cfg.entropy_coef, cfg.aggregate)


def estimator_grid(entropy_coefs: Sequence[float], n_episodes: int) -> list[Estimator]:
    """The probed estimators in row order (see the module docstring)."""
    out = []
    for beta in entropy_coefs:
        for agg in AXES["aggregate"]:
            for ret in AXES["returns"]:
                for base in (*AXES["baseline"], OPTIMAL):
                    if base == "loo" and n_episodes < 2:
                        continue
                    for nz in ("none",) if base == OPTIMAL else AXES["normalize"]:
                        out.append(Estimator(ret, base, nz, float(beta), agg))
    return out


def reference_of(n_episodes: int) -> Estimator:
    """The reference U (at β = 0), unbiased for ∇J_γ: full/loo/none, episode aggregation (full/none/none when N = 1)."""
    return Estimator("full", "loo" if n_episodes >= 2 else "none", "none", 0.0, "episode")
