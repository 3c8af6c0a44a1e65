"""Evaluate a saved policy (K episodes, stochastic and greedy, seeded) and record a video of one episode.

Evaluation reuses the engine's own pieces (`make_cohort_env`, `rollout.collect`, the policy head), so a saved policy
acts exactly as it did in training. Everything random comes from `numpy.random.SeedSequence(seed)`: one reset seed
shared by the stochastic and the greedy episodes (the two are paired: episode i starts from the same state in
both), and the action noise from its own child stream.

Videos: one episode in a gymnasium env made with ``render_mode="rgb_array"`` (the same dynamics as the native
backends, which are bit-exact to gymnasium), written with Pillow (GIF) or imageio's ffmpeg writer (MP4). The file
holds the frame after reset and one frame after every step, so an episode of length T gives T + 1 frames
(`frame_step` keeps every k-th of them). ``.gif`` needs Pillow; ``.mp4`` needs imageio and ffmpeg through
``imageio-ffmpeg``: all come with ``pip install 'ablations[video]'``. Note that a GIF writer merges identical
consecutive frames (Pillow adds up their durations), so a GIF of an episode with a still stretch has fewer frames
than T + 1 while playing for the same time; an MP4 has exactly T + 1.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..config import ConfigError, RunConfig
from ..files import atomic_target
from ..envs.registry import describe, make_cohort_env, preprocessor, split_env_id
from ..envs.spec import EnvSpec
from ..train.nets import forward_single, head_for, policy_sizes
from .policy_io import PolicyFileError, as_tensor, load_policy, policy_path
from ..envs.preprocess import ensure_registered
from ..train.rollout import DEFAULT_MAX_STEPS, action_tensors, collect, to_env_actions
from ..train.seeding import draw_seed

#: Video writers by file extension: the modules the writer needs, and the hint printed when one is missing.
VIDEO_WRITERS: dict[str, tuple[tuple[str, ...], str]] = {
    ".gif": (("PIL",), "GIF videos need Pillow: pip install 'ablations[video]' (or pip install pillow)"),
    ".mp4": (("imageio", "imageio_ffmpeg"), "MP4 videos need ffmpeg: pip install 'ablations[video]' (or pip install "
                                            "imageio imageio-ffmpeg), or write a .gif instead"),
}


class VideoError(RuntimeError):
    """A video cannot be written (unknown extension, or the writer for it is not installed)."""


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of K episodes of one policy, stochastic and greedy (arrays [K])."""

    run_id: str
    seed: int
    stochastic: np.ndarray
    greedy: np.ndarray
    stochastic_lengths: np.ndarray
    greedy_lengths: np.ndarray

    def summary(self) -> str:
        k = len(self.stochastic)
        return (f"run {self.run_id}: {k} episodes (seed {self.seed})\n"
                f"  stochastic  return {_mean_std(self.stochastic)}  length {_mean_std(self.stochastic_lengths)}\n"
                f"  greedy      return {_mean_std(self.greedy)}  length {_mean_std(self.greedy_lengths)}")


def _mean_std(x: np.ndarray) -> str:
    """mean ± sample std (ddof=1; 0 for one value)."""
    std = float(np.std(x, ddof=1)) if len(x) > 1 else 0.0
    return f"{float(np.mean(x)):.2f} ± {std:.2f}"


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    frames: int  # frames handed to the writer
    length: int  # steps of the episode
    episode_return: float


