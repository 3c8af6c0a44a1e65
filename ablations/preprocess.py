"""Named observation preprocessors (and binary action restrictions) that a `RunConfig.preprocess` can select."""

from __future__ import annotations

from .envs import Preprocessor

#: name → Preprocessor. Filled by the environments that need one (e.g. Pong's frame differences).
PREPROCESSORS: dict[str, Preprocessor] = {}
