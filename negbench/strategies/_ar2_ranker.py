"""``ar2``'s ranker: a cross-encoder over ``[query; document]`` and its cross-entropy step over a candidate group.

Reference: Zhang et al. 2022, "Adversarial Retriever-Ranker for Dense Text Retrieval" (AR2), ICLR 2022, §3: the
ranker scores each query's group ``{d⁺} ∪ D⁻`` jointly with the query and learns, by cross-entropy over the
group's softmax, to put the positive first (``J^φ``); its distribution over the group is the retriever's target.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Ranker", "ranker_step"]


class Ranker(nn.Module):
    """A cross-encoder: ``head(transformer([query; document])[first token])`` → one relevance logit per pair."""

    def __init__(self, transformer: nn.Module, tokenizer, max_length: int) -> None:
        super().__init__()
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.head = nn.Linear(transformer.config.hidden_size, 1)
        self.tokens = 0  # non-padding tokens of every pair scored (for the run's FLOPs, reported by ar2)

    @classmethod
    def from_bi_encoder(cls, model, seed: int) -> Ranker:
        """A ranker from a SentenceTransformer's first (transformer) module, copied, with a fresh seeded head."""
        first = model[0]
        positions = getattr(first.auto_model.config, "max_position_embeddings", None) or 512
        max_length = min(2 * (model.max_seq_length or 256), positions)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ranker = cls(copy.deepcopy(first.auto_model), first.tokenizer, max_length)
        return ranker.float()

    def forward(self, queries: list[str], documents: list[str]) -> torch.Tensor:
        device = self.head.weight.device
        encoded = self.tokenizer(
            queries,
            documents,
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        ).to(device)
        self.tokens += int(encoded["attention_mask"].sum())
        hidden = self.transformer(**encoded).last_hidden_state[:, 0]
        return self.head(hidden).squeeze(-1)


def ranker_step(
    ranker: Ranker,
    optimizer: torch.optim.Optimizer,
    queries: list[str],
    documents: list[list[str]],
    chunk: int,
    seed: int,
) -> tuple[torch.Tensor, float]:
    """One cross-entropy step of ``ranker`` toward document 0 (the positive) of every row's group.

    ``documents[i]`` is row ``i``'s group, all of one width; the softmax is over the row's group. Rows run ``chunk``
    at a time (gradients accumulated, one optimiser step), so activation memory does not grow with the batch.
    Dropout draws from a generator seeded with ``seed``, leaving the caller's random stream alone. Returns the
    ``(rows, width)`` scores from before the step, and the batch's mean cross-entropy.
    """
    device = ranker.head.weight.device
    ranker.train()
    rows, width = len(queries), len(documents[0])
    if any(len(group) != width for group in documents):
        raise ValueError("every row's group must hold the same number of documents")
    parts, loss = [], 0.0
    on_cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if on_cuda else []), torch.enable_grad():
        torch.manual_seed(seed)
        optimizer.zero_grad(set_to_none=True)
        for start in range(0, rows, chunk):  # the batch's mean cross-entropy, backpropagated chunk by chunk
            stop = min(start + chunk, rows)
            pair_queries = [queries[i] for i in range(start, stop) for _ in range(width)]
            pair_documents = [d for i in range(start, stop) for d in documents[i]]
            part = ranker(pair_queries, pair_documents).view(stop - start, width)
            labels = torch.zeros(stop - start, dtype=torch.long, device=device)
            chunk_loss = F.cross_entropy(part, labels, reduction="sum") / rows
            chunk_loss.backward()
            parts.append(part.detach())
            loss += float(chunk_loss.detach())
        nn.utils.clip_grad_norm_(ranker.parameters(), 1.0)
        optimizer.step()
    return torch.cat(parts), loss
