"""Small studies for the driver and executor tests: a fake-trainer study and a real-engine one that trains in
seconds."""

from __future__ import annotations

from pathlib import Path

from ablations.study.design import Study, parse_study

FAKE = "tests.helpers.failing_env:fake_train_cohort"
TABLES = ("runs", "curves", "probes")


def fake_study() -> Study:
    return parse_study({"name": "fake", "seeds": 3, "fixed": {"total_steps": 300},
                        "factors": {"gamma": [0.99, 0.5, 0.25], "probe_every": [0, 2]}}, where="fake.toml")


def tiny_study() -> Study:
    """A real-engine study that trains in a few seconds (two cohort keys)."""
    return parse_study({"name": "tiny", "seeds": 2,
                        "fixed": {"env_id": "CartPole-v1", "total_steps": 2000, "eval_episodes": 2},
                        "factors": {"baseline": ["none", "value"], "hidden": [[16], [8]]}}, where="tiny.toml")


def csv_bytes(out: Path) -> dict[str, bytes]:
    return {t: (out / f"{t}.csv").read_bytes() for t in TABLES}
