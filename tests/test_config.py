import json
import math
import os
import subprocess
import sys

import pytest

from ablations.config import AXES, ConfigError, RunConfig


def test_defaults_are_valid_and_run_id_is_stable_hex():
    cfg = RunConfig()
    assert len(cfg.run_id) == 12 and int(cfg.run_id, 16) >= 0
    assert cfg.run_id == RunConfig().run_id
    assert cfg.run_id != cfg.replace(seed=1).run_id


@pytest.mark.parametrize("field,value,allowed", [
    ("returns", "monte-carlo", "full | rtg"),
    ("baseline", "critic", "none | mean | loo | value"),
    ("normalize", "yes", "none | returns | advantages"),
    ("entropy_coef", -0.1, ">= 0"),
    ("gamma", 1.5, "[0, 1]"),
    ("policy_lr", 0.0, "> 0"),
    ("episodes_per_update", 0, "integer"),
    ("total_steps", -5, "integer"),
    ("hidden", (64, 0), "positive integers"),
    ("activation", "gelu", "tanh | relu"),
    ("env_backend", "gpu", "auto | native | gymnasium"),
    ("max_grad_norm", -1.0, "> 0"),
    ("seed", -1, "integer"),
])
def test_bad_values_name_the_field_and_allowed_values(field, value, allowed):
    with pytest.raises(ConfigError) as exc:
        RunConfig(**{field: value})
    assert field in str(exc.value) and allowed in str(exc.value)


def test_loo_needs_two_episodes():
    with pytest.raises(ConfigError, match="episodes_per_update"):
        RunConfig(baseline="loo", episodes_per_update=1)


def test_mean_needs_two_episodes():
    """The mean of one episode's signal is the signal itself: an exactly zero gradient (issue 28, item 9)."""
    with pytest.raises(ConfigError, match=r"episodes_per_update=1 is invalid; allowed: an integer >= 2 with "
                                          r"baseline='mean'"):
        RunConfig(baseline="mean", episodes_per_update=1)
    RunConfig(baseline="mean", episodes_per_update=2)


def test_from_dict_refuses_unknown_fields_and_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown field.*'lr'.*known fields"):
        RunConfig.from_dict({"lr": 0.1})
    assert RunConfig.from_dict({"hidden": [32, 32], "entropy_coef": 0}).hidden == (32, 32)


def test_ints_become_floats_so_equal_configs_have_equal_ids():
    assert RunConfig(entropy_coef=0).run_id == RunConfig(entropy_coef=0.0).run_id


def test_axes_match_literals():
    assert AXES["baseline"] == ("none", "mean", "loo", "value")


def test_run_id_is_the_same_in_other_processes_and_hash_seeds():
    code = "from ablations.config import RunConfig; print(RunConfig(seed=7, baseline='loo').run_id)"
    ids = set()
    for hs in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": hs})
        ids.add(out.stdout.strip())
    assert ids == {RunConfig(seed=7, baseline="loo").run_id}


def test_optimizer_fields_default_to_adam_and_are_validated():
    cfg = RunConfig()
    assert (cfg.optimizer, cfg.momentum, cfg.rmsprop_decay, cfg.optimizer_eps) == ("adam", 0.0, 0.99, 1e-8)
    assert RunConfig(optimizer="rmsprop", momentum=0, rmsprop_decay=1).momentum == 0.0  # ints become floats
    for bad in (dict(optimizer="adagrad"), dict(momentum=-0.1), dict(momentum=1.5), dict(rmsprop_decay=1.01),
                dict(optimizer_eps=-1e-8), dict(optimizer_eps=math.nan)):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RunConfig(**bad)


def test_rally_returns_are_a_level_but_not_probed():
    assert RunConfig(returns="rally").returns == "rally" and "rally" not in AXES["returns"]
    with pytest.raises(ConfigError, match="probe_every"):
        RunConfig(returns="rally", probe_every=5)


