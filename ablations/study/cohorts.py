"""Cohorts: the runs that train together in one worker. `cohorts` groups a study's expanded runs (`design.expand`) by
`RunConfig.cohort_key()` and splits large groups; a cohort's id is derived from its run ids, so the same runs give the
same cohorts in any process. Rows never depend on the cohort a run trains in (invariant 1)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Sequence

from ..config import RunConfig

#: Default upper bound on the runs trained together by one worker (one cohort).
DEFAULT_COHORT_SIZE = 128


@dataclass(frozen=True)
class Cohort:
    """Runs that share `cohort_key()` and train together; `id` is derived from the run_ids (stable)."""

    id: str
    configs: tuple[RunConfig, ...]

    @property
    def run_ids(self) -> list[str]:
        return [c.run_id for c in self.configs]

    @property
    def env_steps(self) -> int:
        return sum(c.planned_steps for c in self.configs)


def cohort_id(run_ids: Sequence[str]) -> str:
    """12 hex digits of the SHA-256 of the run_ids joined in order."""
    return hashlib.sha256(",".join(run_ids).encode()).hexdigest()[:12]


def cohorts(configs: Sequence[RunConfig], max_size: int = DEFAULT_COHORT_SIZE) -> list[Cohort]:
    """Group runs by `cohort_key()` (groups in order of first appearance), splitting a group larger than `max_size`
    into the fewest cohorts of near-equal size, dealt round-robin (cohort i gets runs i, i + n, i + 2n, … of its
    group, in input order) so that every cohort gets the same mix of configs, and so about the same cost."""
    if max_size < 1:
        raise ValueError(f"max_size={max_size} is invalid; allowed: an integer >= 1")
    groups: dict[tuple, list[RunConfig]] = {}
    for cfg in configs:
        groups.setdefault(cfg.cohort_key(), []).append(cfg)
    out = []
    for members in groups.values():
        n_chunks = math.ceil(len(members) / max_size)
        for i in range(n_chunks):
            chunk = tuple(members[i::n_chunks])
            out.append(Cohort(cohort_id([c.run_id for c in chunk]), chunk))
    return out
