"""From a study file to results/<study>/: the study file parsed (`sections`, `tune_spec`, `sequential_spec`) and
expanded (`design`: RunConfigs → cohorts); one plan/run interface for plain, tuned and sequential studies (`stages`,
`tuning`; `sequential`: waves decided by anytime-valid confidence sequences on `contrasts`); the driver that runs
a plan (`driver`, sized by `memory`); executors that only execute (`executors`: serial, local pool, Ray; the worker's
trainer with the probes wired in: `worker`); the results format (`results_format`: schemas, text readers, file
records; `store`: parts, lock, manifest); provenance (`machine`); `progress`; `random_scores`; publish/reproduce."""
