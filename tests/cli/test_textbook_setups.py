"""The textbook setups through the command line (issue 34): `ablations train` with a linear policy, an initial policy, a
budget in episodes and either evaluation mode; `ablations eval` printing the policy's action probabilities at given
observations and along an episode; bad input refused with exit 2 before anything is written."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.evaluate.distribution import along_episode, at_observations
from ablations.evaluate.policy_io import load_policy, policy_path

runner = CliRunner()
SC = "ablations/ShortCorridor-v0"
LOGIT = math.log(0.05 / 0.95)


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def corridor(tmp_path_factory):
    """(results dir, runs.csv) of `ablations train` on the short corridor: linear, SGD, p(right) = 0.05, 30 episodes."""
    out = tmp_path_factory.mktemp("sc") / "t"
    res = runner.invoke(app, ["train", "--env", SC, "--seeds", "0-1", "--hidden", "linear", "--episodes", "1",
                              "--total-episodes", "30", "--optimizer", "sgd", "--lr", str(2**-12), "--baseline",
                              "none", "--normalize", "none", "--gamma", "1", "--init-logits", f"0,{LOGIT}",
                              "--eval-episodes", "3", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, pd.read_csv(out / "runs.csv", keep_default_na=False), res.output


def test_train_a_linear_policy_from_an_initial_policy_on_an_episode_budget(corridor):
    out, runs, output = corridor
    assert set(runs["status"]) == {"done"} and (runs["updates"] == 30).all()
    assert set(runs["total_episodes"]) == {30} and set(runs["total_steps"]) == {""} and set(runs["hidden"]) == {""}
    assert set(runs["eval_greedy"]) == {False}  # the default: eval_return is the stochastic policy's
    assert (runs["eval_return"] == runs["eval_return_stochastic"]).all() and (runs["eval_return_greedy"] == -2000).all()
    curves = pd.read_csv(out / "curves.csv")
    assert curves.groupby("run_id")["episodes"].max().tolist() == [30, 30]
    text = _words(output)
    assert "30 episodes each" in text and "in 30 episodes per run" in text
    assert re.search(r"eval_return stochastic= *-?\d+\.\d greedy= *-2000\.0", text)


def test_eval_greedy_flag_sets_which_return_is_eval_return(tmp_path):
    out = tmp_path / "g"
    res = runner.invoke(app, ["train", "--env", SC, "--seeds", "3", "--hidden", "linear", "--episodes", "1",
                              "--total-episodes", "5", "--eval-episodes", "2", "--eval-greedy", "--workers", "1",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "runs.csv")
    assert runs["eval_greedy"].tolist() == [True]
    assert runs["eval_return"].tolist() == runs["eval_return_greedy"].tolist()


@pytest.mark.parametrize("args,needle", [
    (["--steps", "100", "--total-episodes", "8"], "--steps 100 (total_steps) and --total-episodes 8 (total_episodes) "
                                                  "are both set"),
    (["--total-episodes", "9"], "total_episodes=9 is invalid; allowed: a multiple of episodes_per_update=8"),
    (["--init-logits", "0,0,0"], "init_logits=[0.0, 0.0, 0.0] has 3 value(s) but env_id='CartPole-v1' has 2 actions"),
    (["--init-logits", "a,b"], "init_logits='a,b' is invalid"),
    (["--init-log-std", "0"], "init_log_std=[0.0] does not fit env_id='CartPole-v1'"),
    (["--value-hidden", "x"], "value_hidden='x' is invalid"),
    (["--value-optimizer", "adagrad"], "adam | rmsprop | sgd"),
])
def test_bad_input_exits_2_before_anything_is_written(tmp_path, args, needle):
    out = tmp_path / "never"
    res = runner.invoke(app, ["train", *args, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert needle in _words(res.output) and "Traceback" not in res.output
    assert not out.exists()


def test_eval_prints_the_action_probabilities_at_an_observation(corridor):
    out, runs, _ = corridor
    run_id = runs["run_id"].iloc[0]
    res = runner.invoke(app, ["eval", str(out), "--run", run_id, "--episodes", "2", "--obs", "0"])
    assert res.exit_code == 0, res.output
    config, params = load_policy(policy_path(out, run_id))
    want = torch.softmax(params[1].double(), -1).numpy()  # a linear policy at obs 0: softmax of its bias
    table = res.output.split("action distribution at the given observations:\n")[1].splitlines()
    assert table[0].split() == ["obs_0", "p(a=0)", "p(a=1)"]
    assert [float(x) for x in table[1].split()] == pytest.approx([0.0, *want], abs=5e-5)
    assert 0.05 < want[1] < 0.2  # 30 episodes of SGD from p(right) = 0.05 moved it up, not far


def test_eval_trace_prints_every_step_of_one_episode(corridor):
    out, runs, _ = corridor
    run_id = runs["run_id"].iloc[1]
    res = runner.invoke(app, ["eval", str(out), "--run", run_id, "--episodes", "1", "--trace", "--seed", "4"])
    assert res.exit_code == 0, res.output
    config, params = load_policy(policy_path(out, run_id))
    steps = along_episode(config, params, seed=4)
    head = re.search(r"one stochastic episode \(seed 4\): (\d+) steps, return (\S+)", res.output)
    assert head and int(head.group(1)) == len(steps) and float(head.group(2)) == -len(steps)
    lines = res.output.split(head.group(0))[1].strip().splitlines()
    assert lines[0].split() == ["t", "obs_0", "p(a=0)", "p(a=1)", "action", "reward"]
    assert len(lines) == 1 + min(len(steps), 200) + (len(steps) > 200)
    assert (steps["reward"] == -1).all() and set(steps["action"]) <= {0, 1}


def test_eval_refuses_a_bad_observation(corridor):
    out, runs, _ = corridor
    for obs, needle in (("0,1", "observation [0.0, 1.0] has 2 component(s); ablations/ShortCorridor-v0 observations "
                                "have 1"), ("zero", "'zero' is not an observation")):
        res = runner.invoke(app, ["eval", str(out), "--run", runs["run_id"].iloc[0], "--obs", obs])
        assert res.exit_code == 2 and needle in _words(res.output) and "Traceback" not in res.output


def test_the_printed_distribution_is_the_one_the_policy_samples_from():
    """`at_observations` of a Categorical policy is what `Head.sample` draws: 40,000 samples' frequencies within 4
    binomial standard errors; a Gaussian's mean and std are its samples'."""
    from ablations.config import RunConfig
    from ablations.envs.registry import describe
    from ablations.train.nets import head_for, init_mlp, policy_sizes

    cfg = RunConfig(env_id="Acrobot-v1", hidden=(8,))
    spec = describe(cfg.env_id)
    params = [p[0] for p in init_mlp(policy_sizes(spec, cfg.hidden), [torch.Generator().manual_seed(1)], 3.0)]
    obs = [[0.5, -0.2, 0.1, 0.9, -1.0, 2.0]]
    probs = at_observations(cfg, params, obs)[["p(a=0)", "p(a=1)", "p(a=2)"]].to_numpy()[0]
    head, n = head_for(spec), 40_000
    out = torch.stack([torch.tensor(obs[0]) @ params[0] + params[1]]).tanh() @ params[2] + params[3]
    noise = torch.from_numpy(np.random.default_rng(0).random((n, 1), dtype=np.float32))
    freq = np.bincount(head.sample(out.expand(n, 3), noise).numpy(), minlength=3) / n
    assert np.all(np.abs(freq - probs) < 4 * np.sqrt(probs * (1 - probs) / n))
    assert probs.sum() == pytest.approx(1.0)

    gcfg = RunConfig(env_id="Pendulum-v1", hidden=(), init_log_std=(-0.7,))
    gspec = describe(gcfg.env_id)
    gparams = [p[0] for p in init_mlp(policy_sizes(gspec, ()), [torch.Generator().manual_seed(2)], 1.0)]
    row = at_observations(gcfg, gparams, [[0.3, 0.1, -0.5]]).iloc[0]
    gout = torch.tensor([[0.3, 0.1, -0.5]]) @ gparams[0] + gparams[1]
    draws = head_for(gspec).sample(gout.expand(n, 2), torch.from_numpy(
        np.random.default_rng(1).standard_normal((n, 1), dtype=np.float32)))[:, 0].numpy()
    assert abs(draws.mean() - row["mean_0"]) < 4 * row["std_0"] / np.sqrt(n)
    assert draws.std() == pytest.approx(row["std_0"], rel=0.02)
