"""From a study file to results/<study>/: load and expand a study into RunConfigs and cohorts, the executors that
train them, the atomic results store, progress display, and publish/reproduce."""
