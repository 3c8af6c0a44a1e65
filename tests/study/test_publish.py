import lzma
import shutil

import pytest
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.files import sha256_file
from ablations.study.publish import (HASHED, SUMS, PublishError, compare, compare_study, pack, read_text,
                                     rounded_csv)
from ablations.study.tuning import CHOICE_FILE, TUNE_DIR

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
    packed = {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()}
    res = runner.invoke(app, ["pack", str(published), "--delete-sources"])  # again: harmless, nothing written
    assert res.exit_code == 0 and "already packed: nothing written" in res.output, res.output
    assert {p.name: p.read_bytes() for p in published.iterdir() if p.is_file()} == packed
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
    runs = published / "runs.csv"
    original = runs.read_text()
    lines = original.splitlines()
    col = lines[0].split(",").index("final_return")

    def publish_runs(rows: list[str], manifest: dict) -> None:
        """runs.csv replaced and published again (its SHA256SUMS line and manifest record): a consistent
        published directory with other bits (an edit without them is refused: test_reproduce_refuses_edits)."""
        from ablations.files import sha256_file
        from ablations.study.results_format import file_record

        runs.write_text("\n".join(rows) + "\n")
        sums = published / "SHA256SUMS"
        sums.write_text("".join(f"{sha256_file(runs) if n == 'runs.csv' else h}  {n}\n"
                                for h, n in (line.split("  ", 1) for line in sums.read_text().splitlines())))
        manifest["files"]["runs.csv"] = file_record(runs)
        (published / "manifest.json").write_text(json.dumps(manifest))

    def shift(by: float) -> list[str]:
        return [lines[0]] + [",".join(c if i != col else str(float(c) + by) for i, c in enumerate(row.split(",")))
                             for row in lines[1:]]

    publish_runs(shift(1e-9), manifest)  # "other bits" in runs.csv
    res = reproduce()
    assert res.exit_code == 1 and "regression" in " ".join(res.output.split()), res.output
    # a SIMD list no real machine has: the test must not depend on which CPU runs it (an AVX2-only machine's own
    # list is ["X86_V3"])
    manifest["machines"] = {"0123456789ab": {**info, "cpu": "Another CPU", "numpy_simd": ["NOT_A_REAL_EXTENSION"]}}
    publish_runs(shift(1e-9), manifest)
    res = reproduce()
    out = " ".join(res.output.split())
    assert res.exit_code == 0 and "another machine class" in out and "statistically the same" in out, res.output
    assert "numpy_simd" in out and "'Another CPU'" in out  # says what differs
    publish_runs(shift(1000), manifest)
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
    assert not old.same and old.published == ["unknown"] and "does not record" in old.summary()


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


# ---- a tuned study ([tune]): two stages, each packed, both reproduced ------------------------------------------
TUNED = STUDY.replace('name = "tiny_pub"', 'name = "tiny_tuned"') + """[tune]
policy_lr = [1e-2, 3e-2]
seeds = 2
"""


def _trained(tmp_path_factory, name, text):
    """Study `text` written to <tmp>/<name>.toml and trained once: (study file, results directory)."""
    root = tmp_path_factory.mktemp(name)
    study = root / f"{name}.toml"
    study.write_text(text)
    res = runner.invoke(app, ["run", str(study), "--out", str(root / "run"), "--workers", "1"])
    assert res.exit_code == 0, res.output
    return study, root / "run"


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """The tiny tuned study trained once (8 tuning runs, 4 evaluation runs): (study file, results directory)."""
    return _trained(tmp_path_factory, "tiny_tuned", TUNED)


def _published(tuned_run, tmp_path, delete_sources=True):
    study, run = tuned_run
    shutil.copytree(run, tmp_path / "pub")
    res = runner.invoke(app, ["pack", str(tmp_path / "pub"), *(["--delete-sources"] if delete_sources else [])])
    assert res.exit_code == 0 and "tune/SHA256SUMS" in res.output, res.output
    return study, tmp_path / "pub"


