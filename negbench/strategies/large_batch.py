"""``large-batch``: very large in-batch-negative batches in bounded memory with GradCache.

References:
    Gao, Zhang, Han & Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup"
    (GradCache, RepL4NLP); the large-batch recipe of PEG / GTE-style embedding training (batch size as the
    source of negatives).

The strategy sets ``mini_batch_size``; negbench's training loop passes it to the shared loss, which then runs
through sentence-transformers' ``CachedLossMixin``: embed every column in mini-batches without a graph, compute
the one InfoNCE over the whole batch and cache the gradients w.r.t. the embeddings, then re-embed each
mini-batch with a graph and back-propagate the cached gradients. Gradients equal the uncached loss's (up to
float rounding; dropout is replayed), and activation memory is that of one mini-batch whatever the batch size.

Setting the big batch: the batch size is a training setting, so a suite sets it per strategy (the runner
applies ``StrategyConfig.training`` on top of the suite's ``[training]``; it sets ``ctx.batch_size`` too and is
recorded in the row's config)::

    [[strategies]]
    name = "large-batch"
    label = "large-batch-1024"
    params = { mini_batch_size = 32 }
    training = { batch_size = 1024 }

or searches it as a training dimension when tuning::

    [[strategies]]
    name = "large-batch"
    params = { mini_batch_size = 32 }
    search_space = { "training.batch_size" = { type = "categorical", choices = [256, 512, 1024] } }

The default search space is empty: ``mini_batch_size`` only trades speed for memory and never changes the
result, and the batch size belongs to the suite's training config (a strategy parameter that overrode it would
leave the row's recorded training config wrong).
"""

from __future__ import annotations

from dataclasses import dataclass

from negbench.strategy import Strategy

__all__ = ["LargeBatch", "LargeBatchParams"]


@dataclass(frozen=True)
class LargeBatchParams:
    mini_batch_size: int = 32  # sequences embedded with a graph at once (memory bound), not a result knob

    def __post_init__(self) -> None:
        if self.mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {self.mini_batch_size}")


class LargeBatch(Strategy):
    """GradCache large batches: the shared loss runs in cached mini-batches of ``mini_batch_size``."""

    name = "large-batch"
    citation = (
        "Gao et al. 2021, Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup "
        "(GradCache); PEG-style large in-batch-negative batches."
    )
    Params = LargeBatchParams

    def __init__(self, params: LargeBatchParams | None = None) -> None:
        super().__init__(params)
        self.mini_batch_size: int = self.params.mini_batch_size

    @classmethod
    def search_space(cls):
        """Nothing to tune by default: the batch size is searched as ``training.batch_size`` (see above)."""
        return {}
