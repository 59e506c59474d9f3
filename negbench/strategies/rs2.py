"""``rs2``: repeated random sampling, a fresh random subset of the training examples each epoch.

Reference:
    Okanovic, Waleffe, Mageirakos, Nikolakakis, Karbasi, Kalogerias, Gürel, Rekatsinas 2023, "Repeated
    Random Sampling for Minimizing the Time-to-Accuracy of Learning" (RS2, arXiv:2305.18424; ICLR 2024).

Each epoch (an RS2 "round") trains on ``round(fraction · n)`` of the ``n`` training examples (rounded down to
full batches), in random batches without clashes (no two examples of one query or one positive document per
batch, as negbench's default sampler), so an epoch costs ``fraction`` of a full one. A round has no spare
places, so where its draw cannot fill its batches (twin queries or one query's positives outnumbering the
round's batches) a drawn example that fits no batch gives its place to an undrawn one (and misses that pass
of the walk below), so a round fills its batches on data where a full epoch fills its own. Without
replacement (RS2's recommended variant) the rounds walk through one random permutation of the examples before
a new permutation starts, so every example is seen once per ``1 / fraction`` rounds; a round that straddles
two permutations never repeats an example. With ``replacement`` every round is an independent random subset.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution

from negbench.context import Context
from negbench.strategy import Strategy, pack

__all__ = ["RS2", "RS2Params"]


@dataclass(frozen=True)
class RS2Params:
    fraction: float = 0.5
    replacement: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")


class RS2(Strategy):
    name = "rs2"
    citation = "Okanovic et al. 2023, Repeated Random Sampling for Minimizing the Time-to-Accuracy of Learning (RS2)."
    Params = RS2Params

    @classmethod
    def search_space(cls):
        return {
            "fraction": FloatDistribution(0.1, 1.0),
            "replacement": CategoricalDistribution([False, True]),
        }

    def subset_size(self, n: int) -> int:
        return min(n, max(1, round(self.params.fraction * n)))

    def examples_per_epoch(self, n: int) -> int:
        """RS2 changes the budget by design: a round is ``fraction`` of an epoch."""
        return self.subset_size(n)

    def budget_reason(self) -> str | None:
        if self.params.fraction >= 1.0:
            return None
        return f"rs2: fraction {self.params.fraction:g} of the examples per epoch (by design)"

    def _permutation(self, ctx: Context, cycle: int, n: int, size: int) -> np.ndarray:
        """Permutation ``cycle``; its head avoids the previous permutation's tail in a straddling round."""
        perms: dict[int, np.ndarray] = self.state.setdefault("permutations", {})
        if cycle not in perms:
            raw = ctx.rng("rs2", "permutation", cycle).permutation(n)
            if cycle > 0:
                previous = self._permutation(ctx, cycle - 1, n, size)
                tail_len = (cycle * n) % size  # examples of cycle - 1 in the round straddling the boundary
                tail = set(previous[n - tail_len :].tolist()) if tail_len else set()
                head_len = size - tail_len if tail_len else 0
                fresh = [int(i) for i in raw if int(i) not in tail]
                head = fresh[:head_len]
                taken = set(head)
                raw = np.array(head + [int(i) for i in raw if int(i) not in taken], dtype=np.int64)
            perms[cycle] = raw
        return perms[cycle]

    def subset(self, ctx: Context, epoch: int) -> np.ndarray:
        """The training examples of round ``epoch``: the subset rounded down to full batches, so every example
        drawn from the permutation is trained (none is used up in a dropped remainder)."""
        n = len(ctx.examples)
        size = max(ctx.batch_size, self.subset_size(n) // ctx.batch_size * ctx.batch_size)
        if self.params.replacement:
            return np.sort(ctx.rng("rs2", "subset", epoch).choice(n, size, replace=False))
        start, out = epoch * size, []
        while len(out) < size:
            cycle, offset = divmod(start + len(out), n)
            perm = self._permutation(ctx, cycle, n, size)
            out += perm[offset : offset + size - len(out)].tolist()
        return np.array(out, dtype=np.int64)

    def batches(self, ctx: Context, epoch: int) -> list[list[int]]:
        """The round's subset in seeded random batches; the examples it did not draw, in a seeded random order,
        stand by for a drawn example that clashes with every batch."""
        subset = self.subset(ctx, epoch).tolist()
        order = list(subset)
        ctx.rng("batches", epoch).shuffle(order)
        drawn = set(subset)
        spares = [int(i) for i in ctx.rng("rs2", "spares", epoch).permutation(len(ctx.examples)) if int(i) not in drawn]
        count = len(subset) // ctx.batch_size
        return pack(ctx, order + spares, batches=count)[:count]
