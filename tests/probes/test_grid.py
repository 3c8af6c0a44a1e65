"""grid: the probed estimators in row order, their labels, and the unbiased reference."""

from ablations.config import RunConfig
from ablations.probes.grid import GAE_LAMBDAS, OPTIMAL, Estimator, estimator_grid, probe_lambdas, reference_of


def test_grid_order_and_size_by_hand():
    grid = estimator_grid([0.0, 0.01], 4)
    block = 3 * (3 * 4 + 1) + 2 * 6 * 2  # returns × (normalizations × baselines + optimal) + GAE × λ × normalizations
    assert len(grid) == 2 * 2 * block  # β × aggregate × block
    assert [e.label for e in grid[:5]] == ["full/none/none/0", "full/none/returns/0", "full/none/advantages/0",
                                           "full/mean/none/0", "full/mean/returns/0"]
    assert grid[12].label == "full/optimal/none/0" and grid[13].label == "rtg/none/none/0"
    assert [e.label for e in grid[39:43]] == ["gae(0)/value/none/0", "gae(0)/value/advantages/0",
                                              "gae(0.5)/value/none/0", "gae(0.5)/value/advantages/0"]
    assert grid[51].label == "gae_gpomdp(0)/value/none/0" and grid[62].label == "gae_gpomdp(1)/value/advantages/0"
    assert grid[block].label == "full/none/none/0/step" and grid[2 * block].label == "full/none/none/0.01"
    assert grid[block + 39].label == "gae(0)/value/none/0/step"
    assert [e.normalize for e in grid if e.baseline == OPTIMAL] == ["none"] * 12
    assert {e.gae_lambda for e in grid if not e.returns.startswith("gae")} == {1.0}


def test_the_gae_lambdas_probed_add_a_gae_runs_own_lambda():
    assert probe_lambdas(RunConfig()) == GAE_LAMBDAS == (0.0, 0.5, 0.9, 0.95, 0.97, 1.0)
    assert probe_lambdas(RunConfig(returns="gae", gae_lambda=0.8)) == (0.0, 0.5, 0.8, 0.9, 0.95, 0.97, 1.0)
    assert probe_lambdas(RunConfig(returns="gae_gpomdp", gae_lambda=0.95)) == GAE_LAMBDAS
    grid = estimator_grid([0.0], 4, probe_lambdas(RunConfig(returns="gae", gae_lambda=0.8)))
    own = ["gae(0.8)/value/none/0", "gae(0.8)/value/advantages/0", "gae_gpomdp(0.8)/value/none/0",
           "gae_gpomdp(0.8)/value/advantages/0"]
    assert [e.label for e in grid if e.gae_lambda == 0.8] == own + [f"{label}/step" for label in own]
    assert len({e.label for e in grid}) == len(grid) == len(estimator_grid([0.0], 4)) + 8


def test_one_episode_batches_have_no_loo_and_the_reference_drops_to_no_baseline():
    assert not any(e.baseline == "loo" for e in estimator_grid([0.0], 1))
    assert reference_of(1) == Estimator("full", "none", "none", 0.0) and reference_of(2).label == "full/loo/none/0"


def test_trained_by_matches_every_level_including_the_aggregation():
    cfg = RunConfig(returns="rtg", baseline="loo", normalize="none", entropy_coef=0.01, aggregate="step")
    trained = [e.label for e in estimator_grid([0.0, 0.01], 4) if e.trained_by(cfg)]
    assert trained == ["rtg/loo/none/0.01/step"]


def test_trained_by_matches_a_gae_runs_lambda_and_no_bootstrapped_run():
    cfg = RunConfig(returns="gae", gae_lambda=0.95, normalize="advantages")
    grid = estimator_grid([0.0], 4)
    assert [e.label for e in grid if e.trained_by(cfg)] == ["gae(0.95)/value/advantages/0"]
    assert not any(e.trained_by(cfg.replace(bootstrap_truncated=True)) for e in grid)  # probes never bootstrap
    assert [e.label for e in grid if e.trained_by(RunConfig(returns="rtg"))] == ["rtg/value/advantages/0"]
