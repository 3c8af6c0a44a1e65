"""The committed reports are produced by the committed code from the committed results."""

from pathlib import Path

import pytest

from ablations.study.publish import SUMS
from ablations.report import build_report

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = ["cartpole_factorial", "acrobot", "pendulum"]


def _published(name: str) -> bool:
    return (REPO / "results" / name / SUMS).exists() and (REPO / "report" / name / "README.md").exists()


@pytest.mark.parametrize("name", PUBLISHED)
def test_committed_report_tables_regenerate_from_committed_results(name, tmp_path):
    if not _published(name):
        pytest.skip(f"results/{name} and report/{name} are not committed")
    build_report(REPO / "results" / name, tmp_path / name, seed=None, figures=False)
    committed = sorted((REPO / "report" / name / "tables").glob("*.csv"))
    assert committed
    for table in committed:
        assert (tmp_path / name / "tables" / table.name).read_bytes() == table.read_bytes(), table.name


@pytest.mark.slow
def test_committed_cartpole_report_regenerates_byte_for_byte(tmp_path):
    if not _published("cartpole_factorial"):
        pytest.skip("results/cartpole_factorial is not committed")
    readme = build_report(REPO / "results" / "cartpole_factorial", tmp_path / "r", seed=None)
    assert readme.read_bytes() == (REPO / "report" / "cartpole_factorial" / "README.md").read_bytes()
