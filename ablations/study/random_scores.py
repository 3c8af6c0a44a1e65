"""The random-policy score of each environment of a study: `results/<study>/random_scores.csv`.

The driver measures it before training (`ensure_random_scores`, called by `driver.run_study`) for a study that sweeps
`env_id`, and for a single-env study whose `[report]` table sets `random_episodes`, so the number is stored with the
results and published with them: a multi-env report normalizes its scores by it; a single-env report draws it as the
learning curves' dashed line and states it with its t-interval (`report.metrics.random_policy`). Columns: `env_id,
episodes, seed, random_score` (mean return of the uniform-random policy over `episodes` complete episodes, its own
stream: `ablations.evaluate.random_policy`), `random_std, random_min, random_max, reward_threshold` (gymnasium's
registered
solved score, empty when the env has none). Written atomically; a rerun keeps a file that already holds the same envs,
episodes and seed. For a multi-env study `ablations report` measures the same numbers itself (and says so) when the file
is absent; a single-env report without it has no random line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..evaluate.random_policy import DEFAULT_EPISODES, random_policy_returns, reference_score
from .design import Study
from .results_format import write_csv_atomic

FILE = "random_scores.csv"
COLUMNS = ["env_id", "episodes", "seed", "random_score", "random_std", "random_min", "random_max",
           "reward_threshold"]


def random_scores_table(env_ids: Sequence[str], episodes: int = DEFAULT_EPISODES, seed: int = 0,
                        preprocess: dict[str, str | None] | None = None) -> pd.DataFrame:
    """One row per env (columns `COLUMNS`): the uniform-random policy's returns over `episodes` episodes."""
    rows = []
    for env_id in env_ids:
        r = random_policy_returns(env_id, episodes, seed, (preprocess or {}).get(env_id))
        threshold = reference_score(env_id)
        rows.append({"env_id": env_id, "episodes": episodes, "seed": seed, "random_score": float(r.mean()),
                     "random_std": float(r.std(ddof=1)) if len(r) > 1 else 0.0, "random_min": float(r.min()),
                     "random_max": float(r.max()), "reward_threshold": np.nan if threshold is None else threshold})
    return pd.DataFrame(rows, columns=COLUMNS)


def study_settings(study: Study) -> tuple[list[str], int, int]:
    """(env ids, episodes, seed) of the random-policy measurement a study asks for (`[report] random_episodes`,
    `[report] seed`)."""
    report = study.report or {}
    return study.env_ids, int(report.get("random_episodes", DEFAULT_EPISODES)), int(report.get("seed", 0))


def measures_random_scores(study: Study) -> bool:
    """Whether the driver measures the random policy: always for a study with more than one env, and for a
    single-env study only when its `[report]` table sets `random_episodes`."""
    return len(study.env_ids) >= 2 or "random_episodes" in (study.report or {})


def ensure_random_scores(root: str | Path, study: Study) -> Path | None:
    """Write `root/random_scores.csv` when `measures_random_scores(study)` (unless an equal measurement is there);
    return its path, or None when the study does not ask for it (a single-env study without `[report]
    random_episodes`). The study's `imports` (with its `import_paths`) are imported first, so a custom or ALE env id
    resolves in this process."""
    if not measures_random_scores(study):
        return None
    env_ids, episodes, seed = study_settings(study)
    path = Path(root) / FILE
    if path.exists():
        old = pd.read_csv(path)
        if (list(old.get("env_id", [])) == env_ids and set(old.get("episodes", [])) == {episodes}
                and set(old.get("seed", [])) == {seed}):
            return path
    from ..envs.registry import import_modules
    from .design import expand

    import_modules(study.imports, study.import_paths)
    preprocess = {}
    for cfg in expand(study):
        preprocess.setdefault(cfg.env_id, cfg.preprocess)
    Path(root).mkdir(parents=True, exist_ok=True)
    write_csv_atomic(path, random_scores_table(env_ids, episodes, seed, preprocess))
    return path
