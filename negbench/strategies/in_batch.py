"""``in-batch``: random batches, only the other queries' positives as negatives.

References:
    Henderson et al. 2017, "Efficient Natural Language Response Suggestion for Smart Reply";
    Karpukhin et al. 2020, "Dense Passage Retrieval for Open-Domain Question Answering" (DPR, in-batch).
Batches come from negbench's default sampler, which never puts two examples with the same query or the
same positive document in one batch (no duplicate texts, so no in-batch false negatives).
"""

from __future__ import annotations

from negbench.strategy import Strategy

__all__ = ["InBatch"]


class InBatch(Strategy):
    name = "in-batch"
    citation = "Karpukhin et al. 2020, Dense Passage Retrieval (DPR), in-batch negatives."
