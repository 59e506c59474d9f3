"""The values that pass between the training loop and a strategy: negatives per example, and the logit view."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["LogitView", "Negatives"]


@dataclass
class Negatives:
    """Negatives per training example: ``ids[i]`` are corpus indices for example ``i`` (best first).

    ``scores[i]`` holds the score each candidate had when mined (e.g. base-model cosine), when known.
    """

    ids: list[np.ndarray]
    scores: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, i: int, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        positions = np.asarray(positions, dtype=np.int64)
        scores = None if self.scores is None else self.scores[i][positions]
        return self.ids[i][positions], scores


@dataclass
class LogitView:
    """What the shared InfoNCE loss sees for one batch; strategies may mask, weight or extend it.

    Rows are the batch's queries; columns are the batch's documents: first the ``B`` positives (row ``i``'s
    target is column ``target[i]``), then each negative column of every example. ``mask`` marks columns left
    out of a row's softmax denominator (labelled positives of that query are masked by the loss itself).
    ``extra_logits`` are additional negatives per row (synthetic mixtures, a memory queue, …), already
    multiplied by ``scale``. ``row_weight`` scales each row's cross-entropy term.

    Two optional extensions leave the formula InfoNCE and are the identity when unset:

    * ``column_weight`` ``(B, N)``: a non-negative weight per column in the row's softmax *denominator*
      (``exp(s_ij)`` becomes ``w_ij · exp(s_ij)``; 1 everywhere is plain InfoNCE, 0 is a mask). The target
      column is always weighted 1. For corrections that down-weight likely false negatives.
    * ``soft_target`` ``(B, N + M)``: a distribution over the row's columns (then its extra negatives) to
      fit instead of the one-hot ``target`` (cross-entropy against it; one-hot at ``target`` is plain
      InfoNCE). For distillation from a ranker over the retriever's own candidates.
    """

    query: torch.Tensor
    docs: torch.Tensor
    logits: torch.Tensor
    target: torch.Tensor
    mask: torch.Tensor
    row_weight: torch.Tensor
    example_ids: torch.Tensor
    doc_ids: torch.Tensor
    scale: float
    step: int = 0
    extra_logits: torch.Tensor | None = None
    column_weight: torch.Tensor | None = None
    soft_target: torch.Tensor | None = None

    def replace(self, **changes: Any) -> LogitView:
        return dataclasses.replace(self, **changes)

    def add_negatives(self, logits: torch.Tensor) -> LogitView:
        """Append ``(B, M)`` scaled logits of extra negatives to every row."""
        extra = logits if self.extra_logits is None else torch.cat([self.extra_logits, logits], dim=1)
        return self.replace(extra_logits=extra)

    def positive_logits(self) -> torch.Tensor:
        return self.logits.gather(1, self.target[:, None]).squeeze(1)

    def negative_mask(self) -> torch.Tensor:
        """True where a column is an active negative for that row (not masked, not the target)."""
        target_cols = torch.zeros_like(self.mask)
        target_cols[torch.arange(len(self.target)), self.target] = True
        return ~self.mask & ~target_cols