def _reproduce(study, published, *extra):
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(published), "--workers", "1", *extra])
    return res, " ".join(res.output.split())


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_pack_of_a_tuned_study_packs_both_stages_and_packing_again_is_harmless(tuned_run, tmp_path):
    _, run = tuned_run
    pub = tmp_path / "pub"
    shutil.copytree(run, pub)
    written = pack(pub)
    assert {"tune/SHA256SUMS", "tune/curves.csv.xz", "tune/probes.csv.xz", "SHA256SUMS", "curves.csv.xz"} <= set(
        written)
    sums = (pub / SUMS).read_text().splitlines()
    assert sums[0] == f"{sha256_file(pub / CHOICE_FILE)}  {CHOICE_FILE}"
    assert [s.split()[1] for s in sums[1:]] == list(HASHED)
    assert [s.split()[1] for s in (pub / TUNE_DIR / SUMS).read_text().splitlines()] == list(HASHED)
    assert lzma.decompress((pub / TUNE_DIR / "curves.csv.xz").read_bytes()).decode() == rounded_csv(
        (pub / TUNE_DIR / "curves.csv").read_text())
    pack(pub, delete_sources=True)
    for folder in (pub, pub / TUNE_DIR):
        assert not (folder / "curves.csv").exists() and not (folder / "cohorts").exists()
        assert (folder / "curves.csv.xz").exists() and (folder / SUMS).exists()
    assert all(c.identical for c in compare_study(pub, run))
    status = " ".join(runner.invoke(app, ["status", str(pub)]).output.split())  # counts from each runs.csv now
    assert "done 8, diverged 0, failed 0, pending 0 (of 8)" in status and "pending 0 (of 4)" in status, status
    names = [c.name for c in compare_study(pub, run)]
    assert names[:5] == ["tune/runs.csv", "tune/curves.csv", "tune/probes.csv", "tune/curves.csv.xz",
                         "tune/probes.csv.xz"] and names[5] == CHOICE_FILE
    before = _files(pub)
    assert pack(pub, delete_sources=True) == {} and pack(pub) == {} and _files(pub) == before  # idempotent
    res = runner.invoke(app, ["pack", str(pub), "--delete-sources"])
    assert res.exit_code == 0 and "already packed: nothing written" in res.output and _files(pub) == before
    # a SHA256SUMS packed before tune_choice.csv was listed gets that line, and nothing else changes
    (pub / SUMS).write_text("".join(line + "\n" for line in sums[1:]))
    assert pack(pub) == {SUMS: len("\n".join(sums).encode()) + 1} and _files(pub) == before
    # the choice must be the file stage 2 was trained from, and a tuned study is published with both stages
    choice = (pub / CHOICE_FILE).read_text()
    (pub / CHOICE_FILE).write_text(choice.replace("True", "False"))
    with pytest.raises(PublishError, match=r"tune_choice.csv: sha256 .* the manifest recorded when stage 2 started"):
        pack(pub)
    (pub / CHOICE_FILE).write_text(choice)
    shutil.rmtree(pub / TUNE_DIR)
    with pytest.raises(PublishError, match=r"tune/manifest.json is missing: .* records a tuned study"):
        pack(pub)


def _republish(folder, name: str) -> None:
    """`folder/name` recorded as it is now in SHA256SUMS and the manifest: published data with other bits."""
    import json

    from ablations.files import sha256_file
    from ablations.study.results_format import file_record

    sums = folder / SUMS
    sums.write_text("".join(f"{sha256_file(folder / n) if n == name else h}  {n}\n"
                            for h, n in (line.split("  ", 1) for line in sums.read_text().splitlines())))
    manifest = json.loads((folder / "manifest.json").read_text())
    if name in manifest.get("files", {}):
        manifest["files"][name] = file_record(folder / name)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_reproduce_a_tuned_study_is_bit_identical_and_catches_a_changed_byte(tuned_run, tmp_path):
    """Both stages and the choice rerun bit-identically (exit 0); one byte changed in the published choice and in
    stage 1's runs.csv is a regression on this machine class (exit 1), each file named."""
    study, published = _published(tuned_run, tmp_path)
    res, out = _reproduce(study, published)
    assert res.exit_code == 0 and "bit-identical" in out and " NO " not in out, res.output
    for name in ("tune/runs.csv", "tune/curves.csv.xz", "tune_choice.csv", "runs.csv", "curves.csv.xz"):
        assert f"│ {name} " in res.output
    choice = published / CHOICE_FILE
    lines = choice.read_text().splitlines()
    col = lines[0].split(",").index("mean")
    cells = lines[1].split(",")
    cells[col] = cells[col][:-1] + str((int(cells[col][-1]) + 1) % 10)  # one digit of a mean: the choice stays
    choice.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    runs = published / TUNE_DIR / "runs.csv"
    runs.write_text(runs.read_text().replace(",done,", ",done ,", 1))
    res, out = _reproduce(study, published)  # edited after packing: refused before training (issue 28, item 4)
    assert res.exit_code == 2 and "differs from its SHA256SUMS hash" in out, res.output
    _republish(published, "tune_choice.csv")
    _republish(published / TUNE_DIR, "runs.csv")
    res, out = _reproduce(study, published)
    assert res.exit_code == 1 and "regression" in out, res.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in res.output.splitlines()
            if line.count("│") >= 3 and line.split("│")[1].strip()}
    assert rows["tune_choice.csv"] == rows["tune/runs.csv"] == "NO" and rows["runs.csv"] == "yes", rows


