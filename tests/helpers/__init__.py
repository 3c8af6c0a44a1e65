"""Helpers shared by the test modules (fakes, synthetic data, exact references); no tests here."""
