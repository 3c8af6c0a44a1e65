"""`ablations.study.worker.train_cohort`: the engine with the gradient-variance probes wired in. A probed cohort
trained through the worker gives exactly the rows of `engine.train_cohort(..., probe=probe_checkpoint)` (runs,
curves, probes, policies, the `on_update` calls); without the hook the engine refuses such a config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ablations.config import RunConfig
from ablations.probes.checkpoint import probe_checkpoint
from ablations.study.worker import train_cohort
from ablations.train import engine


def _configs(probe_every: int) -> list[RunConfig]:
    """Two runs of one cohort (seeds 0, 1): 4 episodes per update, 600 steps, probes of 3 batches."""
    return [RunConfig(seed=s, total_steps=600, hidden=(8,), episodes_per_update=4, eval_episodes=1,
                      probe_every=probe_every, probe_batches=3) for s in (0, 1)]


def _frames(result) -> dict[str, pd.DataFrame]:
    return {name: pd.DataFrame(getattr(result, name)) for name in ("runs", "curves", "probes")}


@pytest.fixture(scope="module")
def probed():
    """The worker's and the engine's training of the same probed cohort, each with its on_update calls."""
    configs = _configs(probe_every=2)
    calls_worker: list[int] = []
    calls_engine: list[int] = []
    worker = train_cohort(configs, on_update=calls_worker.append)
    direct = engine.train_cohort(configs, on_update=calls_engine.append, probe=probe_checkpoint)
    return configs, worker, direct, calls_worker, calls_engine


def test_probe_rows_equal_the_engines_with_the_probe_hook(probed):
    configs, worker, direct, _, _ = probed
    mine, theirs = _frames(worker), _frames(direct)
    assert len(mine["probes"]) > 0
    for name in ("runs", "curves", "probes"):
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=True, obj=name)
    assert set(mine["probes"]["run_id"]) == {c.run_id for c in configs}


def test_probes_are_taken_at_update_0_and_every_probe_every_updates(probed):
    _, worker, _, _, _ = probed
    probes, runs = _frames(worker)["probes"], _frames(worker)["runs"]
    for run_id, rows in probes.groupby("run_id"):
        updates = sorted(set(rows["update"]))
        n_updates = int(runs.loc[runs["run_id"] == run_id, "updates"].iloc[0])
        assert updates[0] == 0 and all(u % 2 == 0 for u in updates)
        assert updates == list(range(0, updates[-1] + 1, 2)) and updates[-1] <= n_updates


def test_policies_and_on_update_calls_are_the_engines(probed):
    _, worker, direct, calls_worker, calls_engine = probed
    assert calls_worker == calls_engine and len(calls_worker) > 0
    assert sum(calls_worker) == sum(r["env_steps"] for r in worker.runs)  # every step reported once
    assert worker.policies.keys() == direct.policies.keys()
    for run_id in worker.policies:
        assert all(np.array_equal(a, b) for a, b in zip(worker.policies[run_id], direct.policies[run_id]))


def test_without_the_hook_the_engine_refuses_a_probed_config():
    with pytest.raises(ValueError, match="have probe_every > 0 but no probe hook was given"):
        engine.train_cohort(_configs(probe_every=2))


def test_an_unprobed_cohort_has_no_probe_rows_and_equals_the_engine_without_a_hook():
    configs = _configs(probe_every=0)
    mine, theirs = _frames(train_cohort(configs)), _frames(engine.train_cohort(configs))
    assert mine["probes"].empty
    for name in ("runs", "curves"):
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=True, obj=name)

