import numpy as np
import torch

from ablations.train.seeding import STREAM_NAMES, draw_seed, run_streams


def test_streams_are_reproducible_and_distinct():
    a, b = run_streams(3), run_streams(3)
    assert draw_seed(a.env) == draw_seed(b.env)
    assert torch.equal(torch.rand(4, generator=a.init), torch.rand(4, generator=b.init))
    c = run_streams(3)
    draws = [c.env.random(), c.actions.random(), c.probes.random(), c.eval.random()]
    assert len(set(draws)) == 4
    assert run_streams(4).actions.random() != run_streams(3).actions.random()


def test_using_one_stream_does_not_shift_another():
    a, b = run_streams(0), run_streams(0)
    a.probes.random(1000)
    assert np.array_equal(a.actions.random(5), b.actions.random(5))
    assert STREAM_NAMES[:3] == ("init", "env", "actions")
