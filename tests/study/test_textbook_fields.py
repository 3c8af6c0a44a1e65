"""Study files with issue 34's fields: a budget in episodes, a linear policy and an initial policy expand to the
intended configs; two budgets, or an initial policy that does not fit the env, are refused by `load_study` (a
`StudyError` naming the field) before anything is trained."""

from __future__ import annotations

import pytest

from ablations.study.design import expand, load_study
from ablations.study.sections import StudyError

BASE = """name = "t"
seeds = 2
[fixed]
env_id = "CartPole-v1"
hidden = []
episodes_per_update = 4
"""


def _load(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text)
    return load_study(path)


def test_a_budget_in_episodes_and_an_initial_policy_expand(tmp_path):
    configs = expand(_load(tmp_path, BASE + "total_episodes = 40\ninit_logits = [0.5, -0.5]\n"))
    assert [c.budget for c in configs] == [(40, "episodes")] * 2
    assert {(c.hidden, c.init_logits, c.total_steps) for c in configs} == {((), (0.5, -0.5), None)}


@pytest.mark.parametrize("extra,needle", [
    ("total_steps = 1000\ntotal_episodes = 40\n", "total_steps=1000 and total_episodes=40 are both set"),
    ("total_episodes = 42\n", "total_episodes=42 is invalid; allowed: a multiple of episodes_per_update=4"),
    ("init_logits = [0.0, 0.0, 0.0]\n", "init_logits=[0.0, 0.0, 0.0] has 3 value(s) but env_id='CartPole-v1' has 2 "
                                        "actions"),
    ("init_log_std = [0.0]\n", "init_log_std=[0.0] does not fit env_id='CartPole-v1'"),
])
def test_bad_budgets_and_initial_policies_are_refused_on_load(tmp_path, extra, needle):
    with pytest.raises(StudyError) as exc:
        _load(tmp_path, BASE + extra)
    assert needle in str(exc.value) and "t.toml" in str(exc.value)


def test_an_initial_policy_is_checked_against_every_env_of_a_multi_env_study(tmp_path):
    text = BASE.replace('env_id = "CartPole-v1"\n', "") + "init_logits = [0.0, 0.0]\n[factors]\n" \
        'env_id = ["CartPole-v1", "Acrobot-v1"]\n'
    with pytest.raises(StudyError, match="has 3 actions"):
        _load(tmp_path, text)
