"""``mochi``: MoCHi — synthetic hard negatives mixed from each query's hardest negatives.

Reference: Kalantidis et al. 2020, "Hard Negative Mixing for Contrastive Learning" (NeurIPS 2020).

For every row (query ``q``) the ``hardest`` active negatives by current logit form the pool ``Q̃``. MoCHi
adds ``num_mix`` synthetic negatives ``h = normalise(α·n_a + (1−α)·n_b)`` with ``n_a ≠ n_b ∈ Q̃`` and
``α ~ U(0, 1)``, and ``num_query_mix`` harder ones ``h' = normalise(β·q + (1−β)·n_b)`` with
``β ~ U(0, query_mix_max)``, ``query_mix_max ≤ 0.5`` (so the query never dominates). Mixtures are computed
on the fly from detached embeddings (no gradient flows into them; the query still gets its gradient) and
enter the shared loss as extra scaled logits through :meth:`LogitView.add_negatives`. Labelled positives
(masked columns) and the row's target are never mixed. Draws are seeded from the run seed and a call counter
kept in ``state``, so runs and resumes are reproducible.

Departure: the paper mixes from the hardest negatives of a MoCo memory queue of tens of thousands of images
(pools of hundreds to a thousand); here the pool is a row's own negatives, in a batch of 32 at most 31 in-batch
documents and its explicit negatives, and the defaults (the 16 hardest, 16 + 4 mixtures) are scaled to that.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategy import LogitView, Strategy

__all__ = ["Mixtures", "MoCHi", "MoCHiParams", "hard_negative_mixtures"]


@dataclass(frozen=True)
class MoCHiParams:
    hardest: int = 16  # N: size of the pool of hardest negatives per query
    num_mix: int = 16  # s: negative–negative mixtures per query
    num_query_mix: int = 4  # s': query–negative mixtures per query
    query_mix_max: float = 0.5  # β ~ U(0, query_mix_max)

    def __post_init__(self) -> None:
        if self.hardest < 1:
            raise ValueError(f"hardest must be >= 1, got {self.hardest}")
        if self.num_mix < 0 or self.num_query_mix < 0:
            raise ValueError(f"num_mix and num_query_mix must be >= 0, got {self.num_mix}, {self.num_query_mix}")
        if self.num_mix + self.num_query_mix < 1:
            raise ValueError("num_mix + num_query_mix must be >= 1 (otherwise nothing is mixed)")
        if not 0.0 < self.query_mix_max <= 0.5:
            raise ValueError(f"query_mix_max must be in (0, 0.5], got {self.query_mix_max}")


@dataclass
class Mixtures:
    """Synthetic negatives of one batch: ``embeddings`` (B, M, d) and where each came from.

    ``sources[i, m] = (a, b)`` are the doc columns mixed (``a = -1`` means the query itself), ``coef[i, m]``
    the weight of ``a``; ``valid[i, m]`` is False where a row had no negative to mix.
    """

    embeddings: torch.Tensor
    sources: torch.Tensor
    coef: torch.Tensor
    valid: torch.Tensor


def _pick(counts: torch.Tensor, shape: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Uniform ints in ``[0, counts[i])`` per row (0 where ``counts[i] == 0``)."""
    u = torch.rand(shape, generator=generator)
    return (u * counts[:, None]).long().clamp(max=(counts - 1).clamp(min=0)[:, None])


def hard_negative_mixtures(
    query: torch.Tensor,
    docs: torch.Tensor,
    logits: torch.Tensor,
    active: torch.Tensor,
    params: MoCHiParams,
    generator: torch.Generator,
) -> Mixtures:
    """MoCHi's synthetic negatives for every row, from the rows' ``hardest`` active negatives."""
    with torch.no_grad():
        device = query.device
        query, docs = query.detach().float(), docs.detach().float()
        batch, n_cols = logits.shape
        k = min(params.hardest, n_cols)
        counts = active.sum(1).clamp(max=k).cpu()  # pool size per row
        pool = logits.detach().float().masked_fill(~active, float("-inf")).topk(k, dim=1).indices.cpu()  # (B, k)
        parts, sources, coefs, valids = [], [], [], []
        if params.num_mix:
            shape = (batch, params.num_mix)
            a = _pick(counts, shape, generator)
            step = 1 + _pick((counts - 1).clamp(min=0), shape, generator)  # b ≠ a whenever the pool has 2+
            b = torch.where(counts[:, None] > 1, (a + step) % counts.clamp(min=1)[:, None], a)
            alpha = torch.rand(shape, generator=generator)
            col_a, col_b = pool.gather(1, a), pool.gather(1, b)
            da, db = docs[col_a.to(device)], docs[col_b.to(device)]
            w = alpha.to(device)[..., None]
            parts.append(w * da + (1 - w) * db)
            sources.append(torch.stack([col_a, col_b], dim=-1))
            coefs.append(alpha)
            valids.append((counts[:, None] > 0).expand(shape))
        if params.num_query_mix:
            shape = (batch, params.num_query_mix)
            b = _pick(counts, shape, generator)
            beta = torch.rand(shape, generator=generator) * params.query_mix_max
            col_b = pool.gather(1, b)
            w = beta.to(device)[..., None]
            parts.append(w * query[:, None, :] + (1 - w) * docs[col_b.to(device)])
            sources.append(torch.stack([torch.full_like(col_b, -1), col_b], dim=-1))
            coefs.append(beta)
            valids.append((counts[:, None] > 0).expand(shape))
        return Mixtures(
            embeddings=F.normalize(torch.cat(parts, dim=1), dim=-1),
            sources=torch.cat(sources, dim=1),
            coef=torch.cat(coefs, dim=1),
            valid=torch.cat(valids, dim=1).to(device),
        )


class MoCHi(Strategy):
    """Hard negative mixing: append convex mixtures of each query's hardest negatives as extra logits."""

    name = "mochi"
    citation = "Kalantidis et al. 2020, Hard Negative Mixing for Contrastive Learning (MoCHi), NeurIPS."
    Params = MoCHiParams

    def __init__(self, params: MoCHiParams | None = None) -> None:
        super().__init__(params)
        self.seed = 0
        self.last_mixtures: Mixtures | None = None

    @classmethod
    def search_space(cls):
        return {
            "hardest": IntDistribution(4, 64, log=True),
            "num_mix": IntDistribution(1, 64, log=True),
            "num_query_mix": IntDistribution(0, 16),
            "query_mix_max": FloatDistribution(0.1, 0.5),
        }

    def setup(self, ctx: Context) -> None:
        self.seed = ctx.seed

    def _generator(self) -> torch.Generator:
        calls = self.state.get("calls", 0)
        self.state["calls"] = calls + 1
        digest = hashlib.sha256(f"mochi\0{self.seed}\0{calls}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)

    def on_logits(self, view: LogitView) -> LogitView:
        mix = hard_negative_mixtures(
            view.query, view.docs, view.logits, view.negative_mask(), self.params, self._generator()
        )
        self.last_mixtures = mix
        logits = view.scale * torch.einsum("bd,bmd->bm", view.query, mix.embeddings.to(view.query.dtype))
        return view.add_negatives(logits.masked_fill(~mix.valid, float("-inf")))
