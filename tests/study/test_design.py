"""Study files: parsing, validation messages, expansion (counts, order, exclusions, sampling), cohorts, stable ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ablations.config import RunConfig
from ablations.study.design import Study, StudyError, expand, format_level, grid, load_study, seed_fields
from ablations.study.cohorts import cohort_id, cohorts

ROOT = Path(__file__).resolve().parents[2]
STUDIES = ROOT / "studies"

BASE = """
name = "t"
seeds = 2
[fixed]
env_id = "CartPole-v1"
total_steps = 1000
[factors]
baseline = ["none", "mean", "value"]
returns = ["full", "rtg"]
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name, n_configs, n_seeds", [
    ("quick", 24, 3), ("cartpole_factorial", 144, 20), ("acrobot", 12, 10), ("pendulum", 24, 10)])
def test_shipped_studies_expand(name: str, n_configs: int, n_seeds: int) -> None:
    study = load_study(STUDIES / f"{name}.toml")
    assert study.name == name
    configs = expand(study)
    assert len(grid(study)) == n_configs
    assert len(configs) == n_configs * n_seeds
    assert len({c.run_id for c in configs}) == len(configs)
    vanilla = {"returns": "full", "baseline": "none", "normalize": "none", "entropy_coef": 0.0}
    assert study.report["reference"] == (vanilla if "aggregate" not in study.factors
                                         else {"aggregate": "episode", **vanilla})


def test_expansion_order_factors_in_file_order_seeds_innermost(tmp_path: Path) -> None:
    configs = expand(load_study(write(tmp_path, BASE)))
    got = [(c.baseline, c.returns, c.seed) for c in configs]
    assert got[:5] == [("none", "full", 0), ("none", "full", 1), ("none", "rtg", 0), ("none", "rtg", 1),
                       ("mean", "full", 0)]
    assert len(got) == 3 * 2 * 2
    assert all(c.total_steps == 1000 and c.env_id == "CartPole-v1" for c in configs)


def test_explicit_seed_list(tmp_path: Path) -> None:
    configs = expand(load_study(write(tmp_path, BASE.replace("seeds = 2", "seeds = [3, 7]"))))
    assert [c.seed for c in configs[:2]] == [3, 7]


def test_exclusions_scalar_and_list(tmp_path: Path) -> None:
    text = BASE + """
[[exclude]]
baseline = "none"
returns = "rtg"
[[exclude]]
baseline = ["mean", "value"]
returns = ["full"]
"""
    points = grid(load_study(write(tmp_path, text)))
    assert points == [{"baseline": "none", "returns": "full"}, {"baseline": "mean", "returns": "rtg"},
                      {"baseline": "value", "returns": "rtg"}]


def test_exclusion_on_list_valued_factor(tmp_path: Path) -> None:
    text = BASE + '\nhidden = [[16], [32, 32]]\n[[exclude]]\nhidden = [16]\nbaseline = "value"\n'
    points = grid(load_study(write(tmp_path, text)))
    assert len(points) == 3 * 2 * 2 - 2
    assert not any(p["hidden"] == [16] and p["baseline"] == "value" for p in points)


def test_sampling_is_seeded_and_keeps_grid_order(tmp_path: Path) -> None:
    text = BASE + "\n[sample]\nk = 3\nseed = 11\n"
    a, b = grid(load_study(write(tmp_path, text))), grid(load_study(write(tmp_path, text, "b.toml")))
    assert a == b and len(a) == 3
    full = grid(load_study(write(tmp_path, BASE, "full.toml")))
    assert [full.index(p) for p in a] == sorted(full.index(p) for p in a)
    others = [grid(load_study(write(tmp_path, text.replace("seed = 11", f"seed = {s}"), f"{s}.toml")))
              for s in range(5)]
    assert any(o != a for o in others)
    assert len(expand(load_study(write(tmp_path, text)))) == 3 * 2  # sampling happens before crossing with seeds
    big = grid(load_study(write(tmp_path, text.replace("k = 3", "k = 100"), "big.toml")))
    assert big == full


