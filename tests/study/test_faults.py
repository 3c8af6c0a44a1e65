"""Faults, as issue 28 attacked the package: SIGKILL during the combine and during each step of `pack`, a second
writer, edited packed files, a full disk (a file-size limit) and read-only directories. Each ends identical to an
uninterrupted run, or refused with a clear message and nothing lost (DESIGN.md invariant 6).

The kills are real (a subprocess SIGKILLs itself at a hook: the code under test has no test hooks) where the point is
what a dead process leaves; the steps of `pack` are enumerated in process (a `Killed` BaseException at the k-th
write or delete, which no `except Exception` catches), each finished by packing again."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.study import publish
from ablations.study.results_format import CorruptError, IncompleteError, require_complete

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]

STUDY = """name = "tiny_faults"
seeds = 2
probe_seeds = 2
[fixed]
env_id = "CartPole-v1"
total_steps = 500
hidden = [8]
eval_episodes = 0
episodes_per_update = 4
probe_every = 2
probe_batches = 2
"""
DATA = ("runs.csv", "curves.csv", "probes.csv")

# A CLI run that SIGKILLs itself when `module.function` is called on a path named `name` (KILL_AT=module.function@name)
HOOK = r"""
import importlib, os, runpy, signal, sys
target, name = os.environ["KILL_AT"].split("@")
module, attr = target.rsplit(".", 1)
mod = importlib.import_module(module)
original = getattr(mod, attr)
def hooked(path, *args, **kwargs):
    if os.path.basename(str(path)) == name:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(path, *args, **kwargs)
setattr(mod, attr, hooked)
sys.argv = ["ablations", *sys.argv[1:]]
runpy.run_module("ablations.cli", run_name="__main__")
"""


def _cli(args: list[str], *, kill_at: str | None = None, fsize: int | None = None) -> subprocess.CompletedProcess:
    """`ablations ARGS` in a subprocess (this tree first on the path), killed at `kill_at` or with a file-size limit
    of `fsize` bytes (SIGXFSZ ignored: a write past it fails with EFBIG, as on a full disk)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KILL_AT": kill_at or ""}

    def limit() -> None:
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    code = HOOK if kill_at else "import sys, runpy; sys.argv = ['ablations', *sys.argv[1:]]; " \
                                "runpy.run_module('ablations.cli', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=env, cwd=ROOT, capture_output=True,
                          text=True, preexec_fn=limit, timeout=600)


def _run_args(study: Path, out: Path) -> list[str]:
    return ["run", study, "--out", out, "--workers", "1", "--cohort-size", "1"]


