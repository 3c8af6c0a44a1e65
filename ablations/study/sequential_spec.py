"""The `[sequential]` section of a study file: adaptive seeding (waves and stopping rule: `study.sequential`).

    seeds = 20                  # the most seeds a config can get, in the order they are added (here 0..19)
    [sequential]
    min = 5                     # every config trains its first `min` seeds (wave 1)
    step = 5                    # each later wave adds `step` seeds to the configs of an undecided contrast
    families = ["main"]         # the contrasts the stopping rule decides (below); default ["main"]
    metric = "final_return"     # the per-run score they are decided on: "final_return" | "eval_return" (runs.csv)

Families (each one Bonferroni family per env, at the report's α):
- "main": every main effect, a factor's level vs the factor's first level (the file's order), averaged over the other
  factors' levels (the report's main effects);
- "interactions": every two-way interaction, (a, b) − (a₀, b) − (a, b₀) + (a₀, b₀) averaged over the other factors;
- "configs": every config vs `[report] reference` (which it requires).

Owns parsing and validation only (no import of `design`, which imports this module); every error is a `ConfigError`
naming the file and the key, which `design.parse_study` turns into a `StudyError` (exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..config import ConfigError

#: The contrast families the stopping rule can decide, in the order they are listed.
FAMILIES = ("main", "interactions", "configs")
#: The scores a wave is decided on: runs.csv columns, so the decision needs runs.csv alone.
SEQUENTIAL_METRICS = ("final_return", "eval_return")
#: The fewest seeds of the first wave: Lai's t confidence sequence is the whole line below 3 seeds.
MIN_SEEDS = 3
KEYS = ("min", "step", "families", "metric")


@dataclass(frozen=True)
class SequentialSpec:
    """A parsed `[sequential]` section; the study's `seeds` are the most seeds a config can get (`max`)."""

    min: int
    step: int
    max: int
    families: tuple[str, ...] = ("main",)
    metric: str = "final_return"

    def counts(self) -> list[int]:
        """The seeds per config after each wave: min, min + step, …, capped at max (the looks)."""
        out = [self.min]
        while out[-1] < self.max:
            out.append(min(out[-1] + self.step, self.max))
        return out

    def spec(self) -> dict[str, Any]:
        """JSON-ready, for the manifest."""
        return {"min": self.min, "step": self.step, "max": self.max, "families": list(self.families),
                "metric": self.metric}


def parse_sequential(value: Any, *, where: str, seeds: Sequence[int], report: Mapping[str, Any],
                     tuned: bool) -> SequentialSpec | None:
    """Validate a `[sequential]` table → `SequentialSpec` (None if absent); raise `ConfigError` naming the key."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: key 'sequential' must be a table ([sequential])")
    bad = [k for k in value if k not in KEYS]
    if bad:
        raise ConfigError(f"{where}: [sequential] unknown key(s) {bad}; allowed: {list(KEYS)}")
    if tuned:
        raise ConfigError(f"{where}: [sequential] and [tune] together are not supported; allowed: one of them (a "
                          "tuned study's choice would have to be made again at every wave)")
    n = len(seeds)
    if "min" not in value:
        raise ConfigError(f"{where}: [sequential] needs 'min' (the seeds every config trains first), e.g. min = 5")
    lo = value["min"]
    if isinstance(lo, bool) or not isinstance(lo, int) or not MIN_SEEDS <= lo <= n:
        raise ConfigError(f"{where}: [sequential] min = {lo!r} is invalid; allowed: an integer in [{MIN_SEEDS}, {n}] "
                          f"(at most the study's {n} seeds, key 'seeds'; at least {MIN_SEEDS}: the confidence "
                          "sequence is the whole line below 3 seeds)")
    step = value.get("step", lo)
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise ConfigError(f"{where}: [sequential] step = {step!r} is invalid; allowed: an integer >= 1 (seeds added "
                          "per wave)")
    families = value.get("families", ["main"])
    if (not isinstance(families, list) or not families or not all(f in FAMILIES for f in families)
            or len(set(families)) != len(families)):
        raise ConfigError(f"{where}: [sequential] families = {families!r} is invalid; allowed: a non-empty list of "
                          f"distinct names from {list(FAMILIES)}")
    if "configs" in families and not report.get("reference"):
        raise ConfigError(f"{where}: [sequential] families has \"configs\" (each config vs the reference) but "
                          "[report] has no reference; allowed: set [report] reference = {{...}} or drop \"configs\"")
    metric = value.get("metric", "final_return")
    if metric not in SEQUENTIAL_METRICS:
        raise ConfigError(f"{where}: [sequential] metric = {metric!r} is invalid; allowed: "
                          f"{' | '.join(SEQUENTIAL_METRICS)} (runs.csv columns)")
    return SequentialSpec(min=lo, step=step, max=n, families=tuple(families), metric=metric)
