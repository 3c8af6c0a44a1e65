"""`ablations pack` and `ablations reproduce` on a tiny finished study (CartPole, 2 configs × 2 seeds, 500 steps,
probes on seed 0): pack writes SHA256SUMS (the hashes of the full-precision CSVs, checked here with hashlib) and
rounded .xz copies of curves/probes; `reproduce --sample 1` retrains one run and finds it bit-identical (exit 0);
unpacked or unfinished directories and a bad K exit 2 with a clear message."""

from __future__ import annotations

import hashlib
import lzma
import shutil

import pytest
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.study.publish import rounded_csv
from ablations.study.results_format import read_text_table

runner = CliRunner()

STUDY = """name = "t_cli_pub"
seeds = 2
probe_seeds = 1
[fixed]
env_id = "CartPole-v1"
total_steps = 500
hidden = [8]
eval_episodes = 1
probe_every = 2
probe_batches = 3
[factors]
baseline = ["none", "value"]
"""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(study file, results directory) of the tiny study, run once with one worker."""
    root = tmp_path_factory.mktemp("pub")
    study = root / "t_cli_pub.toml"
    study.write_text(STUDY)
    res = runner.invoke(app, ["run", str(study), "--out", str(root / "run"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    return study, root / "run"


@pytest.fixture
def copy(finished, tmp_path):
    study, run = finished
    shutil.copytree(run, tmp_path / "pub")
    return study, tmp_path / "pub"


def _sums(folder):
    """SHA256SUMS as {name: digest}, checking its "<64 hex>  <name>" lines."""
    out = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        assert len(digest) == 64 and set(digest) <= set("0123456789abcdef")
        out[name] = digest
    return out


def _flat(res) -> str:
    return " ".join(res.output.split())


def test_pack_writes_sums_that_verify_and_rounded_xz_copies(copy):
    _, pub = copy
    sources = {name: (pub / name).read_bytes() for name in ("runs.csv", "curves.csv", "probes.csv")}
    res = runner.invoke(app, ["pack", str(pub), "--digits", "4"])
    assert res.exit_code == 0, res.output
    sums = _sums(pub)
    assert list(sums) == ["runs.csv", "curves.csv", "probes.csv"]
    for name, data in sources.items():
        assert sums[name] == hashlib.sha256(data).hexdigest(), name  # the full-precision bytes
        assert (pub / name).read_bytes() == data  # kept without --delete-sources
    for name in ("curves.csv", "probes.csv"):
        text = lzma.decompress((pub / (name + ".xz")).read_bytes()).decode()
        assert text == rounded_csv(sources[name].decode(), 4)
    # one cell by hand: curves' first return_mean, to 4 significant digits
    src = sources["curves.csv"].decode().splitlines()
    packed = lzma.decompress((pub / "curves.csv.xz").read_bytes()).decode().splitlines()
    col = src[0].split(",").index("return_mean")
    assert packed[1].split(",")[col] == f"{float(src[1].split(',')[col]):.4g}"
    assert not (pub / "runs.csv.xz").exists()  # runs.csv is committed as it is
    out = _flat(res)
    assert f"{pub}/curves.csv.xz: " in out and f"{pub}/probes.csv.xz: " in out and " MiB" in out
    assert f"{pub}/SHA256SUMS written" in out
    assert "are kept: add --delete-sources to delete them before committing" in out


def test_pack_delete_sources_then_again_writes_nothing(copy):
    _, pub = copy
    digest = hashlib.sha256((pub / "curves.csv").read_bytes()).hexdigest()
    res = runner.invoke(app, ["pack", str(pub), "--delete-sources"])
    assert res.exit_code == 0, res.output
    assert not (pub / "curves.csv").exists() and not (pub / "probes.csv").exists() and not (pub / "cohorts").exists()
    assert (pub / "runs.csv").exists() and _sums(pub)["curves.csv"] == digest  # the hash of the deleted source
    assert "no full-precision curves.csv, probes.csv or cohorts/ left (--delete-sources)" in _flat(res)
    before = {p.name: p.read_bytes() for p in pub.iterdir() if p.is_file()}
    res = runner.invoke(app, ["pack", str(pub), "--delete-sources"])
    assert res.exit_code == 0 and f"{pub} is already packed: nothing written" in _flat(res)
    assert {p.name: p.read_bytes() for p in pub.iterdir() if p.is_file()} == before


def test_pack_refuses_an_unfinished_directory(tmp_path):
    (tmp_path / "half").mkdir()
    res = runner.invoke(app, ["pack", str(tmp_path / "half")])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert (f"error: {tmp_path / 'half'}: runs.csv is missing; pack a finished `ablations run` results directory"
            in _flat(res))
    assert list((tmp_path / "half").iterdir()) == []


def test_reproduce_sample_1_is_bit_identical(copy, tmp_path):
    study, pub = copy
    assert runner.invoke(app, ["pack", str(pub), "--delete-sources"]).exit_code == 0
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(pub), "--workers", "1", "--sample", "1",
                              "--keep", str(tmp_path / "fresh")])
    assert res.exit_code == 0, res.output
    out = _flat(res)
    assert "reproducing 1 of the 4 runs of t_cli_pub (--sample 1 --sample-seed 0)" in out
    assert "bit-identical: the 1 sampled runs are bit-identical to the published ones" in out
    assert "NO" not in res.output
    fresh = read_text_table(tmp_path / "fresh" / "runs.csv")
    published = read_text_table(pub / "runs.csv").set_index("run_id")
    assert len(fresh) == 1  # the one sampled run
    row = fresh.iloc[0]
    assert row["probe_every"] == "2" and row["seed"] == "0"  # a sample always holds a probed run (seed 0 here)
    assert row.drop("run_id").equals(published.loc[row["run_id"]])  # its runs.csv row, cell for cell


def test_reproduce_refuses_an_unpacked_directory(copy):
    study, pub = copy
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(pub), "--workers", "1", "--sample", "1"])
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit)
    assert f"error: {pub}: no SHA256SUMS; publish it first with `ablations pack {pub}`" in _flat(res)


@pytest.mark.parametrize("k", ["0", "5"])
def test_reproduce_sample_refuses_a_bad_k(copy, tmp_path, k):
    study, pub = copy
    assert runner.invoke(app, ["pack", str(pub)]).exit_code == 0
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(pub), "--workers", "1", "--sample", k,
                              "--keep", str(tmp_path / "fresh")])
    assert res.exit_code == 2
    assert f"--sample {k} is invalid; allowed: 1 ≤ K ≤ 4, the runs of t_cli_pub" in _flat(res)
    assert not (tmp_path / "fresh").exists()  # nothing trained
