"""The study's worker-side trainer: the engine with the gradient-variance probes wired in through its hook."""
from __future__ import annotations
from typing import Any, Callable, Sequence
from ..config import RunConfig
from ..probes.checkpoint import probe_checkpoint
from ..train.engine import train_cohort as _engine_train_cohort

def train_cohort(configs: Sequence[RunConfig], *, on_update: Callable[[int], None] | None = None) -> Any:
    """Train a cohort (`ablations.train.engine.train_cohort`) with the probes at the configs' checkpoints."""
    return _engine_train_cohort(configs, on_update=on_update, probe=probe_checkpoint)
