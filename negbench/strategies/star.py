"""``star``: static dense hard negatives mixed with random negatives at a set ratio.

Reference:
    Zhan, Mao, Liu, Guo, Zhang, Ma 2021, "Optimizing Dense Retrieval Model Training with Hard Negatives",
    SIGIR 2021 (arXiv:2104.08051), the STAR method (Stable Training Algorithm for dense Retrieval).

STAR stabilises static hard-negative training by mixing random negatives in: its loss is
L_r + α·L_h over random negatives and static hard negatives, the hard ones drawn each step from the top-200
of a warm-up retriever's static index. Here the hard pool is the base model's dense top-``depth``
(labelled positives removed) and each epoch every example gets ``hard_ratio · num_negatives`` hard
negatives (drawn uniformly from the pool; a fractional count is rounded stochastically per example so the
declared ratio holds on average for any ``num_negatives``) and the rest uniformly random corpus
documents. The paper's random negatives are the other queries' documents in the batch; those come from the
shared loss here anyway, so the explicit random columns make the ratio a tunable knob.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import Negatives, Strategy

__all__ = ["STAR", "STARParams", "hard_count"]


@dataclass(frozen=True)
class STARParams:
    hard_ratio: float = 0.5
    depth: int = 200

    def __post_init__(self) -> None:
        if not 0.0 <= self.hard_ratio <= 1.0:
            raise ValueError(f"hard_ratio must be in [0, 1], got {self.hard_ratio}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1 candidate, got {self.depth}")


def hard_count(rng: np.random.Generator, ratio: float, k: int) -> int:
    """``ratio · k`` rounded stochastically (floor, plus one with the fractional part's probability)."""
    exact = ratio * k
    whole = int(np.floor(exact))
    return whole + int(rng.random() < exact - whole)


class STAR(Strategy):
    name = "star"
    citation = "Zhan et al. 2021, Optimizing Dense Retrieval Model Training with Hard Negatives (STAR), SIGIR 2021."
    requires = frozenset({"dense"})
    Params = STARParams

    @classmethod
    def search_space(cls):
        return {
            "hard_ratio": FloatDistribution(0.0, 1.0),
            "depth": IntDistribution(20, 200, log=True),
        }

    def mine(self, ctx: Context) -> Negatives:
        full = ctx.dense_candidates(self.params.depth + 32)  # room for removed positives
        depth = self.params.depth
        return Negatives([c[:depth] for c in full.ids], [s[:depth] for s in full.scores])

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        chosen = []
        for i, pool in enumerate(candidates.ids):
            rng = ctx.rng("star", i, epoch)
            n_hard = min(hard_count(rng, self.params.hard_ratio, ctx.num_negatives), len(pool))
            hard = pool[rng.choice(len(pool), n_hard, replace=False)] if n_hard else pool[:0]
            chosen.append(ctx.fill_random(i, hard, epoch))  # the rest: uniform over the corpus
        return Negatives(chosen)
