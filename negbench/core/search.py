"""Encoding and exact top-k search (chunked matrix products, on the model's device)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["encode", "exact_topk", "model_prompts"]


ENCODE_CHUNK = 32_768  # texts per sentence-transformers call (it keeps one tensor object per text until it stacks)


def encode(
    model, texts: list[str], *, kind: str, batch_size: int = 64, progress: bool = False, chunk: int = ENCODE_CHUNK
) -> torch.Tensor:
    """L2-normalised embeddings (float32, on the model's device); ``kind`` is "query" or "document".

    More than ``chunk`` texts are encoded ``chunk`` at a time into one tensor: sentence-transformers holds each
    text's embedding as a tensor of its own (some 650 bytes besides its numbers) and stacks them into a copy, so
    one call over a million documents held their embeddings twice and 650 MB more. Up to ``chunk`` texts are one
    call, exactly as before there was a limit."""
    fn = model.encode_query if kind == "query" else model.encode_document

    def run(part: list[str]) -> torch.Tensor:
        return fn(
            part, batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=progress
        )

    with torch.inference_mode():
        if len(texts) <= chunk:
            emb = run(texts)
        else:
            emb = None
            for start in range(0, len(texts), chunk):
                part = run(texts[start : start + chunk]).float()
                if emb is None:
                    emb = torch.empty((len(texts), part.shape[1]), dtype=part.dtype, device=part.device)
                emb[start : start + len(part)] = part
                del part
    return emb.float()


MAX_BLOCK = 1 << 26  # scores held at once by exact_topk (256 MiB in float32): query rows × document columns


def exact_topk(
    queries: torch.Tensor, docs: torch.Tensor, k: int, chunk_size: int = 50_000, max_block: int = MAX_BLOCK
) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top-k of every query over every doc: (scores, indices), both (n_q, k).

    Scores are computed a block at a time: ``chunk_size`` documents by as many queries as keep the block within
    ``max_block`` scores (at least one query), so memory holds neither the queries × corpus matrix nor a
    queries × ``chunk_size`` one when there are many queries (every training query of a large dataset). Up to
    ``max_block // chunk_size`` queries are searched together, exactly as before there was a query limit."""
    k = min(k, docs.shape[0])
    docs = docs.to(queries.device)
    rows = max(1, max_block // max(1, min(chunk_size, docs.shape[0])))
    if queries.shape[0] <= rows:
        return _topk_over_chunks(queries, docs, k, chunk_size)
    parts = [_topk_over_chunks(queries[s : s + rows], docs, k, chunk_size) for s in range(0, queries.shape[0], rows)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _topk_over_chunks(
    queries: torch.Tensor, docs: torch.Tensor, k: int, chunk_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of ``queries`` over ``docs``, merging the top-k of each ``chunk_size`` slice of the documents."""
    best_scores = best_idx = None
    for start in range(0, docs.shape[0], chunk_size):
        block = queries @ docs[start : start + chunk_size].T
        scores, idx = torch.topk(block, min(k, block.shape[1]), dim=1)
        del block  # freed before the next chunk's block is computed: one block in memory, not two
        idx = idx + start
        if best_scores is None:
            best_scores, best_idx = scores, idx
        else:
            merged_s = torch.cat([best_scores, scores], dim=1)
            merged_i = torch.cat([best_idx, idx], dim=1)
            # a chunk narrower than k: the first chunks together may hold fewer than k documents yet
            best_scores, order = torch.topk(merged_s, min(k, merged_s.shape[1]), dim=1)
            best_idx = torch.gather(merged_i, 1, order)
    return best_scores.cpu().numpy(), best_idx.cpu().numpy()


def model_prompts(model) -> tuple[str | None, str | None]:
    """The (query, document) prompts ``encode_query`` / ``encode_document`` apply for ``model``, so training
    sees the texts exactly as mining and evaluation encode them."""
    prompts = getattr(model, "prompts", None) or {}
    query = prompts.get("query")
    document = next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), None)
    return query or None, document or None
