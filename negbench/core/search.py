"""Encoding and exact top-k search (chunked matrix products, on the model's device)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["encode", "exact_topk", "model_prompts"]


def encode(model, texts: list[str], *, kind: str, batch_size: int = 64, progress: bool = False) -> torch.Tensor:
    """L2-normalised embeddings (float32, on the model's device); ``kind`` is "query" or "document"."""
    fn = model.encode_query if kind == "query" else model.encode_document
    with torch.inference_mode():
        emb = fn(
            texts,
            batch_size=batch_size,
            convert_to_tensor=True,
            normalize_embeddings=True,
            show_progress_bar=progress,
        )
    return emb.float()


def exact_topk(
    queries: torch.Tensor, docs: torch.Tensor, k: int, chunk_size: int = 50_000
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over every doc: (scores, indices), both (n_q, k)."""
    k = min(k, docs.shape[0])
    best_scores = best_idx = None
    docs = docs.to(queries.device)
    for start in range(0, docs.shape[0], chunk_size):
        block = queries @ docs[start : start + chunk_size].T
        scores, idx = torch.topk(block, min(k, block.shape[1]), dim=1)
        idx = idx + start
        if best_scores is None:
            best_scores, best_idx = scores, idx
        else:
            merged_s = torch.cat([best_scores, scores], dim=1)
            merged_i = torch.cat([best_idx, idx], dim=1)
            best_scores, order = torch.topk(merged_s, k, dim=1)
            best_idx = torch.gather(merged_i, 1, order)
    return best_scores.cpu().numpy(), best_idx.cpu().numpy()


def model_prompts(model) -> tuple[str | None, str | None]:
    """The (query, document) prompts ``encode_query`` / ``encode_document`` apply for ``model``, so training
    sees the texts exactly as mining and evaluation encode them."""
    prompts = getattr(model, "prompts", None) or {}
    query = prompts.get("query")
    document = next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), None)
    return query or None, document or None
