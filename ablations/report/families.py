"""Holm families that count each distinct test once: configs (or contexts) that are aliases of each other — the
same runs under another name, e.g. normalization with no baseline before or after it — give the same test, and a
family that counted each alias would correct for tests that were never separately made.

Owns `holm_once` (Holm over distinct keys, every row getting its key's adjusted p) and `holm_aliases` (the same with
the key of a config vs reference comparison taken from `stats.aliases`' alias_of column).
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np

from ablations.report.comparisons import holm


def holm_once(pvalues: Sequence[float], keys: Sequence[Hashable]) -> np.ndarray:
    """Holm-adjusted p per row, with rows sharing a key counted once in the family (the key's first finite p stands
    for all of them; rows of a key get its adjusted value). NaN p never enters the family and stays NaN.

    Example: p = [0.01, 0.01, 0.04] with keys [a, a, b] is a family of 2: adjusted [0.02, 0.02, 0.04]."""
    p = np.asarray(pvalues, float)
    keys = list(keys)
    if len(keys) != len(p):
        raise ValueError(f"holm_once: {len(p)} p-values but {len(keys)} keys")
    first: dict[Hashable, int] = {}
    for i, (k, v) in enumerate(zip(keys, p)):
        if np.isfinite(v) and k not in first:
            first[k] = i
    idx = list(first.values())
    adj = dict(zip(first, holm(p[idx]))) if idx else {}
    return np.array([adj.get(k, np.nan) if np.isfinite(v) else np.nan for k, v in zip(keys, p)], float)


def holm_aliases(pvalues: Sequence[float], configs: Sequence[str], alias_of: Mapping[str, str],
                 references: Sequence[str] | None = None) -> np.ndarray:
    """Holm over a family of per-config tests (e.g. `km_table`'s log-rank p against the reference) with aliased
    configs counted once: the key of row i is (alias_of[config_i], alias_of[reference_i]) (reference omitted when
    None); configs missing from `alias_of` are their own representative."""
    rep = [alias_of.get(c, c) for c in configs]
    if references is not None:
        rep = [(a, alias_of.get(r, r)) for a, r in zip(rep, references)]
    return holm_once(pvalues, rep)