def check_params(config: RunConfig, spec: EnvSpec, params: Sequence[Tensor]) -> None:
    """Raise ValueError unless `params` has the shapes of `config`'s policy network on `spec`."""
    sizes = policy_sizes(spec, config.hidden)
    expected = [s for fan_in, fan_out in zip(sizes[:-1], sizes[1:]) for s in ((fan_in, fan_out), (fan_out,))]
    got = [tuple(p.shape) for p in params]
    if got != expected:
        raise ValueError(f"run {config.run_id}: parameter shapes {got} do not match the policy of {config.env_id} "
                         f"with hidden={list(config.hidden)} ({expected})")


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(reset seeds, action noise) for evaluation `seed`."""
    env_seq, noise_seq, _ = np.random.SeedSequence(seed).spawn(3)  # the third child seeds videos
    return np.random.Generator(np.random.PCG64(env_seq)), np.random.Generator(np.random.PCG64(noise_seq))


def evaluate_policy(config: RunConfig, params: Sequence[Tensor], episodes: int = 10, seed: int = 0) -> EvalResult:
    """K = `episodes` episodes with the stochastic policy and K with the greedy one, from the same K start states."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is invalid; allowed: an integer >= 1")
    ensure_registered(config.env_id)
    spec = describe(config.env_id, config.preprocess)
    head = head_for(spec)
    params = [as_tensor(p).detach().float() for p in params]  # tensors or numpy arrays (CohortResult)
    check_params(config, spec, params)
    stacked = [p.unsqueeze(0) for p in params]  # a cohort of one run
    env_gen, noise_gen = _streams(seed)
    reset_seed = draw_seed(env_gen)
    env = make_cohort_env([config], num_envs=episodes, spec=spec)
    try:
        out = {}
        for greedy in (False, True):
            b = collect(env, np.array([0]), [reset_seed], stacked, config.activation, head, [noise_gen],
                        greedy=greedy)
            out[greedy] = (b.episode_returns()[0].numpy(), b.lengths[0].numpy())
    finally:
        env.close()
    return EvalResult(config.run_id, seed, out[False][0], out[True][0], out[False][1], out[True][1])


# ---- videos ----------------------------------------------------------------------------------------------------
def check_video_writer(path: str | Path) -> None:
    """Raise `VideoError` with an install hint unless a writer for `path`'s extension is available."""
    ext = Path(path).suffix.lower()
    if ext not in VIDEO_WRITERS:
        raise VideoError(f"video {path}: unknown extension {ext!r}; allowed: {sorted(VIDEO_WRITERS)}")
    modules, hint = VIDEO_WRITERS[ext]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise VideoError(f"{hint} (missing: {', '.join(missing)})")


def render_episode(config: RunConfig, params: Sequence[Tensor], seed: int = 0, greedy: bool = True,
                   max_steps: int | None = None) -> tuple[list[np.ndarray], int, float, float]:
    """Play one episode with frames → (frames [T+1 × H×W×3 uint8], T, return, render fps)."""
    import gymnasium as gym

    ensure_registered(config.env_id)
    spec = describe(config.env_id, config.preprocess)
    head = head_for(spec)
    params = [as_tensor(p).detach().float() for p in params]  # tensors or numpy arrays (CohortResult)
    check_params(config, spec, params)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):  # headless: SDL needs no real display
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    env = gym.make(split_env_id(config.env_id)[1], render_mode="rgb_array")
    if config.preprocess is not None:
        env = preprocessor(config.preprocess).wrap(env)
    low, high, amap = action_tensors(spec, head)
    _, _, video_seq = np.random.SeedSequence(seed).spawn(3)
    gen = np.random.Generator(np.random.PCG64(video_seq))
    cap = max_steps or spec.max_episode_steps or DEFAULT_MAX_STEPS
    try:
        obs, _ = env.reset(seed=draw_seed(gen))
        frames = [np.asarray(env.render())]
        total, t, done = 0.0, 0, False
        with torch.no_grad():
            while not done and t < cap:
                out = forward_single(params, torch.as_tensor(np.asarray(obs), dtype=torch.float32).reshape(1, -1),
                                     config.activation)
                if greedy:
                    act = head.greedy(out)
                else:
                    act = head.sample(out, torch.from_numpy(head.draw_noise(gen, 1, 1)[0]))
                env_act = to_env_actions(head, act, low, high, amap)[0].numpy()
                obs, reward, terminated, truncated, _ = env.step(env_act)
                frames.append(np.asarray(env.render()))
                total += float(reward)
                t += 1
                done = bool(terminated or truncated)
        fps = float(env.metadata.get("render_fps") or 30)
    finally:
        env.close()
    return frames, t, total, fps


