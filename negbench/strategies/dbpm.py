"""``dbpm``: Dynamic Bad Pair Mining — down-weight training pairs whose loss history marks them as bad.

Reference: Lan, Yan, Hong & Feng 2024, "Towards Enhancing Time Series Contrastive Learning: A Dynamic Bad Pair
Mining Approach" (DBPM, ICLR 2024; github.com/lanxiang1017/DynamicBadPairMining_ICLR24).

A memory module records every training pair's (``example_ids``) per-row InfoNCE loss each time it is seen.
A pair's history is its recency-weighted mean loss ``m_i`` (observation at step ``t`` weighs ``t + 1``, as
DBPM weighs epoch ``e`` by ``e + 1``). Over the population of pairs with a history (mean ``μ``, std ``σ``):

* ``m_i ≥ μ + cut_high·σ`` flags a persistently hard pair — in retrieval typically a mislabelled or
  unanswerable query–document pair (DBPM's *faulty* positive pairs);
* with ``tails = "both"``, ``m_i ≤ μ − cut_low·σ`` also flags suspiciously easy pairs (DBPM's *noisy* pairs).

A flagged row's ``row_weight`` is multiplied by ``w < 1``: ``gaussian`` uses DBPM's transformation, the
Gaussian density ``N(μ, σ²)`` at the row's current loss, normalised to peak 1 so that it never up-weights
(DBPM's raw pdf can exceed 1 when σ is small); ``constant`` uses ``bad_weight``. A pair is judged only once it
has ``min_history`` past observations, i.e. from its second epoch on with the default: train 2+ epochs.
The memory lives in ``state`` (tensors indexed by example id), so it is saved for resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from optuna.distributions import CategoricalDistribution, FloatDistribution

from negbench.context import Context
from negbench.strategy import LogitView, Strategy

__all__ = ["DBPM", "DBPMParams", "row_losses"]


@dataclass(frozen=True)
class DBPMParams:
    tails: Literal["high", "both"] = "high"
    cut_high: float = 2.0  # flag m_i >= μ + cut_high·σ
    cut_low: float = 2.0  # flag m_i <= μ − cut_low·σ (tails = "both")
    weighting: Literal["gaussian", "constant"] = "gaussian"
    bad_weight: float = 0.1  # weight of a flagged pair (weighting = "constant")
    min_history: int = 1  # past observations a pair needs before it can be flagged

    def __post_init__(self) -> None:
        if self.tails not in ("high", "both"):
            raise ValueError(f"tails must be 'high' or 'both', got {self.tails!r}")
        if self.weighting not in ("gaussian", "constant"):
            raise ValueError(f"weighting must be 'gaussian' or 'constant', got {self.weighting!r}")
        if self.cut_high <= 0 or self.cut_low <= 0:
            raise ValueError(f"cut_high and cut_low must be > 0 (in std units), got {self.cut_high}, {self.cut_low}")
        if not 0.0 <= self.bad_weight < 1.0:
            raise ValueError(f"bad_weight must be in [0, 1), got {self.bad_weight}")
        if self.min_history < 1:
            raise ValueError(f"min_history must be >= 1, got {self.min_history}")


def row_losses(view: LogitView) -> torch.Tensor:
    """Each row's cross-entropy under the view as the shared loss computes it (detached, float32)."""
    with torch.no_grad():
        logits = view.logits.masked_fill(view.mask, float("-inf"))
        if view.extra_logits is not None:
            logits = torch.cat([logits, view.extra_logits.to(logits.dtype)], dim=1)
        return F.cross_entropy(logits.float(), view.target, reduction="none")


class DBPM(Strategy):
    """Track each pair's loss history; down-weight pairs whose history is an outlier of the population."""

    name = "dbpm"
    citation = (
        "Lan et al. 2024, Towards Enhancing Time Series Contrastive Learning: "
        "A Dynamic Bad Pair Mining Approach (DBPM), ICLR."
    )
    Params = DBPMParams

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        """A pair is seen once per epoch and judged once it has ``min_history`` past losses."""
        if epochs > self.params.min_history:
            return None
        return (
            f"judges a pair once it has {self.params.min_history} past loss(es) (min_history), i.e. from epoch "
            f"{self.params.min_history + 1} on, but the run trains {epochs} epoch(s): it never re-weights a pair, "
            "so it trains as in-batch"
        )

    @classmethod
    def search_space(cls):
        return {
            "tails": CategoricalDistribution(["high", "both"]),
            "cut_high": FloatDistribution(1.0, 3.0),
            "weighting": CategoricalDistribution(["gaussian", "constant"]),
            "bad_weight": FloatDistribution(0.0, 0.5),
        }

    def setup(self, ctx: Context) -> None:
        self._grow(len(ctx.examples))

    def _grow(self, size: int) -> None:
        """Make the history tensors cover example ids ``< size``."""
        have = len(self.state["count"]) if "count" in self.state else 0
        if size <= have:
            return
        for key, dtype in (("loss_sum", torch.float64), ("weight_sum", torch.float64), ("count", torch.long)):
            grown = torch.zeros(size, dtype=dtype)
            if have:
                grown[:have] = self.state[key]
            self.state[key] = grown
        self.state.setdefault("flagged", 0)

    def history(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean historical loss per example (NaN if unseen), observation count)``."""
        count = self.state["count"]
        mean = self.state["loss_sum"] / self.state["weight_sum"]
        return torch.where(count > 0, mean, torch.full_like(mean, float("nan"))), count

    def weights(self, example_ids: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """Row weights (1 unless flagged) from the history before this step and the rows' current losses."""
        p = self.params
        weights = torch.ones(len(example_ids), dtype=torch.float64)
        mean, count = self.history()
        population = mean[count > 0]
        if len(population) < 2:
            return weights
        mu, sd = population.mean(), population.std(unbiased=False)
        if sd <= 1e-12:
            return weights
        m, judged = mean[example_ids], count[example_ids] >= p.min_history
        bad = judged & (m >= mu + p.cut_high * sd)
        if p.tails == "both":
            bad |= judged & (m <= mu - p.cut_low * sd)
        if p.weighting == "gaussian":
            w = torch.exp(-0.5 * ((current.double() - mu) / sd) ** 2)
        else:
            w = torch.full_like(weights, p.bad_weight)
        return torch.where(bad, w, weights)

    def on_logits(self, view: LogitView) -> LogitView:
        ids = view.example_ids.detach().cpu().long()
        self._grow(int(ids.max()) + 1)
        current = row_losses(view).cpu()
        weights = self.weights(ids, current)
        recency = float(view.step + 1)
        self.state["loss_sum"].index_add_(0, ids, current.double() * recency)
        self.state["weight_sum"].index_add_(0, ids, torch.full((len(ids),), recency, dtype=torch.float64))
        self.state["count"].index_add_(0, ids, torch.ones(len(ids), dtype=torch.long))
        self.state["flagged"] += int((weights < 1).sum())
        return view.replace(row_weight=view.row_weight * weights.to(view.row_weight.device, view.row_weight.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {k: v.clone() if torch.is_tensor(v) else v for k, v in self.state.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = {k: v.clone() if torch.is_tensor(v) else v for k, v in state.items()}
