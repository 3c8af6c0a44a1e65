"""Small studies save each run's final policy; the report embeds a GIF of the best config's best seed."""

from PIL import Image
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.evaluate.policy_io import load_policy

runner = CliRunner()

STUDY = """name = "vq"
seeds = 2
[fixed]
env_id = "CartPole-v1"
total_steps = 1500
hidden = [16]
eval_episodes = 2
[factors]
baseline = ["none", "value"]
"""


def test_small_study_saves_policies_and_report_embeds_the_best_runs_gif(tmp_path):
    study = tmp_path / "vq.toml"
    study.write_text(STUDY)
    res = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "res"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    saved = sorted((tmp_path / "res" / "policies").glob("*.pt"))
    assert len(saved) == 4
    cfg, params = load_policy(saved[0])
    assert cfg.run_id == saved[0].stem and params[0].shape == (4, 16)
    res = runner.invoke(app, ["report", str(tmp_path / "res"), "--out", str(tmp_path / "rep"), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    gif = tmp_path / "rep" / "figures" / "best_run.gif"
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames >= 1
    assert "](figures/best_run.gif)" in (tmp_path / "rep" / "README.md").read_text()


def test_train_saves_policies(tmp_path):
    res = runner.invoke(app, ["train", "--seeds", "0-1", "--steps", "600", "--hidden", "8", "--eval-episodes", "1",
                              "--out", str(tmp_path / "t")])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "t" / "policies").glob("*.pt"))) == 2
