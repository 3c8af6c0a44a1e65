"""Per-run random streams, all derived from `numpy.random.SeedSequence(seed)`.

Each purpose has its own child sequence, so using one stream more or less (e.g. turning probes on) never shifts
another. Nothing here is global: every stream is created for one run and passed explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: The named streams of one run, in spawn order (append only: reordering changes every run).
STREAM_NAMES: tuple[str, ...] = ("init", "env", "actions", "probes", "eval")


@dataclass
class RunStreams:
    """The random streams of one run."""

    init: torch.Generator  # network initialization
    env: np.random.Generator  # a reset seed per update
    actions: np.random.Generator  # action-sampling noise
    probes: np.random.Generator  # probe pools: their own env seeds and action noise
    eval: np.random.Generator  # final evaluation episodes


def _child(seed: int, name: str) -> np.random.SeedSequence:
    return np.random.SeedSequence(seed, spawn_key=(STREAM_NAMES.index(name),))


def torch_generator(seq: np.random.SeedSequence) -> torch.Generator:
    """A CPU torch generator seeded with 63 bits drawn from `seq`."""
    g = torch.Generator()
    g.manual_seed(int(seq.generate_state(1, np.uint64)[0] >> np.uint64(1)))
    return g


def run_streams(seed: int) -> RunStreams:
    return RunStreams(
        init=torch_generator(_child(seed, "init")),
        env=np.random.Generator(np.random.PCG64(_child(seed, "env"))),
        actions=np.random.Generator(np.random.PCG64(_child(seed, "actions"))),
        probes=np.random.Generator(np.random.PCG64(_child(seed, "probes"))),
        eval=np.random.Generator(np.random.PCG64(_child(seed, "eval"))),
    )


def draw_seed(gen: np.random.Generator) -> int:
    """A 31-bit environment seed from a run's stream."""
    return int(gen.integers(0, 2**31 - 1))
