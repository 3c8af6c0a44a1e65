"""plots: each figure function draws from computed tables; saving writes PNG + SVG without timestamps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ablations.report import plots


def _bands() -> pd.DataFrame:
    x = np.linspace(100, 1000, 10)
    return pd.concat([pd.DataFrame({"factor": "returns", "level": lv, "env_steps": x, "mean": x / 10 + k,
                                    "ci_low": x / 10 + k - 5, "ci_high": x / 10 + k + 5})
                      for k, lv in enumerate(["full", "rtg"])], ignore_index=True)


def test_learning_curves_draw_the_given_bands(tmp_path: Path) -> None:
    fig = plots.learning_curves(_bands(), {"returns": ["full", "rtg"]})
    ax = fig.axes[0]
    assert ax.get_xlabel() == "environment steps" and ax.get_ylabel() == "episode return"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), _bands()["mean"][:10])
    assert len(ax.collections) == 2  # one CI band per level, exactly the table's
    paths = plots.save(fig, tmp_path, "curves")
    assert [p.suffix for p in paths] == [".png", ".svg"]


def test_save_is_deterministic(tmp_path: Path) -> None:
    a = plots.save(plots.learning_curves(_bands(), {"returns": ["full", "rtg"]}), tmp_path / "a", "f")
    b = plots.save(plots.learning_curves(_bands(), {"returns": ["full", "rtg"]}), tmp_path / "b", "f")
    assert a[1].read_bytes() == b[1].read_bytes()
    assert a[0].read_bytes() == b[0].read_bytes()
    assert b"<dc:date>" not in a[1].read_bytes()


def test_config_estimates_marks_reference() -> None:
    summary = pd.DataFrame({"config": ["a", "b"], "mean": [1.0, 2.0], "ci_low": [0.5, 1.5], "ci_high": [1.5, 2.5]})
    fig = plots.config_estimates(summary, "a", xlabel="final return")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["config", "reference"]
    assert fig.axes[0].get_xlabel() == "final return"


def test_gradient_variance_uses_log_scale() -> None:
    rows = [dict(metric=m, estimator=f"{r}/none/none/0", returns=r, baseline="none", normalize="none",
                 entropy_coef="0", env_steps=s, n=10, mean=v, ci_low=v / 2, ci_high=v * 2)
            for m in ("total_var", "snr") for r in ("full", "rtg") for s, v in ((0, 10.0), (100, 5.0))]
    fig = plots.gradient_variance(pd.DataFrame(rows))
    assert all(ax.get_yscale() == "log" for ax in fig.axes)
    assert fig.axes[0].get_xlabel() == "environment steps"


def test_learning_curves_draw_the_random_policy_line_in_every_panel() -> None:
    bands = pd.concat([_bands(), _bands().assign(factor="baseline", level=lambda d: d["level"].map(
        {"full": "none", "rtg": "value"}))], ignore_index=True)
    levels = {"returns": ["full", "rtg"], "baseline": ["none", "value"]}
    fig = plots.learning_curves(bands, levels, random=(-20.5, 7))
    for ax in fig.axes[:2]:
        line = [ln for ln in ax.lines if ln.get_label() == "uniform-random policy (mean of 7 episodes)"]
        assert len(line) == 1 and line[0].get_linestyle() == "--"
        np.testing.assert_allclose(line[0].get_ydata(), [-20.5, -20.5])
        assert "uniform-random policy (mean of 7 episodes)" in [t.get_text() for t in ax.get_legend().get_texts()]
    plain = plots.learning_curves(bands, levels)
    assert len(plain.axes[0].lines) == 2  # without it: the levels' lines only


def test_a_single_panel_title_fits_inside_the_figure() -> None:
    """A study without factors (one 'config = all' panel): the title wraps to the figure's width, and the one line
    is labelled as all runs, not as a factor level."""
    bands = _bands().query("level == 'full'").assign(factor="config", level="all")
    fig = plots.learning_curves(bands, {"config": ["all"]}, random=(-20.5, 7))
    fig.canvas.draw()
    title = fig.get_suptitle()
    assert "\n" in title and title.replace("\n", " ").startswith("Learning curves (mean over runs")
    box, width = fig._suptitle.get_window_extent(), fig.bbox.width
    assert 0 <= box.x0 and box.x1 <= width
    ax = fig.axes[0]
    assert ax.get_title() == "" and [t.get_text() for t in ax.get_legend().get_texts()][0] == "all runs"
    wide = plots.learning_curves(_bands(), {"returns": ["full", "rtg"]})  # a panel's own legend: the level names
    assert [t.get_text() for t in wide.axes[0].get_legend().get_texts()] == ["full returns", "reward-to-go"]


def test_every_figure_title_wraps_to_a_narrow_figure() -> None:
    """All figures title through `_suptitle` (the interaction plot of a 2-factor study is one narrow panel)."""
    import inspect

    import matplotlib.pyplot as plt

    source = inspect.getsource(plots)
    assert source.count("fig.suptitle(") == 1  # only inside _suptitle
    fig = plt.figure(figsize=(4.6, 3.2))
    plots._suptitle(fig, "Interaction plots: marginal means with 95% seed-level bootstrap CI (parallel lines = no "
                         "interaction)")
    fig.canvas.draw()
    box = fig._suptitle.get_window_extent()
    assert 0 <= box.x0 and box.x1 <= fig.bbox.width
    plt.close(fig)


def test_context_forest_draws_the_given_contexts(tmp_path: Path) -> None:
    c = pd.DataFrame({"factor": "a", "level": "a1", "vs": "a0", "context": ["b=b0", "b=b1", "b=b2"],
                      "estimate": [5.0, -4.0, 0.1], "ci_low": [3.0, -6.0, -0.5], "ci_high": [7.0, -2.0, 0.7],
                      "margin": 1.0, "verdict": ["helps", "hurts", "equivalent"]})
    fig = plots.context_forest(c, "a", "a1", xlabel="final return")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b=b0", "b=b1", "b=b2"]
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"helps", "hurts", "equivalent"}
    assert [p.suffix for p in plots.save(fig, tmp_path, "ctx")] == [".png", ".svg"]


def _lambda_table() -> pd.DataFrame:
    rows = []
    for ret in ("gae", "gae_gpomdp"):
        for update in range(0, 40, 5):  # 8 checkpoints: at most 6 are drawn
            for lam in (0.0, 0.5, 0.9, 1.0):
                for metric, value in (("rel_bias", 1 - lam), ("var_ratio", 0.2 + lam)):
                    rows.append(dict(returns=ret, gae_lambda=lam, update=update, env_steps=100.0 * update,
                                     metric=metric, n=4, mean=value, ci_low=value * 0.9, ci_high=value * 1.1))
    return pd.DataFrame(rows)


def test_lambda_curves_draw_a_line_per_checkpoint_against_lambda(tmp_path: Path) -> None:
    table = _lambda_table()
    fig = plots.lambda_curves(table)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["returns=gae", "returns=gae_gpomdp"] * 2
    top = axes[0]
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["0", "0.5", "0.9", "1"]  # λ at equal spacing
    assert len(top.containers) == 6  # a line (with error bars) per drawn checkpoint, the first and the last among them
    assert plots._checkpoints_shown(table, 6)[0] == 0 and plots._checkpoints_shown(table, 6)[-1] == 35
    means = np.asarray(top.containers[0].lines[0].get_ydata(), float)
    np.testing.assert_allclose(means, [1, 0.5, 0.1, 0])  # the table's means, λ ascending
    assert axes[2].get_yscale() == "log"
    assert top.get_ylim() == (0.0, 1.1 * 1.1)  # the largest finite CI end (1.1 at λ = 0) and a margin
    paths = plots.save(fig, tmp_path, "gae_lambda")
    assert all(p.stat().st_size > 1000 for p in paths)


def test_lambda_curves_draw_an_infinite_ci_end_to_the_panel_edge() -> None:
    """An unresolved reference gives a CI open to ∞: the axis stays on the finite values and an open ▲ marks it."""
    table = _lambda_table()
    table.loc[(table["metric"] == "rel_bias") & (table["gae_lambda"] == 0.5), "ci_high"] = np.inf
    fig = plots.lambda_curves(table)
    top = [ax for ax in fig.axes if ax.get_title()][0]
    assert top.get_ylim() == (0.0, 1.1 * 1.1)
    markers = [line for line in top.lines if line.get_marker() == "^"]
    assert len(markers) == 6 and all(list(m.get_ydata()) == [1.1 * 1.1] for m in markers)
