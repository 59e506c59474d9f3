"""negbench's one InfoNCE loss over a logit view that strategies may mask, weight or extend.

References:
    - van den Oord et al. 2018, "Representation Learning with Contrastive Predictive Coding" (InfoNCE).
    - Henderson et al. 2017 / Karpukhin et al. 2020 (DPR): in-batch negatives plus mined hard negatives.
    - Gao et al. 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup" (GradCache),
      used through sentence-transformers' ``CachedLossMixin`` when ``mini_batch_size`` is set.

Inputs:
    Columns ``query, positive, negative_0 … negative_{K-1}``. The ``label`` column is a ``(B, 2 + K)`` tensor
    made by the collator from the very documents it put into the batch: each row's training-example index,
    then the corpus ids of its positive and of its ``K`` negatives. The ids travel with the batch, so the loss
    never looks them up later (a refresh between collation and the loss cannot mislabel a column).

Formula (identical for every strategy): for row ``i`` with logits ``s = scale · cos(q_i, d_j)`` over the
batch's documents (minus masked columns) plus any extra logits, ``ℓ_i = −log softmax(s)[target_i]`` and
the loss is ``mean_i(w_i · ℓ_i)``. A document that fills several columns of a batch (another row's
positive mined again as a negative, say) counts once per row: its later columns are masked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from sentence_transformers.base.losses.gradcache import CachedLossMixin
from torch import Tensor, nn

from negbench.core.strategy import LogitView
from negbench.errors import NonFiniteLossError

__all__ = ["InfoNCELoss", "info_nce", "repeated_columns"]


class InfoNCELoss(CachedLossMixin, nn.Module):
    """Cosine InfoNCE with a fixed scale (1/temperature) and a strategy ``on_logits`` hook.

    Args:
        model: the SentenceTransformer being trained.
        scale: logit scale, fixed by the suite for every strategy (20 ⇔ temperature 0.05).
        forbidden_of: maps an example index to the set of corpus indices labelled positive for its query.
        on_logits: the strategy's hook.
        mini_batch_size: if set, GradCache: embed in mini-batches of this size with cached gradients.
        observer: if set, called with every training batch's final logit view (diagnostics only, e.g.
            :class:`negbench.core.probes.negatives.PlantedInBatchCounter`); it must not change the view.
    """

    def __init__(
        self,
        model,
        scale: float,
        forbidden_of: Callable[[int], set[int]],
        on_logits: Callable[[LogitView], LogitView] = lambda view: view,
        mini_batch_size: int | None = None,
        observer: Callable[[LogitView], None] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.forbidden_of = forbidden_of
        self.on_logits = on_logits
        self.mini_batch_size = mini_batch_size or 0
        self.uses_gradient_cache = bool(mini_batch_size)
        self.step = 0
        self.batch_sizes: list[int] = []  # rows of every training batch that reached the loss (not prefetched)
        self.last_view: LogitView | None = None
        self.observer = observer

    @property
    def rows_seen(self) -> int:
        """Training rows that reached the loss (the data loader may prefetch more)."""
        return sum(self.batch_sizes)

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
        labels = labels.cpu().long()
        examples, doc_ids = labels[:, 0], labels[:, 1:]  # (B,), (B, 1+K): what the collator embedded
        flat_doc_ids = doc_ids.T.reshape(-1)  # column-major: positives, then negative_0 of all, …
        if flat_doc_ids.numel() != docs.shape[0]:
            raise ValueError(f"the batch labels name {flat_doc_ids.numel()} documents, {docs.shape[0]} were embedded")
        logits = self.scale * query @ docs.T
        target = torch.arange(batch, device=query.device)
        mask = (self.known_positive_mask(examples.tolist(), flat_doc_ids) | repeated_columns(flat_doc_ids, batch)).to(
            query.device
        )
        return LogitView(
            query=query,
            docs=docs,
            logits=logits,
            target=target,
            mask=mask,
            row_weight=torch.ones(batch, device=query.device),
            example_ids=examples.to(query.device),
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

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        view = self.on_logits(self.build_view(reps, labels))
        self.last_view = view
        loss = info_nce(view)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(f"non-finite loss {loss.item()} at step {self.step}")
        if torch.is_grad_enabled():
            self.batch_sizes.append(int(view.target.shape[0]))
            if self.observer is not None:
                self.observer(view)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss


def repeated_columns(doc_ids: Tensor, batch: int) -> Tensor:
    """(B, N) True at every column whose document already fills an earlier column (each row's target kept),
    so a document counts once in a row's softmax however many columns it fills."""
    n = doc_ids.numel()
    _, inverse = torch.unique(doc_ids, return_inverse=True)
    positions = torch.arange(n)
    first = torch.full((int(inverse.max()) + 1,), n, dtype=torch.long).scatter_reduce(0, inverse, positions, "amin")
    repeated = first[inverse] != positions
    mask = repeated[None, :].expand(batch, n).clone()
    mask[torch.arange(batch), torch.arange(batch)] = False
    return mask


def info_nce(view: LogitView) -> Tensor:
    """``mean_i(w_i · CE_i)`` over the masked logits plus extra negatives (the one formula); a view's
    ``column_weight`` weights the denominator's columns and its ``soft_target`` replaces the one-hot target
    (see :class:`~negbench.core.strategy.LogitView`)."""
    logits = view.logits
    if view.column_weight is not None:
        weight = view.column_weight.detach().to(logits.device, torch.float32).clamp_min(0.0)
        weight = weight.clone()
        weight[torch.arange(len(view.target), device=weight.device), view.target] = 1.0
        logits = logits.float() + torch.log(weight)  # log 0 = -inf: a zero weight is a mask
    logits = logits.masked_fill(view.mask, float("-inf"))
    if view.extra_logits is not None:
        logits = torch.cat([logits, view.extra_logits.to(logits.dtype)], dim=1)
    if view.soft_target is None:
        per_row = F.cross_entropy(logits.float(), view.target, reduction="none")
    else:
        target = view.soft_target.detach().to(logits.device, torch.float32)
        if target.shape != logits.shape:
            raise ValueError(f"soft_target has shape {tuple(target.shape)}, the row's columns {tuple(logits.shape)}")
        if not torch.isfinite(target).all() or (target < 0).any():  # a NaN there would vanish from the loss
            raise NonFiniteLossError("soft_target has a non-finite or negative entry (a strategy's target is broken)")
        log_p = torch.log_softmax(logits.float(), dim=1)
        per_row = -torch.where(target > 0, target * log_p, torch.zeros_like(log_p)).sum(dim=1)
    return (view.row_weight.float() * per_row).mean()
