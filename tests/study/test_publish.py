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
    assert res.exit_code == 0 and "--delete-sources" in res.output, res.output
    assert (tmp_path / "a" / "curves.csv").read_text() == full_curves and (tmp_path / "a" / "cohorts").is_dir()
    res = runner.invoke(app, ["pack", str(tmp_path / "a"), "--delete-sources"])
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
    pack(tmp_path / "a", delete_sources=True)
    res = runner.invoke(app, ["report", str(tmp_path / "a"), "--out", str(tmp_path / "rep"), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep" / "README.md").exists()
    assert lzma.decompress((tmp_path / "a" / "probes.csv.xz").read_bytes()).startswith(b"run_id,")


def test_reproduce_tells_identical_regression_and_another_machine_class(tmp_path):
    """The three endings of `reproduce`: bit-identical (0); other bits on the same machine class (1); another machine
    class → the statistical comparison, which agrees for the same data (0) and disagrees for shifted data (1)."""
    import json

    study = tmp_path / "tiny_pub.toml"
    study.write_text(STUDY)
    published = tmp_path / "a"
    assert runner.invoke(app, ["run", str(study), "--out", str(published), "--workers", "1"]).exit_code == 0
    manifest = json.loads((published / "manifest.json").read_text())
    (key, info), = manifest["machines"].items()  # one machine class, with its run count
    assert info["runs"] == 4 and info["numpy_simd"] is not None and len(key) == 12
    timings = (published / "timings.csv").read_text().splitlines()
    assert timings[0] == "run_id,wall_s,machine" and all(line.endswith("," + key) for line in timings[1:])
    pack(published, delete_sources=True)

    def reproduce():
        return runner.invoke(app, ["reproduce", str(study), "--results", str(published), "--workers", "1"])

    res = reproduce()
    assert res.exit_code == 0 and "bit-identical" in res.output, res.output
    sums = published / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(sums.read_text()[:8], "00000000", 1))  # "other bits" in runs.csv
    res = reproduce()
    assert res.exit_code == 1 and "regression" in " ".join(res.output.split()), res.output
    manifest["machines"] = {"0123456789ab": {**info, "cpu": "Another CPU", "numpy_simd": ["X86_V3"]}}
    (published / "manifest.json").write_text(json.dumps(manifest))
    res = reproduce()
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "another machine class" in out and "statistically the same" in out, res.output
    assert "numpy_simd" in out and "'Another CPU'" in out  # says what differs
    runs = published / "runs.csv"
    lines = runs.read_text().splitlines()
    col = lines[0].split(",").index("final_return")
    shifted = [lines[0]] + [",".join(c if i != col else str(float(c) + 1000) for i, c in enumerate(l.split(",")))
                            for l in lines[1:]]
    runs.write_text("\n".join(shifted) + "\n")
    res = reproduce()
    assert res.exit_code == 1 and "statistically different" in res.output and "overall shift" in res.output, res.output


def test_machine_match_by_hand():
    from ablations.study.publish import machine_match

    a = {"cpu": "A", "numpy_simd": ["X86_V3"], "torch_cpu_capability": "AVX2", "runs": 3}
    b = {**a, "numpy_simd": ["X86_V3", "X86_V4"]}
    same = machine_match({"machines": {"k1": a}}, {"machines": {"k1": a}})
    assert same.same and same.differences == {}
    other = machine_match({"machines": {"k1": a}}, {"machines": {"k2": b}})
    assert not other.same and other.differences == {"numpy_simd": (["X86_V3"], ["X86_V3", "X86_V4"])}
    old = machine_match({"versions": {}}, {"machines": {"k1": a}})  # published before machines were recorded
    assert not old.same and old.published == ["unknown"] and "does not record" in old.describe()


def test_reproduce_refuses_at_once_when_the_study_no_longer_expands_to_the_published_runs(tmp_path):
    """A study file or RunConfig that changed since publishing cannot reproduce: say so before training anything."""
    import json

    study = tmp_path / "tiny_pub.toml"
    study.write_text(STUDY)
    published = tmp_path / "a"
    assert runner.invoke(app, ["run", str(study), "--out", str(published), "--workers", "1"]).exit_code == 0
    pack(published)
    manifest = json.loads((published / "manifest.json").read_text())
    manifest["run_ids"] = manifest["run_ids"][:-1] + ["0" * 16]
    (published / "manifest.json").write_text(json.dumps(manifest))
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(published), "--workers", "1",
                              "--keep", str(tmp_path / "fresh")])
    out = " ".join(res.output.split())
    assert res.exit_code == 1 and "1 of the study's 4 run ids are not in the published results" in out, res.output
    assert "Republish it" in out and not (tmp_path / "fresh").exists()  # nothing was trained
