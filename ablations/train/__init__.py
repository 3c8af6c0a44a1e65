"""Training a cohort of runs: per-run seeding, stacked networks, rollout, pure estimators, the loss, per-run
optimizers and the loop (`engine.train_cohort`), which calls a probe hook it is given; imports nothing above it."""
