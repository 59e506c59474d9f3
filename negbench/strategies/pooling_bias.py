"""``pooling-bias``: CET's coupled relevance × selection estimation; negatives weighted by P(true negative).

Reference:
    Cai, Guo, Fan, Ai, Zhang, Cheng 2022, "Hard Negatives or False Negatives: Correcting Pooling Bias in Training
    Neural Ranking Models", CIKM 2022 (arXiv:2209.05072): the Coupled Estimation Technique (CET).

A document is labelled relevant only if it is relevant (``z``) *and* the pool the annotators judged selected it
(``j``): ``P(y = 1) = r · s``. An unlabelled document is relevant with probability ``r (1 − s) / (1 − r s)``; its
column in the InfoNCE denominator is weighted by one minus that, ``(1 − r) / (1 − r s)`` (``LogitView.
column_weight``; the row's positive is never weighted). CET estimates the two models together, each trained on the
labels corrected by the other's estimate; here that is EM with latent ``z`` and ``j``:

* relevance ``r = σ(α · cos + β)`` of the cosine of the **model being trained**: fitted in ``setup`` on the base
  model's scores (the model at step 0), then refitted at every training step from the batch's own logits (online
  EM whose statistics fade over ``memory`` epochs), so it follows the ranker as it learns;
* selection ``s = rank^−η`` of the document's rank in the **pooler**'s top-``depth`` list (BM25, or the base
  model), the position-bias form of unbiased learning to rank, by rank bucket (1, 2–3, 4–7, …; a document the
  pooler did not rank counts as rank ``2 · depth``).

Identifiability: ``r · s = (c r) · (s / c)``, and a free fit collapses to ``r ≈ 1`` with every weight ≈ 0. Two
anchors remove that: ``s = 1`` at the pooler's rank 1 (its top document was judged), which fixes the scale of
``r``; and ``depth`` random documents per query, which no pooler selected, enter the relevance fit as true
negatives, pinning ``r`` low at random-pair scores: random in-batch documents keep weight ≈ 1, and a score that
tells nothing gives ``r ≈ 0``, plain InfoNCE. EM data per query: its labelled positives, its candidates (the
``source`` top-``depth`` list, from which negatives are drawn at random each epoch) and those random documents; a
batch's columns are importance-weighted to the same mix, so the online step estimates the same model.

Departures from the paper: relevance is the bi-encoder's cosine through a two-parameter calibration (the paper's
ranker outputs a probability), refitted online instead of in alternating training rounds; selection is a
one-parameter power law of one pooler's rank (negbench does not know the real pooling systems); the anchors are
ours. Limits: a document at the pooler's rank 1 counts as judged, so an unlabelled copy of a positive that BM25
ranks first keeps its weight; and where the pooler knows relevance better than the trained model's score, a label
rate falling with rank is read as selection, and hard negatives lose weight even without false negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import LogitView, Negatives, Strategy

__all__ = [
    "BUCKETS",
    "CoupledModel",
    "PoolingBias",
    "PoolingBiasParams",
    "Role",
    "Statistics",
    "bucket_ranks",
    "expected_statistics",
    "fit_coupled",
    "histogram",
    "maximise",
    "rank_buckets",
    "true_negative_weight",
]

BUCKETS = 9  # pooler ranks 1, 2–3, 4–7, …, 128+, then "not ranked"
BINS = 201  # cosine bins of width 0.01 over [-1, 1]: the relevance model's sufficient statistics
_CENTRES = np.linspace(-1.0, 1.0, BINS)


class Role:
    """What an EM pair is: a labelled positive, an unlabelled candidate, a random document (prior negative)."""

    IGNORE, UNLABELLED, POSITIVE, RANDOM = -1, 0, 1, 2


@dataclass(frozen=True)
class PoolingBiasParams:
    source: Literal["dense", "bm25"] = "dense"  # where the negatives are drawn from
    pooler: Literal["bm25", "dense"] = "bm25"  # whose ranks the selection model reads
    depth: int = 50
    memory: float = 1.0  # epochs the online EM statistics remember

    def __post_init__(self) -> None:
        if self.source not in ("dense", "bm25"):
            raise ValueError(f"source must be 'dense' or 'bm25', got {self.source!r}")
        if self.pooler not in ("dense", "bm25"):
            raise ValueError(f"pooler must be 'dense' or 'bm25', got {self.pooler!r}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        if not 0.05 <= self.memory <= 100.0:
            raise ValueError(f"memory must be in [0.05, 100] epochs, got {self.memory}")


def rank_buckets(ranks: np.ndarray) -> np.ndarray:
    """Bucket of 1-based pooler ranks (0: not ranked): ``floor(log2 rank)`` capped at 7, unranked ``BUCKETS − 1``."""
    ranks = np.asarray(ranks, dtype=np.int64)
    ranked = np.minimum(np.floor(np.log2(np.maximum(ranks, 1))).astype(np.int64), BUCKETS - 2)
    return np.where(ranks > 0, ranked, BUCKETS - 1)


def true_negative_weight(relevance: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
    """``1 − P(relevant | unlabelled) = 1 − r(1 − s)/(1 − r s)``, in [0, 1]."""
    false = relevance * (1 - selection) / (1 - relevance * selection).clamp_min(1e-12)
    return (1 - false).clamp(0.0, 1.0)


def bucket_ranks(depth: int) -> torch.Tensor:
    """A representative pooler rank per bucket: the geometric middle of its ranks; "not ranked" counts as
    ``2 · depth`` (a document the pooler left out of its top ``depth``)."""
    low = 2.0 ** torch.arange(BUCKETS - 1, dtype=torch.float64)
    return torch.cat([torch.sqrt(low * (2 * low - 1)), torch.tensor([2.0 * depth], dtype=torch.float64)])


@dataclass
class CoupledModel:
    """Relevance ``r = σ(alpha · cos + beta)`` of the trained model's cosine; selection ``s = rank^−eta`` of the
    pooler's rank (``s = 1`` at rank 1), per bucket via :func:`bucket_ranks`."""

    alpha: float
    beta: float
    eta: float
    depth: int

    @property
    def selection(self) -> torch.Tensor:
        return bucket_ranks(self.depth) ** -self.eta

    def relevance(self, cos: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * cos.double() + self.beta)

    def weight(self, cos: torch.Tensor, buckets: torch.Tensor) -> torch.Tensor:
        """P(true negative) of unlabelled pairs with these cosines and pooler buckets."""
        return true_negative_weight(self.relevance(cos), self.selection[buckets.long()])