def _tree(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path → bytes), except the lock file and wall-clock records."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in (".lock", "manifest.json", "timings.csv", "DONE.json")
            and "policies" not in p.parts}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(the study file, an uninterrupted run of it): the reference every fault must end identical to."""
    base = tmp_path_factory.mktemp("faults")
    study = base / "tiny_faults.toml"
    study.write_text(STUDY)
    res = runner.invoke(app, [str(a) for a in _run_args(study, base / "reference")])
    assert res.exit_code == 0, res.output
    assert len(list((base / "reference" / "cohorts").iterdir())) == 2  # two parts: the combine has work to do
    return study, base / "reference"


def _same_data(a: Path, b: Path) -> None:
    for name in DATA:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


# ---- SIGKILL during the combine --------------------------------------------------------------------------------
def test_sigkill_during_the_combine_is_refused_then_finished_without_retraining(finished, tmp_path):
    study, reference = finished
    out = tmp_path / "r"
    killed = _cli(_run_args(study, out), kill_at="ablations.study.store.write_text_atomic@probes.csv")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (out / "curves.csv").exists() and not (out / "probes.csv").exists()
    (out / ".probes.csv.dead.tmp").write_text("half")  # what a kill inside an atomic write leaves
    with pytest.raises(IncompleteError, match="probes.csv, timings.csv are missing.*" +
                       re.escape(f"`ablations run {study} --out {out}`")):
        require_complete(out)
    res = runner.invoke(app, ["status", str(out)])
    assert res.exit_code == 2 and "did not finish" in res.output and f"ablations run {study} --out {out}" in res.output
    res = runner.invoke(app, ["pack", str(out), "--delete-sources"])
    assert res.exit_code == 2 and "probes.csv, timings.csv are missing" in res.output, res.output
    assert (out / "cohorts").is_dir() and not (out / "SHA256SUMS").exists()  # nothing deleted, nothing packed
    res = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--resamples", "100"])
    assert res.exit_code == 2 and "did not finish" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "report").exists()
    res = runner.invoke(app, [str(a) for a in _run_args(study, out)])
    assert res.exit_code == 0 and "0 to train" in res.output, res.output
    _same_data(out, reference)
    assert not list(out.glob(".*.tmp"))
    first, last = json.loads((out / "manifest.json").read_text())["invocations"]
    assert (first["outcome"], first["trained_runs"]) == ("killed", 2)  # the killed one says what it trained
    assert (last["outcome"], last["trained_runs"]) == ("finished", 0)
    assert require_complete(out)["status"] == "complete"
    assert runner.invoke(app, ["status", str(out)]).exit_code == 0


# ---- pack, killed at every step --------------------------------------------------------------------------------
class Killed(BaseException):
    """A kill: no `except Exception` stops it."""


def _count_steps(monkeypatch, fail_at: int | None) -> list[str]:
    """Make `pack`'s k-th write or delete (0-based) die (`fail_at`); → the steps taken."""
    steps: list[str] = []
    replace = os.replace

    def step(what: str, path) -> None:
        steps.append(f"{what} {Path(path).name}")
        if fail_at is not None and len(steps) - 1 == fail_at:
            if what == "write":  # a kill inside an atomic write leaves its temporary file
                Path(path).with_name(f".{Path(path).name}.dead.tmp").write_bytes(b"half")
            raise Killed(steps[-1])

    for name in ("write_atomic", "write_text_atomic"):
        original = getattr(publish, name)
        monkeypatch.setattr(publish, name,
                            lambda path, *a, _o=original, **k: (step("write", path), _o(path, *a, **k))[1])
    original_remove = publish._remove
    monkeypatch.setattr(publish, "_remove", lambda path: (step("delete", path), original_remove(path))[1])
    monkeypatch.setattr(publish.os, "replace", lambda a, b: (step("rename", a) if Path(a).name == "cohorts" else None,
                                                            replace(a, b))[1])
    return steps


def test_pack_killed_at_every_step_is_finished_by_packing_again(finished, tmp_path, monkeypatch):
    _, reference = finished
    clean = tmp_path / "clean"
    shutil.copytree(reference, clean)
    with monkeypatch.context() as m:
        steps = _count_steps(m, None)
        publish.pack(clean, delete_sources=True)
    assert steps[:3] == ["write curves.csv.xz", "write probes.csv.xz", "write SHA256SUMS"]  # written first,
    assert steps[3:] and all(s.split()[0] in ("delete", "rename") for s in steps[3:])  # then deleted
    want = _tree(clean)
    assert "curves.csv" not in want and "probes.csv.xz" in want and not (clean / "cohorts").exists()
    for k in range(len(steps)):
        out = tmp_path / f"k{k}"
        shutil.copytree(reference, out)
        with monkeypatch.context() as m:
            _count_steps(m, k)
            with pytest.raises(Killed):
                publish.pack(out, delete_sources=True)
        require_complete(out)  # whatever step it died in, what is there verifies
        publish.pack(out, delete_sources=True)  # the same command finishes it
        assert _tree(out) == want, (k, steps[k])
        assert not list(out.glob(".*")) or {p.name for p in out.glob(".*")} <= {".lock"}


