"""Training a cohort of runs: per-run seeding, stacked networks, rollout, pure estimators, chunked update and
per-run optimizers (`engine.train_cohort` is the entry point an executor calls)."""
