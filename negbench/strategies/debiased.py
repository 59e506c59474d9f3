"""``debiased``: Debiased Contrastive Learning — correct the negatives for a class prior τ⁺ of false negatives.

Reference: Chuang et al. 2020, "Debiased Contrastive Learning" (NeurIPS 2020), eq. (6) with its clip.

Scale and temperature: the paper writes its logits as ``f(x)ᵀf(y) / t`` over normalised embeddings; negbench's
logits are ``scale · cos``, so ``scale = 1/t``. negbench fixes ``scale = 20`` for every strategy (t = 0.05).
The authors' reference code (github.com/chingyaoc/DCL, ``main.py``) defaults to t = 0.5 (scale 2) with
τ⁺ = 0.1 for its SimCLR image runs; the temperatures of the paper's other experiments are not restated here.

With ``s⁺`` the positive logit and ``s_j`` the row's ``N`` active negative logits (already ``scale``-multiplied),
DCL replaces the negatives' sum in the denominator by

    N_g = max( (Σ_j e^{s_j} − τ⁺·N·e^{s⁺}) / (1 − τ⁺),  N·e^{−1/t} )

The second term is the paper's clip: the smallest value the true-negative sum can take (every negative at
cos = −1, e^{−scale} each). It is there because the first term, an estimate, goes negative whenever the
subtracted mass τ⁺·N·e^{s⁺} exceeds what the row's negatives hold.

Why the paper's formula fails at negbench's scale. Overshoot happens when e^{s⁺} > Σ_j e^{s_j} / (τ⁺·N), i.e.
when the positive beats the negatives' log-mean-exp by more than ln(1/τ⁺) logits. At t = 0.5 that takes a cosine
gap of ≈ 1.5 (τ⁺ = 0.05): rare. At scale 20 it takes a gap of ≈ 0.15, which an off-the-shelf MiniLM clears on
most rows (positives at cos 0.6–0.8, negatives 0.1–0.5). Those rows are clipped to N·e^{−20} ≈ 0 against
e^{s⁺} ≈ e^{14}: their loss and gradient vanish (100 % of such synthetic rows at the default τ⁺; 74–85 % of rows
in the suite's runs, as reported). This is the estimator, not round-off: the clip e^{−scale} was already the
right bound for the scale used.

What this implementation does instead. The clip is the smallest true-negative sum *consistent with the batch*
rather than with no observation at all: at prior τ⁺, about k = τ⁺·N of the row's N negatives are false
negatives, so the true negatives hold at least the mass left after removing the k most similar negatives
(fractional k: the k-th counts in part), and N_g, which estimates the true negatives' mean times N, is at least
that mass / (1 − τ⁺). So

    N_g = max( (Σ_j e^{s_j} − τ⁺·N·e^{s⁺}) / (1 − τ⁺),  (Σ_j e^{s_j} − top_k(e^{s})) / (1 − τ⁺) )

Equivalently: the mass subtracted as false negatives is the paper's τ⁺·N·e^{s⁺}, capped at the mass of the k
most similar negatives actually in the row. Where those k are, on average, at least as similar as the positive
(the paper's premise) the cap does not bind and this is exactly the paper's formula; where they are less similar,
the cap binds and the row keeps a real denominator and a real gradient. At scale 20 the cap binds on most rows,
so the strategy then acts mostly as "drop the τ⁺·N hardest negatives of each row, reweight the rest by 1/(1 − τ⁺)".
The cap is never below the paper's clip (each e^{s_j} ≥ e^{−scale}); that clip is still applied last, for extra
logits below −scale. At τ⁺ = 0 nothing is subtracted and N_g = Σ_j e^{s_j}: exactly plain InfoNCE.

Expressed as a logit rewrite of the view: the row's negatives are masked and one aggregate extra logit ``log N_g``
is appended, so the shared loss becomes ``−log(e^{s⁺} / (e^{s⁺} + N_g))`` — the DCL objective. Extra logits
already on the view (e.g. from a composed strategy) count as negatives. Everything is computed in log space
(log-sum-exp, ``log1p``); gradients flow through ``N_g`` as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from optuna.distributions import FloatDistribution

from negbench.strategy import LogitView, Strategy

__all__ = ["Debiased", "DebiasedParams", "debiased_estimate", "debiased_negative_logit"]


@dataclass(frozen=True)
class DebiasedParams:
    tau_plus: float = 0.05  # class prior: probability that a random negative is in fact a positive

    def __post_init__(self) -> None:
        if not 0.0 <= self.tau_plus < 1.0:
            raise ValueError(f"tau_plus must be in [0, 1), got {self.tau_plus}")


def _row_negatives(view: LogitView) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's negative logits (float32, −inf where inactive) and their count."""
    active = view.negative_mask()
    s = view.logits.float().masked_fill(~active, float("-inf"))
    count = active.sum(1).float()
    if view.extra_logits is not None:
        extra = view.extra_logits.float()
        s = torch.cat([s, extra], dim=1)
        count = count + torch.isfinite(extra).sum(1).float()
    return s, count


def debiased_estimate(view: LogitView, tau_plus: float) -> dict[str, torch.Tensor]:
    """Per row (``(B,)``, float32): ``log_ng`` and the terms it is built from.

    ``paper`` is log of the paper's estimate (−inf where it is not positive), ``batch_bound`` log of the batch's
    lower bound, ``floor`` log of the paper's clip N·e^{−scale}; rows without negatives get ``log_ng = −inf``.
    """
    s, count = _row_negatives(view)
    has = count > 0
    s = s.masked_fill(~has[:, None], 0.0)  # finite dummies for rows without negatives (replaced below)
    lse = torch.logsumexp(s, dim=1)  # log Σ e^{s_j}
    log_n = torch.log(count.clamp(min=1.0))
    floor = log_n - view.scale
    if tau_plus == 0.0:
        paper = bound = lse
        log_ng = lse
    else:
        positive = view.positive_logits().float()
        over = math.log(tau_plus) + log_n + positive - lse  # log(τ⁺·N·e^{s⁺} / Σ e^{s_j})
        paper = torch.where(
            over < 0, lse + torch.log1p(-torch.exp(over.clamp(max=-1e-6))), torch.full_like(lse, float("-inf"))
        )
        # log of the mass left after removing the k = τ⁺·N most similar negatives (fractional k)
        ordered = s.sort(dim=1, descending=True).values
        rank = torch.arange(ordered.shape[1], device=ordered.device, dtype=ordered.dtype)
        keep = (rank[None, :] + 1.0 - tau_plus * count[:, None]).clamp(0.0, 1.0)
        bound = torch.logsumexp(ordered + keep.log(), dim=1)
        log_ng = torch.maximum(torch.maximum(paper, bound) - math.log1p(-tau_plus), floor)
    minus_inf = torch.full_like(log_ng, float("-inf"))
    return {
        "log_ng": torch.where(has, log_ng, minus_inf),
        "paper": paper,
        "batch_bound": bound,
        "floor": floor,
        "has_negatives": has,
    }


def debiased_negative_logit(view: LogitView, tau_plus: float) -> torch.Tensor:
    """``log N_g`` per row (``(B,)``, float32; −inf for a row without negatives)."""
    return debiased_estimate(view, tau_plus)["log_ng"]


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
