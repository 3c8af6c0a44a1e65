"""Fixtures for the report tests: `make_results(**kw)` writes a synthetic results directory (see synthetic.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from .synthetic import write_results


@pytest.fixture
def make_results(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def make(**kw: Any) -> Path:
        return write_results(tmp_path / f"results{next(counter)}" / kw.get("name", "synthetic"), **kw)

    return make
