"""``dss``: dynamic similarity sampling — batches of each anchor's nearest training pairs, re-encoded per epoch.

Reference:
    Deuser, Habel, Oswald 2023, "Sample4Geo: Hard Negative Sampling For Cross-View Geo-Localisation",
    ICCV 2023 (arXiv:2303.11851), "Dynamic Similarity Sampling" (DSS).

Sample4Geo makes the in-batch negatives of a symmetric InfoNCE hard by composing batches, not by mining
extra columns. Every ``refresh_epochs`` epochs the training pairs are embedded with the model being trained
(epoch 0 uses the base model, which is the same model before the first step), and each anchor ``i`` gets its
``neighbour_range`` nearest other pairs ``j`` by the similarity of ``i``'s query to ``j``'s positive (the
documents that would be ``i``'s hardest in-batch negatives). Batches are then laid out from a seeded random
order of anchors: each unused anchor is followed by ``neighbour_select`` of its unused neighbours drawn at
random, so a pair and the pairs most confusable with it share a batch.

Departures: the stream of (anchor, neighbours) groups is cut into negbench's full batches of the suite's
batch size (the fairness rule; a group can straddle two batches, and clashing pairs — one query's twin, one
positive twice — wait for the next batch, see :mod:`negbench.core.batching`); the first epoch uses the base model
where Sample4Geo starts from a random order or pre-computed GPS neighbours; the loss is negbench's InfoNCE.
Re-encoding happens when an epoch's batches are composed, inside the training clock: its cost is in
``train_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from optuna.distributions import IntDistribution

from negbench.context import Context
from negbench.strategies.ngame import pair_embeddings
from negbench.strategy import Strategy, exact_topk, pack

__all__ = ["DSS", "DSSParams", "nearest_pairs", "similarity_stream"]


@dataclass(frozen=True)
class DSSParams:
    neighbour_select: int = 8
    neighbour_range: int = 32
    refresh_epochs: int = 1

    def __post_init__(self) -> None:
        if self.neighbour_select < 1:
            raise ValueError(f"neighbour_select must be >= 1, got {self.neighbour_select}")
        if self.neighbour_range < self.neighbour_select:
            raise ValueError(
                f"neighbour_range ({self.neighbour_range}) must be >= neighbour_select ({self.neighbour_select})"
            )
        if self.refresh_epochs < 1:
            raise ValueError(f"refresh_epochs must be >= 1, got {self.refresh_epochs}")


def nearest_pairs(ctx: Context, queries: np.ndarray, positives: np.ndarray, k: int) -> list[np.ndarray]:
    """For each example, up to ``k`` other examples by the cosine of its query to their positive, best first;
    never one whose positive is labelled relevant to it (its own, a twin's, another positive of its query)."""
    q = torch.as_tensor(queries, dtype=torch.float32)
    p = torch.as_tensor(positives, dtype=torch.float32)
    _, idx = exact_topk(q, p, min(len(ctx.examples), k + 16))
    out = []
    for i, row in enumerate(idx):
        forbidden = ctx.forbidden(i)
        keep = [int(j) for j in row if int(j) != i and int(ctx.positive_docs[int(j)]) not in forbidden]
        out.append(np.array(keep[:k], dtype=np.int64))
    return out


def similarity_stream(rng: np.random.Generator, neighbours: list[np.ndarray], select: int) -> list[int]:
    """Sample4Geo's layout: a random unused anchor, then ``select`` of its unused neighbours at random, until
    every example is placed once."""
    used = np.zeros(len(neighbours), dtype=bool)
    stream: list[int] = []
    for anchor in rng.permutation(len(neighbours)):
        if used[anchor]:
            continue
        used[anchor] = True
        stream.append(int(anchor))
        free = [int(j) for j in neighbours[anchor] if not used[j]]
        for j in rng.permutation(free)[:select] if free else []:
            used[int(j)] = True
            stream.append(int(j))
    return stream


class DSS(Strategy):
    """Batches of mutually similar training pairs, recomputed with the current model."""

    name = "dss"
    citation = "Deuser et al. 2023, Sample4Geo: Hard Negative Sampling for Cross-View Geo-Localisation, ICCV 2023."
    requires = frozenset({"dense"})
    Params = DSSParams

    @classmethod
    def search_space(cls):
        return {
            "neighbour_select": IntDistribution(1, 32, log=True),
            "neighbour_range": IntDistribution(8, 128, log=True),
        }

    def neighbours(self, ctx: Context, epoch: int) -> list[np.ndarray]:
        """Each example's nearest pairs, re-encoded every ``refresh_epochs`` epochs (epoch 0: base model)."""
        due = epoch - epoch % self.params.refresh_epochs
        if self.state.get("neighbours_epoch") != due or "neighbours" not in self.state:
            model = ctx.model if due > 0 else None
            queries, positives = pair_embeddings(ctx, model)
            self.state["neighbours"] = nearest_pairs(ctx, queries, positives, self.params.neighbour_range)
            self.state["neighbours_epoch"] = due
        return self.state["neighbours"]

    def batches(self, ctx: Context, epoch: int) -> list[list[int]]:
        stream = similarity_stream(ctx.rng("dss", epoch), self.neighbours(ctx, epoch), self.params.neighbour_select)
        return pack(ctx, stream)
