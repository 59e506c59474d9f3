"""``neighbourhood``: negatives from the positive's neighbourhood, found by clustering the corpus.

References:
    The "LEMON-style" cluster-neighbourhood negatives named in negbench issue 5. Related published work:
    Merrick 2024, "Embedding And Clustering Your Data Can Improve Contrastive Pretraining" (arXiv:2407.18887);
    Deng, Wan, Yang, Quan, Wang 2023, "Clustering-Aware Negative Sampling for Unsupervised Sentence
    Representation" (ClusterNS, Findings of ACL 2023, arXiv:2305.09892).

The corpus is clustered once with seeded k-means on the base model's document embeddings. An example's
candidate negatives are the documents of its positive's cluster, or of the ``clusters`` clusters whose
centroids are nearest to it (the own cluster first), labelled positives removed and ordered by base-model
score to the query. Each epoch takes a random draw among them (``random``) or the top-scoring ones (``top``);
a neighbourhood with fewer documents than ``num_negatives`` is topped up at random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._clustering import kmeans, seed_of
from negbench.strategies._windows import window_sample
from negbench.strategy import Negatives, Strategy

__all__ = ["Neighbourhood", "NeighbourhoodParams"]


@dataclass(frozen=True)
class NeighbourhoodParams:
    n_clusters: int = 64
    clusters: int = 1
    sampling: Literal["top", "random"] = "random"

    def __post_init__(self) -> None:
        if self.n_clusters < 2:
            raise ValueError(f"n_clusters must be >= 2, got {self.n_clusters}")
        if self.clusters < 1:
            raise ValueError(f"clusters must be >= 1, got {self.clusters}")
        if self.clusters > self.n_clusters:
            raise ValueError(f"clusters ({self.clusters}) must be <= n_clusters ({self.n_clusters})")


class Neighbourhood(Strategy):
    name = "neighbourhood"
    citation = "Cluster-neighbourhood negatives (LEMON-style; cf. Merrick 2024, Deng et al. 2023 ClusterNS)."
    requires = frozenset({"dense"})
    Params = NeighbourhoodParams

    @classmethod
    def search_space(cls):
        return {
            "n_clusters": IntDistribution(8, 256, log=True),
            "clusters": IntDistribution(1, 4),
            "sampling": CategoricalDistribution(["top", "random"]),
        }

    def setup(self, ctx: Context) -> None:
        self.doc_clusters(ctx)

    def doc_clusters(self, ctx: Context) -> tuple[np.ndarray, np.ndarray]:
        """(cluster label of every corpus document, for each cluster its nearest clusters, own first)."""
        if "doc_cluster" not in self.state:
            d = ctx.services.corpus_embeddings().float().cpu().numpy()
            labels, centroids = kmeans(d, self.params.n_clusters, seed_of(ctx.rng("neighbourhood", "kmeans")))
            sim = centroids @ centroids.T
            np.fill_diagonal(sim, np.inf)  # a cluster is its own nearest
            self.state["doc_cluster"] = labels
            self.state["nearest"] = np.argsort(-sim, axis=1, kind="stable")
        return self.state["doc_cluster"], self.state["nearest"]

    def mine(self, ctx: Context) -> Negatives:
        labels, nearest = self.doc_clusters(ctx)
        members = {c: np.flatnonzero(labels == c) for c in np.unique(labels)}
        q = ctx.services.query_embeddings(ctx.query_ids).float().cpu()
        d = ctx.services.corpus_embeddings().float().cpu()
        ids, scores = [], []
        for i, pos in enumerate(ctx.positive_docs):
            near = nearest[labels[pos], : self.params.clusters]
            pool = np.concatenate([members[int(c)] for c in near])
            sc = (d[pool] @ q[int(ctx.example_query[i])]).numpy()
            order = np.argsort(-sc, kind="stable")
            pool, sc = pool[order], sc[order]
            keep = ~np.isin(pool, list(ctx.forbidden(i)))  # never a labelled positive
            ids.append(pool[keep].astype(np.int64))
            scores.append(sc[keep].astype(np.float32))
        return Negatives(ids, scores)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return window_sample(ctx, candidates, epoch, self.params.sampling)
