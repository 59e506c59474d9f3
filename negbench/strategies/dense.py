"""``dense``: static hard negatives from the base model's dense top-k, in a rank window.

Reference: Xiong et al. 2021 (ANCE) §3 for static dense negatives; the recipe of FlagEmbedding's
``hn_mine`` (``range_for_sampling``) and sentence-transformers' ``mine_hard_negatives``
(``range_min``/``range_max``, ``sampling_strategy`` top/random).
"""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies.bm25 import WindowParams, window, window_sample
from negbench.strategy import Negatives, Strategy


class DenseNegatives(Strategy):
    name = "dense"
    citation = "Xiong et al. 2021 (ANCE, static variant); FlagEmbedding / sentence-transformers hard-negative mining."
    requires = frozenset({"dense"})
    Params = WindowParams

    @classmethod
    def search_space(cls):
        return {
            "range_min": IntDistribution(0, 20),
            "range_max": IntDistribution(30, 100),
            "sampling": CategoricalDistribution(["top", "random"]),
        }

    def mine(self, ctx: Context) -> Negatives:
        depth = self.params.range_max + 32
        return window(ctx.dense_candidates(depth), self.params.range_min, self.params.range_max)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return window_sample(ctx, candidates, epoch, self.params.sampling)
