"""contexts: cell-level simple effects, seed-paired, with Holm per factor, TOST and a class per context."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ablations.report import contexts as cx

LEVELS = {"a": ["a0", "a1"], "b": ["b0", "b1"], "c": ["c0", "c1", "c2"]}


def _data(effect, seeds: int = 8, noise: float = 1.0, seed: int = 0) -> pd.DataFrame:
    """value = 10 + effect(b, c)·[a = a1] + a seed offset (shared by every cell: common random numbers) + noise."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 5, seeds)
    rows = []
    for a, b, c in itertools.product(*LEVELS.values()):
        for s in range(seeds):
            mu = 10 + (effect(b, c) if a == "a1" else 0.0) + offset[s]
            rows.append(dict(a=a, b=b, c=c, seed=s, value=mu + rng.normal(0, noise)))
    return pd.DataFrame(rows)


def test_cell_differences_are_paired_by_seed_by_hand() -> None:
    df = pd.DataFrame({"a": ["x", "y"] * 3, "b": ["p"] * 6, "seed": [0, 0, 1, 1, 2, 2],
                       "value": [1.0, 3.0, 5.0, 6.0, 2.0, 5.0]})
    df = pd.concat([df, df.assign(b="q", value=df["value"] * 0 + 1.0)])  # in context b=q a has no effect
    out = cx.context_effects(df, ["a", "b"], {"a": ["x", "y"], "b": ["p", "q"]}, metric="m", margin=0.5)
    row = out[(out["factor"] == "a") & (out["context"] == "b=p")].iloc[0]
    # d = [2, 1, 3]: mean 2, sd 1, se 1/√3, t-interval 2 ± 4.3027/√3
    assert row["estimate"] == pytest.approx(2.0) and row["n_pairs"] == 3
    assert row["ci_high"] - row["estimate"] == pytest.approx(4.302653 / np.sqrt(3), rel=1e-5)
    q = out[(out["factor"] == "a") & (out["context"] == "b=q")].iloc[0]
    assert q["verdict"] == "equivalent" and q["ci_method"] == "identical" and np.isnan(q["p_tost"])
    assert list(out.columns) == cx.CONTEXT_COLUMNS + ["a", "b"]
    assert row["b"] == "p" and row["a"] == ""


def test_planted_crossover_classes_every_context() -> None:
    df = _data(lambda b, c: {"c0": 6.0, "c1": -6.0, "c2": 0.0}[c])
    out = cx.context_effects(df, list(LEVELS), LEVELS, metric="m", margin=3.0)
    a = out[out["factor"] == "a"].set_index("context")
    assert len(a) == 6  # 2 levels of b × 3 of c
    for b in ("b0", "b1"):
        assert a.loc[f"b={b}, c=c0", "verdict"] == "helps"
        assert a.loc[f"b={b}, c=c1", "verdict"] == "hurts"
        assert a.loc[f"b={b}, c=c2", "verdict"] == "equivalent"
    # one Holm family per factor: p_holm ≥ p, and the TOST family likewise
    assert (a["p_holm"] >= a["p"]).all() and (a["p_tost_holm"].dropna() >= a["p_tost"].dropna()).all()
    summary = cx.summarize_contexts(out)
    s = summary[summary["factor"] == "a"].iloc[0]
    assert (s["k"], s["helps"], s["hurts"], s["equivalent"], s["undecided"]) == (6, 2, 2, 2, 0)
    assert s["sentence"] == "helps in 2 of 6 contexts, hurts in 2, equivalent within ±3 in 2, undecided in 0"


def test_within_averages_the_other_factors_per_seed() -> None:
    df = _data(lambda b, c: {"c0": 6.0, "c1": -6.0, "c2": 0.0}[c] + (2.0 if b == "b1" else 0.0), noise=1e-3)
    out = cx.context_effects(df, list(LEVELS), LEVELS, metric="m", margin=1.0, within={"a": ["c"]}, only=["a"])
    est = out.set_index("context")["estimate"]
    assert set(out["factor"]) == {"a"} and out["within"].iloc[0] == "c"
    # per seed, the mean over b of the a1 − a0 cell differences: (6 + 8)/2, (−6 − 4)/2, (0 + 2)/2
    assert est["c=c0"] == pytest.approx(7.0, abs=0.01) and est["c=c1"] == pytest.approx(-5.0, abs=0.01)
    assert est["c=c2"] == pytest.approx(1.0, abs=0.01)


def test_undecided_carries_its_mdd_and_missing_seeds_pair_only_shared() -> None:
    df = _data(lambda b, c: 0.5, seeds=5, noise=3.0, seed=3)
    df = df[~((df["a"] == "a1") & (df["b"] == "b0") & (df["c"] == "c0") & (df["seed"] == 4))]
    out = cx.context_effects(df, list(LEVELS), LEVELS, metric="m", margin=0.2)
    row = out[(out["factor"] == "a") & (out["context"] == "b=b0, c=c0")].iloc[0]
    assert row["n_pairs"] == 4
    und = out[out["verdict"] == "undecided"]
    assert len(und) and und["mdd"].notna().all() and (und["mdd"] > 0).all()


def test_aliased_contexts_enter_the_family_once() -> None:
    # factor c's level c2 is a copy of c1 in every cell: contexts of b at c=c1 and c=c2 are the same test
    df = _data(lambda b, c: 3.0 if b == "b1" else 0.0, seed=5)
    df.loc[df["c"] == "c2", "value"] = df.loc[df["c"] == "c1", "value"].to_numpy()
    out = cx.context_effects(df, list(LEVELS), LEVELS, metric="m", margin=1.0)
    b = out[out["factor"] == "b"].set_index("context")
    p = b["p"].to_numpy()
    distinct = len({round(x, 15) for x in p})
    assert distinct == 4  # 6 contexts, 2 of them repeats of another
    assert b.loc["a=a0, c=c2", "same_as"] == "b=b1 in a=a0, c=c1" and b.loc["a=a0, c=c1", "same_as"] == ""
    smallest = b["p"].idxmin()
    assert b.loc[smallest, "p_holm"] == pytest.approx(min(1.0, 4 * b.loc[smallest, "p"]))
