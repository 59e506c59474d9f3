"""``xbm``: cross-batch memory — document embeddings of earlier steps as extra negatives.

References:
    Wang et al. 2020, "Cross-Batch Memory for Embedding Learning" (XBM, CVPR 2020): embeddings drift slowly,
    so a FIFO memory of detached embeddings from past mini-batches supplies many more negatives almost for free;
    Shi et al. 2023, "CoCoSoDa: Effective Contrastive Learning for Code Search" (momentum queue of code
    embeddings); He et al. 2020 (MoCo) for the queue itself.

Each step, every row is contrasted with the memory (``scale · q · m``, appended through
:meth:`LogitView.add_negatives`), then the batch's document embeddings are enqueued (detached) with their
corpus ids and the oldest entries dropped beyond ``memory_size``. An entry is masked (−inf) for a row when its
corpus id is a labelled positive of that row's query, and for every row when the document is in the current
batch (its fresh embedding is already a column; a stale copy of one's own positive would be a false negative).
The memory keeps one (the newest) entry per document. Memory negatives count from ``start_step`` on (XBM's
warm-up). Departure: XBM starts its memory once the embeddings drift slowly, after a warm-up of many iterations;
``start_step`` defaults to 0 here so that runs of a few dozen steps use it at all. The queue lives in ``state``,
so :meth:`state_dict` / :meth:`load_state_dict` save it for resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from optuna.distributions import IntDistribution

from negbench.context import Context
from negbench.strategy import LogitView, Strategy

__all__ = ["XBM", "XBMParams"]


@dataclass(frozen=True)
class XBMParams:
    memory_size: int = 1024  # documents kept in the FIFO memory
    start_step: int = 0  # optimiser step from which memory negatives enter the loss

    def __post_init__(self) -> None:
        if self.memory_size < 1:
            raise ValueError(f"memory_size must be >= 1, got {self.memory_size}")
        if self.start_step < 0:
            raise ValueError(f"start_step must be >= 0, got {self.start_step}")


class XBM(Strategy):
    """A FIFO memory of detached document embeddings used as extra negatives."""

    name = "xbm"
    citation = "Wang et al. 2020, Cross-Batch Memory for Embedding Learning (XBM), CVPR; CoCoSoDa momentum queue."
    Params = XBMParams

    def __init__(self, params: XBMParams | None = None) -> None:
        super().__init__(params)
        self.forbidden_of: Callable[[int], set[int]] | None = None

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        """Memory negatives enter the loss from optimiser step ``start_step`` (counted from 0)."""
        if self.params.start_step < total_steps:
            return None
        return (
            f"adds memory negatives from step {self.params.start_step} (start_step) but the run has {total_steps} "
            "steps: it never uses its memory, so it trains as in-batch"
        )

    @classmethod
    def search_space(cls):
        return {
            "memory_size": IntDistribution(64, 4096, log=True),
            "start_step": IntDistribution(0, 100),
        }

    def setup(self, ctx: Context) -> None:
        self.forbidden_of = ctx.forbidden

    # ------------------------------------------------------------------------------------ memory
    @property
    def memory(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(embeddings (M, d), corpus ids (M,))``, oldest first, or None while empty."""
        if "emb" not in self.state:
            return None
        return self.state["emb"], self.state["ids"]

    def enqueue(self, docs: torch.Tensor, doc_ids: torch.Tensor) -> None:
        """Append one batch of document embeddings (newest last); one entry per document; trim to size."""
        docs, doc_ids = docs.detach(), doc_ids.detach().to(docs.device).long()
        uniq, inverse = torch.unique(doc_ids, return_inverse=True)
        first = torch.full((len(uniq),), len(doc_ids), dtype=torch.long, device=docs.device)
        first = first.scatter_reduce(0, inverse, torch.arange(len(doc_ids), device=docs.device), "amin")
        first = first.sort().values
        docs, doc_ids = docs[first], doc_ids[first]
        if self.memory is not None:
            old_emb, old_ids = self.memory
            keep = ~torch.isin(old_ids.to(docs.device), doc_ids)
            docs = torch.cat([old_emb.to(docs.device, docs.dtype)[keep], docs])
            doc_ids = torch.cat([old_ids.to(docs.device)[keep], doc_ids])
        size = self.params.memory_size
        self.state["emb"], self.state["ids"] = docs[-size:].clone(), doc_ids[-size:].clone()

    def blocked(self, view: LogitView, ids: torch.Tensor) -> torch.Tensor:
        """``(B, M)`` True where memory entry ``m`` must not be a negative of row ``i``."""
        in_batch = torch.isin(ids, view.doc_ids.to(ids.device))
        block = in_batch[None, :].expand(len(view.example_ids), -1).clone()
        if self.forbidden_of is not None:
            sets = [sorted(self.forbidden_of(int(e))) for e in view.example_ids.tolist()]
            width = max(1, max(len(s) for s in sets))
            table = torch.full((len(sets), width), -1, dtype=torch.long)
            for i, docs in enumerate(sets):
                table[i, : len(docs)] = torch.tensor(docs, dtype=torch.long)
            block |= (ids[None, :, None] == table.to(ids.device)[:, None, :]).any(dim=-1)
        return block

    # ------------------------------------------------------------------------------------- hooks
    def on_logits(self, view: LogitView) -> LogitView:
        out = view
        memory = self.memory
        if memory is not None and view.step >= self.params.start_step:
            emb, ids = memory
            device = view.query.device
            emb, ids = emb.to(device, view.query.dtype), ids.to(device)
            logits = view.scale * view.query @ emb.T
            out = view.add_negatives(logits.masked_fill(self.blocked(view, ids), float("-inf")))
        self.enqueue(view.docs, view.doc_ids)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {k: v.detach().cpu().clone() if torch.is_tensor(v) else v for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
