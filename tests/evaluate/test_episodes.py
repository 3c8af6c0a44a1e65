"""`ablations eval`: evaluate a saved policy (stochastic and greedy, seeded) and record a GIF / MP4 of an episode;
`record_best_video` for the report."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from ablations.evaluate import episodes as evaluate
from ablations.cli.eval import eval as eval_command
from ablations.config import RunConfig
from ablations.train.engine import train_cohort
from ablations.study.results_format import frame, write_csv_atomic
from ablations.evaluate.episodes import (VideoError, best_run, evaluate_policy, record_best_video, record_episode,
                                render_episode)
from ablations.evaluate.policy_io import load_policy, policy_path, save_policy

Image = pytest.importorskip("PIL.Image", reason="GIF videos need the video extra (pillow)")

CFG = RunConfig(env_id="CartPole-v1", seed=0, hidden=(16,), episodes_per_update=4, total_steps=3000,
                eval_episodes=2)
CARTPOLE_FRAME_MS = 20  # CartPole renders at 50 fps


def _text(output: str) -> str:
    """CLI output with Rich's error box and line wrapping removed."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", output).split())


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(eval_command)
    return app


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A results directory with one trained CartPole run's saved policy."""
    torch.set_num_threads(1)
    res = train_cohort([CFG])
    root = tmp_path_factory.mktemp("results")
    save_policy(policy_path(root, CFG.run_id), CFG, res.policies[CFG.run_id])
    return root


def test_eval_prints_stochastic_and_greedy_returns_and_writes_a_playable_gif(results_dir, tmp_path):
    gif = tmp_path / "x.gif"
    result = CliRunner().invoke(_app(), [str(results_dir), "--run", CFG.run_id, "--episodes", "4",
                                         "--video", str(gif)])
    assert result.exit_code == 0, result.output
    assert re.search(r"stochastic\s+return -?[\d.]+ ± [\d.]+", result.output)
    assert re.search(r"greedy\s+return -?[\d.]+ ± [\d.]+", result.output)
    m = re.search(r"\((\d+) frames = 1 after reset \+ (\d+) steps", result.output)
    assert m and int(m.group(1)) == int(m.group(2)) + 1

    # The recording holds the frame after reset and one after every step: T + 1 frames.
    config, params = load_policy(policy_path(results_dir, CFG.run_id))
    frames, length, _, fps = render_episode(config, params, seed=0)
    assert len(frames) == length + 1 == int(m.group(1)) and fps == 50
    # Read back: Pillow merges identical consecutive frames into one longer frame, so the GIF has one frame per
    # run of equal frames, and plays for exactly (T + 1) frame times.
    distinct = 1 + sum(not np.array_equal(a, b) for a, b in zip(frames[:-1], frames[1:]))
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.size == (600, 400)
        assert im.n_frames == distinct
        first = np.asarray(im.convert("RGB"))
        durations = []
        for k in range(im.n_frames):
            im.seek(k)
            durations.append(im.info["duration"])
    assert sum(durations) == (length + 1) * CARTPOLE_FRAME_MS
    assert np.abs(first.astype(int) - frames[0].astype(int)).mean() < 8  # the palette is close to the frame


def test_record_episode_counts_frames_and_frame_step_subsamples(results_dir, tmp_path):
    config, params = load_policy(policy_path(results_dir, CFG.run_id))
    info = record_episode(config, params, tmp_path / "a.gif", seed=1)
    assert info.frames == info.length + 1 and info.episode_return == info.length  # CartPole: +1 per step
    sub = record_episode(config, params, tmp_path / "b.gif", seed=1, frame_step=5)
    assert sub.length == info.length and sub.frames == len(range(0, info.length + 1, 5))


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is None, reason="MP4 needs imageio-ffmpeg")
def test_mp4_has_one_frame_per_step_plus_the_first(results_dir, tmp_path):
    import imageio.v2 as imageio_v2

    config, params = load_policy(policy_path(results_dir, CFG.run_id))
    info = record_episode(config, params, tmp_path / "x.mp4", seed=0)
    reader = imageio_v2.get_reader(tmp_path / "x.mp4", format="FFMPEG")
    try:
        assert reader.count_frames() == info.frames == info.length + 1
    finally:
        reader.close()


