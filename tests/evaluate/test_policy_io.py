"""Saving and loading a run's policy: round trip, small files from cohort slices, atomic writes, clear errors."""

from __future__ import annotations

import pytest
import torch

from ablations.evaluate import policy_io
from ablations.config import RunConfig
from ablations.evaluate.policy_io import PolicyFileError, load_policy, policy_path, save_policy

CFG = RunConfig(env_id="CartPole-v1", seed=3, hidden=(8,), returns="full", baseline="none")


def _params(gen_seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(gen_seed)
    return [torch.randn(4, 8, generator=g), torch.randn(8, generator=g), torch.randn(8, 2, generator=g),
            torch.randn(2, generator=g)]


def test_round_trip(tmp_path):
    path = policy_path(tmp_path, CFG.run_id)
    assert path == tmp_path / "policies" / f"{CFG.run_id}.pt"
    params = _params()
    assert save_policy(path, CFG, params) == path
    cfg, loaded = load_policy(path)
    assert cfg == CFG and cfg.run_id == CFG.run_id
    assert len(loaded) == 4 and all(torch.equal(a, b) for a, b in zip(params, loaded))
    assert [p.dtype for p in loaded] == [torch.float32] * 4
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind


def test_a_slice_of_a_cohort_stores_only_its_own_values(tmp_path):
    stacked = [torch.randn(64, 400, 400), torch.randn(64, 400)]  # a cohort of 64 runs (≈ 41 MB)
    path = save_policy(tmp_path / "p.pt", CFG, [p[5] for p in stacked])
    assert path.stat().st_size < 2 * 400 * 401 * 4  # one run's 0.64 MB, not the cohort's storage
    _, loaded = load_policy(path)
    assert torch.equal(loaded[0], stacked[0][5]) and loaded[0].untyped_storage().nbytes() == 400 * 400 * 4


def test_params_with_autograd_are_saved_detached(tmp_path):
    params = [p.requires_grad_(True) * 1.0 for p in _params()]
    _, loaded = load_policy(save_policy(tmp_path / "p.pt", CFG, params))
    assert not any(p.requires_grad for p in loaded)


def test_overwrite_is_atomic_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = save_policy(tmp_path / "p.pt", CFG, _params(0))

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(policy_io.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_policy(path, CFG.replace(seed=4), _params(1))
    monkeypatch.undo()
    cfg, loaded = load_policy(path)
    assert cfg == CFG and torch.equal(loaded[0], _params(0)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.pt"]


def test_missing_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(PolicyFileError, match="no policy file"):
        load_policy(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy(tmp_path / "junk.pt")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(PolicyFileError, match="not an ablations policy file"):
        load_policy(tmp_path / "other.pt")


def test_a_config_that_does_not_hash_to_the_stored_run_id_is_refused(tmp_path):
    path = save_policy(tmp_path / "p.pt", CFG, _params())
    payload = torch.load(path, weights_only=True)
    payload["run_id"] = "000000000000"
    torch.save(payload, path)
    with pytest.raises(PolicyFileError, match="hashes to run_id"):
        load_policy(path)


def test_files_hold_no_pickled_code(tmp_path):
    """load_policy uses weights_only=True: a file with an arbitrary object in it is refused, not executed."""
    torch.save({"format": policy_io.FORMAT, "run_id": CFG.run_id, "config": CFG.canonical_json(),
                "params": _params(), "extra": Exploit()}, tmp_path / "evil.pt")
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy(tmp_path / "evil.pt")


class Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))
