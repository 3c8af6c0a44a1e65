"""studies/short_corridor.toml is Sutton & Barto's Example 13.1 / Figure 13.1, and what the package trains from it is
the book's figure: checked against exact numbers of the 3-state chain computed here (tests/helpers/corridor.py: the
values v(p) from the linear system, the optimum p* = 2 − √2, and the mean-gradient flow the average of many runs
follows).

The committed results (results/short_corridor, 100 seeds per step size) are read in the fast tests; the slow one trains
20 seeds of the book's largest step size through the package and checks where their policies land."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ablations.study.design import expand, load_study
from tests.helpers.corridor import mean_flow, optimum, start_value

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "studies" / "short_corridor.toml"
ALPHAS = (2.0**-12, 2.0**-13, 2.0**-14)


def test_the_study_file_is_the_books_setup():
    configs = expand(load_study(STUDY))
    assert len(configs) == 300 and sorted({c.policy_lr for c in configs}) == sorted(ALPHAS)
    assert sorted({c.seed for c in configs}) == list(range(100))
    for c in configs:
        assert (c.env_id, c.hidden, c.episodes_per_update, c.optimizer, c.momentum, c.gamma) == \
            ("ablations/ShortCorridor-v0", (), 1, "sgd", 0.0, 1.0)
        assert (c.returns, c.baseline, c.normalize, c.aggregate, c.entropy_coef) == ("rtg", "none", "none",
                                                                                       "episode", 0.0)
        assert c.budget == (1000, "episodes") and c.eval_greedy is False and c.max_grad_norm is None
    p0 = torch.softmax(torch.tensor(configs[0].init_logits, dtype=torch.float64), -1)[1]
    assert float(p0) == pytest.approx(0.05, abs=1e-12)  # the book's initial p(right)


@pytest.fixture(scope="module")
def committed():
    """The committed results: each run's episode returns as an array [seeds, 1000] per step size."""
    from ablations.report.load import load_results

    r = load_results(REPO / "results" / "short_corridor")
    curves = r.curves.merge(r.runs[["run_id", "policy_lr", "seed"]], on="run_id")
    out = {}
    curves = curves.assign(lr=pd.to_numeric(curves["policy_lr"]), ep=pd.to_numeric(curves["episodes"]),
                           ret=pd.to_numeric(curves["return_mean"]))
    for lr, g in curves.groupby("lr"):  # the report's loader prints levels with 6 digits: the α they stand for
        alpha = min(ALPHAS, key=lambda a: abs(a - lr))
        assert lr == pytest.approx(alpha, rel=1e-5)
        out[alpha] = g.pivot(index="seed", columns="ep", values="ret").to_numpy(float)
    return r, out


def test_every_committed_run_trained_1000_episodes(committed):
    r, returns = committed
    assert set(r.runs["status"]) == {"done"} and len(r.runs) == 300
    assert sorted(returns) == sorted(ALPHAS) and all(y.shape == (100, 1000) for y in returns.values())
    assert (pd.to_numeric(r.runs["eval_return_greedy"]) == -2000).all()  # the greedy policy never reaches G


def test_the_committed_curves_are_the_books_figure(committed):
    """Every run starts at the book's p = 0.05: the first episode's mean return is v(0.05) = −82.1 (within 4 standard
    errors); then, per step size, every block of 100 episodes averages what the mean-gradient flow predicts (within 4
    seed-level standard errors), the larger α learning faster; the last block at α = 2^-12 is within 0.15 of v*."""
    _, returns = committed
    first = np.concatenate([y[:, 0] for y in returns.values()])
    assert abs(first.mean() - start_value(0.05)) < 4 * first.std(ddof=1) / math.sqrt(len(first))
    p_star, v_star = optimum()
    blocks = {}
    for alpha, y in returns.items():
        flow = np.array([start_value(p) for p in mean_flow(alpha, 1000)])
        per_seed = y.reshape(len(y), 10, 100).mean(axis=2)  # [seeds, blocks]
        mean, se = per_seed.mean(axis=0), per_seed.std(axis=0, ddof=1) / math.sqrt(len(y))
        want = flow.reshape(10, 100).mean(axis=1)
        assert np.all(np.abs(mean - want) < 4 * se), (alpha, mean - want, se)
        assert mean[0] < -35 and np.all(np.diff(mean) > -3 * se[1:])  # rising from far below, never falling back
        blocks[alpha] = mean
    assert np.all(blocks[2**-12] > blocks[2**-13]) and np.all(blocks[2**-13][:9] > blocks[2**-14][:9])
    assert abs(blocks[2**-12][-1] - v_star) < 0.15


@pytest.mark.slow
def test_policies_trained_by_the_package_land_near_the_optimum():
    """20 seeds of α = 2^-12 (the study's own configs) through the package: their mean p(right) after 1000 episodes is
    where the mean-gradient flow says (within 4 standard errors of the seeds' spread), 2 − √2 minus the flow's
    remaining lag (0.029 after 1000 episodes; the flow's fixed point is p*), and its exact value within 0.1 of v*."""
    from ablations.train.engine import train_cohort

    torch.set_num_threads(1)
    configs = [c for c in expand(load_study(STUDY)) if c.policy_lr == 2**-12 and c.seed < 20]
    res = train_cohort(configs)
    p = np.array([float(torch.softmax(torch.from_numpy(res.policies[c.run_id][1]).double(), -1)[1])
                  for c in configs])
    se = p.std(ddof=1) / math.sqrt(len(p))
    p_star, v_star = optimum()
    p_flow = mean_flow(2**-12, 1001)[-1]  # p after the 1000th update
    assert p_star - p_flow == pytest.approx(0.029, abs=0.001)
    assert abs(p.mean() - p_flow) < 4 * se
    assert abs(p.mean() - p_star) < (p_star - p_flow) + 4 * se
    assert start_value(p.mean()) > v_star - 0.1
    curves = pd.DataFrame(res.curves)
    assert curves.groupby("run_id")["episodes"].max().eq(1000).all()