def test_reproduce_a_tuned_study_checks_both_stages_run_ids_before_training(tuned_run, tmp_path):
    study, published = _published(tuned_run, tmp_path, delete_sources=False)
    changed = tmp_path / "changed" / "tiny_tuned.toml"
    changed.parent.mkdir()
    changed.write_text(TUNED.replace("total_steps = 1200", "total_steps = 1300"))
    res, out = _reproduce(changed, published, "--keep", str(tmp_path / "fresh"))
    assert res.exit_code == 1 and f"{published / TUNE_DIR} was not made from the runs" in out, res.output
    assert "8 of the study's 8 run ids are not in the published results" in out and "Republish it" in out
    assert not (tmp_path / "fresh").exists()  # nothing was trained
    changed.write_text(TUNED.replace("policy_lr = [1e-2, 3e-2]", "policy_lr = [3e-2, 1e-2]"))
    res, out = _reproduce(changed, published, "--keep", str(tmp_path / "fresh"))  # stage 2 at the published choice
    assert res.exit_code == 1 and f"{published / TUNE_DIR} was not made" not in out, res.output
    assert f"{published} was not made from the runs" in out and not (tmp_path / "fresh").exists()
    (published / CHOICE_FILE).unlink()
    res, out = _reproduce(study, published)
    assert res.exit_code == 2 and f"{published / CHOICE_FILE} is missing" in out and "tuned study" in out, res.output
    shutil.rmtree(published / TUNE_DIR)
    res, out = _reproduce(study, published)
    assert res.exit_code == 2 and f"{published / TUNE_DIR / 'manifest.json'} is missing" in out, res.output


def test_reproduce_a_tuned_study_on_another_machine_class_shows_the_choice(tuned_run, tmp_path, monkeypatch):
    """Another machine class whose tuning picks another candidate for one config: the choice table says 1 of 2 and
    that this is not a failure by itself; stage 2 is compared statistically, its configs paired by factor levels."""
    import json

    from ablations.study import tuning

    study, published = _published(tuned_run, tmp_path)
    for folder in (published, published / TUNE_DIR):
        manifest = json.loads((folder / "manifest.json").read_text())
        (key, info), = manifest["machines"].items()
        manifest["machines"] = {"0123456789ab": {**info, "cpu": "Another CPU"}}
        (folder / "manifest.json").write_text(json.dumps(manifest))
    original = tuning.choose

    def another_choice(spec, runs, curves):  # as another machine's draws near the optimum may choose
        table, chosen = original(spec, runs, curves)
        first = table["config_index"] == "0"
        table.loc[first, "chosen"] = table.loc[first, "chosen"].map({"True": "False", "False": "True"})
        return table, [next(c for c in spec.tune.grid() if c != chosen[0]), *chosen[1:]]

    monkeypatch.setattr(tuning, "choose", another_choice)
    res, out = _reproduce(study, published)
    assert "another machine class" in out and "'Another CPU'" in out, res.output
    assert "1 of 2 configs chose the same candidate as published" in out and "not a failure by itself" in out
    assert "2 seeds" in out and "overall shift" in out  # the statistical check ran on stage 2, seeds paired
    assert res.exit_code == (0 if "statistically the same" in out else 1), res.output


# ---- a spot check: reproduce --sample K ------------------------------------------------------------------------
#: 2 factors × 3 seeds, probes on seed 0 only: 12 runs, 4 probed.
SAMPLED = STUDY.replace('name = "tiny_pub"\nseeds = 2', 'name = "tiny_sample"\nseeds = 3').replace(
    "total_steps = 1200\nhidden = [16]", "total_steps = 800\nhidden = [8]") + 'returns = ["full", "rtg"]\n'