def test_cohorts_group_by_key_and_deal_runs_evenly() -> None:
    configs = [RunConfig(seed=s, total_steps=100) for s in range(10)]
    configs += [RunConfig(seed=s, hidden=(8,), total_steps=100) for s in range(3)]
    out = cohorts(configs, max_size=4)
    assert [len(c.configs) for c in out] == [4, 3, 3, 3]
    assert [c.configs[0].hidden for c in out] == [(64, 64)] * 3 + [(8,)]
    ids = [c.run_id for c in configs]
    assert [list(c.run_ids) for c in out[:3]] == [ids[0:10:3], ids[1:10:3], ids[2:10:3]]  # dealt round-robin
    assert sorted(r for c in out for r in c.run_ids) == sorted(ids)
    assert all(c.id == cohort_id(c.run_ids) for c in out)
    assert cohorts(configs, max_size=4) == out
    assert [len(c.configs) for c in cohorts(configs)] == [10, 3]
    with pytest.raises(ValueError):
        cohorts(configs, max_size=0)


def test_run_ids_stable_across_processes_and_hash_seeds() -> None:
    code = ("import json; from ablations.study.design import load_study, expand; "
            "from ablations.study.cohorts import cohorts; "
            f"s = load_study({str(STUDIES / 'quick.toml')!r}); c = expand(s); "
            "print(json.dumps([[x.run_id for x in c], [k.id for k in cohorts(c)]]))")
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.append(json.loads(proc.stdout))
    configs = expand(load_study(STUDIES / "quick.toml"))
    here = [[c.run_id for c in configs], [k.id for k in cohorts(configs)]]
    assert outputs[0] == outputs[1] == here


