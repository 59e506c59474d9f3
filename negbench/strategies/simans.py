"""``simans``: ambiguous negatives sampled around the positive's score.

Reference:
    Zhou, Gong, Liu, Zhao, Chen, Wang, Duan, Wen, Zhu, Ren 2022, "SimANS: Simple Ambiguous Negatives Sampling
    for Dense Text Retrieval", EMNLP 2022 Industry Track (arXiv:2210.11773).

The candidate pool is each query's dense top-``depth`` under the base model, labelled positives removed.
Every epoch a candidate d is drawn with probability

    p(d) ∝ exp(−a · (s(q, d) − s(q, d⁺) − b)²),

so negatives scoring near s(q, d⁺) + b (ambiguous ones) are preferred over both the easy tail and the
top-ranked likely false negatives. Scores are base-model cosines, so ``a`` is in cosine⁻² units: the density
has standard deviation 1/√(2a) (a = 200 → 0.05). ``num_negatives`` draws per example are made without
replacement (Gumbel top-k over the log-density, i.e. successive draws from the renormalised p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import Negatives, Strategy

__all__ = ["SimANS", "SimANSParams", "simans_log_density", "simans_pick", "simans_probabilities"]


@dataclass(frozen=True)
class SimANSParams:
    a: float = 200.0
    b: float = 0.0
    depth: int = 100

    def __post_init__(self) -> None:
        if not self.a > 0:
            raise ValueError(f"a must be > 0, got {self.a}")
        if not -1.0 <= self.b <= 1.0:
            raise ValueError(f"b must be in [-1, 1] (a cosine offset), got {self.b}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1 candidate, got {self.depth}")


def simans_log_density(scores: np.ndarray, positive: float, a: float, b: float) -> np.ndarray:
    """Unnormalised log-probability −a·(s − s⁺ − b)² of every candidate."""
    return -a * (np.asarray(scores, dtype=np.float64) - positive - b) ** 2


def simans_probabilities(scores: np.ndarray, positive: float, a: float, b: float) -> np.ndarray:
    """The normalised SimANS sampling distribution over the candidates."""
    logp = simans_log_density(scores, positive, a, b)
    p = np.exp(logp - logp.max())
    return p / p.sum()


def simans_pick(
    rng: np.random.Generator, scores: np.ndarray, positive: float, a: float, b: float, k: int
) -> np.ndarray:
    """Positions of ``min(k, n)`` distinct candidates drawn from the SimANS density (Gumbel top-k)."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = simans_log_density(scores, positive, a, b) + rng.gumbel(size=len(scores))
    return np.argsort(-keys, kind="stable")[: min(k, len(scores))]


class SimANS(Strategy):
    name = "simans"
    citation = "Zhou et al. 2022, SimANS: Simple Ambiguous Negatives Sampling for Dense Text Retrieval, EMNLP 2022."
    requires = frozenset({"dense"})
    Params = SimANSParams

    @classmethod
    def search_space(cls):
        return {
            "a": FloatDistribution(10.0, 5000.0, log=True),
            "b": FloatDistribution(-0.1, 0.1),
            "depth": IntDistribution(20, 200, log=True),
        }

    def mine(self, ctx: Context) -> Negatives:
        full = ctx.dense_candidates(self.params.depth + 32)  # room for removed positives
        self.state["positive_scores"] = ctx.positive_scores()
        depth = self.params.depth
        return Negatives([c[:depth] for c in full.ids], [s[:depth] for s in full.scores])

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        positive = self.state.get("positive_scores")
        if positive is None:
            positive = self.state["positive_scores"] = ctx.positive_scores()
        if candidates.scores is None:
            raise ValueError("simans needs candidate scores (mine() provides base-model cosines)")
        chosen = []
        for i, ids in enumerate(candidates.ids):
            rng = ctx.rng("simans", i, epoch)
            pick = simans_pick(
                rng, candidates.scores[i], float(positive[i]), self.params.a, self.params.b, ctx.num_negatives
            )
            chosen.append(ctx.fill_random(i, ids[pick], epoch))
        return Negatives(chosen)
