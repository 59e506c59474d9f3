"""Rank-window mining shared by ``bm25``, ``dense``, ``ance`` and others: keep ranks ``range_min..range_max``
of a retriever's list (labelled positives removed), then take the top or a seeded random draw per epoch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import Negatives, Strategy

__all__ = ["POSITIVE_SLACK", "RankWindowStrategy", "WindowParams", "check_window", "window", "window_sample"]

# room below range_max for labelled positives that get removed from a retriever's list
POSITIVE_SLACK = 32


def check_window(range_min: int, range_max: int) -> None:
    if range_min < 0:
        raise ValueError(f"range_min must be >= 0, got {range_min}")
    if range_max <= range_min:
        raise ValueError(f"range_max ({range_max}) must be greater than range_min ({range_min})")


@dataclass(frozen=True)
class WindowParams:
    range_min: int = 0
    range_max: int = 30
    sampling: Literal["top", "random"] = "random"

    def __post_init__(self) -> None:
        check_window(self.range_min, self.range_max)


def window(candidates: Negatives, range_min: int, range_max: int) -> Negatives:
    """Keep ranks ``range_min..range_max`` (after positive removal) of each candidate list."""
    ids = [c[range_min:range_max] for c in candidates.ids]
    scores = None if candidates.scores is None else [s[range_min:range_max] for s in candidates.scores]
    return Negatives(ids, scores)


def window_sample(ctx: Context, candidates: Negatives, epoch: int, sampling: str) -> Negatives:
    """Top-k or a seeded random draw of ``num_negatives`` from each example's window."""
    chosen = []
    for i, ids in enumerate(candidates.ids):
        if sampling == "random" and len(ids) > ctx.num_negatives:
            pick = np.sort(ctx.rng("window", i, epoch).choice(len(ids), ctx.num_negatives, replace=False))
            ids = ids[pick]
        chosen.append(ctx.fill_random(i, ids[: ctx.num_negatives], epoch))
    return Negatives(chosen)


class RankWindowStrategy(Strategy):
    """Base of rank-window strategies: subclasses say where the ranked candidates come from."""

    Params = WindowParams

    @classmethod
    def search_space(cls):
        return {
            "range_min": IntDistribution(0, 20),
            "range_max": IntDistribution(30, 100),
            "sampling": CategoricalDistribution(["top", "random"]),
        }

    def ranked(self, ctx: Context, depth: int, model=None) -> Negatives:
        """Each example's candidates, best first, labelled positives removed."""
        raise NotImplementedError

    def mine_window(self, ctx: Context, model=None) -> Negatives:
        depth = self.params.range_max + POSITIVE_SLACK
        return window(self.ranked(ctx, depth, model), self.params.range_min, self.params.range_max)

    def mine(self, ctx: Context) -> Negatives:
        return self.mine_window(ctx)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return window_sample(ctx, candidates, epoch, self.params.sampling)
