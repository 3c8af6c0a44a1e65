import torch

from ablations.train.chunks import CHUNK_ROWS, Chunks


def test_layout_by_hand():
    # run 5 owns rows 0..2 (3 rows), run 2 owns rows 3..(3+CHUNK_ROWS) (CHUNK_ROWS + 1 rows)
    n = 3 + CHUNK_ROWS + 1
    lay = Chunks.build([5, 2], [3, CHUNK_ROWS + 1], [0, 3], n)
    assert lay.owner.tolist() == [5, 2, 2]
    assert lay.spans == ((0, 1), (1, 3))
    assert lay.valid.sum(dim=1).tolist() == [3, CHUNK_ROWS, 1]
    rows = torch.arange(n, dtype=torch.float32) + 1
    g = lay.gather(rows)
    assert g.shape == (3, CHUNK_ROWS)
    assert g[0, :3].tolist() == [1, 2, 3] and torch.all(g[0, 3:] == 0)
    assert g[2, 0] == n and torch.all(g[2, 1:] == 0)
    assert lay.per_run_sum(g).tolist() == [6.0, float(sum(range(4, n + 1)))]


def test_a_runs_chunks_do_not_depend_on_other_runs():
    rows = torch.randn(500, 4)
    alone = Chunks.build([0], [200], [0], 200).gather(rows[:200])
    together = Chunks.build([1, 0], [300, 200], [0, 300], 500).gather(torch.cat([rows[200:], rows[:200]]))
    assert torch.equal(together[3:], alone)


def test_per_chunk_broadcasts_each_runs_value_to_its_chunks():
    lay = Chunks.build([5, 2], [3, CHUNK_ROWS + 1], [0, 3], 3 + CHUNK_ROWS + 1)
    assert lay.per_chunk(torch.tensor([0.5, 2.0])).tolist() == [[0.5], [2.0], [2.0]]
