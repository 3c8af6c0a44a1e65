"""scores: one definition of a run's metrics (each episode weighted equally), worked out by hand: the engine's
final_return, AUC over episodes, the binned curve, time to threshold (moving average over ≥ 2N episodes, crossings
past the budget censored), run_scores and run_metric (the tuning's score) agreeing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ablations.train import scores as sc


def _curve(rid: str, steps: list[float], returns: list[float], per_update: list[int] | int = 8) -> pd.DataFrame:
    n = per_update if isinstance(per_update, list) else [per_update] * len(steps)
    return pd.DataFrame({"run_id": rid, "update": np.arange(1, len(steps) + 1), "env_steps": steps,
                         "episodes": np.cumsum(n), "return_mean": returns})


CURVES = _curve("r", [25, 50, 75, 100], [0.0, 10, 20, 30])


def test_grid() -> None:
    assert list(sc.env_step_grid(100, points=4)) == [25.0, 50.0, 75.0, 100.0]
    assert len(sc.env_step_grid(1000)) == sc.GRID_POINTS == 100 and sc.FINAL_FRACTION == 0.1


def test_engine_final_return() -> None:
    """Updates ending at ≥ 90% of the budget: 900 and 1000 of 1000 → mean(4, 6) = 5; none there → the last update."""
    rows = [{"env_steps": s, "return_mean": r} for s, r in ((500, 1.0), (899, 2.0), (900, 4.0), (1000, 6.0))]
    assert sc.final_return(rows, 1000) == 5.0
    assert sc.final_return(rows[:2], 1000) == 2.0
    assert math.isnan(sc.final_return([], 1000))


def test_auc_weighs_each_episode_once() -> None:
    # 8 episodes at 10, then 4 at 40: (80 + 160) / 12 = 20 (the mean of the update means would be 25)
    assert sc.auc(_curve("r", [100, 200], [10.0, 40.0], per_update=[8, 4])) == pytest.approx(20.0)
    assert sc.auc(CURVES) == pytest.approx(15.0)  # equal N: the mean of the update means
    assert math.isnan(sc.auc(CURVES.iloc[:0]))


def test_scores_per_episode_not_per_env_step() -> None:
    """Long episodes weigh no more than short ones: updates at 25/50/75/100 steps, final return = the update in
    (90, 100] → 30; AUC 15; a missing run NaN."""
    runs = pd.DataFrame({"run_id": ["r", "missing"], "total_steps": [100, 100]})
    out = sc.run_scores(CURVES, runs, budget=100, threshold=15)
    assert out.loc[0, "final_return"] == 30.0 and out.loc[0, "auc"] == pytest.approx(15.0)
    # MA over 2 updates: (10+20)/2 = 15 at 75 steps
    assert out.loc[0, "steps_to_threshold"] == 75 and bool(out.loc[0, "reached"])
    assert np.isnan(out.loc[1, "auc"]) and np.isnan(out.loc[1, "final_return"])
    never = sc.run_scores(CURVES, runs.iloc[:1], budget=100, threshold=1e9)
    assert never.loc[0, "steps_to_threshold"] == 100 and not never.loc[0, "reached"]


def test_report_final_return_equals_the_engines() -> None:
    """Uneven update lengths (return = −length, one episode per update): the report's final return is the engine's."""
    lengths = [30, 12, 20, 11, 13, 12]
    steps = np.cumsum(lengths).tolist()
    c = _curve("r", steps, [-float(x) for x in lengths], per_update=1)
    engine = sc.final_return(c[["env_steps", "return_mean"]].to_dict("records"), 98)
    out = sc.run_scores(c, pd.DataFrame({"run_id": ["r"], "total_steps": [98]}), budget=98, threshold=0)
    assert out.loc[0, "final_return"] == engine == -12.0  # steps 30, 42, 62, 73, 86, 98: only 98 is ≥ 88.2
    assert out.loc[0, "auc"] == pytest.approx(-98 / 6)


def test_eval_return_is_copied_when_present() -> None:
    runs = pd.DataFrame({"run_id": ["r"], "eval_return": ["42.5"]})
    out = sc.run_scores(CURVES, runs, budget=100, threshold=15)
    assert out.loc[0, "eval_return"] == 42.5


def test_binned_curve_holds_empty_cells() -> None:
    y = sc.binned_curves(CURVES, ["r", "none"], np.array([10.0, 50.0, 60.0, 100.0]))
    # (−∞,10]: none → held back to the first update (0); (10,50]: updates at 25, 50 → 5; (50,60]: none → 5;
    # (60,100]: 20, 30 → 25
    assert list(y[0]) == [0.0, 5.0, 5.0, 25.0]
    assert np.isnan(y[1]).all()


def test_run_metric_equals_run_scores_and_reads_text() -> None:
    rng = np.random.default_rng(0)
    curves = pd.concat([_curve(r, [90, 240, 410, 555, 700, 860, 1010], rng.normal(50, 20, 7)) for r in "ab"])
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "total_steps": [1000, 1000, 1000]})
    ref = sc.run_scores(curves, runs, budget=1000, threshold=60.0).set_index("run_id")
    text = curves.astype(str)
    for metric in ("auc", "final_return"):
        mine = sc.run_metric(runs, text, metric)
        assert [mine[r] for r in "ab"] == ref.loc[["a", "b"], metric].tolist()
        assert math.isnan(mine["c"])
    with pytest.raises(ValueError, match="allowed: auc"):
        sc.run_metric(runs, curves, "median")


def test_crossing_in_the_update_that_crosses_the_budget_is_censored() -> None:
    c = _curve("r", [400, 800, 1030], [0.0, 0.0, 20.0])  # MA at update 3 = 10 ≥ 5, but it ends at 1030 > 1000
    out = sc.time_to_threshold(c, ["r"], 5.0, 1000.0)
    assert out.iloc[0]["steps_to_threshold"] == 1000.0 and not out.iloc[0]["reached"]
    # crossing in an update that ends exactly at the budget counts
    ok = sc.time_to_threshold(_curve("r", [400, 800, 1000], [0.0, 0.0, 20.0]), ["r"], 5.0, 1000.0)
    assert ok.iloc[0]["reached"] and ok.iloc[0]["steps_to_threshold"] == 1000.0


def test_a_single_lucky_update_does_not_count() -> None:
    c = _curve("r", [100, 200, 300, 400], [0.0, 30.0, 0.0, 0.0])  # MAs: −, 15, 15, 0
    out = sc.time_to_threshold(c, ["r"], 20.0, 1000.0)
    assert not out.iloc[0]["reached"] and out.iloc[0]["window_updates"] == 2
    first = sc.time_to_threshold(_curve("r", [100, 200], [30.0, 0.0]), ["r"], 20.0, 1000.0)
    assert not first.iloc[0]["reached"]  # nor the first update alone, before the window holds 2N episodes


def test_each_episode_weighs_equally_in_the_moving_average() -> None:
    c = _curve("r", [100, 200], [10.0, 40.0], per_update=[8, 4])  # (80 + 160) / 12 = 20
    assert sc.time_to_threshold(c, ["r"], 20.0, 1000.0).iloc[0]["reached"]
    assert not sc.time_to_threshold(c, ["r"], 20.5, 1000.0).iloc[0]["reached"]
    c = _curve("r", [100, 200, 300, 400], [0.0, 25.0, 25.0, 25.0])
    out = sc.time_to_threshold(c, ["r", "missing"], 20.0, 1000.0)
    assert out.iloc[0]["steps_to_threshold"] == 300.0 and out.iloc[0]["reached"]
    assert np.isnan(out.iloc[1]["steps_to_threshold"]) and not out.iloc[1]["reached"]
    assert list(out.columns) == sc.THRESHOLD_COLUMNS


def test_min_episodes_sets_the_window() -> None:
    c = _curve("r", [100, 200, 300, 400], [0.0, 25.0, 25.0, 25.0])
    out = sc.time_to_threshold(c, ["r"], 20.0, 1000.0, min_episodes=24)  # W = 3 updates of 8
    assert out.iloc[0]["window_updates"] == 3 and out.iloc[0]["steps_to_threshold"] == 400.0


# ---- a budget in episodes (total_episodes): every x-axis counts episodes -----------------------------------------
EPISODIC = _curve("e", [500, 700, 800, 850, 880], [-80.0, -40, -20, -14, -12], per_update=2)  # episodes 2..10


def test_final_return_of_an_episode_budget_takes_the_last_tenth_of_the_episodes() -> None:
    """Budget 10 episodes, N = 2: the updates ending after episode 9 (> 0.9 × 10): only the last (episodes 9-10);
    with the env-step rule the same rows would give another answer."""
    rows = EPISODIC.to_dict("records")
    assert sc.final_return(rows, 10, "episodes") == -12.0
    assert sc.final_return([{**r, "episodes": 2 * i} for i, r in enumerate(rows, 1)], 20, "episodes") == -12.0
    many = [{"env_steps": 10 * k, "episodes": k, "return_mean": float(k)} for k in range(1, 101)]  # N = 1
    assert sc.final_return(many, 100, "episodes") == np.mean(range(91, 101))  # exactly the last 10 episodes
    with pytest.raises(ValueError, match="unit='updates'"):
        sc.final_return(rows, 10, "updates")


def test_time_to_threshold_and_curves_of_an_episode_budget_count_episodes() -> None:
    th = sc.time_to_threshold(EPISODIC, ["e"], -30.0, 10, unit="episodes")
    # MA over 2 updates (4 episodes): (-40-20)/2 = -30 at the update ending at episode 6
    assert th.loc[0, "steps_to_threshold"] == 6 and bool(th.loc[0, "reached"])
    y = sc.binned_curves(EPISODIC, ["e"], np.array([5.0, 10.0]), unit="episodes")
    assert list(y[0]) == [-60.0, pytest.approx(-46 / 3)]  # (0, 5]: updates ending at 2, 4; (5, 10]: at 6, 8, 10


def test_run_scores_and_run_metric_read_each_runs_budget_unit() -> None:
    runs = pd.DataFrame({"run_id": ["e"], "total_steps": [""], "total_episodes": ["10"]})
    assert sc.run_budgets(runs)[0].tolist() == [10.0] and sc.run_budgets(runs)[1] == ["episodes"]
    assert sc.budget_unit(runs) == "episodes"
    out = sc.run_scores(EPISODIC, runs, budget=10, threshold=-30.0, unit="episodes")
    assert out.loc[0, "final_return"] == -12.0 and out.loc[0, "steps_to_threshold"] == 6
    assert sc.run_metric(runs, EPISODIC, "final_return") == {"e": -12.0}
    steps = pd.DataFrame({"run_id": ["r"], "total_steps": ["100"]})
    assert sc.budget_unit(steps) == "env_steps" and sc.run_budgets(steps)[1] == ["env_steps"]
    with pytest.raises(ValueError, match="mix budgets in env steps"):
        sc.budget_unit(pd.concat([runs, steps.assign(total_episodes="")]))
