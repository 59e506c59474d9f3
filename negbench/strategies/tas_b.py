"""``tas-b``: topic-aware batches from query clusters, with balanced-margin negative sampling.

Reference:
    Hofstätter, Lin, Yang, Lin, Hanbury 2021, "Efficiently Teaching an Effective Dense Retriever with
    Balanced Topic Aware Sampling", SIGIR 2021 (arXiv:2104.06967).

* **Topic-aware sampling (TAS).** The training queries are clustered once, before training, with seeded
  k-means on the base model's query embeddings. Each epoch the clusters are laid out from a random one, each
  followed by its nearest unvisited cluster (by centroid), and the stream of their members is cut into full
  batches: a batch holds one cluster, and a cluster smaller than a batch is topped up from the clusters
  nearest to it, so the in-batch negatives stay topically close while every batch has exactly
  ``batch_size`` examples (negbench's budget rule; the paper's batches are a fixed size too).
  ``clusters_per_batch`` > 1 interleaves that many neighbouring clusters.
* **Balanced margin sampling (TAS-Balanced).** With the teacher (the suite's ``guide`` model, else the base
  model), each (q, d⁺, d⁻) triple has a teacher margin s(q, d⁺) − s(q, d⁻). An example's candidate pairs are
  binned into ``margin_bins`` equal-width margin bins and each negative is drawn by choosing a non-empty bin
  uniformly, then a pair in it, so low- and high-margin pairs are seen equally often. With
  ``balanced = false`` negatives are drawn uniformly from the candidates (plain TAS).

Candidates are BM25 top-``depth`` (the paper's negatives) or the base model's dense top-``depth``, labelled
positives removed. Departures from the paper: batches are built per epoch (each example once per epoch;
the paper draws a random cluster for every batch), the teacher is a bi-encoder (the base model or a
``guide``; the paper uses a BERT_CAT + ColBERT ensemble) and the loss is negbench's shared InfoNCE (the paper
distils with Margin-MSE). Query clusters come from the base model (topics, not a teacher's judgement).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._clustering import chain_order, interleave, kmeans, seed_of
from negbench.strategy import Negatives, Strategy, pack

__all__ = ["TASB", "TASBParams", "balanced_margin_pick", "margin_bins", "teacher_scores"]


@dataclass(frozen=True)
class TASBParams:
    n_clusters: int = 32
    clusters_per_batch: int = 1
    balanced: bool = True
    margin_bins: int = 10
    source: Literal["bm25", "dense"] = "bm25"
    depth: int = 100

    def __post_init__(self) -> None:
        if self.n_clusters < 1:
            raise ValueError(f"n_clusters must be >= 1, got {self.n_clusters}")
        if self.clusters_per_batch < 1:
            raise ValueError(f"clusters_per_batch must be >= 1, got {self.clusters_per_batch}")
        if self.margin_bins < 1:
            raise ValueError(f"margin_bins must be >= 1, got {self.margin_bins}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1 candidate, got {self.depth}")


def margin_bins(margins: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin (0..bins-1) of each margin over the example's own margin range."""
    if len(margins) == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(margins.min()), float(margins.max())
    if hi - lo <= 1e-12:
        return np.zeros(len(margins), dtype=np.int64)
    return np.minimum(((margins - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)


def balanced_margin_pick(rng: np.random.Generator, margins: np.ndarray, bins: int, k: int) -> np.ndarray:
    """Positions of up to ``k`` distinct candidates: a non-empty margin bin uniformly, then a member."""
    which = margin_bins(margins, bins)
    buckets = {int(b): list(rng.permutation(np.flatnonzero(which == b))) for b in np.unique(which)}
    out: list[int] = []
    while len(out) < k and buckets:
        keys = sorted(buckets)
        key = keys[int(rng.integers(len(keys)))]
        out.append(int(buckets[key].pop()))
        if not buckets[key]:
            del buckets[key]
    return np.array(out, dtype=np.int64)


def teacher_scores(ctx: Context, candidates: Negatives) -> list[np.ndarray]:
    """Teacher cosine s(q, d) of every candidate of every example (the suite's guide, else the base model)."""
    teacher = ctx.guided().services
    q = teacher.query_embeddings(ctx.query_ids).cpu()
    d = teacher.corpus_embeddings().cpu()
    out = []
    for i, ids in enumerate(candidates.ids):
        row = q[int(ctx.example_query[i])]
        out.append((d[np.asarray(ids, dtype=np.int64)] @ row).numpy().astype(np.float32))
    return out


class TASB(Strategy):
    name = "tas-b"
    citation = (
        "Hofstätter et al. 2021, Efficiently Teaching an Effective Dense Retriever with Balanced Topic Aware "
        "Sampling (TAS-Balanced), SIGIR 2021."
    )
    requires = frozenset({"bm25", "dense", "guide"})  # the teacher: ctx.guided() (the base model without one)
    Params = TASBParams

    @classmethod
    def search_space(cls):
        return {
            "n_clusters": IntDistribution(4, 256, log=True),
            "clusters_per_batch": IntDistribution(1, 4),
            "balanced": CategoricalDistribution([True, False]),
            "margin_bins": IntDistribution(2, 20),
            "source": CategoricalDistribution(["bm25", "dense"]),
            "depth": IntDistribution(20, 200, log=True),
        }

    # ----------------------------------------------------------------------------------- clusters
    def setup(self, ctx: Context) -> None:
        self.cluster_of(ctx)

    def cluster_of(self, ctx: Context) -> np.ndarray:
        """Cluster label of every training example (its query's k-means cluster), computed once."""
        if "example_cluster" not in self.state:
            q = ctx.services.query_embeddings(ctx.query_ids).cpu().numpy()
            labels, centroids = kmeans(q, self.params.n_clusters, seed_of(ctx.rng("tas-b", "kmeans")))
            self.state["query_cluster"] = labels
            self.state["centroids"] = centroids
            self.state["example_cluster"] = labels[ctx.example_query]
        return self.state["example_cluster"]

    def batches(self, ctx: Context, epoch: int) -> list[list[int]]:
        labels = self.cluster_of(ctx)
        rng = ctx.rng("tas-b", "batches", epoch)
        order = chain_order(self.state["centroids"], rng)
        step = self.params.clusters_per_batch
        stream: list[int] = []
        for start in range(0, len(order), step):
            members = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in order[start : start + step]]
            stream += interleave(members)
        batches = pack(ctx, stream)
        return [batches[j] for j in rng.permutation(len(batches))]

    # ---------------------------------------------------------------------------------- negatives
    def mine(self, ctx: Context) -> Negatives:
        depth = self.params.depth
        if self.params.source == "bm25":
            full = ctx.bm25_candidates(depth + 32)  # room for removed positives
            ids = [c[:depth] for c in full.ids]
            scores = teacher_scores(ctx, Negatives(ids))
        else:
            full = ctx.dense_candidates(depth + 32)
            ids = [c[:depth] for c in full.ids]
            scores = [s[:depth] for s in full.scores] if ctx.guided() is ctx else teacher_scores(ctx, Negatives(ids))
        self.state["positive_scores"] = ctx.guided().positive_scores()
        return Negatives(ids, scores)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        positive = self.state.get("positive_scores")
        if positive is None:
            positive = self.state["positive_scores"] = ctx.guided().positive_scores()
        scores = candidates.scores if candidates.scores is not None else teacher_scores(ctx, candidates)
        k = ctx.num_negatives
        chosen = []
        for i, ids in enumerate(candidates.ids):
            rng = ctx.rng("tas-b", "negatives", i, epoch)
            if self.params.balanced:
                pick = balanced_margin_pick(rng, float(positive[i]) - scores[i], self.params.margin_bins, k)
            else:
                pick = rng.choice(len(ids), min(k, len(ids)), replace=False)
            chosen.append(ctx.fill_random(i, ids[pick], epoch))
        return Negatives(chosen)
