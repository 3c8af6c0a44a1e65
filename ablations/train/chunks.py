"""Each run's valid steps cut into fixed-size chunks, so one batched pass serves a whole cohort.

Padding every run to the cohort's longest episode would make a run's tensor shapes (and so, potentially, its
floating-point results) depend on its batch-mates. Instead, run j's L_j valid steps (in episode, step order) fill
⌈L_j / CHUNK_ROWS⌉ chunks of exactly CHUNK_ROWS rows (the last one zero-padded); a chunk only ever holds one run's
rows and is computed with that run's weights (gathered per chunk). Every matrix product then has the same shape
whatever the cohort, and gradients flow back to each run by an in-order `index_add` over that run's own chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

CHUNK_ROWS = 128


@dataclass(frozen=True)
class Chunks:
    """A chunk layout over flat rows [L, ...] (the valid steps of several runs, run after run)."""

    owner: Tensor  # [C] long: the cohort position whose weights chunk c uses
    index: Tensor  # [C * CHUNK_ROWS] long: flat row of each chunk row; L (one past the end) on padding
    valid: Tensor  # [C, CHUNK_ROWS] bool
    spans: tuple[tuple[int, int], ...]  # per run of the layout: its chunks [c0, c1)
    n_rows: int  # L

    @staticmethod
    def build(owners: Sequence[int], row_counts: Sequence[int], row_offsets: Sequence[int], n_rows: int) -> "Chunks":
        """Chunks for runs `owners` whose rows are [row_offsets[j], row_offsets[j] + row_counts[j]) of n_rows."""
        owner, index, spans, c = [], [], [], 0
        for o, cnt, off in zip(owners, row_counts, row_offsets):
            n_chunks = max(1, -(-cnt // CHUNK_ROWS))
            idx = torch.arange(off, off + n_chunks * CHUNK_ROWS)
            index.append(torch.where(idx < off + cnt, idx, torch.full_like(idx, n_rows)))
            owner.append(torch.full((n_chunks,), o, dtype=torch.long))
            spans.append((c, c + n_chunks))
            c += n_chunks
        index_t = torch.cat(index)
        return Chunks(torch.cat(owner), index_t, (index_t < n_rows).view(-1, CHUNK_ROWS), tuple(spans), n_rows)

    def gather(self, rows: Tensor) -> Tensor:
        """Flat rows [L, ...] → [C, CHUNK_ROWS, ...], zero on padding."""
        padded = torch.cat([rows, rows.new_zeros((1, *rows.shape[1:]))])
        return padded.index_select(0, self.index).view(-1, CHUNK_ROWS, *rows.shape[1:])

    def per_chunk(self, values: Tensor) -> Tensor:
        """One value per run of the layout [len(spans)] → each chunk's run's value [C, 1] (broadcasts over rows)."""
        return values.repeat_interleave(torch.tensor([b - a for a, b in self.spans])).view(-1, 1)

    def per_run_sum(self, x: Tensor) -> Tensor:
        """Σ over each run's chunk rows of x [C, CHUNK_ROWS] → [len(spans)] float64, summed chunk by chunk in order."""
        per_chunk = x.detach().double().sum(dim=1)
        return torch.stack([per_chunk[a:b].sum() for a, b in self.spans])
