"""Paired gradient-variance probes, called through the engine's probe hook (`checkpoint.probe_checkpoint`) with a
read-only view of a cohort at a checkpoint: per estimator (`grid`), its directions on K batches of a pool
(`directions`, with `factored` scores and the cross-fitted `critic`), their `statistics` (variance, SNR, bias) and
probes.csv's `rows` (`PROBE_COLUMNS`). Reads `train`'s estimators and networks; `train` never imports it."""
