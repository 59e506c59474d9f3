"""``bm25``: BM25 hard negatives from a rank window (DPR's BM25 negatives).

Reference: Karpukhin et al. 2020, "Dense Passage Retrieval for Open-Domain Question Answering".
Candidates are BM25 (bm25s) ranks ``range_min..range_max`` of each training query with its labelled
positives removed; each epoch takes the top ``num_negatives`` (``top``) or a seeded random draw (``random``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._windows import check_window
from negbench.strategy import Negatives, Strategy


@dataclass(frozen=True)
class WindowParams:
    range_min: int = 0
    range_max: int = 30
    sampling: Literal["top", "random"] = "random"

    def __post_init__(self) -> None:
        check_window(self.range_min, self.range_max)


def window_sample(ctx: Context, candidates: Negatives, epoch: int, sampling: str) -> Negatives:
    """Top-k or a seeded random draw of ``num_negatives`` from each example's window."""
    chosen = []
    for i, ids in enumerate(candidates.ids):
        if sampling == "random" and len(ids) > ctx.num_negatives:
            pick = np.sort(ctx.rng("window", i, epoch).choice(len(ids), ctx.num_negatives, replace=False))
            ids = ids[pick]
        chosen.append(ctx.fill_random(i, ids[: ctx.num_negatives], epoch))
    return Negatives(chosen)


def window(candidates: Negatives, range_min: int, range_max: int) -> Negatives:
    """Keep ranks ``range_min..range_max`` (after positive removal) of each candidate list."""
    ids = [c[range_min:range_max] for c in candidates.ids]
    scores = None if candidates.scores is None else [s[range_min:range_max] for s in candidates.scores]
    return Negatives(ids, scores)


class BM25Negatives(Strategy):
    name = "bm25"
    citation = "Karpukhin et al. 2020, Dense Passage Retrieval (DPR), BM25 hard negatives."
    requires = frozenset({"bm25"})
    Params = WindowParams

    @classmethod
    def search_space(cls):
        return {
            "range_min": IntDistribution(0, 20),
            "range_max": IntDistribution(30, 100),
            "sampling": CategoricalDistribution(["top", "random"]),
        }

    def mine(self, ctx: Context) -> Negatives:
        depth = self.params.range_max + 32  # room for removed positives
        return window(ctx.bm25_candidates(depth), self.params.range_min, self.params.range_max)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return window_sample(ctx, candidates, epoch, self.params.sampling)
