"""Shared test set-up: one torch thread, as the CLI and the executors use."""

import torch

torch.set_num_threads(1)
