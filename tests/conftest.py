"""Shared test set-up: one torch thread, as the CLI and the executors use; the `make_results` fixture (a synthetic
results directory, tests/helpers/synthetic_results.py) for the report and command tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from tests.helpers.synthetic_results import write_results

torch.set_num_threads(1)


@pytest.fixture
def make_results(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def make(**kw: Any) -> Path:
        return write_results(tmp_path / f"results{next(counter)}" / kw.get("name", "synthetic"), **kw)

    return make
