"""``pooling-bias``: coupled estimation of relevance and selection (CET); negatives weighted by P(true negative).

Reference:
    Cai, Guo, Fan, Ai, Zhang, Cheng 2022, "Hard Negatives or False Negatives: Correcting Pooling Bias in Training
    Neural Ranking Models", CIKM 2022 (arXiv:2209.05072): the Coupled Estimation Technique (CET).

A document is labelled relevant only if it is relevant *and* the annotators' pool selected it for judging, so
an unlabelled document near the top of a retriever's list may be a false negative. CET models the observed
label as ``P(y = 1 | q, d) = r(q, d) · s(q, d)`` with a relevance model ``r`` and a selection model ``s`` and
estimates the two together; an unlabelled document is then relevant with probability

    P(relevant | y = 0) = r (1 − s) / (1 − r s),

and its column in the InfoNCE denominator is weighted by ``1 − P(relevant | y = 0)`` (``LogitView.
column_weight``: 1 for a sure negative, 0 removes a sure false negative; the row's positive is never
weighted). With every relevance estimate at 0 the loss is plain InfoNCE.

Here, on the training split only, each training query's pool is the union of its BM25 and teacher top-
``depth`` lists plus its labelled positives. ``r = σ(a · [1, cos_teacher(q, d)])`` and ``s = σ(b · [1,
log(1 + BM25 rank), log(1 + dense rank)])`` (a document outside a list has rank ``depth + 1``), features
standardised, are fitted jointly by maximum likelihood (L-BFGS with a small L2 penalty) on (labelled = 1,
unlabelled = 0). The teacher is the suite's ``guide`` model, else the base model (``ctx.guided()``).
Negatives are drawn each epoch at random from the ``source`` top-``depth`` list; the weights apply to every
negative column of a row (its mined negatives and the other rows' positives).

Departures: the paper's relevance model is the ranker being trained, re-estimated with it in an EM loop;
here it is a logistic model on a fixed teacher's score, fitted once before training (cheap, and the same for
every epoch), and the selection model uses rank features of negbench's own BM25 / dense lists (the paper
uses the pooling systems' ranks where known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import LogitView, Negatives, Strategy

__all__ = ["CoupledModel", "PoolingBias", "PoolingBiasParams", "fit_coupled", "true_negative_weight"]


@dataclass(frozen=True)
class PoolingBiasParams:
    source: Literal["dense", "bm25"] = "dense"
    depth: int = 50
    l2: float = 1e-3

    def __post_init__(self) -> None:
        if self.source not in ("dense", "bm25"):
            raise ValueError(f"source must be 'dense' or 'bm25', got {self.source!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if not 0.0 <= self.l2 <= 10.0:
            raise ValueError(f"l2 must be in [0, 10], got {self.l2}")


@dataclass
class CoupledModel:
    """Fitted relevance (``a``) and selection (``b``) logistic weights, with the feature standardisation."""

    a: torch.Tensor
    b: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def split(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(relevance, selection) probabilities of rows ``[cos, bm25 log-rank, dense log-rank]``."""
        z = (features - self.mean) / self.std
        ones = torch.ones(len(z), 1, dtype=z.dtype)
        r = torch.sigmoid(torch.cat([ones, z[:, :1]], dim=1) @ self.a)
        s = torch.sigmoid(torch.cat([ones, z[:, 1:]], dim=1) @ self.b)
        return r, s


