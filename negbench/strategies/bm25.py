"""``bm25``: BM25 hard negatives from a rank window (DPR's BM25 negatives).

Reference: Karpukhin et al. 2020, "Dense Passage Retrieval for Open-Domain Question Answering".
Candidates are BM25 (bm25s) ranks ``range_min..range_max`` of each training query with its labelled
positives removed; each epoch takes the top ``num_negatives`` (``top``) or a seeded random draw (``random``).
"""

from __future__ import annotations

from negbench.context import Context
from negbench.strategies._windows import RankWindowStrategy, WindowParams, window, window_sample
from negbench.strategy import Negatives

__all__ = ["BM25Negatives", "WindowParams", "window", "window_sample"]


class BM25Negatives(RankWindowStrategy):
    name = "bm25"
    citation = "Karpukhin et al. 2020, Dense Passage Retrieval (DPR), BM25 hard negatives."
    requires = frozenset({"bm25"})

    def ranked(self, ctx: Context, depth: int, model=None) -> Negatives:
        return ctx.bm25_candidates(depth)