@dataclass
class Statistics:
    """EM sufficient statistics: pair weight and expected relevant weight per cosine bin; pair weight and
    expected judged weight per pooler bucket."""

    rel_n: torch.Tensor
    rel_z: torch.Tensor
    sel_n: torch.Tensor
    sel_j: torch.Tensor

    def scaled(self, factor: float) -> Statistics:
        return Statistics(*(factor * t for t in vars(self).values()))

    def plus(self, other: Statistics) -> Statistics:
        return Statistics(*(a + b for a, b in zip(vars(self).values(), vars(other).values(), strict=True)))


def histogram(cos: torch.Tensor, buckets: torch.Tensor, roles: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``(3, BUCKETS, BINS)`` total weight of the pairs per (role, pooler bucket, cosine bin); ``Role.IGNORE`` left
    out. The E-step depends on a pair only through these, so EM costs the same for any number of pairs."""
    cos, buckets, roles, weight = cos.double().flatten(), buckets.long().flatten(), roles.flatten(), weight.flatten()
    bins = ((cos.clamp(-1, 1) + 1) * ((BINS - 1) / 2) + 0.5).long()  # nearest bin (torch.round is slow on CPU)
    keep = roles != Role.IGNORE
    cell = (roles[keep] * BUCKETS + buckets[keep]) * BINS + bins[keep]
    return torch.bincount(cell, weight.double()[keep], 3 * BUCKETS * BINS).reshape(3, BUCKETS, BINS)


def expected_statistics(model: CoupledModel, counts: torch.Tensor) -> Statistics:
    """E-step on a :func:`histogram`: ``z = j = 1`` for a labelled positive; the posterior given ``y = 0`` for an
    unlabelled candidate; ``z = 0`` for a random document, which leaves the selection statistics out."""
    r = model.relevance(torch.as_tensor(_CENTRES))[None, :]
    s = model.selection[:, None]
    denominator = (1 - r * s).clamp_min(1e-12)
    unlabelled, positive = counts[Role.UNLABELLED], counts[Role.POSITIVE]
    return Statistics(
        counts.sum(dim=(0, 1)),
        positive.sum(0) + (unlabelled * r * (1 - s) / denominator).sum(0),
        (positive + unlabelled).sum(1),
        positive.sum(1) + (unlabelled * s * (1 - r) / denominator).sum(1),
    )


def _logistic(x: torch.Tensor, n: torch.Tensor, z: torch.Tensor, start: tuple[float, float]) -> tuple[float, float]:
    """Weighted logistic regression of ``z`` relevant out of ``n`` at each ``x`` (soft labels), by Newton's method
    (IRLS) from ``start``, with a unit L2 penalty on the slope (finite when the classes separate). Two parameters:
    scikit-learn's per-call cost (~50 ms) would dominate an EM that fits this at every iteration and step."""
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    theta = torch.tensor(start, dtype=torch.float64)
    ridge = torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64))

    def objective(t: torch.Tensor) -> torch.Tensor:
        logit = design @ t
        return (n * F.softplus(logit) - z * logit).sum() + 0.5 * t[0] ** 2

    for _ in range(50):
        p = torch.sigmoid(design @ theta)
        grad = design.T @ (n * p - z) + ridge @ theta
        hessian = (design * (n * p * (1 - p))[:, None]).T @ design + ridge + 1e-9 * torch.eye(2, dtype=torch.float64)
        step = torch.linalg.solve(hessian, grad)
        while objective(theta - step) > objective(theta) + 1e-12 and step.abs().max() > 1e-12:
            step = step / 2  # damped Newton: never increase the objective
        theta = theta - step
        if step.abs().max() < 1e-9:
            break
    return float(theta[0]), float(theta[1])