def test_pack_sigkilled_after_deleting_curves_is_finished_by_the_same_command(finished, tmp_path):
    """The issue's case: killed after curves.csv was removed, `pack --delete-sources` again packs probes.csv too."""
    _, reference = finished
    out, clean = tmp_path / "p", tmp_path / "clean"
    shutil.copytree(reference, out)
    shutil.copytree(reference, clean)
    publish.pack(clean, delete_sources=True)
    killed = _cli(["pack", out, "--delete-sources"], kill_at="ablations.study.publish._remove@probes.csv")
    assert killed.returncode == -signal.SIGKILL and not (out / "curves.csv").exists(), killed.stderr
    res = runner.invoke(app, ["pack", str(out), "--delete-sources"])
    assert res.exit_code == 0 and "add --delete-sources" not in res.output, res.output
    assert _tree(out) == _tree(clean)
    assert [line.split()[1] for line in (out / "SHA256SUMS").read_text().splitlines()] == list(DATA)


# ---- packed directories: run trains nothing, edits are refused, reproduce reads what was packed ----------------
def test_run_on_a_packed_directory_trains_and_writes_nothing(finished, tmp_path):
    study, reference = finished
    out = tmp_path / "p"
    shutil.copytree(reference, out)
    publish.pack(out, delete_sources=True)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    res = runner.invoke(app, [str(a) for a in _run_args(study, out)])
    assert res.exit_code == 0 and "nothing to train" in res.output and "pending 0" in res.output, res.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_edited_packed_files_are_refused_by_every_reader(finished, tmp_path):
    study, reference = finished
    out = tmp_path / "p"
    shutil.copytree(reference, out)
    publish.pack(out, delete_sources=True)
    runs = out / "runs.csv"
    runs.write_text(runs.read_text().replace(",done,", ",done ,", 1))
    with pytest.raises(CorruptError, match="runs.csv differs from its SHA256SUMS hash"):
        require_complete(out)
    for args in (["status", out], ["pack", out], _run_args(study, out),
                 ["reproduce", study, "--results", out, "--sample", "1", "--workers", "1", "--keep", tmp_path / "f"],
                 ["reproduce", study, "--results", out, "--workers", "1", "--keep", tmp_path / "f"]):
        res = runner.invoke(app, [str(a) for a in args])
        assert res.exit_code == 2 and "runs.csv differs from its SHA256SUMS hash" in res.output, (args, res.output)
    assert not (tmp_path / "f").exists()  # refused before training


def test_reproduce_after_pack_keeping_sources_compares_what_was_packed(finished, tmp_path):
    study, reference = finished
    out = tmp_path / "p"
    shutil.copytree(reference, out)
    publish.pack(out)  # curves.csv stays, full precision, beside curves.csv.xz
    assert (out / "curves.csv").exists()
    res = runner.invoke(app, ["reproduce", str(study), "--results", str(out), "--workers", "1"])
    assert res.exit_code == 0 and "bit-identical" in res.output, res.output


