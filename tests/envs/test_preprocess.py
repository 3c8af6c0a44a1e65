"""The 'pong' preprocessor (pg-pong's crop / downsample / erase background / binarize / frame difference) on
synthetic screens with known paddle and ball positions, and the lazy registration of ALE ids."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest

from ablations.envs import preprocess
from ablations.config import ConfigError
from ablations.envs.registry import preprocessor
from ablations.envs.preprocess import PongFrameDifference, ensure_registered, pong_frame

BACKGROUND = (144, 72, 17)  # Pong's playing field
BACKGROUND_2 = (109, 118, 43)  # the other background colour erased by pg-pong
PADDLE = (92, 186, 92)  # the agent's (right, green) paddle
BALL = (236, 236, 236)


def screen(ball_rows: range = range(101, 105), ball_cols: range = range(80, 82)) -> np.ndarray:
    """A 210×160 RGB screen: background, a paddle at rows 51..66 × cols 140..143, a ball, a score board above row 35,
    a strip of the second background colour, a black border row and an (erased) orange mark below row 195."""
    f = np.empty((210, 160, 3), dtype=np.uint8)
    f[:] = BACKGROUND
    f[:35] = (213, 130, 74)  # score board: cropped away
    f[195:] = (213, 130, 74)  # below the field: cropped away
    f[37:39] = BACKGROUND_2  # erased
    f[41] = (0, 0, 0)  # black: stays 0
    f[51:67, 140:144] = PADDLE
    f[ball_rows.start:ball_rows.stop, ball_cols.start:ball_cols.stop] = BALL
    return f


# Picked rows are 35, 37, ..., 193 (i = (r − 35) / 2) and columns 0, 2, ..., 158 (j = c / 2):
# paddle rows 51..66 → 51, 53, ..., 65 → i = 8..15; cols 140..143 → 140, 142 → j = 70, 71;
# ball rows 101..104 → 101, 103 → i = 33, 34; cols 80..81 → 80 → j = 40.
PADDLE_IDX = [i * 80 + j for i in range(8, 16) for j in (70, 71)]
BALL_IDX = [33 * 80 + 40, 34 * 80 + 40]


def test_pong_frame_marks_exactly_the_paddle_and_the_ball():
    x = pong_frame(screen())
    assert x.shape == (6400,) and x.dtype == np.float32
    assert sorted(np.flatnonzero(x).tolist()) == sorted(PADDLE_IDX + BALL_IDX)
    assert set(np.unique(x).tolist()) == {0.0, 1.0}
    assert x[8 * 80 + 70] == 1.0 and x[7 * 80 + 70] == 0.0 and x[16 * 80 + 70] == 0.0  # paddle's top and bottom


def test_pong_frame_is_the_pg_pong_function():
    """Karpathy's prepro(), verbatim, on a random screen of Pong's colours."""
    rng = np.random.default_rng(0)
    colours = np.array([BACKGROUND, BACKGROUND_2, PADDLE, BALL, (213, 130, 74), (0, 0, 0)], dtype=np.uint8)
    frame = colours[rng.integers(0, len(colours), size=(210, 160))]

    def prepro(img):
        img = img[35:195]
        img = img[::2, ::2, 0].copy()
        img[img == 144] = 0
        img[img == 109] = 0
        img[img != 0] = 1
        return img.astype(float).ravel()

    assert np.array_equal(pong_frame(frame), prepro(frame).astype(np.float32))


def test_pong_frame_rejects_other_shapes():
    with pytest.raises(ValueError, match="210, 160, 3"):
        pong_frame(np.zeros((84, 84, 3), dtype=np.uint8))


class ScriptedScreens(gym.Env):
    """Plays a fixed list of screens: reset shows screens[0], step k shows screens[k]."""

    observation_space = gym.spaces.Box(0, 255, (210, 160, 3), np.uint8)
    action_space = gym.spaces.Discrete(6)

    def __init__(self, screens):
        self.screens, self.t = screens, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.screens[0], {}

    def step(self, action):
        self.t += 1
        return self.screens[self.t], 0.0, self.t == len(self.screens) - 1, False, {}


def test_frame_difference_against_zeros_then_the_previous_frame_and_reset_clears_it():
    first, moved = screen(), screen(ball_rows=range(105, 109), ball_cols=range(84, 86))  # ball 2 down, 2 right
    env = PongFrameDifference(ScriptedScreens([first, moved, moved]))
    assert env.observation_space == gym.spaces.Box(-1, 1, (6400,), np.int8)
    obs, _ = env.reset(seed=0)
    assert np.array_equal(obs, pong_frame(first))  # the first difference is against a zero frame
    obs, *_ = env.step(2)
    assert obs.dtype == np.int8 and obs in env.observation_space
    new_ball = [35 * 80 + 42, 36 * 80 + 42]  # rows 105, 107 → i = 35, 36; col 84 → j = 42
    assert sorted(np.flatnonzero(obs == 1.0).tolist()) == new_ball
    assert sorted(np.flatnonzero(obs == -1.0).tolist()) == BALL_IDX  # the paddle did not move: it cancels
    obs, *_ = env.step(3)
    assert not obs.any()  # nothing moved
    obs, _ = env.reset()
    assert np.array_equal(obs, pong_frame(first))  # reset forgot the previous frame


def test_wrapper_refuses_non_rgb_screens():
    env = ScriptedScreens([])
    env.observation_space = gym.spaces.Box(0, 255, (84, 84), np.uint8)
    with pytest.raises(ConfigError, match="preprocess='pong'"):
        PongFrameDifference(env)


def test_registry_restricts_pong_to_up_and_down():
    pp = preprocessor("pong")
    assert pp.wrap is PongFrameDifference and pp.binary_actions == (2, 3)
    with pytest.raises(ConfigError, match="allowed: .*'pong'"):
        preprocessor("pongg")


@pytest.mark.skipif(importlib.util.find_spec("ale_py") is None, reason="ale-py not installed (pip install '.[atari]')")
def test_ale_pong_actions_2_and_3_are_up_and_down():
    ensure_registered("ALE/Pong-v5")
    env = gym.make("ALE/Pong-v5")
    try:
        meanings = env.unwrapped.get_action_meanings()
    finally:
        env.close()
    assert meanings[2] == "RIGHT" and meanings[3] == "LEFT"  # in Pong, RIGHT moves the paddle up, LEFT down


def test_ensure_registered_is_a_no_op_outside_known_namespaces():
    ensure_registered("CartPole-v1")
    ensure_registered("mynamespace/Thing-v0")


def test_ensure_registered_names_the_extra_when_ale_py_is_missing(monkeypatch):
    monkeypatch.setattr(preprocess, "_registered_namespaces", lambda: set())

    def no_module(name, *args, **kwargs):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(preprocess.importlib, "import_module", no_module)
    with pytest.raises(ConfigError, match=r"ablations\[atari\]"):
        ensure_registered("ALE/Pong-v5")


needs_box2d = pytest.mark.skipif(importlib.util.find_spec("Box2D") is None,
                                 reason="Box2D not installed (pip install '.[box2d]')")


@needs_box2d
def test_box2d_imports_safely_with_warnings_as_errors():
    """Box2D's SWIG module warns while it initializes; under -W error a plain import segfaults the interpreter."""
    import subprocess
    import sys

    code = ("from ablations.envs.preprocess import ensure_registered; ensure_registered('LunarLander-v3'); "
            "import gymnasium as gym; env = gym.make('LunarLander-v3'); env.reset(seed=0); print('ok')")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@needs_box2d
def test_lunarlander_study_loads_and_trains(tmp_path):
    from pathlib import Path

    import torch

    from ablations.train.engine import train_cohort
    from ablations.study.design import expand, load_study

    ensure_registered("LunarLander-v3")
    configs = expand(load_study(Path(__file__).resolve().parents[2] / "studies" / "lunarlander.toml"))
    assert len(configs) == 60 and len({c.seed for c in configs}) == 10
    torch.set_num_threads(1)
    cohort = [c.replace(total_steps=1_000, episodes_per_update=2, eval_episodes=1)
              for c in configs if c.seed == 0][:3]
    res = train_cohort(cohort)
    assert [r["status"] for r in res.runs] == ["done"] * 3
    assert all(np.isfinite(r["final_return"]) for r in res.runs)
