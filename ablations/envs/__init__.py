"""Environments: the cohort environments of a run's env id (gymnasium or native batched classic control), the
observation preprocessors, and the `EnvSpec` the rest of the package reads."""