# ---- a second writer -------------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_while_another_process_holds_the_directory(finished, tmp_path):
    study, _ = finished
    out = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from ablations.study.store import ResultsDir\n"
                               f"with ResultsDir({str(out)!r}).lock():\n    print('locked', flush=True)\n"
                               "    sys.stdin.read()"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        for args in (["train", "--seeds", "0", "--steps", "300", "--hidden", "8", "--eval-episodes", "0",
                      "--workers", "1", "--out", out], _run_args(study, out)):
            res = runner.invoke(app, [str(a) for a in args])
            assert res.exit_code == 3 and f"pid {holder.pid}" in res.output, (args, res.output)
        assert sorted(p.name for p in out.iterdir()) == [".lock"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
        holder.stdout.close()


# ---- a full disk -----------------------------------------------------------------------------------------------
def test_a_full_disk_during_the_combine_is_refused_then_finished(finished, tmp_path):
    study, reference = finished
    part = max(p.stat().st_size for p in (reference / "cohorts").rglob("*") if p.is_file())
    whole = (reference / "probes.csv").stat().st_size  # both runs are probed: the combined file is the largest
    assert whole > part > (reference / "manifest.json").stat().st_size
    out = tmp_path / "full"
    res = _cli(_run_args(study, out), fsize=(part + whole) // 2)  # the parts fit, the combined probes.csv does not
    assert res.returncode == 2 and "File too large" in res.stderr and "None" not in res.stderr, res.stderr
    assert "run the same command again" in res.stderr
    assert not list(out.glob(".*.tmp")) and len(list((out / "cohorts").iterdir())) == 2
    with pytest.raises(IncompleteError):
        require_complete(out)
    res = runner.invoke(app, [str(a) for a in _run_args(study, out)])
    assert res.exit_code == 0 and "0 to train" in res.output, res.output
    _same_data(out, reference)


# ---- read-only directories -------------------------------------------------------------------------------------
@pytest.fixture
def read_only(monkeypatch):
    """Make a directory tree read-only: chmod, and for root (whom permissions do not stop) refuse writes inside it
    as the kernel would for another user."""
    import builtins

    def make(root: Path) -> None:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        if os.geteuid() != 0:
            return
        prefix = str(root.resolve())
        inside = lambda p: str(Path(p).resolve()).startswith(prefix)
        real_open, real_os_open, real_access = builtins.open, os.open, os.access

        def deny(path):
            raise PermissionError(13, "Permission denied", str(path))

        monkeypatch.setattr(builtins, "open", lambda f, mode="r", *a, **k: deny(f) if inside(f) and any(
            c in mode for c in "wax+") else real_open(f, mode, *a, **k))
        monkeypatch.setattr(os, "open", lambda f, flags, *a, **k: deny(f) if inside(f) and flags & (
            os.O_WRONLY | os.O_RDWR | os.O_CREAT) else real_os_open(f, flags, *a, **k))
        monkeypatch.setattr(os, "access", lambda p, mode, *a, **k: False if inside(p) and mode & os.W_OK
                            else real_access(p, mode, *a, **k))

    yield make


def test_status_and_pack_of_a_read_only_directory_end_cleanly(finished, tmp_path, read_only):
    _, reference = finished
    out = tmp_path / "ro"
    shutil.copytree(reference, out)
    before = _tree(out)
    try:
        read_only(out)
        res = runner.invoke(app, ["status", str(out)])
        assert res.exit_code == 0 and "done 2" in res.output, res.output
        res = runner.invoke(app, ["pack", str(out), "--delete-sources"])
        assert res.exit_code == 2 and "not writable" in res.output and res.exception is None or \
            isinstance(res.exception, SystemExit), res.output
        assert res.exit_code == 2, res.output
    finally:
        for p in [out, *out.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert _tree(out) == before


def test_gitignore_ignores_no_data_file() -> None:
    """Until `pack` has written and verified their packed form, curves.csv, probes.csv and cohorts/ are the only copy
    of their rows: nothing in .gitignore may hide them (only the lock file and killed writes' temporary files)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    data = [f"results/s/{name}" for name in (*DATA, "timings.csv", "manifest.json", "SHA256SUMS", "curves.csv.xz",
                                             "cohorts/000001-abc/probes.csv", "cohorts/000001-abc/DONE.json",
                                             "tune/curves.csv", "tune_choice.csv", "policies/abc.pt")]
    res = subprocess.run(["git", "check-ignore", "--no-index", *data], cwd=ROOT, capture_output=True, text=True)
    assert res.stdout == "", res.stdout
    res = subprocess.run(["git", "check-ignore", "--no-index", "results/s/.lock", "results/s/tune/.lock"], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.stdout.split() == ["results/s/.lock", "results/s/tune/.lock"]
