"""Named observation preprocessors (and binary action restrictions) that a `RunConfig.preprocess` can select.

A config names its preprocessor (``preprocess = "pong"``), so it stays plain data; `ablations.envs.registry` applies the
preprocessor's `wrap` to every sub-environment and, when it sets `binary_actions`, gives the policy a Bernoulli head
whose two outcomes are mapped to those two env actions.

* ``pong``: the classic "pg-pong" preprocessing (Karpathy, *Deep Reinforcement Learning: Pong from Pixels*, 2016):
  crop rows 35:195, keep every 2nd row and column of the red channel (80×80), erase the background colours 144 and
  109, set everything else (paddles, ball) to 1, and observe the difference between this frame and the previous
  one (6400 values in {−1, 0, 1}, int8: the rollout keeps them so, the policy sees float32). The previous frame is
  zeros after every reset, so the first observation of an episode is the first frame itself (the original script
  observes all zeros there instead). Actions are restricted to UP/DOWN, ALE's Pong actions 2 (RIGHT, which moves the
  paddle up) and 3 (LEFT, down).

`ensure_registered` makes optional environment families usable lazily: it registers the ALE ids (``ALE/...``, from
the optional ``ale-py``) and imports Box2D (``LunarLander-v3`` etc., from ``gymnasium[box2d]``) without the
import-time warnings that crash the interpreter under ``-W error``; for gymnasium's MuJoCo ids (``HalfCheetah-v5``,
``Hopper-v5``, from ``gymnasium[mujoco]``) it names the extra when MuJoCo is missing, selects headless EGL
rendering (``MUJOCO_GL=egl`` unless set, when there is no display: videos work on a server) and drops MuJoCo 4's
deprecation warning about gymnasium's XML files (which MuJoCo would otherwise log to MUJOCO_LOG.TXT in the working
directory).
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from ..config import ConfigError
from .spec import Preprocessor

# ---- Pong ("pg-pong") ------------------------------------------------------------------------------------------
PONG_FRAME_SHAPE = (210, 160, 3)  # ALE's RGB screen
PONG_CROP = slice(35, 195)  # the playing field, without the score board and the bottom border
PONG_BACKGROUND = (144, 109)  # red-channel values of the two background colours
PONG_SIZE = 80 * 80
PONG_UP, PONG_DOWN = 2, 3  # ALE Pong-v5 action meanings: 2 = RIGHT (paddle up), 3 = LEFT (paddle down)


def pong_frame(frame: np.ndarray) -> np.ndarray:
    """One RGB Pong screen [210, 160, 3] uint8 → float32 [6400] in {0, 1}: 1 on paddles and ball, 0 on background.

    Red channel of rows 35:195 and every 2nd column, downsampled by 2 (80×80, row-major), with 0, 144 and 109 → 0
    and every other value → 1.
    """
    return _pong_on(frame).astype(np.float32)


def _pong_on(frame: np.ndarray) -> np.ndarray:
    """`pong_frame` as bool [6400]."""
    if frame.shape != PONG_FRAME_SHAPE:
        raise ValueError(f"pong_frame expects an RGB screen of shape {PONG_FRAME_SHAPE}, got {frame.shape}")
    red = frame[PONG_CROP, :, 0][::2, ::2]  # [80, 80]
    return ((red != 0) & (red != PONG_BACKGROUND[0]) & (red != PONG_BACKGROUND[1])).ravel()


class PongFrameDifference(gym.ObservationWrapper):
    """Observe `pong_frame(current) − pong_frame(previous)` as int8; the previous frame is zeros after every reset."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        shape = getattr(env.observation_space, "shape", None)
        if shape != PONG_FRAME_SHAPE:
            raise ConfigError(f"preprocess='pong' needs RGB observations of shape {PONG_FRAME_SHAPE} "
                              f"(ALE/Pong-v5 with obs_type='rgb'); got observation space {env.observation_space}")
        self.observation_space = gym.spaces.Box(-1, 1, (PONG_SIZE,), np.int8)
        self._prev = np.zeros(PONG_SIZE, dtype=np.int8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._prev = np.zeros(PONG_SIZE, dtype=np.int8)
        return super().reset(seed=seed, options=options)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        cur = _pong_on(np.asarray(observation)).view(np.int8)  # bool → 0/1 without a copy
        diff = cur - self._prev
        self._prev = cur
        return diff


#: name → Preprocessor.
PREPROCESSORS: dict[str, Preprocessor] = {
    "pong": Preprocessor("pong", PongFrameDifference, binary_actions=(PONG_UP, PONG_DOWN)),
}


# ---- lazy registration of optional environment families -------------------------------------------------------
#: id namespace → (module that registers it on import, the extra that installs it).
NAMESPACES: dict[str, tuple[str, str]] = {"ALE": ("ale_py", "atari")}
#: Entry-point prefix of gymnasium's own ids that need Box2D (LunarLander, BipedalWalker, CarRacing).
BOX2D_ENTRY_POINT = "gymnasium.envs.box2d"
#: Entry-point prefix of gymnasium's MuJoCo ids (HalfCheetah-v5, Hopper-v5, ...), from ``gymnasium[mujoco]``.
MUJOCO_ENTRY_POINT = "gymnasium.envs.mujoco"
#: MuJoCo warnings dropped: gymnasium's v5 XML files use `settotalmass`, which MuJoCo 4 deprecates on every compile
#: (MuJoCo's default handler prints it and appends it to MUJOCO_LOG.TXT in the working directory).
MUJOCO_QUIET = ("compiler attribute 'settotalmass' is deprecated",)


def ensure_registered(env_id: str) -> None:
    """Make `env_id` usable: import the module that registers its namespace (``ALE/...`` → ale_py) if not loaded,
    and import Box2D safely for gymnasium's Box2D ids.

    Raise `ConfigError` naming the extra to install when a needed module is missing. Ids of no known family are left
    alone (gymnasium's own error names them later).
    """
    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace in NAMESPACES and namespace not in _registered_namespaces():
        module, extra = NAMESPACES[namespace]
        gym.register_envs(_import_or_explain(module, extra, env_id))
    spec = gym.registry.get(env_id)
    if spec is not None and isinstance(spec.entry_point, str) and spec.entry_point.startswith(BOX2D_ENTRY_POINT):
        # Box2D's SWIG bindings warn (DeprecationWarning: "builtin type SwigPyPacked has no __module__ attribute")
        # while their C module initializes; with warnings turned into errors (pytest -W error) that exception
        # crashes the interpreter (a segfault). Import it once with those warnings ignored.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"builtin type \w+ has no __module__ attribute",
                                    category=DeprecationWarning)
            _import_or_explain("Box2D", "box2d", env_id)
    if spec is not None and isinstance(spec.entry_point, str) and spec.entry_point.startswith(MUJOCO_ENTRY_POINT):
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (videos); read when mujoco is imported
        mujoco = _import_or_explain("mujoco", "mujoco", env_id)
        mujoco.set_mju_user_warning(_mujoco_warning)  # idempotent: the same handler every time


def _mujoco_warning(message: str) -> None:
    """MuJoCo's warnings on stderr, without the known deprecation of gymnasium's XML files and without a log file."""
    if not any(quiet in message for quiet in MUJOCO_QUIET):
        sys.stderr.write(f"MuJoCo warning: {message}\n")


def _import_or_explain(module: str, extra: str, env_id: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"env_id={env_id!r} needs the optional package {module!r} ({exc}); "
                          f"install it with: pip install 'ablations[{extra}]'") from None


def _registered_namespaces() -> set[str]:
    return {spec.namespace for spec in gym.registry.values() if spec.namespace}
