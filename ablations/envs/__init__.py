"""Environments: the cohort environments of a run's env id (gymnasium or native batched classic control), the
observation preprocessors, and the `EnvSpec` the rest of the package reads."""

from .enum_mdp import register as _register_enum_mdp

_register_enum_mdp()  # ablations/EnumMDP-v0: the enumerable MDP of the exact-gradient tests
