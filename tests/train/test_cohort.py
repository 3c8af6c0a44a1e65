"""cohort: the trainer's state, and the read-only view a probe hook is given."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from ablations.config import RunConfig
from ablations.train.cohort import Checkpoint, CohortState, CohortView, RunState
from ablations.train.engine import Trainer
from ablations.train.rollout import Batch
from ablations.train.seeding import run_streams


def tiny_pool() -> Batch:
    ones = torch.ones(1, 2, dtype=torch.bool)
    return Batch(obs=torch.zeros(1, 2, 1, 4), actions=torch.zeros(1, 2, 1, dtype=torch.long),
                 rewards=torch.ones(1, 2, 1), mask=torch.ones(1, 2, 1, dtype=torch.bool),
                 lengths=torch.ones(1, 2, dtype=torch.long), terminated=ones, truncated=~ones)


def test_a_run_starts_running_with_no_steps_and_no_eval_return():
    cfg = RunConfig(seed=4)
    s = RunState(cfg, run_streams(cfg.seed))
    assert (s.env_steps, s.episodes, s.updates, s.status, s.error, s.curves) == (0, 0, 0, "running", "", [])
    assert math.isnan(s.eval_return)


def test_the_view_reads_the_state_and_cannot_be_written():
    configs = [RunConfig(seed=s, hidden=(4,), activation="relu", total_steps=100) for s in range(2)]
    trainer = Trainer(configs)
    try:
        state = trainer.cohort
        assert isinstance(state, CohortState) and state.activation == "relu"
        cp = Checkpoint(7, tiny_pool(), tuple(p[1] for p in state.policy), tuple(p[1] for p in state.value),
                        state.runs[1].streams.probes)
        checkpoints = {1: cp}
        view = CohortView.of(state, checkpoints)
        assert view.configs == tuple(configs) and view.head is state.head and view.activation == "relu"
        assert view.checkpoints[1] is cp and list(view.checkpoints) == [1]
        checkpoints[0] = cp  # the view keeps its own copy of the mapping
        assert list(view.checkpoints) == [1]
        with pytest.raises(TypeError):
            view.checkpoints[0] = cp  # type: ignore[index]
        with pytest.raises(dataclasses.FrozenInstanceError):
            view.activation = "tanh"  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            cp.env_steps = 8  # type: ignore[misc]
        assert isinstance(cp.stream, np.random.Generator)
    finally:
        trainer.close()
