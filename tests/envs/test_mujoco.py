"""gymnasium's MuJoCo tasks (the ``mujoco`` extra) through the package: their specs, a Gaussian policy's steps on the
gymnasium backend, and MuJoCo 4's deprecation warning kept out of the working directory."""

import numpy as np
import pytest
import torch

from ablations.config import RunConfig
from ablations.envs.preprocess import _mujoco_warning
from ablations.envs.registry import describe, make_cohort_env

pytest.importorskip("mujoco", reason="gymnasium's MuJoCo envs need pip install 'ablations[mujoco]'")


@pytest.mark.parametrize("env_id, obs_dim, act_dim", [("HalfCheetah-v5", 17, 6), ("Hopper-v5", 11, 3)])
def test_spec_is_a_gaussian_policy_over_the_box_with_gymnasiums_time_limit(env_id, obs_dim, act_dim):
    spec = describe(env_id)
    assert (spec.kind, spec.obs_dim, spec.act_dim, spec.max_episode_steps) == ("gaussian", obs_dim, act_dim, 1000)
    assert spec.action_low == (-1.0,) * act_dim and spec.action_high == (1.0,) * act_dim
    assert spec.obs_dtype == "float32"  # gymnasium's float64 observations are given to the policy as float32


def test_hopper_steps_on_the_gymnasium_backend_and_falls_over_under_full_torque(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = make_cohort_env([RunConfig(env_id="Hopper-v5", env_backend="gymnasium")], num_envs=2)
    obs = env.reset(np.array([0]), np.array([4]))
    assert obs.shape == (1, 2, 11) and obs.dtype == torch.float32
    ended = np.zeros(2, dtype=bool)
    for _ in range(200):
        _, rew, term, trunc = env.step(np.array([0]), torch.ones(1, 2, 3))
        assert rew.dtype == torch.float64 and not trunc.any()
        ended |= term.numpy()[0]
    env.close()
    assert ended.all()  # unhealthy long before the 1000-step limit
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_mujoco_warnings_drop_the_xml_deprecation_only(capsys):
    _mujoco_warning("compiler attribute 'settotalmass' is deprecated and will be removed")
    _mujoco_warning("Nan, Inf or huge value in QACC at DOF 0")
    assert capsys.readouterr().err == "MuJoCo warning: Nan, Inf or huge value in QACC at DOF 0\n"
