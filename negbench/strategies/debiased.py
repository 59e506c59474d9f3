"""``debiased``: Debiased Contrastive Learning — correct the negatives for a class prior τ⁺ of false negatives.

Reference: Chuang et al. 2020, "Debiased Contrastive Learning" (NeurIPS 2020), eq. (6) with its clip.

With ``s⁺`` the positive logit and ``s_j`` the row's ``N`` active negative logits (already ``scale``-multiplied,
scale = 1/t), DCL replaces the negatives' sum in the denominator by

    N_g = max( (Σ_j e^{s_j} − τ⁺·N·e^{s⁺}) / (1 − τ⁺),  N·e^{−scale} )

(the second term is the theoretical minimum ``N·e^{−1/t}``). Expressed as a logit rewrite of the view: the row's
negatives are masked and one aggregate extra logit ``log N_g`` is appended, so the shared loss becomes
``−log(e^{s⁺} / (e^{s⁺} + N_g))`` — the DCL objective — and at τ⁺ = 0 it is exactly plain InfoNCE
(``N_g = Σ_j e^{s_j}``). Extra logits already on the view (e.g. from a composed strategy) count as negatives.
Everything is computed in log space; gradients flow through ``N_g`` as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from optuna.distributions import FloatDistribution

from negbench.strategy import LogitView, Strategy


@dataclass(frozen=True)
class DebiasedParams:
    tau_plus: float = 0.05  # class prior: probability that a random negative is in fact a positive

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau_plus < 1.0:
            raise ValueError(f"tau_plus must be in [0, 1), got {self.tau_plus}")


def debiased_negative_logit(view: LogitView, tau_plus: float) -> torch.Tensor:
    """``log N_g`` per row (``(B,)``, float32; −inf for a row without negatives)."""
    active = view.negative_mask()
    s = view.logits.float().masked_fill(~active, float("-inf"))
    count = active.sum(1).float()
    if view.extra_logits is not None:
        extra = view.extra_logits.float()
        s = torch.cat([s, extra], dim=1)
        count = count + torch.isfinite(extra).sum(1).float()
    has = count > 0
    lse = torch.logsumexp(s.masked_fill(~has[:, None], 0.0), dim=1)  # log Σ e^{s_j} (finite dummy if none)
    log_n = torch.log(count.clamp(min=1.0))
    clip = log_n - view.scale
    if tau_plus == 0.0:
        log_ng = torch.maximum(lse, clip)
    else:
        positive = view.positive_logits().float()
        diff = math.log(tau_plus) + log_n + positive - lse  # log(τ⁺·N·e^{s⁺} / Σ e^{s_j})
        below = diff < 0
        corrected = lse + torch.log1p(-torch.exp(diff.clamp(max=-1e-6))) - math.log1p(-tau_plus)
        log_ng = torch.where(below, torch.maximum(corrected, clip), clip)
    return torch.where(has, log_ng, torch.full_like(log_ng, float("-inf")))


class Debiased(Strategy):
    """DCL's debiased denominator as one aggregate negative logit per row."""

    name = "debiased"
    citation = "Chuang et al. 2020, Debiased Contrastive Learning (NeurIPS), class-prior tau+ correction."
    Params = DebiasedParams

    @classmethod
    def search_space(cls):
        return {"tau_plus": FloatDistribution(0.0, 0.2)}

    def on_logits(self, view: LogitView) -> LogitView:
        log_ng = debiased_negative_logit(view, self.params.tau_plus)
        mask = view.mask | view.negative_mask()
        return view.replace(mask=mask, extra_logits=log_ng[:, None].to(view.logits.dtype))
