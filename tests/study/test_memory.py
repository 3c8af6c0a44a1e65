"""Memory sizing (`study.memory`): the estimates on hand-worked cases, the auto cohort size (the same number of
cohorts for every worker, within half of the free memory), and the refusal of a run that cannot fit alone."""

from __future__ import annotations

import math

import pytest

from ablations.config import RunConfig
from ablations.envs.spec import EnvSpec
from ablations.study.cohorts import DEFAULT_COHORT_SIZE
from ablations.study.executors import ExecutorError
from ablations.study.memory import (auto_cohort_size, available_memory, check_memory, param_bytes, probe_bytes,
                                    run_bytes)
from ablations.train.engine import PROBE_WAVE

#: CartPole's shape: 4 observations, 2 actions, 500 steps at most.
CARTPOLE = EnvSpec("CartPole-v1", obs_dim=4, kind="categorical", act_dim=2, max_episode_steps=500)
GiB = 2**30


def cfg(**kw) -> RunConfig:
    return RunConfig(env_id="CartPole-v1", hidden=(64, 64), episodes_per_update=8, **kw)


def test_estimates_by_hand() -> None:
    # rollout + update: 4 B × 500 steps × 8 episodes × (3·4 + 6·(64+64)) = 16,000 × 780
    assert run_bytes(cfg(), CARTPOLE) == 12_480_000
    # parameters, gradients, two Adam moments: 16 B × (4·64+64 + 64·64+64 + 64·2+2) = 16 × 4,610
    assert param_bytes(cfg(), CARTPOLE) == 73_760
    assert probe_bytes(cfg(probe_every=0), CARTPOLE) == 0
    # the engine's probe wave of pools: 4 B × wave × 500 × 8 × 16 batches × (3·4 + 4·(4+64+64))
    #                                 = wave × 256,000 × 540
    assert PROBE_WAVE == 6
    assert probe_bytes(cfg(probe_every=5, probe_batches=16), CARTPOLE) == 6 * 256_000 * 540 == 829_440_000
    no_limit = EnvSpec("X-v0", obs_dim=4, kind="categorical", act_dim=2, max_episode_steps=None)
    assert run_bytes(cfg(), no_limit) == 10 * run_bytes(cfg(), CARTPOLE)  # 5,000 steps assumed, not 500


def test_auto_cohort_size_gives_every_worker_the_same_number_of_cohorts() -> None:
    assert DEFAULT_COHORT_SIZE == 128
    assert auto_cohort_size(72, 2) == 36  # one cohort per worker
    assert auto_cohort_size(1440, 2) == 120  # 720 runs per worker: 6 cohorts of 120, not 5 of 128 and one of 80
    assert auto_cohort_size(1440, 8) == 90
    assert auto_cohort_size(3, 8) == 1
    assert auto_cohort_size(1000, None) == 128
    for n, w in [(1440, 2), (1000, 3), (97, 2), (5000, 8)]:
        size = auto_cohort_size(n, w)
        assert size <= 128 and math.ceil(n / size) % w == 0 or math.ceil(n / size) < w, (n, w, size)


def test_auto_cohort_size_within_half_the_memory_by_hand() -> None:
    # 8 GiB free, 2 workers: 2 GiB each; 100 MiB fixed per cohort leaves 1,948 MiB, 100 MiB per run → 19 runs
    assert auto_cohort_size(1440, 2, per_run_bytes=100 << 20, fixed_bytes=100 << 20, available=8 * GiB) == 19
    assert auto_cohort_size(72, 2, per_run_bytes=1 << 20, available=8 * GiB) == 36  # memory does not bind
    assert auto_cohort_size(1440, 2, per_run_bytes=4 * GiB, available=8 * GiB) == 1  # never below one run
    assert available_memory() > 0  # the default: /proc/meminfo's MemAvailable (8 GiB where unknown)


def test_check_memory_refuses_a_run_that_cannot_fit_alone() -> None:
    big = cfg(probe_every=5, probe_batches=16)  # 12.48 MB + 829.44 MB + 74 kB = 842 MB ≈ 0.78 GiB
    check_memory([(big, CARTPOLE)], workers=1, available=2 * GiB)  # a worker's share: 1 GiB
    with pytest.raises(ExecutorError, match=r"big.toml: .* one run needs about 0.8 GiB, more than a worker's share "
                                            r"of half the free memory \(0.5 GiB\)"):
        check_memory([(big, CARTPOLE)], workers=2, available=2 * GiB, where="big.toml")
