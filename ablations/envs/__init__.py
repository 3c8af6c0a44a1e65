"""Environments: the cohort environments of a run's env id (gymnasium or native batched classic control), the
observation preprocessors, and the `EnvSpec` the rest of the package reads.

The test-only enumerable MDP `ablations/EnumMDP-v0` is registered by importing `ablations.envs.enum_mdp` (a study
lists it in `imports`), not by importing the package."""
