"""``dense``: static hard negatives from the base model's dense top-k, in a rank window.

Reference: Xiong et al. 2021 (ANCE) §3 for static dense negatives; the recipe of FlagEmbedding's
``hn_mine`` (``range_for_sampling``) and sentence-transformers' ``mine_hard_negatives``
(``range_min``/``range_max``, ``sampling_strategy`` top/random).
"""

from __future__ import annotations

from negbench.context import Context
from negbench.strategies._windows import RankWindowStrategy
from negbench.strategy import Negatives

__all__ = ["DenseNegatives"]


class DenseNegatives(RankWindowStrategy):
    name = "dense"
    citation = "Xiong et al. 2021 (ANCE, static variant); FlagEmbedding / sentence-transformers hard-negative mining."
    requires = frozenset({"dense"})

    def ranked(self, ctx: Context, depth: int, model=None) -> Negatives:
        return ctx.dense_candidates(depth, model)
