"""Shared test set-up: one torch thread, as the CLI and the executors use; and a monotonic clock that starts near 0.

`time.monotonic()` counts from the machine's boot, so code that compares it with an initial 0 (e.g. "written more
than an hour ago" with `last = 0.0`) passes on a machine up for hours and fails on a fresh one (issue 28, item 6).
Every test session therefore runs as on a machine booted one second ago: `time.monotonic` is offset so that it
reads about 1.0 when the session starts (differences are unchanged). Subprocesses a test starts keep the real clock.
Set ABLATIONS_TEST_REAL_CLOCK=1 to run with the real clock.
"""

import os
import time

import torch

torch.set_num_threads(1)

_REAL_MONOTONIC = time.monotonic


def pytest_configure(config) -> None:
    if os.environ.get("ABLATIONS_TEST_REAL_CLOCK"):
        return
    offset = _REAL_MONOTONIC() - 1.0
    time.monotonic = lambda: _REAL_MONOTONIC() - offset
