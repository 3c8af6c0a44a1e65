"""Paired gradient-variance probes at checkpoints: given a cohort's frozen parameters and its runs' probe streams,
the variance, SNR and bias of every estimator's update direction; never imports the trainer back."""