def _power_law(judged: torch.Tensor, total: torch.Tensor, ranks: torch.Tensor) -> float | None:
    """The ``eta`` maximising ``Σ_k J_k log s_k + (N_k − J_k) log(1 − s_k)`` with ``s_k = ranks_k^−eta`` (concave in
    ``eta``; bucket 0, rank 1, is judged whatever ``eta``), by SciPy's bounded scalar search; None without data."""
    from scipy.optimize import minimize_scalar

    j, n, log_rank = judged[1:].numpy(), total[1:].numpy(), np.log(ranks[1:].numpy())
    unjudged = np.clip(n - j, 0.0, None)
    if n.sum() <= 1e-9:
        return None

    def negative(eta: float) -> float:
        return float(eta * (j * log_rank).sum() - (unjudged * np.log(-np.expm1(-eta * log_rank))).sum())

    return float(minimize_scalar(negative, bounds=(1e-4, 20.0), method="bounded", options={"xatol": 1e-7}).x)


def maximise(stats: Statistics, previous: CoupledModel) -> CoupledModel:
    """M-step: selection = the power law that best fits the expected judged counts per bucket; relevance = a
    weighted logistic regression of the expected relevant counts on the cosine bins."""
    eta = _power_law(stats.sel_j, stats.sel_n, bucket_ranks(previous.depth))
    eta = previous.eta if eta is None else eta
    rows = stats.rel_n > 1e-9
    n, z = stats.rel_n[rows], stats.rel_z[rows].clamp(min=0.0)
    relevant, total = float(z.sum()), float(n.sum())
    if relevant <= 1e-9 or relevant >= total - 1e-9:
        return CoupledModel(previous.alpha, previous.beta, eta, previous.depth)
    alpha, beta = _logistic(torch.as_tensor(_CENTRES)[rows], n, torch.minimum(z, n), (previous.alpha, previous.beta))
    if alpha < 0:  # relevance never falls with the score: a flat model at the overall rate
        alpha, beta = 0.0, float(np.log(relevant / (total - relevant)))
    return CoupledModel(alpha, beta, eta, previous.depth)


