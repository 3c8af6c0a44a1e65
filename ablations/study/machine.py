"""The machine class: what decides whether two machines give the same bits for the same `RunConfig`.

A run is bit-identical on one machine (DESIGN.md invariant 1). Across machines the bits agree only where the code paths
agree: numpy and torch pick SIMD kernels by CPU at run time (numpy's AVX-512 `power` is SVML's, not libm's; torch's
kernels come in default / AVX2 / AVX512 builds; MKL picks its own path by CPU model), and libm and the libraries'
versions change results too. `describe` records those facts in the process that trains (a worker, which has torch
loaded); `class_key` hashes the ones that decide bits. `ablations reproduce` compares the published results' classes
with the fresh run's: the same class must give the same bits; another class gets a statistical comparison.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, Mapping

#: The fields of `describe` that decide bits (hostname, core count and the like do not).
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


def describe(*, with_torch: bool = True) -> dict[str, Any]:
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
    """A short hash of the bit-deciding fields of a `describe` dict: equal keys ⇒ the same code paths."""
    fields = {k: info.get(k) for k in CLASS_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
