"""The committed reports are produced by the committed code from the committed results.

Bytes are promised on one machine class only (README "Guarantees"): numpy and BLAS pick SIMD kernels by CPU, so a
sum or a quantile may differ in its last bits on another machine. Against the committed files the tables must match
within `RTOL` (and the README up to its printed digits); regenerated twice here they must match byte for byte.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ablations.study.publish import SUMS
from ablations.report import build_report

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = ["cartpole_factorial", "flagship", "multienv", "cartpole_tuned", "pong_curve", "critic_iters",
             "short_corridor", "adaptive_cartpole", "gae"]
RTOL = 1e-5  # measured across an AVX2 and an AVX-512 machine: at most 6e-6 (bootstrap quantiles of gradvar)
#: Near 0, cells agree within ATOL × the column's scale: the gradients behind them are float32, whose rounding
#: (2^-23 ≈ 1.2e-7 of the terms' magnitude) differs with the SIMD width of the sums. Measured on an AVX2-only AMD EPYC
#: against the AVX-512 machine that published cartpole_factorial: variance_ratio.csv's ci_low 0.00012796 differed by
#: 2.7e-9 in a column of scale 1.0 (2.1e-5 relative).
ATOL = 1e-7
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _published(name: str) -> None:
    """Fail (not skip) when a study README links is not committed: a skipped check cannot catch anything."""
    for path in (REPO / "results" / name / SUMS, REPO / "report" / name / "README.md"):
        assert path.exists(), f"{path.relative_to(REPO)} is not committed"


def assert_tables_close(got: Path, want: Path) -> None:
    """Same columns and text cells; numeric cells within RTOL (absolute ATOL × the column's scale near 0). An empty
    table (no rows and no columns, e.g. power with a single config) must be empty again."""
    if not want.read_text().strip():
        assert not got.read_text().strip(), want.name
        return
    a, b = pd.read_csv(want), pd.read_csv(got)
    assert list(a.columns) == list(b.columns) and len(a) == len(b), want.name
    numeric = a.select_dtypes("number").columns
    pd.testing.assert_frame_equal(a.drop(columns=numeric), b.drop(columns=numeric), obj=want.name)
    for col in numeric:
        x, y = a[col].to_numpy(float), b[col].to_numpy(float)
        scale = max(float(np.nanmax(np.abs(x[np.isfinite(x)]))) if np.isfinite(x).any() else 1.0, 1.0)
        same = np.isclose(x, y, rtol=RTOL, atol=ATOL * scale, equal_nan=True) | (x == y)
        assert same.all(), f"{want.name}[{col}] rows {np.flatnonzero(~same)[:5]}: {x[~same][:3]} vs {y[~same][:3]}"


def assert_text_close(got: str, want: str) -> None:
    """The same text, numbers allowed to differ by one unit of their last printed digit (or RTOL)."""
    g_lines, w_lines = got.splitlines(), want.splitlines()
    assert len(g_lines) == len(w_lines)
    for g, w in zip(g_lines, w_lines):
        if g == w:
            continue
        assert NUMBER.sub("#", g) == NUMBER.sub("#", w), f"{w!r} → {g!r}"
        for x, y in zip(NUMBER.findall(g), NUMBER.findall(w)):
            decimals = len(y.split("e")[0].partition(".")[2])
            assert abs(float(x) - float(y)) <= 10.0 ** -decimals + RTOL * abs(float(y)), f"{w!r} → {g!r}"


def test_assert_tables_close_fails_on_a_real_difference(tmp_path):
    want, got = tmp_path / "want.csv", tmp_path / "got.csv"
    want.write_text("a,b\nx,1.0\ny,2.0\n")
    got.write_text("a,b\nx,1.0\ny,2.0000001\n")
    assert_tables_close(got, want)
    got.write_text("a,b\nx,1.0\ny,2.001\n")
    with pytest.raises(AssertionError):
        assert_tables_close(got, want)
    with pytest.raises(AssertionError):
        assert_text_close("p = 0.12 and g = 3", "p = 0.12 and g = 5")
    assert_text_close("p = 0.13", "p = 0.12")


@pytest.mark.parametrize("name", PUBLISHED)
def test_committed_report_tables_regenerate_from_committed_results(name, tmp_path):
    _published(name)
    build_report(REPO / "results" / name, tmp_path / name, seed=None, figures=False)
    root = REPO / "report" / name
    committed = sorted(root.rglob("tables/*.csv"))  # a multi-env report's per-env tables too
    assert committed
    for table in committed:
        assert_tables_close(tmp_path / name / table.relative_to(root), table)


def test_report_tables_are_byte_identical_on_one_machine(tmp_path):
    _published("cartpole_tuned")
    for out in ("a", "b"):
        build_report(REPO / "results" / "cartpole_tuned", tmp_path / out, seed=None, figures=False)
    for table in sorted((tmp_path / "a" / "tables").glob("*.csv")):
        assert table.read_bytes() == (tmp_path / "b" / "tables" / table.name).read_bytes(), table.name


@pytest.mark.slow
def test_committed_cartpole_report_regenerates(tmp_path):
    _published("cartpole_factorial")
    readme = build_report(REPO / "results" / "cartpole_factorial", tmp_path / "r", seed=None)
    assert_text_close(readme.read_text(), (REPO / "report" / "cartpole_factorial" / "README.md").read_text())


# ------------------------------------------------------------------ README's findings quote the reports digit for digit
#: README section heading → the committed report whose numbers it quotes.
README_SECTIONS = {"## What the flagship says": "flagship", "## What the CartPole factorial says": "cartpole_factorial",
                   "### Across environments": "multienv"}
# (the Pong and "How it is fast" sections also quote benchmark numbers no report prints; their final return and
# critic_iters numbers were copied from report/pong_curve and report/critic_iters; Pong's per-million-step returns
# are checked against the committed curves below)
QUOTED = re.compile(r"\[([−+-]?\d[\d.,]*), ([−+-]?\d[\d.,]*)\]|(?<![\w.\[])([+−]\d[\d.]*)(?![\d.]*\])|"
                    r"p_holm = (\d[\d.]*)")


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    level = heading.split(" ")[0]
    rest = text[start + len(heading):]
    ends = [i for i in (rest.find("\n" + level + " "), rest.find("\n## ")) if i >= 0]
    return rest[: min(ends)] if ends else rest


def _num(x: str) -> str:
    return x.replace("−", "-").lstrip("+")


def quoted_numbers(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """What README quotes from a report: the intervals "[a, b]" (as pairs) and the other numbers (each signed number
    +x / −x and each "p_holm = x"), minus signs normalized to "-" (the reports write both)."""
    cis, numbers = [], []
    for m in QUOTED.finditer(text):
        if m.group(1):
            cis.append((_num(m.group(1)), _num(m.group(2))))
        else:
            numbers += [_num(g) for g in m.groups()[2:] if g]
    return cis, numbers


def _report_printed(name: str) -> tuple[str, set[tuple[str, str]], set[str]]:
    """The report's README texts (its own and each env's), and from its tables (its own and each env's) the
    (low, high) pairs of every row's interval columns and every numeric cell, as the report prints numbers
    (`text.fmt`, 3 significant figures)."""
    from ablations.report.text import fmt

    root = REPO / "report" / name
    text = "\n".join(f.read_text() for f in [root / "README.md", *sorted((root / "envs").glob("*/README.md"))])
    pairs: set[tuple[str, str]] = set()
    cells: set[str] = set()
    for table in [*sorted((root / "tables").glob("*.csv")), *sorted((root / "envs").glob("*/tables/*.csv"))]:
        try:
            df = pd.read_csv(table)
        except pd.errors.EmptyDataError:  # an empty table (e.g. power with a single config)
            continue
        num = df.select_dtypes("number")
        cells |= {fmt(v) for v in np.unique(num.to_numpy(float).ravel()) if np.isfinite(v)}
        for low in [c for c in num.columns if c.endswith("low")]:
            high = low[: -len("low")] + "high"
            if high in num.columns:
                pairs |= {(fmt(a), fmt(b)) for a, b in zip(num[low], num[high])}
    return text.replace("−", "-"), pairs, cells


def test_quoted_numbers_by_hand() -> None:
    assert quoted_numbers("+0.134 [0.053, −0.216] and −9.71 (p_holm = 0.007), 20 seeds") == \
        ([("0.053", "-0.216")], ["0.134", "-9.71", "0.007"])


def _not_printed(quoted: str, names: list[str], intervals_only: bool = False) -> list[str]:
    """The numbers of `quoted` (README text) that none of the reports `names` prints, digit for digit: an interval
    as "[a, b]" in a report README or as one table row's (low, high); any other number (unless `intervals_only`) in a
    report README or a table cell."""
    text, pairs, cells = "", set(), set()
    for name in names:
        _published(name)
        t, p, c = _report_printed(name)
        text, pairs, cells = text + "\n" + t, pairs | p, cells | c
    cis, numbers = quoted_numbers(quoted)
    bad = [f"[{a}, {b}]" for a, b in cis if f"[{a}, {b}]" not in text and (a, b) not in pairs]
    return bad + [x for x in ([] if intervals_only else numbers) if x.lstrip("-") not in cells and x not in cells
                  and not re.search(r"(?<![\d.])" + re.escape(x.lstrip("-")) + r"(?![\d])", text)]


@pytest.mark.parametrize("heading", list(README_SECTIONS))
def test_readme_numbers_appear_digit_for_digit_in_their_report(heading: str) -> None:
    """Every number README's findings quote is printed by the report, digit for digit."""
    bad = _not_printed(_section((REPO / "README.md").read_text(), heading), [README_SECTIONS[heading]])
    assert not bad, f"README ({heading}) quotes numbers its report does not print: {bad}"


#: README paragraphs (from its first words to the next paragraph's) → the reports they quote, and whether only their
#: intervals are (the Pong paragraph's per-million returns are checked against the curves, below).
README_PARAGRAPHS = {("The critic fit (", "`python benchmarks/engine_ab.py"): (["critic_iters", "value_iters"], False),
                     ("**The published curve**", "**More steps answer more"): (["pong_curve"], True),
                     ("What [the GAE study]", "### Writing a study"): (["gae"], False)}


@pytest.mark.parametrize("bounds", list(README_PARAGRAPHS))
def test_readme_paragraph_numbers_appear_digit_for_digit_in_their_reports(bounds: tuple[str, str]) -> None:
    text = (REPO / "README.md").read_text()
    start = text.index(bounds[0])
    paragraph = text[start: text.index(bounds[1], start)]
    names, intervals_only = README_PARAGRAPHS[bounds]
    bad = _not_printed(paragraph, names, intervals_only)
    assert not bad, f"README ({bounds[0]}) quotes numbers its reports do not print: {bad}"
    assert quoted_numbers(paragraph)[0], "the paragraph quotes no interval: its bounds are wrong"


@pytest.mark.parametrize("name", PUBLISHED + ["value_iters"])
def test_committed_study_files_still_expand_to_their_published_run_ids(name):
    """A knob added since a study was published must not change its runs' ids (config.ID_NEUTRAL): the committed
    study file, planned by today's code, names exactly the run ids its committed manifests list (every stage)."""
    from ablations.study.design import load_study
    from ablations.study.publish import published_stages, run_id_mismatch

    study = load_study(REPO / "studies" / f"{name}.toml")
    for stage in published_stages(study, REPO / "results" / name):
        manifest = json.loads((stage.published / "manifest.json").read_text())
        assert run_id_mismatch(manifest.get("run_ids"), stage.run_ids) == "", stage.published


def per_million_returns(curves: pd.DataFrame) -> pd.DataFrame:
    """Each run's mean episode return per million env steps (an update counts in the million its first step is in,
    so the update that crosses the budget counts in the last million; each episode weighs the same: an update's
    weight is its number of episodes), one column per run."""
    c = curves.sort_values(["run_id", "update"]).copy()
    c["n"] = c.groupby("run_id")["episodes"].diff().fillna(c["episodes"])
    c["million"] = c.groupby("run_id")["env_steps"].shift(fill_value=0) // 1_000_000
    c["weighted"] = c["return_mean"] * c["n"]
    g = c.groupby(["million", "run_id"])[["weighted", "n"]].sum()
    return (g["weighted"] / g["n"]).unstack("run_id")


def test_readme_pong_per_million_returns_are_the_committed_curves():
    """README's Pong section quotes each seed's mean return per million steps: they are the committed curves'."""
    _published("pong_curve")
    runs = pd.read_csv(REPO / "results" / "pong_curve" / "runs.csv").sort_values("seed")
    table = per_million_returns(pd.read_csv(REPO / "results" / "pong_curve" / "curves.csv.xz"))[runs["run_id"]]
    quoted = " → ".join("/".join(f"{x:.2f}".replace("-", "−") for x in row) for row in table.to_numpy())
    assert quoted in " ".join(_section((REPO / "README.md").read_text(), "### Pong").split()), quoted


def test_per_million_returns_weigh_episodes_not_updates():
    curves = pd.DataFrame({"run_id": ["a"] * 4, "update": [1, 2, 3, 4],
                           "env_steps": [600_000, 1_000_000, 1_400_000, 2_000_050],
                           "episodes": [10, 30, 40, 45], "return_mean": [-21.0, -20.0, -19.0, -18.0]})
    table = per_million_returns(curves)  # update 4 starts in the second million and ends past the 2M budget
    assert table["a"].tolist() == pytest.approx([(-21.0 * 10 - 20.0 * 20) / 30, (-19.0 * 10 - 18.0 * 5) / 15])


def _published_table() -> dict[str, tuple[int, float, float]]:
    """README's table of the published studies: study → (runs, wall time in s, half its last printed digit in s)."""
    rows = re.findall(r"^\| \[(\w+)\]\(report/\w+/README\.md\) \| ([\d,]+) \| ([\d.]+) (s|min) \|",
                      (REPO / "README.md").read_text(), flags=re.M)
    table = {}
    for name, runs, wall, unit in rows:
        scale = 60 if unit == "min" else 1
        table[name] = (int(runs.replace(",", "")), float(wall) * scale,
                       0.5 * 10.0 ** -len(wall.partition(".")[2]) * scale)
    return table


def test_readme_lists_every_published_study_with_its_manifests_runs_and_wall_time():
    """Each published (packed: SHA256SUMS) results directory has a row, and only those (README's quick study writes
    an unpacked results/quick); its runs are its manifests' (both stages of a tuned study), its wall time the
    manifests' (as printed: rounded) plus at most 90 s for the command's start and its final combine."""
    table = _published_table()
    assert sorted(table) == sorted(p.name for p in (REPO / "results").iterdir() if (p / SUMS).exists())
    for name, (runs, wall, half_digit) in table.items():
        stages = [REPO / "results" / name / "manifest.json", REPO / "results" / name / "tune" / "manifest.json"]
        manifests = [json.loads(p.read_text()) for p in stages if p.exists()]
        assert runs == sum(m["n_runs"] for m in manifests), name
        took = sum(m["wall_s"] for m in manifests)
        assert took - half_digit <= wall <= took + 90, (name, wall, took)