BAD = {
    "syntax": ("name = 'x\n", ["TOML syntax error"]),
    "top-level": ("sedes = 3\n" + BASE, ["unknown top-level key", "sedes", "allowed", "seeds"]),
    "unknown field": (BASE.replace("[factors]", "[factors]\nbaseline_typo = ['none']"),
                      ["[factors]", "baseline_typo", "allowed", "entropy_coef"]),
    "wrong type": (BASE.replace("total_steps = 1000", "total_steps = 'lots'"),
                   ["[fixed]", "total_steps", "allowed", "integer"]),
    "axis value": (BASE.replace('"mean"', '"median"'), ["[factors] baseline", "median", "none | mean | loo | value"]),
    "empty factor": (BASE.replace('["full", "rtg"]', "[]"), ["[factors] returns", "non-empty list"]),
    "env": (BASE.replace("CartPole-v1", "NoSuchEnv-v9"), ["env_id", "NoSuchEnv-v9", "registered"]),
    "fixed and factor": (BASE.replace("[factors]", "[factors]\ntotal_steps = [10, 20]"),
                         ["total_steps", "[fixed]", "[factors]"]),
    "seeds": (BASE.replace("seeds = 2", "seeds = 0"), ["seeds", "allowed"]),
    "exclude key": (BASE + "\n[[exclude]]\ngamma = 0.9\n", ["[[exclude]]", "gamma", "allowed", "baseline"]),
    "exclude level": (BASE + "\n[[exclude]]\nbaseline = 'loo'\n", ["[[exclude]]", "loo", "allowed", "value"]),
    "sample": (BASE + "\n[sample]\nk = 0\n", ["[sample] k", "allowed"]),
    "report": (BASE + "\n[report]\nrefrence = {}\n", ["[report]", "refrence", "reference"]),
    "duplicate level": (BASE.replace('"mean"', '"none"'), ["[factors] baseline", "repeats"]),
    "cross-field": (BASE.replace('"mean"', '"loo"').replace("total_steps = 1000",
                                                            "total_steps = 1000\nepisodes_per_update = 1"),
                    ["episodes_per_update", "baseline='loo'"]),
    "name": (BASE.replace('name = "t"', 'name = "a/b"'), ["'name'", "allowed"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_study_files_name_file_key_and_allowed(tmp_path: Path, case: str) -> None:
    text, needles = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(StudyError) as info:
        load_study(path)
    message = str(info.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, (needle, message)


def test_study_spec_is_json_ready(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, BASE + "\n[report]\nreference = {baseline = 'none'}\nthreshold = 475\n"))
    spec = json.loads(json.dumps(study.spec()))
    assert spec["factors"]["baseline"] == ["none", "mean", "value"]
    assert spec["report"]["threshold"] == 475
    assert isinstance(study, Study)


def test_probe_seeds_keeps_probes_on_the_first_seeds_only(tmp_path):
    from ablations.study.design import expand, load_study

    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nseeds = 4\nprobe_seeds = 2\n[fixed]\nenv_id = "CartPole-v1"\nprobe_every = 5\n'
                    '[factors]\nbaseline = ["none", "loo"]\n')
    runs = expand(load_study(path))
    assert [(r.baseline, r.seed, r.probe_every) for r in runs] == [
        ("none", 0, 5), ("none", 1, 5), ("none", 2, 0), ("none", 3, 0),
        ("loo", 0, 5), ("loo", 1, 5), ("loo", 2, 0), ("loo", 3, 0)]


def test_probe_seeds_out_of_range_is_refused(tmp_path):
    import pytest

    from ablations.study.design import StudyError, load_study

    path = tmp_path / "p.toml"
    path.write_text('name = "p"\nseeds = 3\nprobe_seeds = 5\n[fixed]\nenv_id = "CartPole-v1"\n')
    with pytest.raises(StudyError, match="probe_seeds.*allowed: an integer in \\[0, 3\\]"):
        load_study(path)


MULTI = """
name = "m"
seeds = 2
[fixed]
total_steps = 1000
hidden = [16]
[factors]
env_id = ["CartPole-v1", "Acrobot-v1"]
baseline = ["none", "mean"]
[env."Acrobot-v1"]
total_steps = 3000
policy_lr = 0.003
"""


def test_per_env_fixed_fields_apply_to_that_env_only(tmp_path: Path) -> None:
    study = load_study(write(tmp_path, MULTI))
    assert study.env_ids == ["CartPole-v1", "Acrobot-v1"]
    configs = expand(study)
    acro = [c for c in configs if c.env_id == "Acrobot-v1"]
    cart = [c for c in configs if c.env_id == "CartPole-v1"]
    assert len(acro) == len(cart) == 4
    assert {c.total_steps for c in acro} == {3000} and {c.policy_lr for c in acro} == {0.003}
    assert {c.total_steps for c in cart} == {1000} and {c.policy_lr for c in cart} == {RunConfig().policy_lr}
    assert study.spec()["env"] == {"Acrobot-v1": {"total_steps": 3000, "policy_lr": 0.003}}
    from ablations.study.design import with_overrides
    shrunk = expand(with_overrides(study, {"total_steps": 500}))
    assert {c.total_steps for c in shrunk} == {500}  # --set applies to every env


@pytest.mark.parametrize("table, match", [
    ('[env."MountainCar-v0"]\ntotal_steps = 5', "not an env of this study"),
    ('[env."Acrobot-v1"]\nbaseline = "loo"', "swept"),
    ('[env."Acrobot-v1"]\nbogus = 1', "unknown or disallowed"),
    ('[env."Acrobot-v1"]\ntotal_steps = -5', "total_steps"),
])
def test_bad_env_tables_refused(tmp_path: Path, table: str, match: str) -> None:
    text = MULTI.split('[env."Acrobot-v1"]')[0] + table + "\n"
    with pytest.raises(StudyError, match=match):
        load_study(write(tmp_path, text))


def test_seed_fields_is_the_probed_seed_rule() -> None:
    study = Study(name="t", path="t.toml", seeds=(4, 2, 9), probe_seeds=2)
    assert [seed_fields(study, s) for s in (4, 2, 9)] == [{"seed": 4}, {"seed": 2}, {"seed": 9, "probe_every": 0}]
    every = Study(name="t", path="t.toml", seeds=(0, 1))
    assert [seed_fields(every, s) for s in (0, 1)] == [{"seed": 0}, {"seed": 1}]


def test_format_level() -> None:
    assert [format_level(v) for v in (1, 1.0, 0, True, "rtg", (64, 64), [8])] == [
        "1.0", "1.0", "0.0", "True", "rtg", "64-64", "8"]
