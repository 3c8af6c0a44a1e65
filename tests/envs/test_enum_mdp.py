"""`ablations/EnumMDP-v0` is test-only: importing the package does not register it; importing its module does."""

import subprocess
import sys

import gymnasium as gym

from ablations.envs import enum_mdp


def _registered_after(statement: str) -> bool:
    code = f"{statement}\nimport gymnasium as gym\nprint('{enum_mdp.ENV_ID}' in gym.registry)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


def test_importing_the_package_does_not_register_the_test_env():
    assert not _registered_after("import ablations, ablations.envs, ablations.envs.registry, ablations.train.engine")


def test_importing_the_module_registers_it_with_its_time_limit():
    assert _registered_after("import ablations.envs.enum_mdp")
    assert gym.registry[enum_mdp.ENV_ID].max_episode_steps == enum_mdp.HORIZON
    enum_mdp.register()  # idempotent
    env = gym.make(enum_mdp.ENV_ID)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (enum_mdp.N_STATES,)
