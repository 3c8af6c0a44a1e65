"""Time `build_report` on a synthetic results directory the size of the full CartPole factorial.

48 configs (returns × baseline × normalize × entropy_coef) × 30 seeds = 1,440 runs, ~100 updates per run, probes every
10 updates for 48 estimators. Usage: python benchmarks/report_time.py [--seeds 30] [--resamples 10000] [--keep DIR]
Prints the wall and CPU seconds `build_report` took (the synthetic data is written first and not timed).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

from ablations.report import build_report

ROOT = Path(__file__).resolve().parents[1]


def _synthetic():
    spec = importlib.util.spec_from_file_location("report_synthetic", ROOT / "tests" / "report" / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--probe-every", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--all-pairs", action="store_true")
    parser.add_argument("--keep", type=Path, default=None, help="write data and report here instead of a temp dir")
    args = parser.parse_args()
    syn = _synthetic()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        main_effects = {("returns", "rtg"): 120.0, ("baseline", "value"): 60.0, ("baseline", "loo"): 40.0,
                        ("baseline", "mean"): 35.0, ("normalize", "advantages"): 30.0, ("entropy_coef", 0.01): 5.0}
        t0 = time.perf_counter()
        results = syn.write_results(root / "results" / "cartpole_full", factors=syn.FACTORS_FULL, seeds=args.seeds,
                                    updates=args.updates, total_steps=100_000, base=150.0, noise=60.0,
                                    main=main_effects, probe_every=args.probe_every, failed=3, diverged=2,
                                    name="cartpole_full")
        print(f"synthetic data written in {time.perf_counter() - t0:.1f} s")
        t0, c0 = time.perf_counter(), time.process_time()
        readme = build_report(results, root / "report" / "cartpole_full", n_resamples=args.resamples,
                              all_pairs=args.all_pairs)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    # CPU time (all threads of this process) tells a busy machine apart from a slow report
    print(f"build_report: {seconds:.1f} s wall, {cpu:.1f} s CPU ({readme.name})")


if __name__ == "__main__":
    main()