@pytest.fixture(scope="module")
def sampled_run(tmp_path_factory):
    """The tiny 2 × 2 study, 3 seeds, probes on seed 0 only (12 runs), trained once: (study file, results dir)."""
    return _trained(tmp_path_factory, "tiny_sample", SAMPLED)


def _sample_rows(output):
    """run_id → the cells of its row in the --sample table."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and len(cells[0]) == 12 and all(ch in "0123456789abcdef" for ch in cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


def _edit_cell(path, run_id, column, edit):
    """Change one cell of `run_id`'s first row in a CSV (or in its packed .xz)."""
    packed = path.with_name(path.name + ".xz")
    text = path.read_text() if path.exists() else lzma.decompress(packed.read_bytes()).decode()
    lines = text.splitlines()
    col = lines[0].split(",").index(column)
    i = next(i for i, line in enumerate(lines) if line.startswith(run_id + ","))
    cells = lines[i].split(",")
    cells[col] = edit(cells[col])
    lines[i] = ",".join(cells)
    text = "\n".join(lines) + "\n"
    if path.exists():
        path.write_text(text)
    else:
        packed.write_bytes(lzma.compress(text.encode()))


def test_sample_runs_is_seeded_and_stratified():
    from ablations.config import RunConfig
    from ablations.study.publish import sample_runs

    def runs(env, n, probed=()):
        return [RunConfig(env_id=env, seed=s, probe_every=2 if s in probed else 0) for s in range(n)]

    stages = [runs("CartPole-v1", 20) + runs("Acrobot-v1", 20), runs("CartPole-v1", 5, probed={4}) +
              runs("Pendulum-v1", 5)]
    for seed in range(20):
        one, two = sample_runs(stages, 3, seed)
        assert sample_runs(stages, 3, seed) == [one, two] and len(one) + len(two) == 3  # deterministic
        assert {c.env_id for c in one + two} == {"CartPole-v1", "Acrobot-v1", "Pendulum-v1"}  # every env: K = 3
        assert any(c.probe_every for c in two)  # the one probed run
        assert one == [c for c in stages[0] if c in one]  # study order
    assert sample_runs(stages, 2, 0) != sample_runs(stages, 2, 1) or sample_runs(stages, 2, 2) != sample_runs(
        stages, 2, 0)
    assert [len(s) for s in sample_runs(stages, 50, 3)] == [40, 10]
    assert [len(s) for s in sample_runs([runs("CartPole-v1", 10)], 1, 0)] == [1]
    for k in (0, 51):
        with pytest.raises(ValueError, match="allowed: 1 <= k <= 50"):
            sample_runs(stages, k, 0)


def test_rounded_frame_judges_a_column_over_the_whole_table():
    """A sample's rows are rounded as pack rounded the whole table: a column with text elsewhere is kept verbatim."""
    import pandas as pd

    from ablations.study.publish import rounded_frame

    whole = pd.DataFrame({"x": ["0.123456789", "nan"], "n": ["3", "4"], "y": ["", "2.0"]})
    part = whole.iloc[[0]]
    assert rounded_frame(part, 4).iloc[0].tolist() == ["0.1235", "3", ""]
    assert rounded_frame(part, 4, like=whole).iloc[0].tolist() == ["0.123456789", "3", ""]


