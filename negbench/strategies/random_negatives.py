"""``random``: uniformly random corpus negatives, re-drawn every epoch.

Reference: Zhan et al. 2021, "Optimizing Dense Retrieval Model Training with Hard Negatives" (STAR's
random negatives); Karpukhin et al. 2020 (DPR "random" negatives).
"""

from __future__ import annotations

import numpy as np

from negbench.context import Context
from negbench.strategy import Negatives, Strategy

__all__ = ["RandomNegatives"]


class RandomNegatives(Strategy):
    name = "random"
    citation = "Zhan et al. 2021, STAR (random negatives); Karpukhin et al. 2020, DPR."

    def mine(self, ctx: Context) -> Negatives:
        return Negatives([np.empty(0, dtype=np.int64) for _ in ctx.examples])

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return Negatives([ctx.fill_random(i, candidates.ids[i], epoch) for i in range(len(ctx.examples))])
