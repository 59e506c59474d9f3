"""``ar2``'s ranker: a cross-encoder over ``[query; document]`` and its cross-entropy step over a candidate group.

Reference: Zhang et al. 2022, "Adversarial Retriever-Ranker for Dense Text Retrieval" (AR2), ICLR 2022, §3: the
ranker scores each query's group ``{d⁺} ∪ D⁻`` jointly with the query and learns, by cross-entropy over the
group's softmax, to put the positive first (``J^φ``); its distribution over the group is the retriever's target.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Ranker", "mean_pair_tokens", "pair_max_length", "ranker_step", "text_tokens"]


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
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ranker = cls(copy.deepcopy(first.auto_model), first.tokenizer, pair_max_length(model))
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


def pair_max_length(model) -> int:
    """The most tokens of a ``[query; document]`` pair the ranker built from the SentenceTransformer ``model`` reads:
    twice the bi-encoder's ``max_seq_length``, within the transformer's positions."""
    positions = getattr(model[0].auto_model.config, "max_position_embeddings", None) or 512
    return min(2 * (model.max_seq_length or 256), positions)


def text_tokens(tokenizer, texts: Sequence[str], chunk: int = 4096) -> np.ndarray:
    """Tokens of each text alone, untruncated and without special tokens (tokenising only, no forward pass)."""
    out = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        ids = tokenizer(part, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        out[start : start + len(part)] = [len(i) for i in ids]
    return out


def mean_pair_tokens(queries: np.ndarray, documents: np.ndarray, specials: int, max_length: int) -> float:
    """Mean non-padding tokens of the pairs of every query with every document (their lengths alone, as
    :func:`text_tokens` counts them), as :meth:`Ranker.forward` encodes a pair: ``min(q + d + specials, max_length)``
    (``longest_first`` truncation trims a pair to exactly ``max_length``). Exact, in ``O((Q + D) log D)``."""
    if not len(queries) or not len(documents):
        return 0.0
    docs = np.sort(documents.astype(np.float64))
    below = np.concatenate([[0.0], np.cumsum(docs)])  # below[k]: the k shortest documents' tokens
    q = queries.astype(np.float64)
    k = np.searchsorted(docs, max_length - specials - q, side="right")  # documents whose pair is not truncated
    total = k * (q + specials) + below[k] + (len(docs) - k) * max_length
    return float(total.sum() / (len(q) * len(docs)))


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