def fit_coupled(features: torch.Tensor, labels: torch.Tensor, l2: float = 1e-3, iterations: int = 200) -> CoupledModel:
    """Maximum-likelihood fit of ``P(y = 1) = σ(a·[1, x₀]) · σ(b·[1, x₁, x₂])`` (L-BFGS, L2 on the slopes).

    The selection intercept starts high and the relevance one low (most unlabelled pool documents are
    irrelevant, not unselected), which picks the paper's reading of the otherwise symmetric product."""
    x = features.double()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    y = labels.double()
    ones = torch.ones(len(z), 1, dtype=z.dtype)
    xr, xs = torch.cat([ones, z[:, :1]], dim=1), torch.cat([ones, z[:, 1:]], dim=1)
    a = torch.tensor([-2.0, 0.0], dtype=z.dtype, requires_grad=True)
    b = torch.tensor([2.0, 0.0, 0.0], dtype=z.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([a, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        log_r, log_s = torch.nn.functional.logsigmoid(xr @ a), torch.nn.functional.logsigmoid(xs @ b)
        log_p = log_r + log_s
        log_not = torch.log1p(-torch.exp(log_p).clamp(max=1 - 1e-12))
        nll = -(y * log_p + (1 - y) * log_not).mean() + l2 * (a[1:].pow(2).sum() + b[1:].pow(2).sum())
        nll.backward()
        return nll

    opt.step(closure)
    return CoupledModel(a.detach(), b.detach(), mean, std)


def true_negative_weight(relevance: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
    """``1 − P(relevant | unlabelled) = 1 − r(1 − s)/(1 − r s)``, in [0, 1]."""
    false = relevance * (1 - selection) / (1 - relevance * selection).clamp_min(1e-12)
    return (1 - false).clamp(0.0, 1.0)


class PoolingBias(Strategy):
    """Negatives from a top-``depth`` list, each weighted by its estimated probability of being a true negative."""

    name = "pooling-bias"
    citation = (
        "Cai et al. 2022, Hard Negatives or False Negatives: Correcting Pooling Bias in Training Neural "
        "Ranking Models (CET), CIKM 2022."
    )
    requires = frozenset({"bm25", "dense"})
    Params = PoolingBiasParams

    def __init__(self, params: PoolingBiasParams | None = None) -> None:
        super().__init__(params)
        self.model: CoupledModel | None = None
        self._ranks: list[tuple[dict[int, int], dict[int, int]]] = []  # per query row: bm25, dense rank of doc
        self._teacher_q: torch.Tensor | None = None
        self._teacher_d: torch.Tensor | None = None
        self._query_row: np.ndarray | None = None

    @classmethod
    def search_space(cls):
        return {
            "source": CategoricalDistribution(["dense", "bm25"]),
            "depth": IntDistribution(20, 200, log=True),
            "l2": FloatDistribution(1e-4, 1e-1, log=True),
        }

    # ------------------------------------------------------------------------------------- features
    def features(self, query_rows: np.ndarray, docs: np.ndarray) -> torch.Tensor:
        """``[teacher cosine, log(1 + BM25 rank), log(1 + dense rank)]`` of (query row, corpus index) pairs."""
        q = self._teacher_q[torch.as_tensor(query_rows, dtype=torch.long)]
        d = self._teacher_d[torch.as_tensor(docs, dtype=torch.long)]
        cos = (q * d).sum(dim=1)
        missing = self.params.depth + 1
        bm25 = [self._ranks[int(r)][0].get(int(doc), missing) for r, doc in zip(query_rows, docs, strict=True)]
        dense = [self._ranks[int(r)][1].get(int(doc), missing) for r, doc in zip(query_rows, docs, strict=True)]
        ranks = torch.log1p(torch.tensor([bm25, dense], dtype=cos.dtype).T)
        return torch.cat([cos[:, None], ranks], dim=1)

    def setup(self, ctx: Context) -> None:
        teacher = ctx.guided()
        self._teacher_q = teacher.services.query_embeddings(ctx.query_ids).float().cpu()
        self._teacher_d = teacher.services.corpus_embeddings().float().cpu()
        depth = self.params.depth
        _, bm25 = ctx.services.bm25_topk(ctx.query_ids, depth)
        _, dense = teacher.services.dense_topk(ctx.query_ids, depth)
        self._ranks = [
            ({int(d): k + 1 for k, d in enumerate(b)}, {int(d): k + 1 for k, d in enumerate(e)})
            for b, e in zip(bm25, dense, strict=True)
        ]
        labelled: list[set[int]] = [set() for _ in ctx.query_ids]  # the training qrels only
        for example, row in zip(ctx.examples, ctx.example_query, strict=True):
            labelled[int(row)].add(example.doc)
        rows, docs, labels = [], [], []
        for row, (ranks, positives) in enumerate(zip(self._ranks, labelled, strict=True)):
            pool = set(ranks[0]) | set(ranks[1]) | set(positives)
            for doc in sorted(pool):
                rows.append(row)
                docs.append(doc)
                labels.append(1.0 if doc in positives else 0.0)
        self.model = fit_coupled(self.features(np.array(rows), np.array(docs)), torch.tensor(labels), self.params.l2)
        self._query_row = ctx.example_query

    def weights(self, example_ids: torch.Tensor, doc_ids: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` probability that column ``j`` is a true negative of row ``i``."""
        if self.model is None or self._query_row is None:
            raise RuntimeError("pooling-bias: setup(ctx) must run before training")
        rows = self._query_row[example_ids.cpu().numpy()]
        b, n = len(rows), len(doc_ids)
        pairs_q = np.repeat(rows, n)
        pairs_d = np.tile(doc_ids.cpu().numpy(), b)
        r, s = self.model.split(self.features(pairs_q, pairs_d).double())
        return true_negative_weight(r, s).reshape(b, n).float()

    # ------------------------------------------------------------------------------------ negatives
    def mine(self, ctx: Context) -> Negatives:
        if self.params.source == "bm25":
            return ctx.bm25_candidates(self.params.depth)
        return ctx.guided().dense_candidates(self.params.depth)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        chosen = []
        for i, ids in enumerate(candidates.ids):
            order = ctx.rng("pooling-bias", i, epoch).permutation(len(ids))
            chosen.append(ctx.fill_random(i, ids[order[: ctx.num_negatives]], epoch))
        return Negatives(chosen)

    def on_logits(self, view: LogitView) -> LogitView:
        with torch.no_grad():
            weight = self.weights(view.example_ids, view.doc_ids).to(view.logits.device)
            negatives = view.negative_mask()
            if negatives.any():
                self.state["mean_weight"] = float(weight[negatives].mean())
        return view.replace(column_weight=weight)