def test_a_field_at_its_id_neutral_value_leaves_the_run_id_as_before_it_existed():
    """config.ID_NEUTRAL: each entry is a field whose neutral value drops out of the id (the hash of the JSON without
    it), and whose other values enter it."""
    import hashlib
    import json

    from ablations.config import ID_NEUTRAL

    cfg = RunConfig(seed=3)
    without = {k: v for k, v in cfg.to_dict().items() if k not in ID_NEUTRAL}
    want = hashlib.sha256(json.dumps(without, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]
    assert cfg.run_id == want
    for name, neutral in ID_NEUTRAL.items():
        assert getattr(RunConfig(), name) == neutral, name  # the default is the neutral value


# ---- issue 34: linear policies, an initial policy, the critic's own layers, a budget in episodes ----------------
def test_a_linear_policy_and_the_critics_layers_are_valid_configs():
    cfg = RunConfig(hidden=[], value_hidden=[32])
    assert cfg.hidden == () and cfg.value_hidden == (32,) and cfg.critic_hidden == (32,)
    assert RunConfig(hidden=(8,)).critic_hidden == (8,)  # value_hidden None: the policy's layers
    assert RunConfig(value_hidden=[]).critic_hidden == ()  # a linear critic
    for field, value in (("hidden", [0]), ("hidden", [8, -1]), ("value_hidden", [1.5]), ("value_hidden", "64")):
        with pytest.raises(ConfigError, match=f"{field}=.*allowed: a list of positive integers.*linear"):
            RunConfig(**{field: value})


def test_initial_policy_fields_become_float_tuples_and_are_validated():
    cfg = RunConfig(init_logits=[0, -2.5])
    assert cfg.init_logits == (0.0, -2.5) and cfg.run_id == RunConfig(init_logits=(0.0, -2.5)).run_id
    assert RunConfig.from_dict(json.loads(cfg.canonical_json())) == cfg  # a saved policy's config reads back
    for bad in (dict(init_logits=[]), dict(init_logits=[math.nan]), dict(init_log_std=["a"]),
                dict(init_logits=[True])):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            RunConfig(**bad)
    with pytest.raises(ConfigError, match="init_log_std=.*None when init_logits is set"):
        RunConfig(init_logits=[0.0], init_log_std=[0.0])


def test_the_budget_is_exactly_one_of_total_steps_and_total_episodes():
    assert RunConfig().total_steps == 100_000 and RunConfig().budget == (100_000, "env_steps")
    cfg = RunConfig(total_episodes=1000, episodes_per_update=1)
    assert cfg.total_steps is None and cfg.budget == (1000, "episodes") and cfg.planned_steps == 1000
    assert RunConfig(total_steps=None).total_steps == 100_000  # None: the default unless total_episodes
    assert RunConfig.from_dict(json.loads(cfg.canonical_json())) == cfg
    with pytest.raises(ConfigError, match=r"total_steps=5000 and total_episodes=80 are both set; allowed: exactly "
                                          r"one of them"):
        RunConfig(total_steps=5000, total_episodes=80)
    with pytest.raises(ConfigError, match="both set"):
        RunConfig().replace(total_episodes=80)  # replace: set total_steps=None with it
    assert RunConfig().replace(total_steps=None, total_episodes=80).budget == (80, "episodes")
    with pytest.raises(ConfigError, match=r"total_episodes=1001 is invalid; allowed: a multiple of "
                                          r"episodes_per_update=8"):
        RunConfig(total_episodes=1001)
    with pytest.raises(ConfigError, match="total_episodes=0 is invalid; allowed: an integer"):
        RunConfig(total_episodes=0)


def test_eval_greedy_defaults_to_the_stochastic_return_and_enters_the_run_id():
    """The issue's new default (README "Evaluation"): the stochastic policy's return is REINFORCE's objective. Not an
    ID_NEUTRAL field: a config that leaves it unset has a new id (published studies pin `eval_greedy = true`)."""
    from ablations.config import ID_NEUTRAL

    assert RunConfig().eval_greedy is False and "eval_greedy" not in ID_NEUTRAL
    assert RunConfig().run_id != RunConfig(eval_greedy=True).run_id


def test_issue_34_fields_are_id_neutral_at_their_defaults():
    from ablations.config import ID_NEUTRAL

    new = {"total_episodes": None, "value_hidden": None, "value_optimizer": "adam", "init_logits": None,
           "init_log_std": None}
    assert {k: ID_NEUTRAL[k] for k in new} == new
    assert "total_episodes" not in RunConfig().canonical_json() and '"total_steps":100000' in \
        RunConfig().canonical_json()
    for name, value in (("value_hidden", (8,)), ("value_optimizer", "sgd"), ("init_logits", (0.0, 1.0))):
        assert RunConfig(**{name: value}).run_id != RunConfig().run_id, name