def write_video(path: str | Path, frames: Sequence[np.ndarray], fps: float) -> Path:
    """Write RGB frames to `path` (.gif or .mp4 by extension) atomically → `path`; `VideoError` if no writer."""
    path = Path(path)
    check_video_writer(path)
    if not frames:
        raise ValueError("write_video needs at least one frame")
    path.parent.mkdir(parents=True, exist_ok=True)
    stack = np.stack([np.asarray(f, dtype=np.uint8) for f in frames])
    with atomic_target(path, suffix=path.suffix) as tmp:  # the extension picks the writer
        if path.suffix.lower() == ".gif":
            _write_gif(tmp, stack, fps)
        else:
            # yuv420p needs even sizes: pad by one row/column where odd instead of letting ffmpeg rescale.
            h, w = stack.shape[1:3]
            stack = np.pad(stack, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            import imageio.v2 as imageio_v2

            imageio_v2.mimwrite(tmp, list(stack), format="FFMPEG", fps=fps, macro_block_size=1,
                                codec="libx264", pixelformat="yuv420p")
    return path


def _write_gif(path: Path, stack: np.ndarray, fps: float) -> None:
    """Frames [F, H, W, 3] → an endlessly looping GIF, quantized once to one palette shared by every frame.

    Environment renders have few colours, so an adaptive palette from up to 64 frames spread over the episode keeps
    them (almost) exact, and is ~20× faster than quantizing each frame on its own. GIF delays are in units of 10 ms.
    """
    from PIL import Image

    sample = stack[:: max(1, len(stack) // 64)]
    palette = Image.fromarray(np.concatenate(list(sample), axis=0)).quantize(256, method=Image.Quantize.FASTOCTREE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in stack]
    duration_ms = max(10, int(round(100.0 / fps)) * 10)
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def record_episode(config: RunConfig, params: Sequence[Tensor], path: str | Path, seed: int = 0,
                   greedy: bool = True, frame_step: int = 1, max_steps: int | None = None) -> VideoInfo:
    """Record one episode of the policy to `path` (.gif / .mp4); keep every `frame_step`-th frame (first included)."""
    if frame_step < 1:
        raise ValueError(f"frame_step={frame_step} is invalid; allowed: an integer >= 1")
    check_video_writer(path)  # fail before playing a long episode
    frames, length, ret, fps = render_episode(config, params, seed, greedy, max_steps)
    frames = frames[::frame_step]
    written = write_video(path, frames, fps / frame_step)
    return VideoInfo(written, len(frames), length, ret)


def record_saved(results_dir: str | Path, run_id: str, path: str | Path, seed: int = 0, greedy: bool = True,
                 frame_step: int = 1) -> VideoInfo:
    config, params = load_policy(policy_path(results_dir, run_id))
    return record_episode(config, params, path, seed, greedy, frame_step)


# ---- the report's video ----------------------------------------------------------------------------------------
def best_run(results_dir: str | Path) -> list[str]:
    """Run ids of the best config's seeds, best first: the config with the highest mean `final_return` over its
    done runs in runs.csv (configs compared on every RunConfig column but `seed`), its seeds by `final_return`."""
    import pandas as pd

    from ..config import CONFIG_COLUMNS

    runs_csv = Path(results_dir) / "runs.csv"
    if not runs_csv.is_file():
        return []
    df = pd.read_csv(runs_csv, dtype=str, keep_default_na=False)  # '' stays '' (groupby drops NaN keys)
    if df.empty or "status" not in df or "final_return" not in df:
        return []
    df = df[df["status"] == "done"].copy()
    df["final_return"] = pd.to_numeric(df["final_return"], errors="coerce")
    df = df[np.isfinite(df["final_return"])]
    if df.empty:
        return []
    keys = [c for c in CONFIG_COLUMNS if c != "seed" and c in df.columns]
    means = df.groupby(keys, sort=True)["final_return"].mean()
    best = means.index[int(np.argmax(means.to_numpy()))]  # first of ties, in sorted key order
    best = best if isinstance(best, tuple) else (best,)
    sel = np.logical_and.reduce([df[k] == v for k, v in zip(keys, best)])
    members = df[sel].sort_values(["final_return", "run_id"], ascending=[False, True], kind="stable")
    return members["run_id"].tolist()


def record_best_video(results_dir: str | Path, out_path: str | Path, seed: int = 0, greedy: bool = True,
                      frame_step: int = 1) -> Path | None:
    """A GIF (or MP4, by `out_path`'s extension) of the best config's best seed that has a saved policy.

    None when runs.csv has no done run with a finite final_return or no seed of the best config saved a policy
    (studies over 100 runs save none). Raises `VideoError` when the writer is not installed.
    """
    for run_id in best_run(results_dir):
        if policy_path(results_dir, run_id).is_file():
            try:
                return record_saved(results_dir, run_id, out_path, seed, greedy, frame_step).path
            except (ConfigError, PolicyFileError) as exc:  # the env cannot be made here: a report without video
                raise VideoError(f"no video of run {run_id}: {exc}") from None
    return None
