"""How hard and how informative a batch's negatives are, read off the loss's own logits.

The probe reads the :class:`~negbench.core.strategy.LogitView` the shared InfoNCE loss last computed (after the
strategy's ``on_logits``): no extra forward pass, detached, no gradient. The scores are those of the model
as it was for that batch's forward pass (just before that optimiser step).

Every metric is a mean over the batch's rows. A row's *negatives* are the entries of its softmax other than
its target: the unmasked batch columns (other rows' positives, every mined negative of the batch) and any
extra logits a strategy added (a memory queue, synthetic mixtures). Scores are cosines (logit / scale).

* ``pos_score``: mean cosine s(q, d⁺) of each row's positive.
* ``neg_score``: mean cosine over every (row, negative) pair of the softmax.
* ``mined_neg_score``: the same over each row's own mined negatives only (absent without mined negatives).
* ``in_batch_neg_score``: the same over the other batch columns (other rows' positives and mined negatives).
* ``pos_rank``: rank of the positive among the row's softmax entries, 1 = it outscores every negative
  (1 + the number of negatives scoring strictly above it).
* ``hardest_share``: the softmax probability (at the training scale) of the row's highest-scoring negative,
  i.e. its share of the whole denominator, positive included.
* ``active_negatives``: negatives carrying at least 1 % of the row's softmax mass (those with a gradient
  worth the name).
* ``softmax_negatives``: negatives in the row's softmax at all (``hardest_share`` = 1 / (this + 1) when
  every logit is equal).
"""

from __future__ import annotations

import torch

from negbench.core.strategy import LogitView

__all__ = ["ACTIVE_MASS", "HARDNESS_METRICS", "hardness_stats"]

ACTIVE_MASS = 0.01  # a negative is "active" with at least this share of its row's softmax mass

HARDNESS_METRICS = (
    "pos_score",
    "neg_score",
    "mined_neg_score",
    "in_batch_neg_score",
    "pos_rank",
    "hardest_share",
    "active_negatives",
    "softmax_negatives",
)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float | None:
    count = int(mask.sum())
    return float(values.masked_fill(~mask, 0.0).sum()) / count if count else None


@torch.no_grad()
def hardness_stats(view: LogitView) -> dict[str, float]:
    """The hardness metrics of one batch (module docstring); a metric with nothing to average is left out."""
    logits = view.logits.detach().float()
    batch, width = logits.shape
    rows = torch.arange(batch, device=logits.device)
    target = view.target.to(logits.device)
    negative = view.negative_mask().to(logits.device)  # (B, N): unmasked, not the target
    # each row's own mined negatives: columns are positives, then negative_j of every row (column-major)
    own = torch.zeros_like(negative)
    if width > batch and width % batch == 0:
        for j in range(width // batch - 1):
            own[rows, batch * (j + 1) + rows] = True
    extra = (
        view.extra_logits.detach().float().to(logits.device)
        if view.extra_logits is not None
        else logits.new_zeros(batch, 0)
    )
    full = torch.cat([logits.masked_fill(view.mask.to(logits.device), float("-inf")), extra], dim=1)
    full_negative = torch.cat([negative, torch.ones_like(extra, dtype=torch.bool)], dim=1)
    positive = logits[rows, target]
    prob = torch.softmax(full, dim=1)
    neg_prob = prob.masked_fill(~full_negative, 0.0)
    cosine = full / view.scale
    stats = {
        "pos_score": float((positive / view.scale).mean()),
        "neg_score": _masked_mean(cosine, full_negative),
        "mined_neg_score": _masked_mean(logits / view.scale, negative & own),
        "in_batch_neg_score": _masked_mean(logits / view.scale, negative & ~own),
        "pos_rank": float((1 + ((full > positive[:, None]) & full_negative).sum(dim=1)).float().mean()),
        "hardest_share": float(neg_prob.max(dim=1).values.mean()) if full.shape[1] else None,
        "active_negatives": float((neg_prob >= ACTIVE_MASS).sum(dim=1).float().mean()),
        "softmax_negatives": float(full_negative.sum(dim=1).float().mean()),
    }
    return {name: value for name, value in stats.items() if value is not None}
