"""The contrasts a sequential study decides (`[sequential] families`), as weight vectors over the study's configs.

A contrast θ = Σ_c w_c μ_c is read per seed as d_s = Σ_c w_c Y[s, c] (Y[s, c]: seed s's score in config c), so under
the seed-blocked design (common random numbers) its per-seed values d_1, d_2, … are i.i.d. and θ is their mean: the
same seed-paired contrast the report's effects are (`report.effects`, a test checks the two agree). Families, each
one Bonferroni family per env (env_id levels are strata, never a factor of a contrast):

- "main": factor F at level l vs its first level l₀, the mean over the other factors' level combinations o (where
  both cells exist) of cell(l, o) − cell(l₀, o);
- "interactions": factors F, G at levels a, b vs a₀, b₀, the mean over o (where all four cells exist) of
  cell(a, b, o) − cell(a₀, b, o) − cell(a, b₀, o) + cell(a₀, b₀, o);
- "configs": each config vs the reference config (`[report] reference`; a factor it does not name takes its first
  level), within its env.

Pure functions of the grid points (dicts of factor → level, in `design.grid` order): `contrasts` is what the
stopping rule and the report read; `design` validates with it that every family a study names has a contrast.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .sections import norm_level

ENV = "env_id"


@dataclass(frozen=True)
class Contrast:
    """One contrast: its family, env (None for a single-env study), label and weights (grid point index → w)."""

    family: str
    env: str | None
    label: str
    weights: Mapping[int, float]

    @property
    def cells(self) -> list[int]:
        """The grid points the contrast reads (non-zero weight), in grid order."""
        return sorted(i for i, w in self.weights.items() if w != 0)


def text(value: Any) -> str:
    """A level as the contrast labels spell it: floats by %g (0.0 → "0"), lists joined by "-", else str."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "-".join(map(str, value))
    return str(value)


def contrasts(points: Sequence[Mapping[str, Any]], factors: Mapping[str, Sequence[Any]], families: Sequence[str],
              reference: Mapping[str, Any] | None = None) -> list[Contrast]:
    """Every contrast of `families` ("main", "interactions", "configs") over `points`, per env, in this order: family
    (as listed), env (level order), then factor order and level order (configs: grid order)."""
    swept = [f for f in factors if f != ENV and len(factors[f]) > 1]
    envs = [str(e) for e in factors[ENV]] if ENV in factors else [None]
    out: list[Contrast] = []
    for family in families:
        for env in envs:
            idx = [i for i, p in enumerate(points) if env is None or str(p[ENV]) == env]
            if family == "main":
                out += [_contrast(points, idx, swept, family, env, [(f, lv, factors[f][0])])
                        for f in swept for lv in factors[f][1:]]
            elif family == "interactions":
                out += [_contrast(points, idx, swept, family, env, [(f, a, factors[f][0]), (g, b, factors[g][0])])
                        for f, g in itertools.combinations(swept, 2)
                        for a in factors[f][1:] for b in factors[g][1:]]
            elif family == "configs":
                out += _versus_reference(points, idx, swept, factors, env, reference or {})
            else:
                raise ValueError(f"family={family!r}; allowed: main | interactions | configs")
    return [c for c in out if c.weights]


def _contrast(points: Sequence[Mapping[str, Any]], idx: Sequence[int], swept: Sequence[str], family: str,
              env: str | None, parts: Sequence[tuple[str, Any, Any]]) -> Contrast:
    """The contrast of `parts` ((factor, level, vs) each: a main effect for one, an interaction for two), averaged
    over the combinations of the other swept factors where every term's cell exists."""
    names = [f for f, _, _ in parts]
    others = [f for f in swept if f not in names]
    at = {tuple(norm_level(points[i][f]) for f in swept): i for i in idx}
    combos = sorted({tuple(norm_level(points[i][f]) for f in others) for i in idx}, key=repr)
    weights: dict[int, float] = {}
    used = 0
    for combo in combos:
        fixed = dict(zip(others, combo))
        terms = []
        for eps in itertools.product((1, 0), repeat=len(parts)):
            levels = {f: norm_level(a if e else b) for (f, a, b), e in zip(parts, eps)}
            key = tuple(levels[f] if f in levels else fixed[f] for f in swept)
            terms.append((at.get(key), (-1.0) ** (len(parts) - sum(eps))))
        if all(i is not None for i, _ in terms):
            used += 1
            for i, sign in terms:
                weights[i] = weights.get(i, 0.0) + sign
    label = " × ".join(f"{f}={text(a)} vs {text(b)}" for f, a, b in parts)
    return Contrast(family, env, label, {i: w / used for i, w in sorted(weights.items())} if used else {})


def _versus_reference(points: Sequence[Mapping[str, Any]], idx: Sequence[int], swept: Sequence[str],
                      factors: Mapping[str, Sequence[Any]], env: str | None,
                      reference: Mapping[str, Any]) -> list[Contrast]:
    """Each config of the env vs the env's reference config (none if the env has no reference config)."""
    want = {f: norm_level(reference.get(f, factors[f][0])) for f in swept}
    ref = next((i for i in idx if all(norm_level(points[i][f]) == v for f, v in want.items())), None)
    if ref is None:
        return []
    name = "/".join(text(points[ref][f]) for f in swept)
    return [Contrast("configs", env, f"{'/'.join(text(points[i][f]) for f in swept)} vs {name}", {i: 1.0, ref: -1.0})
            for i in idx if i != ref]
