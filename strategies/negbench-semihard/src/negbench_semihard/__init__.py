"""``semi-hard``: negatives scored below the positive, but within a margin of it.

Reference: Schroff, Kalenichenko, Philbin 2015, "FaceNet: A Unified Embedding for Face Recognition and
Clustering" (semi-hard negative mining: s(q, d⁺) − margin < s(q, d⁻) < s(q, d⁺)). Here the scores are the
base model's cosine similarities over its dense top-``depth``.

This package is also the template for third-party negbench strategies: a ``Strategy`` subclass, a frozen
``Params`` dataclass, a declared search space, an entry point in group ``negbench.strategies``, and the
conformance tests from :mod:`negbench.testing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.core.context import Context
from negbench.core.strategy import Negatives, Strategy


@dataclass(frozen=True)
class SemiHardParams:
    margin: float = 0.1
    depth: int = 50

    def __post_init__(self) -> None:
        if self.margin <= 0:
            raise ValueError(f"margin must be > 0, got {self.margin}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")


class SemiHard(Strategy):
    name = "semi-hard"
    citation = "Schroff et al. 2015, FaceNet (semi-hard negative mining)."
    requires = frozenset({"dense"})
    Params = SemiHardParams

    @classmethod
    def search_space(cls):
        return {"margin": FloatDistribution(0.02, 0.5, log=True), "depth": IntDistribution(20, 200)}

    def mine(self, ctx: Context) -> Negatives:
        candidates = ctx.dense_candidates(self.params.depth)
        positive = ctx.positive_scores()
        ids, scores = [], []
        for i, (cand, sc) in enumerate(zip(candidates.ids, candidates.scores, strict=True)):
            keep = (sc < positive[i]) & (sc > positive[i] - self.params.margin)
            ids.append(cand[keep])
            scores.append(sc[keep])
        return Negatives(ids, scores)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        chosen = []
        for i, ids in enumerate(candidates.ids):
            if len(ids) > ctx.num_negatives:
                ids = ids[np.sort(ctx.rng("semi-hard", i, epoch).choice(len(ids), ctx.num_negatives, replace=False))]
            chosen.append(ctx.fill_random(i, ids, epoch))
        return Negatives(chosen)