def test_reproduce_sample_checks_the_sampled_runs_row_by_row(sampled_run, tmp_path):
    """--sample 3: 3 runs retrained and found bit-identical (a probed one among them); every run (K = 12) after
    editing a published runs.csv cell and a packed curves row: exit 1, NO for just those runs and files; on another
    machine class the same differences cannot decide (exit 0) and say so."""
    import json

    from ablations.study.design import expand, load_study
    from ablations.study.publish import sample_runs

    study, run = sampled_run
    published = tmp_path / "pub"
    shutil.copytree(run, published)
    pack(published, delete_sources=True)
    res, out = _reproduce(study, published, "--sample", "3")
    assert res.exit_code == 0, res.output
    assert "the 3 sampled runs are bit-identical to the published ones (rows of runs.csv at full precision, " \
           "curves/probes at the packed precision)" in out
    rows = _sample_rows(res.output)
    configs = expand(load_study(study))
    drawn, = sample_runs([configs], 3, 0)
    assert sorted(rows) == sorted(c.run_id for c in drawn) and len(rows) == 3
    probed = [c.run_id for c in drawn if c.probe_every]
    assert probed and all(rows[r][-1] == "yes" for r in probed)  # probes checked
    assert all(cells[-3:-1] == ["yes", "yes"] and cells[-1] in ("yes", "—") for cells in rows.values()), rows
    edited, curved = configs[0].run_id, configs[5].run_id
    _edit_cell(published / "runs.csv", edited, "final_return", lambda v: repr(float(v) * 1.01))
    _edit_cell(published / "curves.csv", curved, "return_mean", lambda v: repr(float(v) + 1.0))
    res, out = _reproduce(study, published, "--sample", "12")  # runs.csv edited after packing: refused
    assert res.exit_code == 2 and "runs.csv differs from its SHA256SUMS hash" in out, res.output
    _republish(published, "runs.csv")
    res, out = _reproduce(study, published, "--sample", "12")
    assert res.exit_code == 1 and "regression" in out, res.output
    assert "2 of the 12 sampled runs differ (1 of 12 runs.csv rows, 1 of " in out and " is 0.0099" in out, out
    rows = _sample_rows(res.output)
    assert len(rows) == 12 and rows[edited][-3:] == ["NO", "yes", "yes"], rows[edited]
    assert rows[curved][-3] == "yes" and rows[curved][-2].startswith("NO (1 of"), rows[curved]
    assert all("NO" not in " ".join(cells) for r, cells in rows.items() if r not in (edited, curved))
    manifest = json.loads((published / "manifest.json").read_text())
    (key, info), = manifest["machines"].items()
    manifest["machines"] = {"0123456789ab": {**info, "cpu": "Another CPU"}}
    (published / "manifest.json").write_text(json.dumps(manifest))
    res, out = _reproduce(study, published, "--sample", "12")
    assert res.exit_code == 0 and "not bit-identical, as can happen across machine classes" in out.lower(), out
    assert "cannot be compared statistically with any power" in out and "run the full `ablations reproduce" in out


def test_reproduce_sample_refuses_a_bad_k_before_training(sampled_run, tmp_path):
    study, run = sampled_run
    published = tmp_path / "pub"
    shutil.copytree(run, published)
    pack(published)
    for k in ("0", "13", "-1"):
        res, out = _reproduce(study, published, "--sample", k, "--keep", str(tmp_path / "fresh"))
        assert res.exit_code == 2 and f"--sample {k} is invalid; allowed: 1 ≤ K ≤ 12, the runs of tiny_sample" in out
        assert not (tmp_path / "fresh").exists()  # nothing was trained


def test_reproduce_sample_of_a_tuned_study_draws_from_both_stages(tuned_run, tmp_path):
    """A tuned study's sample: both stages' runs (stage 2 at the published choice) and the probed run; one changed
    cell of stage 1's runs.csv is NO for that run only; K counts both stages."""
    from ablations.study.design import load_study
    from ablations.study.tuning import stage1_configs

    study, published = _published(tuned_run, tmp_path)
    res, out = _reproduce(study, published, "--sample", "3")
    assert res.exit_code == 0 and "the 3 sampled runs are bit-identical" in out, res.output
    rows = _sample_rows(res.output)
    assert len(rows) == 3 and {cells[0] for cells in rows.values()} == {"1", "2"}, rows  # the stage column
    assert any(cells[-1] == "yes" for cells in rows.values())  # the probed run (stage 2)
    edited = stage1_configs(load_study(study))[3].run_id
    _edit_cell(published / TUNE_DIR / "runs.csv", edited, "status", lambda v: v + " ")
    res, out = _reproduce(study, published, "--sample", "12")  # edited after packing: refused before training
    assert res.exit_code == 2 and "tune: runs.csv differs from its SHA256SUMS hash" in out, res.output
    _republish(published / TUNE_DIR, "runs.csv")
    res, out = _reproduce(study, published, "--sample", "12")
    assert res.exit_code == 1 and "regression" in out, res.output
    rows = _sample_rows(res.output)
    assert len(rows) == 12 and rows[edited][0] == "1" and rows[edited][-3] == "NO", rows[edited]
    assert sum("NO" in " ".join(cells) for cells in rows.values()) == 1
    res, out = _reproduce(study, published, "--sample", "13")
    assert res.exit_code == 2 and "allowed: 1 ≤ K ≤ 12, the runs of tiny_tuned (8 in stage 1 (tuning) + 4 in " \
                                  "stage 2 (evaluation))" in out, res.output
