"""rows: probes.csv's one column list, and rows built in its order."""

from ablations.probes.rows import PROBE_COLUMNS
from ablations.probes.statistics import STATISTICS

from tests.helpers.synthetic_pools import bandit_rows

DESIGN_COLUMNS = ["run_id", "update", "env_steps", "estimator", "returns", "baseline", "normalize", "entropy_coef",
                  "n_episodes", "k_batches", "total_var", "mean_sq_norm", "snr", "cos_to_reference", "pairwise_cos",
                  "bias_sq_norm", "is_trained_estimator"]


def test_the_columns_start_with_the_design_columns_and_hold_every_statistic_once():
    assert PROBE_COLUMNS[: len(DESIGN_COLUMNS)] == DESIGN_COLUMNS
    assert set(STATISTICS) <= set(PROBE_COLUMNS) and len(set(PROBE_COLUMNS)) == len(PROBE_COLUMNS)
    assert PROBE_COLUMNS[len(DESIGN_COLUMNS):] == ["reference_scale", "critic", "pool_steps", "aggregate", "reference",
                                                   "rel_bias", "zero_batches", "reference_zero_batches", "gae_lambda"]


def test_rows_follow_the_column_list_with_the_checkpoint_and_counts_typed():
    rows, pool = bandit_rows(0.3, 2, 4)
    for r in rows.values():
        assert list(r) == PROBE_COLUMNS
        assert (r["update"], r["env_steps"], r["n_episodes"], r["k_batches"]) == (0, 0, 2, 4)
        assert type(r["zero_batches"]) is int and type(r["rel_bias"]) is float
        assert r["pool_steps"] == 8 and r["reference"] == "full/loo/none/0"
