"""verdicts: a planted three-way crossover names both partners and each context's sign; averaged verdicts."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ablations.report import effects as fx
from ablations.report import verdicts as vd

LEVELS = {"a": ["a0", "a1"], "b": ["b0", "b1"], "c": ["c0", "c1"], "d": ["d0", "d1"]}


def _data(effect, seeds: int = 6, noise: float = 0.5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 3, seeds)
    rows = []
    for cell in itertools.product(*LEVELS.values()):
        cfg = dict(zip(LEVELS, cell))
        for s in range(seeds):
            rows.append({**cfg, "seed": s, "value": 20 + effect(cfg) + offset[s] + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def _run(df: pd.DataFrame, margin: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    effects, _ = fx.factor_effects(df, list(LEVELS), LEVELS, metric="m", n_resamples=200)
    v, ctx = vd.verdicts(effects, df, list(LEVELS), LEVELS, metric="m", margin=margin)
    return effects, v, ctx


def test_three_way_crossover_names_both_partners_and_each_context_sign() -> None:
    d = 5.0  # a1's effect: +d where b and c agree, −d where they differ; d has no effect anywhere
    df = _data(lambda cfg: (d if (cfg["b"][1] == cfg["c"][1]) else -d) * (cfg["a"] == "a1"))
    effects, v, ctx = _run(df)
    # the two-way terms of a average the crossover away: only a × b × c is significant for a
    sig = fx.significant(effects[effects["kind"] == "interaction"])
    assert "a × b × c" in set(sig["term"]) and not ({"a × b", "a × c"} & set(sig["term"]))
    row = v.set_index("factor").loc["a"]
    assert row["verdict"] == "depends"
    assert set(row["partners"].split(", ")) == {"b", "c"} and row["averaged_over"] == "d"
    assert (row["k"], row["helps"], row["hurts"]) == (4, 2, 2)
    a = ctx[ctx["factor"] == "a"].set_index("context")
    assert a.loc["b=b0, c=c0", "verdict"] == "helps" and a.loc["b=b1, c=c1", "verdict"] == "helps"
    assert a.loc["b=b0, c=c1", "verdict"] == "hurts" and a.loc["b=b1, c=c0", "verdict"] == "hurts"
    assert a.loc["b=b0, c=c0", "estimate"] == pytest.approx(d, abs=0.5)
    text = vd.verdict_sentence(v[v["factor"] == "a"].iloc[0], ctx)
    assert "depends on b and c" in text and "a × b × c" in text
    assert "it helps in 2 (with b = b0 and c = c0" in text and "it hurts in 2 (with b = b0 and c = c1" in text
    # d takes part in no significant interaction: averaged over a, b, c, and equivalent within ±1
    dd = v.set_index("factor").loc["d"]
    assert dd["verdict"] == "equivalent" and dd["partners"] == "" and dd["averaged_over"] == "a, b, c"
    assert "no effect on m beyond ±1" in vd.verdict_sentence(v[v["factor"] == "d"].iloc[0])


def test_every_partner_is_named_not_only_the_largest() -> None:
    # a interacts with b (large) and with d (small but clear): both are partners
    df = _data(lambda cfg: (8.0 * (cfg["b"] == "b1") + 2.0 * (cfg["d"] == "d1")) * (cfg["a"] == "a1"), noise=0.3)
    _, v, _ = _run(df)
    assert set(v.set_index("factor").loc["a", "partners"].split(", ")) == {"b", "d"}


def test_averaged_helps_and_undecided_sentences() -> None:
    df = _data(lambda cfg: 4.0 * (cfg["a"] == "a1") + 0.6 * (cfg["c"] == "c1"), noise=2.0, seed=1)
    _, v, _ = _run(df, margin=0.3)
    a = v[v["factor"] == "a"].iloc[0]
    assert a["verdict"] == "helps" and a["partners"] == ""
    assert vd.verdict_sentence(a).startswith(
        "Using a = a1 instead of a = a0 helps m, averaged over b, c, d: +")
    c = v[v["factor"] == "c"].iloc[0]
    assert c["verdict"] == "undecided"
    assert "MDD" in vd.verdict_sentence(c) and "is not inside ±0.3" in vd.verdict_sentence(c)


def test_term_parts() -> None:
    assert vd.term_parts("a × b", "a=x vs y × b=p q vs r") == [("a", "x", "y"), ("b", "p q", "r")]
