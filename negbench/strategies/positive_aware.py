"""``positive-aware``: NV-Retriever's positive-aware hard-negative mining.

Reference: Moreira et al. 2024, "NV-Retriever: Improving text embedding models with effective
positive-aware hard-negative mining" (arXiv:2407.15831). Candidates are the teacher's dense top-``depth``
(the suite's ``guide`` model, as the paper mines with a stronger model, else the base model); a candidate is
dropped as a likely false negative when its teacher score exceeds

* ``perc``   (TopK-PercPos): ``perc · s(q, d⁺)`` (the paper's best: 0.95);
* ``margin`` (TopK-MarginPos): ``s(q, d⁺) − margin``;
* ``abs``    (TopK-Abs): the absolute ``max_score``.

The top ``num_negatives`` survivors are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import Negatives, Sizes, Strategy, Workload

__all__ = ["PositiveAware", "PositiveAwareParams", "positive_aware_filter"]


@dataclass(frozen=True)
class PositiveAwareParams:
    method: Literal["perc", "margin", "abs"] = "perc"
    perc: float = 0.95
    margin: float = 0.05
    max_score: float = 0.9
    depth: int = 50

    def __post_init__(self) -> None:
        if not 0.0 < self.perc <= 1.0:
            raise ValueError(f"perc must be in (0, 1], got {self.perc}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")


def positive_aware_filter(
    ids: np.ndarray, scores: np.ndarray, positive_score: float, params: PositiveAwareParams
) -> tuple[np.ndarray, np.ndarray]:
    """Drop candidates scoring above the positive-aware threshold; keep order."""
    if params.method == "perc":
        threshold = params.perc * positive_score
    elif params.method == "margin":
        threshold = positive_score - params.margin
    else:
        threshold = params.max_score
    keep = scores <= threshold
    return ids[keep], scores[keep]


class PositiveAware(Strategy):
    name = "positive-aware"
    citation = "Moreira et al. 2024, NV-Retriever: positive-aware hard-negative mining (TopK-PercPos)."
    requires = frozenset({"dense"})
    Params = PositiveAwareParams

    @classmethod
    def search_space(cls):
        return {
            "method": CategoricalDistribution(["perc", "margin"]),
            "perc": FloatDistribution(0.8, 1.0),
            "margin": FloatDistribution(0.0, 0.2),
            "depth": IntDistribution(20, 100),
        }

    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """The teacher (the suite's guide, else the base model) encodes the corpus and training queries once."""
        return Workload(prep=sizes.encoded(ctx.query_ids, sizes.teacher), negatives=True)

    def mine(self, ctx: Context) -> Negatives:
        teacher = ctx.guided()  # the suite's guide model when it names one, else the base model
        candidates = teacher.dense_candidates(self.params.depth)
        positive = teacher.positive_scores()
        ids, scores = [], []
        for i in range(len(ctx.examples)):
            kept_ids, kept_scores = positive_aware_filter(
                candidates.ids[i], candidates.scores[i], float(positive[i]), self.params
            )
            ids.append(kept_ids)
            scores.append(kept_scores)
        return Negatives(ids, scores)
