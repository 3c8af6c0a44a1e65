import lzma
import shutil

from typer.testing import CliRunner

from ablations.cli import app
from ablations.study.publish import compare, pack, read_text, rounded_csv

runner = CliRunner()

STUDY = """name = "tiny_pub"
seeds = 2
probe_seeds = 1
[fixed]
env_id = "CartPole-v1"
total_steps = 1200
hidden = [16]
eval_episodes = 2
probe_every = 2
probe_batches = 4
[factors]
baseline = ["none", "loo"]
"""


def test_rounded_csv_by_hand():
    text = "run_id,update,x,label,empty\na1,3,0.123456789,rtg,\na2,10,12345678.9,full,1.5\n"
    assert rounded_csv(text, 4) == "run_id,update,x,label,empty\na1,3,0.1235,rtg,\na2,10,1.235e+07,full,1.5\n"


def test_pack_then_reproduce_is_identical_and_detects_a_change(tmp_path):
    study = tmp_path / "tiny_pub.toml"
    study.write_text(STUDY)
    res = runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "a"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    shutil.copytree(tmp_path / "a", tmp_path / "fresh")
    full_curves = (tmp_path / "a" / "curves.csv").read_text()
    res = runner.invoke(app, ["pack", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    published = tmp_path / "a"
    assert (published / "curves.csv.xz").exists() and not (published / "curves.csv").exists()
    assert not (published / "cohorts").exists() and (published / "SHA256SUMS").exists()
    assert read_text(published / "curves.csv") == rounded_csv(full_curves)
    assert all(c.identical for c in compare(published, tmp_path / "fresh"))
    res = runner.invoke(app, ["status", str(published)])
    assert res.exit_code == 0 and "done 4, diverged 0, failed 0, pending 0" in " ".join(res.output.split())
    # the CLI reruns the study and finds it identical
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(published), "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "NO" not in res.output
    # a changed value is caught
    curves = tmp_path / "fresh" / "curves.csv"
    curves.write_text(curves.read_text().replace(",1,", ",2,", 1))
    assert not all(c.identical for c in compare(published, tmp_path / "fresh"))


def test_the_report_reads_a_packed_directory(tmp_path):
    study = tmp_path / "tiny_pub.toml"
    study.write_text(STUDY)
    assert runner.invoke(app, ["run", str(study), "--out", str(tmp_path / "a"), "--workers", "1"]).exit_code == 0
    pack(tmp_path / "a")
    res = runner.invoke(app, ["report", str(tmp_path / "a"), "--out", str(tmp_path / "rep"), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "README.md").exists()
    assert lzma.decompress((tmp_path / "a" / "probes.csv.xz").read_bytes()).startswith(b"run_id,")
