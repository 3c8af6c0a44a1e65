"""Fixtures for the command tests: the report tests' synthetic results directories."""

from tests.report.conftest import make_results  # noqa: F401
