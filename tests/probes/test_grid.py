"""grid: the probed estimators in row order, their labels, and the unbiased reference."""

from ablations.config import RunConfig
from ablations.probes.grid import OPTIMAL, Estimator, estimator_grid, reference_of


def test_grid_order_and_size_by_hand():
    grid = estimator_grid([0.0, 0.01], 4)
    assert len(grid) == 2 * 2 * 3 * (3 * 4 + 1)  # β × aggregate × returns × (normalizations × baselines + optimal)
    assert [e.label for e in grid[:5]] == ["full/none/none/0", "full/none/returns/0", "full/none/advantages/0",
                                           "full/mean/none/0", "full/mean/returns/0"]
    assert grid[12].label == "full/optimal/none/0" and grid[13].label == "rtg/none/none/0"
    assert grid[39].label == "full/none/none/0/step" and grid[78].label == "full/none/none/0.01"
    assert [e.normalize for e in grid if e.baseline == OPTIMAL] == ["none"] * 12


def test_one_episode_batches_have_no_loo_and_the_reference_drops_to_no_baseline():
    assert not any(e.baseline == "loo" for e in estimator_grid([0.0], 1))
    assert reference_of(1) == Estimator("full", "none", "none", 0.0) and reference_of(2).label == "full/loo/none/0"


def test_trained_by_matches_every_level_including_the_aggregation():
    cfg = RunConfig(returns="rtg", baseline="loo", normalize="none", entropy_coef=0.01, aggregate="step")
    trained = [e.label for e in estimator_grid([0.0, 0.01], 4) if e.trained_by(cfg)]
    assert trained == ["rtg/loo/none/0.01/step"]
