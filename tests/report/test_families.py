"""families: Holm with each distinct test (alias) counted once."""

from __future__ import annotations

import numpy as np
import pytest

from ablations.report import families as fam
from ablations.report.comparisons import holm


def test_holm_once_by_hand() -> None:
    # a family of 2 (a, b): sorted 0.01 (×2) → 0.02, 0.04 (×1) → 0.04
    out = fam.holm_once([0.01, 0.01, 0.04, np.nan], ["a", "a", "b", "c"])
    assert out[:3] == pytest.approx([0.02, 0.02, 0.04]) and np.isnan(out[3])
    # without duplicates it is plain Holm
    p = [0.03, 0.001, 0.2]
    assert fam.holm_once(p, [1, 2, 3]) == pytest.approx(holm(p))
    with pytest.raises(ValueError, match="2 p-values but 1 keys"):
        fam.holm_once([0.1, 0.2], ["a"])


def test_holm_aliases_counts_alias_configs_once() -> None:
    # log-rank p of 4 configs against the reference; c2 and c3 are the same runs (c3 ≡ c2)
    alias_of = {"ref": "ref", "c1": "c1", "c2": "c2", "c3": "c2"}
    out = fam.holm_aliases([np.nan, 0.01, 0.02, 0.02], ["ref", "c1", "c2", "c3"], alias_of)
    assert np.isnan(out[0])
    assert out[1:] == pytest.approx([0.02, 0.02, 0.02])  # family of 2, not 3 (which would give 0.03, 0.04, 0.04)
    pairs = fam.holm_aliases([0.01, 0.01], ["c2", "c3"], alias_of, references=["ref", "ref"])
    assert pairs == pytest.approx([0.01, 0.01])
