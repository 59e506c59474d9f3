"""``gist``: GISTEmbed — a guide model removes in-batch candidates it scores above the positive.

References:
    Solatorio 2024, "GISTEmbed: Guided In-sample Selection of Training Negatives for Text Embedding
    Fine-tuning" (arXiv:2402.16829); sentence-transformers' ``GISTEmbedLoss`` (``margin_strategy``).

For row ``i`` with guide similarities ``g_ij = cos_guide(q_i, d_j)`` and guide positive score ``g_i⁺``, a
candidate column ``j`` (in-batch positive of another row, or a mined negative) leaves the row's softmax
denominator when

* ``absolute``: ``g_ij > g_i⁺ − margin``;
* ``relative``: ``g_ij > g_i⁺ − |g_i⁺| · margin``.

The row's own target is never masked. The guide is the suite's ``guide`` model (``[[models]] guide`` or the
strategy's ``guide``; GISTEmbed's guide is a stronger model), else the frozen base model: its corpus and query
embeddings are the shared precomputed (cached) ones, so nothing is encoded twice and it works offline. The
older ``params.guide`` names a model spec encoded (uncached) in ``setup`` and wins over both. Only
GISTEmbed's guided masking is reproduced; its optional anchor–anchor and positive–positive contrast terms
would add columns to the loss and are left out, so the loss stays negbench's one InfoNCE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution

from negbench.context import Context
from negbench.strategy import Compute, EncoderSizes, LogitView, Sizes, Strategy, Workload, load_encoder

__all__ = ["GIST", "GISTParams", "encoder_sizes", "guided_mask"]


@dataclass(frozen=True)
class GISTParams:
    margin_strategy: Literal["absolute", "relative"] = "absolute"
    margin: float = 0.0
    guide: str = ""  # "" = the frozen base model (precomputed embeddings)
    guide_max_seq_length: int = 256

    def __post_init__(self) -> None:
        if self.margin_strategy not in ("absolute", "relative"):
            raise ValueError(f"margin_strategy must be 'absolute' or 'relative', got {self.margin_strategy!r}")
        if not -1.0 <= self.margin <= 1.0:
            raise ValueError(f"margin must be in [-1, 1], got {self.margin}")
        if self.guide_max_seq_length < 1:
            raise ValueError(f"guide_max_seq_length must be >= 1, got {self.guide_max_seq_length}")


def guided_mask(guide_sim: torch.Tensor, target: torch.Tensor, margin_strategy: str, margin: float) -> torch.Tensor:
    """``(B, N)`` True where the guide scores a column above row ``i``'s positive threshold (never the target)."""
    positive = guide_sim.gather(1, target[:, None])
    slack = margin if margin_strategy == "absolute" else positive.abs() * margin
    threshold = positive - slack
    mask = guide_sim > threshold
    mask[torch.arange(len(target), device=mask.device), target] = False
    return mask


def _tokens(model, texts: Sequence[str], prompt: str | None, chunk: int = 256) -> np.ndarray:
    """Non-padding tokens of each text as ``model`` encodes it (with ``prompt``, truncated); no forward pass."""
    out = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        features = model.preprocess(list(texts[start : start + chunk]), prompt=prompt)
        out[start : start + chunk] = features["attention_mask"].sum(dim=1).cpu().numpy()
    return out


def encoder_sizes(model, ctx: Context) -> EncoderSizes:
    """``model``'s :class:`EncoderSizes` on ``ctx``'s dataset: its ``N`` and every document's and query's tokens
    as ``encode_document`` / ``encode_query`` see them (its prompts, its ``max_seq_length``)."""
    prompts = getattr(model, "prompts", None) or {}
    document = next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), None) or None
    queries = ctx.dataset.queries
    counts = _tokens(model, list(queries.values()), prompts.get("query") or None)
    docs = _tokens(model, ctx.dataset.corpus.texts, document)
    return EncoderSizes(Compute.params(model), docs, dict(zip(queries, map(int, counts), strict=True)))


class GIST(Strategy):
    """Guided in-sample selection: mask the candidates a guide model ranks above the positive."""

    name = "gist"
    citation = "Solatorio 2024, GISTEmbed: Guided In-sample Selection of Training Negatives (arXiv:2402.16829)."
    requires = frozenset({"guide"})
    Params = GISTParams

    def __init__(self, params: GISTParams | None = None) -> None:
        super().__init__(params)
        self.guide_queries: torch.Tensor | None = None  # (n_examples, d), L2-normalised, CPU
        self.guide_docs: torch.Tensor | None = None  # (n_corpus, d), L2-normalised, CPU
        self._guide_sizes: dict[int, EncoderSizes] = {}  # params.guide's, per dataset (the estimate's)

    @classmethod
    def search_space(cls):
        return {
            "margin_strategy": CategoricalDistribution(["absolute", "relative"]),
            "margin": FloatDistribution(0.0, 0.2),
        }

    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """The guide encodes the corpus and training queries once: ``params.guide``'s model when named (loaded and
        tokenised here, once per dataset: its ``N`` and ``guide_max_seq_length``), else the suite's teacher."""
        if not self.params.guide:
            return super().workload(ctx, sizes)
        key = id(ctx.dataset)
        if key not in self._guide_sizes:
            model = load_encoder(self.params.guide, self.params.guide_max_seq_length, device="cpu")
            self._guide_sizes[key] = encoder_sizes(model, ctx)
        return Workload(prep=sizes.encoded(ctx.query_ids, self._guide_sizes[key]))

    def set_guide(self, queries: torch.Tensor, docs: torch.Tensor) -> None:
        """Guide embeddings: one row per training example, one row per corpus document."""
        self.guide_queries = queries.detach().float().cpu()
        self.guide_docs = docs.detach().float().cpu()

    def setup(self, ctx: Context) -> None:
        model, services = None, ctx.guided().services  # the suite's guide (cached), else the base model
        if self.params.guide:
            model = load_encoder(self.params.guide, self.params.guide_max_seq_length)
            services = ctx.services
        queries = services.query_embeddings(ctx.query_ids, model)
        docs = services.corpus_embeddings(model)
        self.set_guide(queries[torch.as_tensor(ctx.example_query, device=queries.device)], docs)

    def on_logits(self, view: LogitView) -> LogitView:
        if self.guide_queries is None or self.guide_docs is None:
            raise RuntimeError("gist: no guide embeddings; setup(ctx) (or set_guide) must run before training")
        device = view.logits.device
        with torch.no_grad():
            q = self.guide_queries[view.example_ids.cpu()].to(device)
            d = self.guide_docs[view.doc_ids.cpu()].to(device)
            removed = guided_mask(q @ d.T, view.target, self.params.margin_strategy, self.params.margin)
            removed &= view.negative_mask()
        self.state["masked"] = self.state.get("masked", 0) + int(removed.sum())
        self.state["candidates"] = self.state.get("candidates", 0) + int(view.negative_mask().sum())
        return view.replace(mask=view.mask | removed)
