"""The native envs' step time now vs at another git revision, interleaved in one process (robust to a busy machine).

`python benchmarks/native_envs_vs_rev.py 64eb2a0 [--runs 128 --envs 8]`: loads the native env module of REV (from
`git show`, into a temporary directory) beside the current one and times `step` of each env, alternating old and new.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ablations.envs import native as new_native

PATHS = ("ablations/envs/native.py", "ablations/native_envs.py")  # where the module lived before the layout change


def load_rev(rev: str):
    repo = Path(__file__).resolve().parents[1]
    for path in PATHS:
        res = subprocess.run(["git", "-C", str(repo), "show", f"{rev}:{path}"], capture_output=True, text=True)
        if res.returncode == 0:
            break
    else:
        sys.exit(f"no native env module at {rev} ({' or '.join(PATHS)})")
    text = re.sub(r"from \.+(envs\.spec|envs|spec) import EnvSpec", "from ablations.envs.spec import EnvSpec",
                  res.stdout)
    path = Path(tempfile.mkdtemp()) / "rev_native.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("rev_native", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev")
    parser.add_argument("--runs", type=int, default=128)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    old_native, R, N = load_rev(args.rev), args.runs, args.envs
    rng = np.random.default_rng(0)
    for name in sorted(set(old_native.NATIVE_ENVS) & set(new_native.NATIVE_ENVS)):
        envs = {"rev": old_native.NATIVE_ENVS[name](R, N), "now": new_native.NATIVE_ENVS[name](R, N)}
        spec = envs["now"].spec
        a = (torch.from_numpy(rng.integers(0, spec.act_dim, (R, N))) if spec.kind == "categorical"
             else torch.from_numpy(rng.uniform(-3, 3, (R, N, spec.act_dim)).astype(np.float32)))
        t = dict.fromkeys(envs, 0.0)
        for _ in range(args.rounds):
            for k, e in envs.items():
                e.reset(np.arange(R), np.arange(R))
                t0 = time.perf_counter()
                for _ in range(10):
                    e.step(np.arange(R), a)
                t[k] += time.perf_counter() - t0
        n = args.rounds * 10
        print(f"{name:16s} {args.rev}: {t['rev'] / n * 1e6:7.0f} µs/step   now: {t['now'] / n * 1e6:7.0f} µs/step   "
              f"now/{args.rev} = {t['now'] / t['rev']:.2f}   (R={R}, N={N})")


if __name__ == "__main__":
    main()
