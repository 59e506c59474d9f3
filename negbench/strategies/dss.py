"""``dss``: dynamic similarity sampling — batches of each anchor's nearest training pairs, re-encoded per epoch.

Reference:
    Deuser, Habel, Oswald 2023, "Sample4Geo: Hard Negative Sampling For Cross-View Geo-Localisation",
    ICCV 2023 (arXiv:2303.11851), "Dynamic Similarity Sampling" (DSS); reference implementation
    ``CVUSADatasetTrain.shuffle`` in github.com/Skyy93/Sample4Geo (``sample4geo/dataset/cvusa.py``).

Sample4Geo makes the in-batch negatives of a symmetric InfoNCE hard by composing batches, not by mining
extra columns. The training pairs are embedded, and each anchor ``i`` gets its ``neighbour_range`` nearest other
pairs ``j`` by the similarity of ``i``'s query to ``j``'s positive (the documents that would be ``i``'s hardest
in-batch negatives). Batches are then laid out from a seeded random order of anchors: each unused anchor is
followed by ``neighbour_select`` of its neighbours, half of them its nearest ones as they rank, the other half
drawn at random from the rest of its neighbour range (Sample4Geo's ``near_neighbours`` + shuffled
``far_neighbours``); a selected neighbour already placed this epoch is skipped, not replaced. Every
``refresh_epochs`` epochs the neighbours are recomputed with the model being trained.

Cost: the first neighbours are computed in :meth:`DSS.setup` with the base model's cached embeddings, so they are
charged to ``mine_s`` like ``dense``'s (the same with a cold or a warm cache); each re-encoding runs in
:meth:`DSS.refresh` after the last optimiser step of an epoch, charged to ``refresh_s`` as ``ngame``'s and
``ance``'s are. :meth:`DSS.batches` only lays out the stream and encodes nothing.

Departures: the stream of (anchor, neighbours) groups is cut into negbench's full batches of the suite's
batch size (the fairness rule; a group can straddle two batches where Sample4Geo drops the neighbours that do
not fit, and clashing pairs — one query's twin, one positive twice — wait for the next batch, see
:mod:`negbench.core.batching`); the first epoch uses the base model where Sample4Geo starts from a random order or
pre-computed GPS neighbours; an odd ``neighbour_select`` takes one more random neighbour than nearest ones
(Sample4Geo takes ``neighbour_select // 2`` of each); the loss is negbench's InfoNCE.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from optuna.distributions import BaseDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies.ngame import pair_embeddings, pair_flops, refresh_epochs_unexercised
from negbench.strategy import Sizes, Strategy, Workload, exact_topk, pack

__all__ = ["DSS", "DSSParams", "nearest_pairs", "select_neighbours", "similarity_groups", "similarity_stream"]


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


def select_neighbours(rng: np.random.Generator, row: np.ndarray, select: int) -> list[int]:
    """Sample4Geo's choice among one anchor's neighbours (``row``, nearest first): the nearest
    ``select // 2`` as they rank, then ``select - select // 2`` drawn at random from the rest of the row."""
    near = select // 2
    far = rng.permutation(row[near:])[: select - near] if len(row) > near else []
    return [int(j) for j in row[:near]] + [int(j) for j in far]


def similarity_groups(rng: np.random.Generator, neighbours: list[np.ndarray], select: int) -> list[list[int]]:
    """Sample4Geo's layout as groups: a random unused anchor, then its :func:`select_neighbours` not yet placed
    (a placed one is skipped, not replaced), until every example is placed once."""
    used = np.zeros(len(neighbours), dtype=bool)
    groups: list[list[int]] = []
    for anchor in rng.permutation(len(neighbours)):
        if used[anchor]:
            continue
        used[anchor] = True
        group = [int(anchor)]
        for j in select_neighbours(rng, neighbours[anchor], select):
            if not used[j]:
                used[j] = True
                group.append(j)
        groups.append(group)
    return groups


def similarity_stream(rng: np.random.Generator, neighbours: list[np.ndarray], select: int) -> list[int]:
    """The :func:`similarity_groups` one after another: every example once, each anchor before its neighbours."""
    return [i for group in similarity_groups(rng, neighbours, select) for i in group]


class DSS(Strategy):
    """Batches of mutually similar training pairs (Sample4Geo's DSS), recomputed with the current model."""

    name = "dss"
    citation = "Deuser et al. 2023, Sample4Geo: Hard Negative Sampling for Cross-View Geo-Localisation, ICCV 2023."
    requires = frozenset({"dense"})
    Params = DSSParams

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        return {
            "neighbour_select": IntDistribution(1, 32, log=True),
            "neighbour_range": IntDistribution(8, 128, log=True),
        }

    # --------------------------------------------------------------------------------- neighbours
    def _neighbours(self, ctx: Context, model: object | None) -> list[np.ndarray]:
        """Every example's nearest pairs under ``model`` (None: the base model's cached embeddings)."""
        queries, positives = pair_embeddings(ctx, model)
        self.state["neighbours"] = nearest_pairs(ctx, queries, positives, self.params.neighbour_range)
        return self.state["neighbours"]

    def _remember_budget(self, ctx: Context) -> None:
        """The run's steps per epoch and in all (the loop sets them on ``ctx`` before the first batch)."""
        if ctx.steps_per_epoch:
            self.state["steps_per_epoch"] = ctx.steps_per_epoch
            self.state["total_steps"] = ctx.total_steps or ctx.epochs * ctx.steps_per_epoch

    def setup(self, ctx: Context) -> None:
        """Epoch 0's neighbours, from the base model: mining work, charged to ``mine_s``."""
        self._remember_budget(ctx)
        if "neighbours" not in self.state:
            self._neighbours(ctx, None)

    def batches(self, ctx: Context, epoch: int) -> list[list[int]]:
        """This epoch's layout over the current neighbours (those of the last refresh); encodes nothing."""
        self._remember_budget(ctx)
        if "neighbours" not in self.state:  # setup was skipped (a hook called on its own)
            self.setup(ctx)
        stream = similarity_stream(ctx.rng("dss", epoch), self.state["neighbours"], self.params.neighbour_select)
        return pack(ctx, stream)

    # ------------------------------------------------------------------------------------ refresh
    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """The base model's neighbours (corpus and queries, cached); every refresh re-encodes the pairs."""
        every = (ctx.steps_per_epoch or 1) * self.params.refresh_epochs
        refreshes = max(0, (ctx.total_steps or 0) - 1) // every
        return dataclasses.replace(super().workload(ctx, sizes), refresh=refreshes * pair_flops(ctx, sizes))

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        return refresh_epochs_unexercised(self.params.refresh_epochs, epochs, "neighbours")

    def refresh_due(self, step: int) -> bool:
        """After the last step of every ``refresh_epochs``-th epoch, but not after the run's last step."""
        per_epoch = self.state.get("steps_per_epoch")
        if not per_epoch or step <= 0:
            return False
        return step % (per_epoch * self.params.refresh_epochs) == 0 and step < self.state["total_steps"]

    def refresh(self, ctx: Context, step: int) -> None:
        """Re-encode the pairs with the model being trained and recompute the neighbours (``refresh_s``)."""
        self._neighbours(ctx, ctx.model)
        self.state["refreshed_at"] = [*self.state.get("refreshed_at", []), step]
