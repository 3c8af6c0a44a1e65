"""What the report measures per run, and the references it is read against: the metric table (label, direction,
censored or not), the default threshold for steps to threshold, and the uniform-random policy's mean return with its
t-interval. The per-run scores themselves are `ablations.train.scores`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps


#: Metrics scored per run: name → (label with units, higher is better).
METRICS: dict[str, tuple[str, bool]] = {
    "final_return": ("final return (mean episode return, last 10% of the budget)", True),
    "auc": ("area under the learning curve (mean return over the budget)", True),
    "steps_to_threshold": ("env steps to reach the threshold (censored at the budget)", False),
    "eval_return": ("evaluation return after training", True),
}


#: Metrics that are right-censored (analysed by Kaplan–Meier, never by t-tests).
CENSORED = {"steps_to_threshold"}


def default_threshold(env_id: str | None, final_returns: np.ndarray) -> tuple[float, str]:
    """CartPole-v0: 195, other CartPole: 475 (the solved scores); else the 75th percentile of all final returns."""
    if env_id and env_id.startswith("CartPole-v0"):
        return 195.0, "the CartPole-v0 solved score (195)"
    if env_id and env_id.startswith("CartPole"):
        return 475.0, "the CartPole-v1 solved score (475)"
    finite = final_returns[np.isfinite(final_returns)]
    value = float(np.percentile(finite, 75)) if finite.size else 0.0
    return value, "the 75th percentile of all runs' final returns (no env-specific default)"


RANDOM_POLICY_COLUMNS = ["env_id", "episodes", "seed", "mean", "std", "ci_low", "ci_high", "ci_level", "ci_method",
                         "min", "max"]


def t_interval(mean: float, sd: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The t-interval of a mean from its summary statistics: mean ± t_{n−1, (1+level)/2}·sd/√n (sd with ddof = 1).
    NaN ends for n < 2 or a non-finite sd; [mean, mean] when sd = 0."""
    if n < 2 or not np.isfinite(sd):
        return np.nan, np.nan
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * sd / np.sqrt(n)
    return mean - half, mean + half


def random_policy(random_scores: pd.DataFrame, env_id: str, level: float = 0.95) -> pd.DataFrame:
    """The uniform-random policy's mean return on `env_id` with its t-interval over the episodes (`t_interval`),
    from a `random_scores.csv` table (columns env_id, episodes, seed, random_score, random_std, random_min,
    random_max; `study.random_scores`): one row of `RANDOM_POLICY_COLUMNS`, none when the table lacks `env_id`."""
    rows = []
    for _, r in random_scores[random_scores["env_id"] == env_id].head(1).iterrows():
        mean, sd, n = float(r["random_score"]), float(r.get("random_std", np.nan)), int(r["episodes"])
        low, high = t_interval(mean, sd, n, level)
        rows.append({"env_id": env_id, "episodes": n, "seed": int(r["seed"]), "mean": mean, "std": sd,
                     "ci_low": low, "ci_high": high, "ci_level": level,
                     "ci_method": "t" if np.isfinite(low) else "none", "min": float(r.get("random_min", np.nan)),
                     "max": float(r.get("random_max", np.nan))})
    return pd.DataFrame(rows, columns=RANDOM_POLICY_COLUMNS)
