"""`ablations.study.machine`: what decides whether two machines give the same bits."""

import json
import os
import subprocess
import sys

import numpy as np

from ablations.study.machine import CLASS_FIELDS, class_key, current_machine, numpy_simd


def _in_subprocess(env: dict[str, str]) -> dict:
    code = "import json; from ablations.study.machine import current_machine; print(json.dumps(current_machine()))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_describe_records_what_decides_the_bits():
    info = current_machine()
    assert set(CLASS_FIELDS) - {"env_overrides"} <= {k for k, v in info.items() if v is not None}
    assert info["numpy"] == np.__version__ and info["numpy_simd"] == numpy_simd()
    import torch

    assert info["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # a TorchVersion would load torch on unpickling
    assert isinstance(info["torch"], str) and type(info["torch"]) is str


def test_class_key_ignores_what_does_not_decide_bits_and_changes_with_what_does():
    info = current_machine()
    assert class_key(info) == class_key({**info, "hostname": "elsewhere", "cpus": 64})
    assert class_key(info) != class_key({**info, "numpy_simd": info["numpy_simd"][:-1] + ["OTHER"]})
    assert class_key(info) != class_key({**info, "torch_cpu_capability": "DEFAULT"})


def test_numpy_simd_follows_numpys_own_dispatch_switch():
    """Disabling numpy's highest dispatched target (as NPY_DISABLE_CPU_FEATURES does on a CPU without it) removes
    it from the record and changes the class; torch's capability override does the same for torch."""
    here = _in_subprocess({})
    assert here["numpy_simd"] == numpy_simd()
    if numpy_simd():
        top = numpy_simd()[-1]
        without = _in_subprocess({"NPY_DISABLE_CPU_FEATURES": top})
        assert top not in without["numpy_simd"]
        assert class_key(without) != class_key(here)
    other = _in_subprocess({"ATEN_CPU_CAPABILITY": "default"})
    assert other["torch_cpu_capability"] == "DEFAULT" and class_key(other) != class_key(here)


def test_provenance() -> None:
    from ablations import __version__
    from ablations.study.machine import git_commit, host, versions

    v = versions()
    assert v["ablations"] == __version__ and v["numpy"] == np.__version__ and "python" in v
    h = host()
    assert set(h) == {"hostname", "platform", "cpus"} and h["cpus"] == os.cpu_count()
    commit = git_commit()
    assert commit is None or (len(commit["commit"]) == 40 and isinstance(commit["dirty"], bool))
