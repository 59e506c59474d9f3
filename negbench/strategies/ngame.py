"""``ngame``: negative-mining-aware mini-batching from clusters of (query, positive) pairs.

Reference:
    Dahiya, Gupta, Yadav, Gupta, Baheti, Jain, Agarwal, Varma 2023, "NGAME: Negative Mining-aware
    Mini-batching for Extreme Classification", WSDM 2023 (arXiv:2207.04452).

NGAME makes in-batch negatives hard without an ANN index: training points are clustered with the encoder's
own embeddings into small balanced clusters, and mini-batches are made of whole clusters, so the other
points' positives in a batch are close to each query. The clusters go stale as the encoder moves, so they
are recomputed with the current model every few epochs.

Here a training example (q, d⁺) is embedded as normalise(e(q) + e(d⁺)), clustered by recursive balanced
2-means into clusters of at most ``cluster_size`` examples; each epoch the clusters are shuffled and their
members laid out cluster after cluster in batches of the suite's batch size. Every ``refresh_epochs`` epochs
(after the last optimiser step of the epoch; steps per epoch are the run's budget, ``ctx.steps_per_epoch``)
the pairs are re-embedded with the model being trained (``ctx.model``) and re-clustered.

``hard_negatives``: NGAME mines its negatives among the in-batch positives (the hardest ones per query).
With it on, each example's explicit negative columns are its cluster-mates' positives, ranked by the
(re-)clustering model's score to the query (``top``) or drawn at random from them (``random``); otherwise
NGAME uses only the in-batch negatives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
from optuna.distributions import CategoricalDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._clustering import balanced_clusters, normalise
from negbench.strategies._windows import window_sample
from negbench.strategy import Negatives, Sizes, Strategy, Workload, encode, pack, periodic_unexercised

__all__ = ["NGAME", "NGAMEParams", "pair_embeddings", "pair_flops", "refresh_epochs_unexercised"]


@dataclass(frozen=True)
class NGAMEParams:
    cluster_size: int = 8
    refresh_epochs: int = 1
    hard_negatives: bool = True
    sampling: Literal["top", "random"] = "top"

    def __post_init__(self) -> None:
        if self.cluster_size < 2:
            raise ValueError(f"cluster_size must be >= 2 examples, got {self.cluster_size}")
        if self.refresh_epochs < 1:
            raise ValueError(f"refresh_epochs must be >= 1 epoch, got {self.refresh_epochs}")


def pair_embeddings(ctx: Context, model=None) -> tuple[np.ndarray, np.ndarray]:
    """(query, positive-document) embeddings of every example under ``model`` (default: the base model)."""
    q = ctx.services.query_embeddings(ctx.query_ids, model).float().cpu().numpy()[ctx.example_query]
    if model is None:
        d = ctx.services.corpus_embeddings().float().cpu().numpy()[ctx.positive_docs]
    else:  # encode only the positive documents, not the whole corpus
        docs, inverse = np.unique(ctx.positive_docs, return_inverse=True)
        texts = [ctx.dataset.corpus.texts[int(j)] for j in docs]
        emb = encode(model, texts, kind="document", batch_size=ctx.services.batch_size)
        d = emb.float().cpu().numpy()[inverse]
    return q, d


def pair_flops(ctx: Context, sizes: Sizes) -> float:
    """FLOPs of :func:`pair_embeddings` with the model under training: the training queries and positives."""
    base = sizes.base
    return base.encode(base.queries(ctx.query_ids) + base.docs(np.unique(ctx.positive_docs)))


class NGAME(Strategy):
    name = "ngame"
    citation = "Dahiya et al. 2023, NGAME: Negative Mining-aware Mini-batching for Extreme Classification, WSDM 2023."
    requires = frozenset({"dense"})
    Params = NGAMEParams

    @classmethod
    def search_space(cls):
        return {
            "cluster_size": IntDistribution(2, 32, log=True),
            "refresh_epochs": IntDistribution(1, 5),
            "hard_negatives": CategoricalDistribution([True, False]),
            "sampling": CategoricalDistribution(["top", "random"]),
        }

    # ----------------------------------------------------------------------------------- clusters
    def _cluster(self, ctx: Context, model, key: object) -> tuple[np.ndarray, np.ndarray]:
        q, d = pair_embeddings(ctx, model)
        rng = ctx.rng("ngame", "cluster", key)
        clusters = balanced_clusters(normalise(q + d), self.params.cluster_size, rng)
        cluster_of = np.empty(len(ctx.examples), dtype=np.int64)
        for c, members in enumerate(clusters):
            cluster_of[members] = c
        self.state["clusters"] = clusters
        self.state["cluster_of"] = cluster_of
        return q, d

    def setup(self, ctx: Context) -> None:
        self.state["epochs"] = ctx.epochs
        self.state["steps_per_epoch"] = ctx.steps_per_epoch
        if "clusters" not in self.state:
            self._cluster(ctx, None, "base")

    def batches(self, ctx: Context, epoch: int) -> list[list[int]]:
        if "clusters" not in self.state:
            self.setup(ctx)
        clusters = self.state["clusters"]
        rng = ctx.rng("ngame", "batches", epoch)
        stream = [int(i) for c in rng.permutation(len(clusters)) for i in rng.permutation(clusters[c])]
        return pack(ctx, stream)

    # ---------------------------------------------------------------------------------- negatives
    def _cluster_negatives(self, ctx: Context, q: np.ndarray, d: np.ndarray) -> Negatives:
        """Per example: its cluster-mates' positives, best first by score to the query."""
        ids: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(ctx.examples)
        scores: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(ctx.examples)
        for members in self.state["clusters"]:
            for i in members:
                others = members[members != i]
                sc = d[others] @ q[i]
                order = np.argsort(-sc, kind="stable")
                kept, kept_sc = ctx.exclude_positives(int(i), ctx.positive_docs[others][order], sc[order])
                ids[i], scores[i] = kept.astype(np.int64), kept_sc.astype(np.float32)
        return Negatives(ids, scores)

    def mine(self, ctx: Context) -> Negatives | None:
        if not self.params.hard_negatives:
            return None
        q, d = pair_embeddings(ctx)
        return self._cluster_negatives(ctx, q, d)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        return window_sample(ctx, candidates, epoch, self.params.sampling)

    # ------------------------------------------------------------------------------------ refresh
    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """The base model's clusters (corpus and queries, cached); every refresh re-encodes the pairs."""
        every = (ctx.steps_per_epoch or 1) * self.params.refresh_epochs
        last = min(ctx.total_steps or 0, ctx.epochs * (ctx.steps_per_epoch or 1) - 1)
        work = dataclasses.replace(super().workload(ctx, sizes), negatives=self.params.hard_negatives)
        return dataclasses.replace(work, refresh=max(0, last) // every * pair_flops(ctx, sizes))

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        return refresh_epochs_unexercised(self.params.refresh_epochs, epochs, "clusters")

    def refresh_due(self, step: int) -> bool:
        per_epoch = self.state.get("steps_per_epoch")  # the budget's, set in setup
        if not per_epoch or step <= 0:
            return False
        last = self.state.get("epochs", 1) * per_epoch  # no point re-clustering after the last epoch
        return step % (per_epoch * self.params.refresh_epochs) == 0 and step < last

    def refresh(self, ctx: Context, step: int) -> Negatives | None:
        """Re-embed the pairs with the model being trained and re-cluster; new cluster negatives."""
        q, d = self._cluster(ctx, ctx.model, step)
        self.state["refreshed_at"] = [*self.state.get("refreshed_at", []), step]
        return self._cluster_negatives(ctx, q, d) if self.params.hard_negatives else None


def refresh_epochs_unexercised(refresh_epochs: int, epochs: int, what: str) -> str | None:
    """``unexercised`` of a strategy that recomputes its ``what`` with the model in training every
    ``refresh_epochs`` epochs (``ngame``'s clusters, ``dss``'s neighbours)."""
    return periodic_unexercised(
        refresh_epochs,
        epochs,
        "epoch(s)",
        "refresh_epochs",
        f"recomputes its {what} with the model in training",
        f"it never refreshes, so the base model's {what} serve throughout",
    )
