"""The machine a study ran on: its class (what decides whether two machines give the same bits for the same
`RunConfig`) and the provenance the manifest records (library versions, git commit, host).

A run is bit-identical on one machine (DESIGN.md invariant 1). Across machines the bits agree only where the code paths
agree: numpy and torch pick SIMD kernels by CPU at run time (numpy's AVX-512 `power` is SVML's, not libm's; torch's
kernels come in default / AVX2 / AVX512 builds; MKL picks its own path by CPU model), and libm and the libraries'
versions change results too. `current_machine` records those facts in the process that trains (a worker, which has torch
loaded); `class_key` hashes the ones that decide bits. `ablations reproduce` compares the published results' classes
with the fresh run's (`machine_match`): the same class must give the same bits; another class gets a statistical
comparison.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

#: The fields of `current_machine` that decide bits (hostname, core count and the like do not).
CLASS_FIELDS = ("cpu", "machine", "libc", "python", "numpy", "numpy_simd", "torch", "torch_cpu_capability",
                "gymnasium", "env_overrides")
#: Environment variables that change which kernels numpy, torch or MKL run.
KERNEL_ENV = ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES", "ATEN_CPU_CAPABILITY", "MKL_CBWR",
              "MKL_ENABLE_INSTRUCTIONS", "OPENBLAS_CORETYPE")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else `platform.processor()`."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def numpy_simd() -> list[str]:
    """The SIMD targets numpy dispatches to in this process (what `numpy.show_runtime()` lists as found)."""
    import numpy as np

    try:
        umath = np._core._multiarray_umath  # numpy >= 2
    except AttributeError:  # numpy 1.x
        umath = np.core._multiarray_umath
    features = umath.__cpu_features__
    return [name for name in umath.__cpu_dispatch__ if features.get(name)]


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def current_machine(*, with_torch: bool = True) -> dict[str, Any]:
    """This process's machine: CPU, libc, library versions, numpy's SIMD targets and (`with_torch`, which imports
    torch) torch's CPU capability. A study's driver does not load torch; its workers call this."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numpy_simd": numpy_simd(),
        "gymnasium": _version("gymnasium"),
        "env_overrides": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ},
    }
    if with_torch or "torch" in sys.modules:
        import torch

        info["torch"] = str(torch.__version__)  # a plain str: its TorchVersion would load torch in the driver
        info["torch_cpu_capability"] = str(torch.backends.cpu.get_cpu_capability())
    return info


def class_key(info: Mapping[str, Any]) -> str:
    """A short hash of the bit-deciding fields of a `current_machine` dict: equal keys ⇒ the same code paths."""
    fields = {k: info.get(k) for k in CLASS_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]


# ---- provenance ------------------------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    """Package and library versions for the manifest."""
    from .. import __version__

    out = {"ablations": __version__, "python": platform.python_version()}
    for name in ("torch", "gymnasium", "numpy", "pandas", "ray"):
        if name == "ray" and name not in sys.modules:  # recorded when the study used it
            continue
        try:  # the installed distribution's version: importing torch would cost the driver ~200 MiB
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            module = sys.modules.get(name)
            if module is not None:
                out[name] = str(getattr(module, "__version__", "unknown"))
    return out


def git_commit() -> dict[str, Any] | None:
    """The package checkout's commit and whether it has uncommitted changes, if it is a git checkout."""
    where = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip() != ""
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def host() -> dict[str, Any]:
    """This machine's name, platform and core count, for the manifest."""
    return {"hostname": socket.gethostname(), "platform": platform.platform(), "cpus": os.cpu_count()}


@dataclass
class MachineMatch:
    """Were the published results and the fresh run made by the same machine class (`ablations.study.machine`)?"""

    same: bool
    published: list[str]  # class keys in the published manifest ("unknown" where it predates machine records)
    fresh: list[str]
    differences: dict[str, tuple[Any, Any]]  # field → (published, fresh), for a single class on each side

    def summary(self) -> str:
        """A sentence: which machine class made the published results and which made the fresh ones."""
        if self.same:
            return f"this machine is of the same class as the one that made the published results ({self.fresh[0]})"
        if not self.published or "unknown" in self.published:
            return ("the published manifest does not record the machine class that made it, so this machine "
                    f"({', '.join(self.fresh)}) cannot be assumed to follow the same code paths")
        diff = "; ".join(f"{k}: {a!r} → {b!r}" for k, a, b in ((k, *v) for k, v in self.differences.items()))
        return (f"this is another machine class (published {', '.join(self.published)}, here {', '.join(self.fresh)}"
                + (f": {diff}" if diff else "") + ")")


def machine_match(published_manifest: Mapping[str, Any] | None,
                  fresh_manifest: Mapping[str, Any] | None) -> MachineMatch:
    """Compare the `machines` recorded in two manifests (see `ResultsDir.machines`)."""
    pub = dict((published_manifest or {}).get("machines") or {})
    new = dict((fresh_manifest or {}).get("machines") or {})
    pub_keys, new_keys = sorted(pub) or ["unknown"], sorted(new) or ["unknown"]
    same = pub_keys == new_keys and "unknown" not in pub_keys
    differences: dict[str, tuple[Any, Any]] = {}
    if len(pub) == 1 and len(new) == 1:
        (a,), (b,) = pub.values(), new.values()
        differences = {k: (a.get(k), b.get(k)) for k in CLASS_FIELDS if a.get(k) != b.get(k)}
    return MachineMatch(same, pub_keys, new_keys, differences)