def fit_coupled(
    cos: torch.Tensor, buckets: torch.Tensor, roles: torch.Tensor, depth: int, weight: torch.Tensor | None = None
) -> tuple[CoupledModel, Statistics]:
    """Batch EM of the coupled model, relevance started from "every unlabelled candidate is a judged negative" and
    selection from ``eta = 1``; returns the model and its last E-step's statistics."""
    weight = torch.ones(len(cos.flatten()), dtype=torch.float64) if weight is None else weight
    counts = histogram(cos, buckets, roles, weight)
    model = CoupledModel(0.0, 0.0, 0.0, depth)  # eta = 0: s ≡ 1, so z = [labelled]
    model = maximise(expected_statistics(model, counts), model)
    model.eta = 1.0
    for _ in range(2000):  # until no parameter moves by 1e-6
        new = maximise(expected_statistics(model, counts), model)
        change = max(abs(new.alpha - model.alpha), abs(new.beta - model.beta), abs(new.eta - model.eta))
        model = new
        if change < 1e-6:
            break
    return model, expected_statistics(model, counts)


class PoolingBias(Strategy):
    """Negatives from a top-``depth`` list, each weighted by its estimated probability of being a true negative."""

    name = "pooling-bias"
    citation = (
        "Cai et al. 2022, Hard Negatives or False Negatives: Correcting Pooling Bias in Training Neural "
        "Ranking Models (CET), CIKM 2022."
    )
    requires = frozenset({"bm25", "dense", "guide"})  # the teacher: ctx.guided() (the base model without one)
    Params = PoolingBiasParams

    def __init__(self, params: PoolingBiasParams | None = None) -> None:
        super().__init__(params)
        self._ranks: list[dict[int, int]] = []  # per query row: pooler rank of each document it ranked
        self._candidates: list[set[int]] = []  # per query row: its candidate negatives
        self._examples_of: np.ndarray | None = None  # per query row: its number of training examples
        self._query_row: np.ndarray | None = None
        self._examples = 0

    @classmethod
    def search_space(cls):
        return {
            "source": CategoricalDistribution(["dense", "bm25"]),
            "pooler": CategoricalDistribution(["bm25", "dense"]),
            "depth": IntDistribution(20, 200, log=True),
            "memory": FloatDistribution(0.25, 4.0, log=True),
        }

    # ------------------------------------------------------------------------------------------- model
    @property
    def model(self) -> CoupledModel | None:
        if "coupled" not in self.state:
            return None
        alpha, beta, eta = self.state["coupled"].tolist()
        return CoupledModel(alpha, beta, eta, self.params.depth)

    def _store(self, model: CoupledModel, stats: Statistics) -> None:
        self.state["coupled"] = torch.tensor([model.alpha, model.beta, model.eta], dtype=torch.float64)
        for key in ("rel_n", "rel_z", "sel_n", "sel_j"):
            self.state[key] = getattr(stats, key).clone()

    def buckets(self, query_rows: np.ndarray, docs: np.ndarray) -> torch.Tensor:
        """Pooler-rank bucket of each (query row, document) pair."""
        ranks = [self._ranks[int(r)].get(int(d), 0) for r, d in zip(query_rows, docs, strict=True)]
        return torch.as_tensor(rank_buckets(np.array(ranks, dtype=np.int64)))

    # ------------------------------------------------------------------------------------------- setup
    def setup(self, ctx: Context) -> None:
        p = self.params
        pooled = (ctx.services.bm25_topk if p.pooler == "bm25" else ctx.services.dense_topk)(ctx.query_ids, p.depth)[1]
        self._ranks = [{int(d): k + 1 for k, d in enumerate(row)} for row in pooled]
        self._query_row, self._examples = ctx.example_query, len(ctx.examples)
        self._examples_of = np.bincount(ctx.example_query, minlength=len(ctx.query_ids))
        candidates = self.mine(ctx)
        self._candidates = [set() for _ in ctx.query_ids]
        positives: list[set[int]] = [set() for _ in ctx.query_ids]
        first: dict[int, int] = {}
        for i, row in enumerate(ctx.example_query):
            self._candidates[row].update(int(d) for d in candidates.ids[i])
            positives[row].add(int(ctx.examples[i].doc))
            first.setdefault(int(row), i)
        rows, docs, roles = [], [], []
        for row, (cands, pos) in enumerate(zip(self._candidates, positives, strict=True)):
            taken = cands | ctx.forbidden(first[row])
            rng = ctx.rng("pooling-bias", "random", row)
            draws = rng.choice(len(ctx.dataset.corpus), size=min(len(ctx.dataset.corpus), 4 * p.depth), replace=False)
            random = [int(d) for d in draws if int(d) not in taken][: p.depth]
            for group, role in ((sorted(pos), Role.POSITIVE), (sorted(cands), Role.UNLABELLED), (random, Role.RANDOM)):
                rows += [row] * len(group)
                docs += group
                roles += [role] * len(group)
        rows_a, docs_a = np.array(rows, dtype=np.int64), np.array(docs, dtype=np.int64)
        queries = F.normalize(ctx.services.query_embeddings(ctx.query_ids).float().cpu(), dim=-1)
        corpus = F.normalize(ctx.services.corpus_embeddings().float().cpu(), dim=-1)
        cos = (queries[torch.as_tensor(rows_a)] * corpus[torch.as_tensor(docs_a)]).sum(dim=1)
        self._store(*fit_coupled(cos, self.buckets(rows_a, docs_a), torch.tensor(roles), p.depth))

    # ------------------------------------------------------------------------------------------ weights
    def roles(self, view: LogitView, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) role of each column for its row and its importance weight, so a batch's rows mix positives,
        candidates and random documents as the setup fit did."""
        doc_ids = view.doc_ids.cpu().tolist()
        cands = [self._candidates[r] for r in rows]
        roles = torch.tensor([[Role.UNLABELLED if d in c else Role.RANDOM for d in doc_ids] for c in cands])
        roles[view.mask.cpu()] = Role.IGNORE
        roles[torch.arange(len(rows)), view.target.cpu()] = Role.POSITIVE
        share = torch.as_tensor(self._examples_of[rows], dtype=torch.float64)[:, None]
        size = torch.tensor([float(len(c)) for c in cands], dtype=torch.float64)[:, None]
        weight = (roles == Role.POSITIVE).double()
        for role, mass in ((Role.UNLABELLED, size), (Role.RANDOM, float(self.params.depth))):
            hit = (roles == role).double()
            weight += hit * mass / hit.sum(dim=1, keepdim=True).clamp_min(1) / share
        return roles, weight

    def on_logits(self, view: LogitView) -> LogitView:
        model = self.model
        if model is None or self._query_row is None:
            raise RuntimeError("pooling-bias: setup(ctx) must run before training")
        training = torch.is_grad_enabled()  # the loss of a training step, not an evaluation
        with torch.no_grad():
            rows = self._query_row[view.example_ids.cpu().numpy()]
            b, n = view.logits.shape
            cos = (view.logits.detach().float().cpu() / view.scale).clamp(-1, 1)
            buckets = self.buckets(np.repeat(rows, n), np.tile(view.doc_ids.cpu().numpy(), b)).reshape(b, n)
            weight = model.weight(cos, buckets).float()
            negatives = view.negative_mask().cpu()
            if negatives.any():
                self.state["mean_weight"] = float(weight[negatives].mean())
            if training:  # one online EM step on the scores of the model being trained
                self._update(model, cos, buckets, *self.roles(view, rows))
        return view.replace(column_weight=weight.to(view.logits.device))

    def _update(
        self, model: CoupledModel, cos: torch.Tensor, buckets: torch.Tensor, roles: torch.Tensor, weight: torch.Tensor
    ) -> None:
        """Online EM (Cappé & Moulines 2009): blend this batch's statistics, scaled to an epoch, into the running
        ones with step ``batch / (memory · examples)``, then re-run the M-step."""
        batch = expected_statistics(model, histogram(cos, buckets, roles, weight))
        gamma = min(1.0, len(roles) / (self.params.memory * max(self._examples, 1)))
        old = Statistics(*(self.state[k] for k in ("rel_n", "rel_z", "sel_n", "sel_j")))
        stats = old.scaled(1 - gamma).plus(batch.scaled(gamma * self._examples / len(roles)))
        self._store(maximise(stats, model), stats)

    # ----------------------------------------------------------------------------------------- negatives
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

    # -------------------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return {k: v.clone() if torch.is_tensor(v) else v for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
