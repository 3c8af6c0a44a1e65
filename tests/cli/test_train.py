import pandas as pd
import pytest
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.cli.common import parse_seeds
from ablations.config import ConfigError

runner = CliRunner()


def test_train_writes_runs_and_curves(tmp_path):
    out = tmp_path / "t"
    res = runner.invoke(app, ["train", "--env", "CartPole-v1", "--seeds", "0-2", "--baseline", "value", "--returns",
                              "rtg", "--normalize", "advantages", "--entropy-coef", "0.01", "--steps", "1500",
                              "--hidden", "16", "--eval-episodes", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(out / "runs.csv")
    curves = pd.read_csv(out / "curves.csv")
    assert sorted(runs["seed"]) == [0, 1, 2] and set(runs["status"]) == {"done"}
    assert set(runs["baseline"]) == {"value"} and set(runs["entropy_coef"]) == {0.01}
    assert set(curves["run_id"]) == set(runs["run_id"])
    assert (runs["env_steps"] >= 1500).all()


@pytest.mark.parametrize("args,needle", [
    (["--env", "NoSuchEnv-v0"], "env_id"),
    (["--env", "FrozenLake-v1"], "observation space"),
    (["--baseline", "critic"], "none | mean | loo | value"),
    (["--returns", "mc"], "full | rtg"),
    (["--normalize", "z"], "none | returns | advantages"),
    (["--entropy-coef", "-0.5"], "entropy_coef"),
    (["--seeds", "3-1"], "seeds"),
    (["--hidden", "a-b"], "hidden"),
    (["--aggregate", "mean"], "episode | step"),
    (["--optimizer", "adamw"], "adam | rmsprop | sgd"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, args, needle):
    out = tmp_path / "never"
    res = runner.invoke(app, ["train", *args, "--out", str(out)])
    assert res.exit_code != 0
    assert needle in " ".join(res.output.split())
    assert not out.exists()


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3] and parse_seeds("1,5") == [1, 5] and parse_seeds("7") == [7]
    with pytest.raises(ConfigError):
        parse_seeds("1,1")


def test_train_over_several_workers_gives_the_same_bytes_as_one_cohort(tmp_path):
    """`--workers 2` deals the seeds into two cohorts trained in two processes; invariant 1 makes every file
    byte-identical to `--workers 1` (one cohort in this process), policies included."""
    args = ["train", "--env", "CartPole-v1", "--seeds", "0-4", "--steps", "1200", "--hidden", "8", "--eval-episodes",
            "2", "--probe-every", "2"]
    for w in ("1", "2"):
        res = runner.invoke(app, [*args, "--workers", w, "--out", str(tmp_path / w)])
        assert res.exit_code == 0, res.output
        assert f"as {w} cohort(s) on {w} worker(s)" in " ".join(res.output.split())
    for name in ("runs.csv", "curves.csv", "probes.csv"):
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name
    one = sorted((tmp_path / "1" / "policies").iterdir())
    two = sorted((tmp_path / "2" / "policies").iterdir())
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 5
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(one, two))


def test_train_takes_every_axis_of_a_study(tmp_path):
    """--aggregate and --optimizer reach the runs: the rows equal those of the same RunConfig trained directly."""
    from ablations.config import RunConfig
    from ablations.train.engine import train_cohort

    res = runner.invoke(app, ["train", "--env", "CartPole-v1", "--seeds", "3", "--aggregate", "step", "--optimizer",
                              "sgd", "--lr", "0.05", "--returns", "gpomdp", "--baseline", "loo", "--normalize",
                              "none", "--hidden", "8", "--steps", "600", "--eval-episodes", "0", "--workers", "1",
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    runs = pd.read_csv(tmp_path / "t" / "runs.csv", dtype={"run_id": str})  # a run id may be all digits
    assert list(runs[["aggregate", "optimizer", "returns", "baseline"]].iloc[0]) == ["step", "sgd", "gpomdp", "loo"]
    cfg = RunConfig(env_id="CartPole-v1", seed=3, aggregate="step", optimizer="sgd", policy_lr=0.05, returns="gpomdp",
                    baseline="loo", normalize="none", hidden=(8,), total_steps=600, eval_episodes=0)
    direct = train_cohort([cfg])
    assert runs["run_id"].iloc[0] == cfg.run_id
    assert runs["final_return"].iloc[0] == pytest.approx(direct.runs[0]["final_return"], rel=0, abs=0)


def test_train_takes_the_lock_run_takes(tmp_path):
    """Two `train --out X` at once: the second is refused with exit 3, as `run` refuses, and writes nothing
    (issue 28, item 5)."""
    from ablations.study.store import ResultsDir

    out = tmp_path / "t"
    with ResultsDir(out).lock():  # the first `train` (or a `run`) holds X
        res = runner.invoke(app, ["train", "--seeds", "0", "--steps", "300", "--hidden", "8", "--eval-episodes",
                                  "0", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 3 and "in use" in " ".join(res.output.split()), res.output
    assert not any((out / n).exists() for n in ("runs.csv", "curves.csv", "policies"))
