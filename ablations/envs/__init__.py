"""Environments: the cohort environments of a run's env id (gymnasium or native batched classic control), the
observation preprocessors, and the `EnvSpec` the rest of the package reads.

The package's own `ablations/ShortCorridor-v0` (Sutton & Barto's Example 13.1, `short_corridor`) is registered with
gymnasium when `registry` is imported. The test-only enumerable MDP `ablations/EnumMDP-v0` is registered by importing
`ablations.envs.enum_mdp` (a study lists it in `imports`), not by importing the package."""
