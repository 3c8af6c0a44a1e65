"""Which numpy / torch operations give other bits on this CPU's SIMD paths, and do they depend on length or position?

Run: `python benchmarks/simd_paths.py` (about a minute). It prints three tables:

1. numpy: each elementwise op the native envs use, on 200,000 float inputs: how many elements of the *array* result
   differ from numpy's *scalar* result (the path gymnasium's single env takes), at the SIMD level numpy dispatched to
   here and with the higher levels disabled (`NPY_DISABLE_CPU_FEATURES`, in a subprocess each).
2. position / length: the same ops on slices of every length 1..40 at every offset, against the full array.
3. end to end: the rows of a small CartPole, Acrobot and Pendulum cohort (native envs) hashed under each numpy SIMD
   level and each torch CPU capability (`ATEN_CPU_CAPABILITY`), in subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys

import numpy as np

N = 200_000


def _inputs(dtype) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"x": rng.uniform(-30, 30, N).astype(dtype), "u": rng.uniform(-2, 2, N).astype(dtype)}


OPS = {  # name → (dtype, array op, scalar op as gymnasium writes it)
    "cos f64": (np.float64, np.cos, lambda v: np.cos(v)),
    "sin f64": (np.float64, np.sin, lambda v: np.sin(v)),
    "cos f32": (np.float32, np.cos, lambda v: np.cos(v)),
    "x**2 f64 (np.power, array exponent)": (np.float64, lambda x: np.power(x, np.full(x.shape, 2.0)),
                                            lambda v: v ** 2),
    "x**2 f32 (np.power, array exponent)": (np.float32, lambda x: np.power(x, np.full(x.shape, np.float32(2))),
                                            lambda v: v ** 2),
    "x**2 f64 (libm pow per element)": (np.float64, lambda x: np.frompyfunc(math.pow, 2, 1)(x, 2.0).astype(float),
                                        lambda v: v ** 2),
    "x**2 f64 (np.float_power)": (np.float64, lambda x: np.float_power(x, 2.0), lambda v: v ** 2),
    "np.square f64": (np.float64, np.square, lambda v: np.square(v)),
    "remainder f64": (np.float64, lambda x: x % (2 * np.pi), lambda v: v % (2 * np.pi)),
    "exp f64": (np.float64, lambda x: np.exp(x / 10), lambda v: np.exp(v / 10)),
    "tanh f64": (np.float64, np.tanh, lambda v: np.tanh(v)),
}


def numpy_table() -> dict[str, list[int]]:
    """op → [array-vs-scalar mismatches, position/length mismatches]."""
    out = {}
    for name, (dtype, arr_op, scalar_op) in OPS.items():
        x = _inputs(dtype)["x" if "**2" not in name else "u" if dtype == np.float32 else "x"]
        full = arr_op(x)
        scal = np.array([scalar_op(v) for v in x[:20_000]], dtype=dtype)
        vs_scalar = int((full[:20_000] != scal).sum())
        pos = 0
        for length in range(1, 41):
            for off in range(0, 64, 7):
                pos += int((arr_op(x[off:off + length]) != full[off:off + length]).sum())
        out[name] = [vs_scalar, pos]
    return out


def engine_hashes() -> dict[str, str]:
    import torch

    from ablations.config import RunConfig
    from ablations.study.executors import configure_worker
    from ablations.train.engine import train_cohort

    configure_worker()
    out = {}
    for env_id, steps in (("CartPole-v1", 6000), ("Acrobot-v1", 6000), ("Pendulum-v1", 6000)):
        configs = [RunConfig(env_id=env_id, seed=s, total_steps=steps, episodes_per_update=4, hidden=(16,),
                             eval_episodes=0, baseline=b) for s in range(2) for b in ("none", "value")]
        res = train_cohort(configs)
        text = json.dumps([res.runs, res.curves], sort_keys=True, default=str)
        out[env_id] = hashlib.sha256(text.encode()).hexdigest()[:12]
    out["torch capability"] = torch.backends.cpu.get_cpu_capability()
    return out


def _child(mode: str, env: dict[str, str]) -> dict:
    code = f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import simd_paths as s; " \
           f"print(json.dumps(s.{mode}()))"
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True)
    if res.returncode:
        return {"error": res.stderr.strip().splitlines()[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    from ablations.study.machine import numpy_simd

    found = numpy_simd()
    levels = [("as dispatched", {})]
    for top in ("X86_V4", "X86_V3"):
        if top in found:
            disabled = " ".join(f for f in found if f.startswith("AVX512") or f in ("X86_V4", top))
            levels.append((f"without {top}", {"NPY_DISABLE_CPU_FEATURES": disabled}))
    print(f"numpy {np.__version__} dispatches to {found}\n")
    tables = {label: _child("numpy_table", env) for label, env in levels}
    print("1-2. elements whose array result differs from numpy's scalar result (gymnasium's path) | "
          "position/length-dependent elements")
    print(f"{'op':40s}" + "".join(f"{label:>24s}" for label, _ in levels))
    for name in OPS:
        print(f"{name:40s}" + "".join(f"{'%d | %d' % tuple(tables[label].get(name, ['-', '-'])):>24s}"
                                      for label, _ in levels))
    print("\n3. hash of a small cohort's rows (native envs)")
    settings = list(levels) + [(f"torch {cap}", {"ATEN_CPU_CAPABILITY": cap}) for cap in ("default", "avx2")]
    for label, env in settings:
        print(f"{label:24s} {_child('engine_hashes', env)}")


if __name__ == "__main__":
    main()
