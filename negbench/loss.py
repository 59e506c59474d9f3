"""negbench's one InfoNCE loss over a logit view that strategies may mask, weight or extend.

References:
    - van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (InfoNCE).
    - Henderson et al. 2017 / Karpukhin et al. 2020 (DPR): in-batch negatives plus mined hard negatives.
    - Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (GradCache),
      used through sentence-transformers' ``CachedLossMixin`` when ``mini_batch_size`` is set.

Inputs:
    Columns ``query, positive, negative_0 … negative_{K-1}``; the ``label`` column carries each row's
    training-example index so the loss can mask labelled positives and strategies can keep per-pair state.

Formula (identical for every strategy): for row ``i`` with logits ``s = scale · cos(q_i, d_j)`` over the
batch's documents (minus masked columns) plus any extra logits, ``ℓ_i = −log softmax(s)[target_i]`` and
the loss is ``mean_i(w_i · ℓ_i)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from torch import Tensor, nn

from negbench.errors import NonFiniteLossError
from negbench.strategy import LogitView


class InfoNCELoss(CachedLossMixin, nn.Module):
    """Cosine InfoNCE with a fixed scale (1/temperature) and a strategy ``on_logits`` hook.

    Args:
        model: the SentenceTransformer being trained.
        scale: logit scale, fixed by the suite for every strategy (20 ⇔ temperature 0.05).
        doc_ids_of: maps a LongTensor of example indices to a ``(B, 1+K)`` LongTensor of corpus indices
            (positive first, then the negatives currently assigned to each example).
        forbidden_of: maps an example index to the set of corpus indices labelled positive for its query.
        on_logits: the strategy's hook.
        mini_batch_size: if set, GradCache: embed in mini-batches of this size with cached gradients.
    """

    def __init__(
        self,
        model,
        scale: float,
        doc_ids_of: Callable[[Tensor], Tensor],
        forbidden_of: Callable[[int], set[int]],
        on_logits: Callable[[LogitView], LogitView] = lambda view: view,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.doc_ids_of = doc_ids_of
        self.forbidden_of = forbidden_of
        self.on_logits = on_logits
        self.mini_batch_size = mini_batch_size or 0
        self.uses_gradient_cache = bool(mini_batch_size)
        self.step = 0
        self.rows_seen = 0  # training rows that reached the loss (the data loader may prefetch more)
        self.last_view: LogitView | None = None

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        if self.uses_gradient_cache:
            return self.forward_cached(sentence_features, labels)
        reps = [[self.model(features)["sentence_embedding"]] for features in sentence_features]
        return self.calculate_loss(reps, labels)

    def build_view(self, reps: list[list[Tensor]], labels: Tensor) -> LogitView:
        columns = [torch.cat(chunks, dim=0) for chunks in reps]
        query = F.normalize(columns[0], dim=-1)
        docs = F.normalize(torch.cat(columns[1:], dim=0), dim=-1)
        batch = query.shape[0]
        doc_ids = self.doc_ids_of(labels.cpu())  # (B, 1+K)
        flat_doc_ids = doc_ids.T.reshape(-1)  # column-major: positives, then negative_0 of all, …
        logits = self.scale * query @ docs.T
        target = torch.arange(batch, device=query.device)
        mask = self.known_positive_mask(labels.tolist(), flat_doc_ids).to(query.device)
        return LogitView(
            query=query,
            docs=docs,
            logits=logits,
            target=target,
            mask=mask,
            row_weight=torch.ones(batch, device=query.device),
            example_ids=labels.to(query.device),
            doc_ids=flat_doc_ids.to(query.device),
            scale=self.scale,
            step=self.step,
        )

    def known_positive_mask(self, examples: list[int], doc_ids: Tensor) -> Tensor:
        """(B, N) True where column ``j`` holds a labelled positive of row ``i``'s query (j ≠ i)."""
        sets = [sorted(self.forbidden_of(e)) for e in examples]
        width = max(len(s) for s in sets)
        table = torch.full((len(sets), width), -1, dtype=torch.long)
        for i, docs in enumerate(sets):
            table[i, : len(docs)] = torch.tensor(docs, dtype=torch.long)
        mask = (doc_ids[None, :, None] == table[:, None, :]).any(dim=-1)
        mask[torch.arange(len(sets)), torch.arange(len(sets))] = False
        return mask

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *,
                       with_backward: bool = False) -> Tensor:
        view = self.on_logits(self.build_view(reps, labels))
        self.last_view = view
        loss = info_nce(view)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"non-finite loss {loss.item()} at step {self.step}")
        if torch.is_grad_enabled():
            self.rows_seen += int(view.target.shape[0])
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


def info_nce(view: LogitView) -> Tensor:
    """``mean_i(w_i · CE_i)`` over the masked logits plus extra negatives (the one formula)."""
    logits = view.logits.masked_fill(view.mask, float("-inf"))
    if view.extra_logits is not None:
        logits = torch.cat([logits, view.extra_logits.to(logits.dtype)], dim=1)
    per_row = F.cross_entropy(logits.float(), view.target, reduction="none")
    return (view.row_weight.float() * per_row).mean()
