"""probes.csv's row layout: `PROBE_COLUMNS` (the one list of its columns, in file order) and `probe_rows` (one run's
rows at one checkpoint). Light on purpose (no torch): the results format imports `PROBE_COLUMNS` from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import RunConfig
from .grid import estimator_grid, reference_of

if TYPE_CHECKING:
    from .directions import PoolDirections

#: The statistics of a row that are floats (`statistics.STATISTICS` minus rel_bias and the zero counts).
FLOAT_STATISTICS = ["total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm"]
#: The zero-direction counts of a row (`statistics.STATISTICS`).
COUNTS = ["zero_batches", "reference_zero_batches"]
#: probes.csv's columns in order: DESIGN.md's ("Tidy results"), then `reference_scale`, `critic`, `pool_steps`,
#: `aggregate`, `reference`, `rel_bias`, `zero_batches`, `reference_zero_batches` (see `directions`, `statistics`),
#: `gae_lambda` (a GAE estimator's λ; 1.0 on the other rows, as `RunConfig.gae_lambda`).
PROBE_COLUMNS = ["run_id", "update", "env_steps", "estimator", "returns", "baseline", "normalize", "entropy_coef",
                 "n_episodes", "k_batches", *FLOAT_STATISTICS, "is_trained_estimator", "reference_scale", "critic",
                 "pool_steps", "aggregate", "reference", "rel_bias", *COUNTS, "gae_lambda"]
#: The columns every probes.csv has, whatever the package version that wrote it (DESIGN.md's tidy schema): what a
#: reader requires, and the header of a probes.csv with no rows (a study without probes).
PROBE_REQUIRED_COLUMNS = [c for c in PROBE_COLUMNS if c in {
    "run_id", "update", "env_steps", "returns", "baseline", "normalize", "entropy_coef", "n_episodes", "k_batches",
    "total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos", "bias_sq_norm", "is_trained_estimator"}]


def probe_rows(cfg: RunConfig, update: int, env_steps: int, pool: PoolDirections) -> list[dict[str, Any]]:
    """probes.csv rows of one run at one checkpoint, in `estimator_grid` order, columns `PROBE_COLUMNS`."""
    stats = pool.statistics()
    reference = reference_of(pool.n_episodes).label
    rows = []
    for j, e in enumerate(estimator_grid(pool.betas, pool.n_episodes, pool.lambdas)):
        b = j % len(pool.base)
        row = {"run_id": cfg.run_id, "update": int(update), "env_steps": int(env_steps),
               "estimator": e.label, "returns": e.returns, "baseline": e.baseline, "normalize": e.normalize,
               "entropy_coef": float(e.entropy_coef), "n_episodes": pool.n_episodes,
               "k_batches": pool.k_batches,
               **{k: float(stats[k][j]) for k in FLOAT_STATISTICS},
               "is_trained_estimator": e.trained_by(cfg), "reference_scale": float(pool.scales[b]),
               "critic": pool.critics[b], "pool_steps": pool.pool_steps, "aggregate": e.aggregate,
               "reference": reference, "rel_bias": float(stats["rel_bias"][j]),
               **{k: int(stats[k][j]) for k in COUNTS}, "gae_lambda": float(e.gae_lambda)}
        rows.append({k: row[k] for k in PROBE_COLUMNS})  # the layout is PROBE_COLUMNS' (a missing column raises)
    return rows
