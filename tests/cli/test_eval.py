"""`ablations eval`: a saved policy of a tiny `ablations train` run (CartPole, 2 seeds, 500 steps) is evaluated and
its returns printed (exactly `evaluate_policy`'s summary; on CartPole a return is the episode's length); a run is
found by its id or a unique prefix; a missing, ambiguous or unreadable run, a directory without policies and a bad
option exit 2 with one clear message and no traceback."""

from __future__ import annotations

import re
import shutil

import pytest
from typer.testing import CliRunner

from ablations.cli.app import app
from ablations.evaluate.episodes import evaluate_policy
from ablations.evaluate.policy_io import load_policy, policy_path

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(results dir, [run ids]) of `ablations train` on CartPole-v1, seeds 0-1, 500 steps, hidden 8."""
    out = tmp_path_factory.mktemp("eval") / "t"
    res = runner.invoke(app, ["train", "--env", "CartPole-v1", "--seeds", "0-1", "--steps", "500", "--hidden", "8",
                              "--eval-episodes", "1", "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ids = sorted(p.stem for p in (out / "policies").glob("*.pt"))
    assert len(ids) == 2
    return out, ids


def _eval(*args):
    return runner.invoke(app, ["eval", *map(str, args)])


def _no_traceback(res) -> None:
    assert isinstance(res.exception, SystemExit) and "Traceback" not in res.output


def test_eval_prints_the_policys_returns(trained):
    out, ids = trained
    res = _eval(out, "--run", ids[0], "--episodes", "3", "--seed", "7")
    assert res.exit_code == 0, res.output
    config, params = load_policy(policy_path(out, ids[0]))
    assert res.output == evaluate_policy(config, params, 3, 7).summary() + "\n"
    lines = res.output.splitlines()
    assert lines[0] == f"run {ids[0]}: 3 episodes (seed 7)"
    pattern = r"\s+{mode}\s+return (\S+) ± (\S+)\s+length (\S+) ± (\S+)"
    for line, mode in zip(lines[1:], ("stochastic", "greedy")):
        match = re.fullmatch(pattern.format(mode=mode), line)
        assert match, line
        ret, ret_sd, length, length_sd = map(float, match.groups())
        assert (ret, ret_sd) == (length, length_sd)  # CartPole pays 1 per step: a return is a length
        assert 1 <= ret <= 500


def test_eval_is_seeded(trained):
    out, ids = trained
    a, b = (_eval(out, "--run", ids[1], "--episodes", "2", "--seed", "3") for _ in range(2))
    assert a.exit_code == b.exit_code == 0 and a.output == b.output


def test_a_unique_prefix_finds_the_run(trained):
    out, ids = trained
    prefix = next(ids[0][:n] for n in range(1, 13) if not ids[1].startswith(ids[0][:n]))
    full, short = _eval(out, "--run", ids[0], "--episodes", "2"), _eval(out, "--run", prefix, "--episodes", "2")
    assert short.exit_code == 0 and short.output == full.output


def test_a_missing_run_id_exits_2_with_the_saved_ones(trained):
    out, ids = trained
    res = _eval(out, "--run", "ffffffffffff")
    assert res.exit_code == 2
    _no_traceback(res)
    text = " ".join(res.output.split())
    assert (f"Invalid value for --run: no saved policy for run 'ffffffffffff' in {out / 'policies'} "
            f"(saved: {ids[0]}, {ids[1]}...)") in text


def test_an_ambiguous_prefix_exits_2(trained):
    out, ids = trained
    res = _eval(out, "--run", "")  # every run id starts with ""
    assert res.exit_code == 2
    _no_traceback(res)
    assert f"Invalid value for --run: run '' is ambiguous: {ids}" in " ".join(res.output.split())


def test_a_directory_without_policies_exits_2(tmp_path):
    res = _eval(tmp_path, "--run", "abc")
    assert res.exit_code == 2
    _no_traceback(res)
    assert (f"Invalid value for RESULTS_DIR: {tmp_path} has no saved policies (no {tmp_path / 'policies'})"
            in " ".join(res.output.split()))


def test_an_unreadable_policy_file_exits_2(trained, tmp_path):
    out, ids = trained
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    policy_path(copy, ids[0]).write_bytes(b"not a policy")
    res = _eval(copy, "--run", ids[0])
    assert res.exit_code == 2
    _no_traceback(res)
    assert res.output.startswith("error: ") and str(policy_path(copy, ids[0])) in " ".join(res.output.split())


@pytest.mark.parametrize("args, needle", [
    (["--episodes", "0"], "Invalid value for '--episodes'"),
    (["--seed", "-1"], "Invalid value for '--seed'"),
    (["--video", "clip.avi"], "Invalid value for --video: video clip.avi: unknown extension '.avi'"),
])
def test_bad_options_exit_2_before_any_work(trained, args, needle):
    out, ids = trained
    res = _eval(out, "--run", ids[0], *args)
    assert res.exit_code == 2
    _no_traceback(res)
    assert needle in " ".join(res.output.split())


def test_the_run_option_is_required(trained):
    out, _ = trained
    res = _eval(out)
    assert res.exit_code == 2 and "Missing option '--run'" in res.output