def test_a_missing_mp4_writer_gives_a_clear_error(results_dir, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(evaluate.importlib.util, "find_spec",
                        lambda name, *a: None if name == "imageio_ffmpeg" else real(name, *a))
    with pytest.raises(VideoError, match=r"MP4 videos need ffmpeg: pip install 'ablations\[video\]'"):
        evaluate.check_video_writer(tmp_path / "x.mp4")
    result = CliRunner().invoke(_app(), [str(results_dir), "--run", CFG.run_id, "--video", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2 and "MP4 videos need ffmpeg" in _text(result.output)
    assert "stochastic" not in result.output  # refused before the evaluation episodes
    assert not (tmp_path / "x.mp4").exists()


def test_unknown_video_extension_and_unknown_run(results_dir, tmp_path):
    result = CliRunner().invoke(_app(), [str(results_dir), "--run", CFG.run_id, "--video", str(tmp_path / "x.avi")])
    assert result.exit_code == 2 and "unknown extension '.avi'" in _text(result.output)
    result = CliRunner().invoke(_app(), [str(results_dir), "--run", "ffffffffffff"])
    assert result.exit_code == 2 and "no saved policy for run 'ffffffffffff'" in _text(result.output)
    result = CliRunner().invoke(_app(), [str(tmp_path), "--run", CFG.run_id])
    assert result.exit_code == 2 and "has no saved policies" in _text(result.output)


def test_a_unique_prefix_names_a_run(results_dir):
    result = CliRunner().invoke(_app(), [str(results_dir), "--run", CFG.run_id[:5], "--episodes", "2"])
    assert result.exit_code == 0 and f"run {CFG.run_id}: 2 episodes (seed 0)" in result.output


def test_evaluation_is_seeded_and_paired(results_dir):
    config, params = load_policy(policy_path(results_dir, CFG.run_id))
    a = evaluate_policy(config, params, episodes=5, seed=7)
    b = evaluate_policy(config, params, episodes=5, seed=7)
    c = evaluate_policy(config, params, episodes=5, seed=8)
    assert np.array_equal(a.stochastic, b.stochastic) and np.array_equal(a.greedy, b.greedy)
    assert not np.array_equal(a.greedy, c.greedy)
    assert a.stochastic.shape == a.greedy.shape == (5,)
    assert np.array_equal(a.greedy, a.greedy_lengths)  # CartPole: return = length


def test_evaluation_refuses_parameters_of_another_network(results_dir):
    config, params = load_policy(policy_path(results_dir, CFG.run_id))
    with pytest.raises(ValueError, match="do not match the policy"):
        evaluate_policy(config.replace(hidden=(32,)), params, episodes=1)


def _write_runs(root: Path, rows: list[tuple[RunConfig, str, float]]) -> None:
    table = [{"run_id": c.run_id, "study": "t", "status": status, "final_return": ret, **c.cells()}
             for c, status, ret in rows]
    write_csv_atomic(root / "runs.csv", frame(table))


def test_record_best_video_picks_the_best_configs_best_seed(results_dir, tmp_path):
    _, params = load_policy(policy_path(results_dir, CFG.run_id))
    good = [CFG.replace(baseline="mean", seed=s) for s in range(3)]
    bad = [CFG.replace(baseline="none", seed=s) for s in range(3)]
    root = tmp_path / "study"
    root.mkdir()
    # bad has the single best run (400) but the lower mean; the failed run would top everything if counted.
    _write_runs(root, [(good[0], "done", 150.0), (good[1], "done", 300.0), (good[2], "done", 200.0),
                       (bad[0], "done", 400.0), (bad[1], "done", 10.0), (bad[2], "done", 20.0),
                       (CFG.replace(baseline="loo", seed=0), "failed", 500.0)])
    assert best_run(root) == [good[1].run_id, good[2].run_id, good[0].run_id]
    assert record_best_video(root, tmp_path / "best.gif") is None  # no policies saved
    for cfg in good[0], good[2]:  # the best seed (1) saved none: the next best seed (2) is recorded
        save_policy(policy_path(root, cfg.run_id), cfg, params)
    out = record_best_video(root, tmp_path / "best.gif", frame_step=4)
    assert out == tmp_path / "best.gif"
    with Image.open(out) as im:
        assert im.format == "GIF"


def test_record_best_video_without_results(tmp_path):
    assert record_best_video(tmp_path, tmp_path / "x.gif") is None
