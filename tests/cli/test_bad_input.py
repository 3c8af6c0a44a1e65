"""The bad-input corpus: every case exits with code 2 and one clear message naming the file, the key and the allowed
values, with no traceback and nothing written (the results directory is not created; existing files keep their
bytes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ablations.cli.app import app

runner = CliRunner()

BASE = """name = "bad"
seeds = 2
{top}
[fixed]
env_id = "CartPole-v1"
total_steps = 500
hidden = [8]
{fixed}
[factors]
baseline = ["none", "value"]
{factors}
{rest}
"""


def study(top: str = "", fixed: str = "", factors: str = "", rest: str = "") -> str:
    return BASE.format(top=top, fixed=fixed, factors=factors, rest=rest)


ANCHOR = ('[[report.anchors]]\nenv_id = "CartPole-v1"\nsource = "x"\nvalue = 1.0\nsteps = 100\nmeasures = "m"\n'
          'differs = "d"\n')
#: (case id, study text, fragments the message must contain)
STUDY_CASES = [
    ("unknown-top-key", study(top="foo = 1"), ["unknown top-level key", "'foo'", "allowed"]),
    ("bad-name", study().replace('name = "bad"', 'name = "a b"'), ["'name'", "allowed"]),
    ("missing-name", study().replace('name = "bad"', ""), ["'name'", "allowed"]),
    ("description-not-string", study(top="description = 3"), ["'description'", "string"]),
    ("seeds-zero", study().replace("seeds = 2", "seeds = 0"), ["'seeds'", "allowed"]),
    ("seeds-repeated", study().replace("seeds = 2", "seeds = [1, 1]"), ["'seeds'", "repeats"]),
    ("seeds-string", study().replace("seeds = 2", 'seeds = "x"'), ["'seeds'", "allowed"]),
    ("seeds-huge", study().replace("seeds = 2", "seeds = 1000000"), ["'seeds'", "at most"]),
    ("probe-seeds-too-many", study(top="probe_seeds = 5", fixed="probe_every = 2"), ["'probe_seeds'", "[0, 2]"]),
    ("probe-seeds-without-probes", study(top="probe_seeds = 1"), ["'probe_seeds'", "probe_every"]),
    ("probe-seeds-under-factors", study(factors="probe_seeds = 1"), ["[factors]", "'probe_seeds'", "allowed"]),
    ("fixed-unknown-field", study(fixed="lr = 0.1"), ["[fixed]", "'lr'", "allowed"]),
    ("fixed-bad-level", study(fixed='normalize = "bogus"'), ["normalize='bogus'", "none | returns | advantages"]),
    ("factor-not-list", study(factors='normalize = "none"'), ["[factors] normalize", "non-empty list"]),
    ("factor-empty", study(factors="normalize = []"), ["[factors] normalize", "non-empty list"]),
    ("factor-repeated-level", study(factors='normalize = ["none", "none"]'), ["[factors] normalize", "repeats"]),
    ("factor-negative-entropy", study(factors="entropy_coef = [0.0, -0.1]"), ["[factors] entropy_coef", ">= 0"]),
    ("fixed-and-factor", study(fixed='baseline = "none"'), ["'baseline'", "[fixed]", "[factors]"]),
    ("seed-in-fixed", study(fixed="seed = 3"), ["'seed'", "'seeds'"]),
    ("gamma-out-of-range", study(fixed="gamma = 2.0"), ["gamma=2.0", "[0, 1]"]),
    ("total-steps-zero", study().replace("total_steps = 500", "total_steps = 0"), ["total_steps=0", "integer"]),
    ("hidden-zero", study().replace("hidden = [8]", "hidden = [0]"), ["hidden", "positive integers"]),
    ("hidden-string", study().replace("hidden = [8]", 'hidden = "64"'), ["hidden", "positive integers"]),
    ("loo-needs-two-episodes", study(fixed="episodes_per_update = 1").replace('["none", "value"]', '["none", "loo"]'),
     ["[factors] baseline", "episodes_per_update=1", ">= 2"]),
    ("mean-needs-two-episodes", study(fixed="episodes_per_update = 1").replace('["none", "value"]', '["none", "mean"]'),
     ["[factors] baseline", "episodes_per_update=1", ">= 2 with baseline='mean'"]),
    ("unknown-env", study().replace("CartPole-v1", "NoSuchEnv-v0"), ["[fixed] env_id", "NoSuchEnv-v0", "imports"]),
    ("module-env-missing", study().replace("CartPole-v1", "no_such_mod_xyz:X-v0"), ["env_id", "cannot import"]),
    ("module-env-malformed", study().replace("CartPole-v1", ":X-v0"), ["env_id", "module:Env-v0"]),
    ("imports-missing", study(top='imports = ["no_such_module_xyz"]'), ["'imports'", "no_such_module_xyz",
                                                                        "beside the study file"]),
    ("imports-not-list", study(top='imports = "x"'), ["'imports'", "list of module names"]),
    ("env-backend-bogus", study(fixed='env_backend = "gpu"'), ["env_backend='gpu'", "auto | native | gymnasium"]),
    ("preprocess-unknown", study(fixed='preprocess = "nope"'), ["preprocess='nope'", "allowed"]),
    ("exclude-not-factor", study(rest='[[exclude]]\ngamma = 0.9'), ["[[exclude]]", "'gamma'", "allowed"]),
    ("exclude-bad-level", study(rest='[[exclude]]\nbaseline = "mean"'), ["[[exclude]]", "baseline", "allowed"]),
    ("exclude-everything", study(rest='[[exclude]]\nbaseline = ["none", "value"]'), ["[[exclude]]", "every run"]),
    ("sample-k-zero", study(rest="[sample]\nk = 0"), ["[sample] k", "integer >= 1"]),
    ("sample-unknown-key", study(rest="[sample]\nk = 1\nn = 2"), ["[sample]", "'k'"]),
    ("report-unknown-key", study(rest="[report]\nbest = 1"), ["[report]", "'best'", "allowed"]),
    ("reference-unknown-field", study(rest="[report]\nreference = { base = 'none' }"), ["reference", "'base'"]),
    ("reference-not-in-grid", study(rest="[report]\nreference = { baseline = 'mean' }"),
     ["[report] reference", "not a config", "trained: none, value"]),
    ("reference-excluded", study(rest="[[exclude]]\nbaseline = 'none'\n[report]\nreference = { baseline = 'none' }"),
     ["[report] reference", "not a config", "trained: value"]),
    ("reference-fixed-mismatch", study(rest="[report]\nreference = { baseline = 'none', normalize = 'none' }"),
     ["[report] reference", "normalize = 'none'", "trained: advantages"]),
    ("threshold-not-number", study(rest='[report]\nthreshold = "x"'), ["[report] threshold", "number"]),
    ("report-seed-float", study(rest="[report]\nseed = 1.5"), ["[report] seed", "integer"]),
    ("report-primary-unknown", study(rest='[report]\nprimary = "return"'),
     ["[report] primary", "'return'", "final_return | auc"]),
    ("anchor-missing-key", study(rest=ANCHOR.replace('differs = "d"\n', "")),
     ["[[report.anchors]] #1", "missing ['differs']", "allowed"]),
    ("anchor-unknown-env", study(rest=ANCHOR.replace("CartPole-v1", "Acrobot-v1")),
     ["[[report.anchors]] #1", "env_id = 'Acrobot-v1'", "allowed: ['CartPole-v1']"]),
    ("anchor-steps-float", study(rest=ANCHOR.replace("steps = 100", "steps = 1.5")),
     ["[[report.anchors]] #1", "steps = 1.5", "integer > 0"]),
    ("anchor-points-bad", study(rest=ANCHOR + "points = [[1, 2, 3]]\n"),
     ["[[report.anchors]] #1", "points", "[env steps (integer > 0), value] pairs"]),
    ("tune-env-unknown", study(rest='[tune]\npolicy_lr = [1e-3]\n[tune.env."Acrobot-v1"]\npolicy_lr = [1e-2]\n'),
     ['[tune.env."Acrobot-v1"]', "names an env the study does not run", "allowed: ['CartPole-v1']"]),
    ("toml-syntax", study() + "\nbroken = [\n", ["TOML syntax error"]),
    ("hidden-too-big", study().replace("hidden = [8]", "hidden = [100000, 100000]"), ["hidden=[100000, 100000]",
                                                                                      "GiB", "allowed"]),
]


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(result, fragments: list[str], before: dict[str, bytes], root: Path) -> None:
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in text, (fragment, text)
    assert snapshot(root) == before, "something was written"


@pytest.mark.parametrize("case,text,fragments", STUDY_CASES, ids=[c[0] for c in STUDY_CASES])
def test_a_bad_study_file_is_refused(tmp_path, case, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--workers", "1"])
    assert_refused(result, [str(path) if "--set" not in case else "", *fragments], before, tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case,data,fragments", [
    ("latin-1", "name = \"caf\xe9\"\n".encode("latin-1"), ["not UTF-8"]),
    ("utf-16", "name = \"x\"\n".encode("utf-16"), ["not UTF-8"]),
], ids=["latin-1", "utf-16"])
def test_a_study_file_not_in_utf8_is_refused(tmp_path, case, data, fragments):
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert_refused(result, [str(path), *fragments], before, tmp_path)


def test_a_directory_or_a_missing_file_as_the_study(tmp_path):
    (tmp_path / "d.toml").mkdir()
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(tmp_path / "d.toml"), "--out", str(tmp_path / "out")])
    assert_refused(result, ["d.toml", "is a directory"], before, tmp_path)
    result = runner.invoke(app, ["run", str(tmp_path / "missing.toml"), "--out", str(tmp_path / "out")])
    assert_refused(result, ["missing.toml", "no such study file"], before, tmp_path)


def test_an_imports_module_that_raises_is_refused(tmp_path):
    (tmp_path / "broken_env_mod.py").write_text("raise RuntimeError('boom at import')\n")
    path = tmp_path / "bad.toml"
    path.write_text(study(top='imports = ["broken_env_mod"]'))
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert_refused(result, ["'imports'", "broken_env_mod", "RuntimeError: boom at import"], before, tmp_path)


GOOD = study()

CLI_CASES = [
    ("set-not-a-field", ["--set", "lr=0.1"], ["--set", "'lr'", "allowed"]),
    ("set-swept-field", ["--set", "baseline=none"], ["--set", "swept", "[factors]"]),
    ("set-bad-value", ["--set", "total_steps=x"], ["total_steps='x'", "integer"]),
    ("set-no-equals", ["--set", "total_steps"], ["--set", "FIELD=VALUE"]),
    ("address-without-ray", ["--address", "auto"], ["--address", "--executor ray"]),
    ("workers-zero", ["--workers", "0"], ["--workers", "greater than or equal to 1"]),
    ("executor-unknown", ["--executor", "slurm"], ["--executor", "local", "serial", "ray"]),
]


@pytest.mark.parametrize("case,args,fragments", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_bad_run_options_are_refused(tmp_path, case, args, fragments):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), *args])
    assert_refused(result, fragments, before, tmp_path)
    assert not (tmp_path / "out").exists()


def test_out_is_a_file_default_out_is_named_as_default(tmp_path, monkeypatch):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    (tmp_path / "file").write_text("x")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "file")])
    assert_refused(result, ["--out", "exists and is not a directory"], before, tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bad").write_text("x")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["run", str(path)])
    assert_refused(result, ["results/bad", "the default", "exists and is not a directory"], before, tmp_path)
    assert "--out results/bad" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_a_read_only_out_is_refused(tmp_path):
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    (tmp_path / "ro").mkdir()
    os.chmod(tmp_path / "ro", 0o555)
    try:
        result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "ro" / "out")])
        assert result.exit_code == 2 and "not writable" in result.output, result.output
    finally:
        os.chmod(tmp_path / "ro", 0o755)


TRAIN_CASES = [
    ("unknown-env", ["--env", "NoSuch-v0"], ["NoSuch-v0", "--import"]),
    ("bad-seeds", ["--seeds", "3-1"], ["seeds='3-1'", "allowed"]),
    ("bad-baseline", ["--baseline", "bogus"], ["baseline='bogus'", "none | mean | loo | value"]),
    ("bad-hidden", ["--hidden", "a-b"], ["hidden='a-b'", "64-64"]),
    ("import-missing", ["--import", "no_such_module_xyz"], ["no_such_module_xyz", "cannot import"]),
    ("module-env-missing", ["--env", "no_such_mod_xyz:X-v0"], ["no_such_mod_xyz", "cannot import"]),
    ("negative-entropy", ["--entropy-coef", "-1"], ["entropy_coef=-1.0", ">= 0"]),
]


@pytest.mark.parametrize("case,args,fragments", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_bad_train_options_are_refused(tmp_path, case, args, fragments):
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["train", "--steps", "200", "--seeds", "0", "--out", str(tmp_path / "out"), *args])
    assert_refused(result, fragments, before, tmp_path)
    assert not (tmp_path / "out").exists()


def test_train_refuses_an_out_that_holds_results(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "runs.csv").write_text("old\n")
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["train", "--steps", "200", "--seeds", "0", "--out", str(tmp_path / "out")])
    assert_refused(result, ["--out", "already holds results", "runs.csv"], before, tmp_path)


def test_eval_with_an_unknown_video_format_is_refused(tmp_path):
    before = snapshot(tmp_path)
    result = runner.invoke(app, ["eval", str(tmp_path), "--run", "abc", "--video", str(tmp_path / "x.avi")])
    assert_refused(result, ["--video", "unknown extension '.avi'", "allowed"], before, tmp_path)


@pytest.mark.parametrize("command", ["status", "run"])
def test_a_truncated_manifest_is_a_clear_error(tmp_path, command):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text('{"name": "bad", "run_ids": ["a", ')
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    before = snapshot(tmp_path)
    args = ["status", str(out)] if command == "status" else ["run", str(path), "--out", str(out)]
    result = runner.invoke(app, args)
    assert_refused(result, [str(out / "manifest.json"), "not valid JSON", "restore it"], before, tmp_path)
    # deleting the manifest alone resumes identically (the parts are kept): the message says so, not "move it away"
    text = " ".join(result.output.split())
    assert "delete manifest.json alone" in text and "nothing is trained twice" in text and "move" not in text


def test_the_corpus_has_at_least_40_cases():
    n = (len(STUDY_CASES) + 2 + 2 + 1 + len(CLI_CASES) + 1 + len(TRAIN_CASES) + 1 + 1 + 2)
    assert n >= 40


def _closed_port() -> int:
    import socket

    with socket.socket() as s:  # bound, never listening: a connection to it is refused
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("address,fragments", [
    ("127.0.0.1:{port}", ["--address '127.0.0.1:{port}'", "nothing accepts connections", "ray start --head"]),
    ("headnode", ["--address 'headnode'", "not a Ray address", "host:port", "ray://host:port", "auto"]),
], ids=["dead", "malformed"])
def test_a_dead_or_malformed_ray_address_is_refused_at_once(tmp_path, address, fragments):
    """`ray.init` would retry a dead address for many minutes: refused in seconds, before anything is written."""
    import time

    port = _closed_port()
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    before = snapshot(tmp_path)
    start = time.monotonic()
    result = runner.invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--executor", "ray",
                                 "--address", address.format(port=port)])
    assert time.monotonic() - start < 30
    assert_refused(result, [f.format(port=port) for f in fragments], before, tmp_path)
    assert not (tmp_path / "out").exists()
