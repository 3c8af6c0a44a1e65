"""Shared test set-up: one torch thread, as the CLI and the executors use; the `make_results` fixture (a synthetic
results directory, tests/helpers/synthetic_results.py) for the report and command tests; and a monotonic clock that
starts near 0.

`time.monotonic()` counts from the machine's boot, so code that compares it with an initial 0 (e.g. "written more
than an hour ago" with `last = 0.0`) passes on a machine up for hours and fails on a fresh one (issue 28, item 6).
Every test session therefore runs as on a machine booted one second ago: `time.monotonic` is offset so that it
reads about 1.0 when the session starts (differences are unchanged). Subprocesses a test starts keep the real clock.
Set ABLATIONS_TEST_REAL_CLOCK=1 to run with the real clock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from tests.helpers.synthetic_results import write_results

torch.set_num_threads(1)

_REAL_MONOTONIC = time.monotonic


def pytest_configure(config) -> None:
    if os.environ.get("ABLATIONS_TEST_REAL_CLOCK"):
        return
    offset = _REAL_MONOTONIC() - 1.0
    time.monotonic = lambda: _REAL_MONOTONIC() - offset


@pytest.fixture
def make_results(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10**6))

    def make(**kw: Any) -> Path:
        return write_results(tmp_path / f"results{next(counter)}" / kw.get("name", "synthetic"), **kw)

    return make
