"""``adversarial``: imposter negatives made by perturbing the positive's embedding within a norm bound.

Reference:
    Lee, Lee, Hwang 2021, "Contrastive Learning with Adversarial Perturbations for Conditional Text
    Generation" (CLAPS), ICLR 2021 (arXiv:2012.07280): "imposters", small perturbations of the target's
    representation that are hard negatives because they stay close to it.

For row ``i`` with normalised query ``q`` and positive ``d⁺``, an imposter is ``normalise(d⁺ + δ)`` with
``‖δ‖ ≤ epsilon``, ``δ`` found by ``steps`` steps of projected (normalised) gradient ascent on
``cos(q, normalise(d⁺ + δ))``: the perturbation of the positive that most increases its similarity to the
query. The imposter is added to the row's softmax as one extra logit (``scale · cos(q, imposter)``), so the
model must rank its positive above a near-copy that the query prefers; ``weight`` > 0 scales the imposter's
column in the denominator (``log weight`` added to its logit; 1 is a plain negative).

The perturbation is searched without gradient to the model (CLAPS perturbs hidden states the same way);
the imposter's logit keeps the gradient of the query and of ``d⁺`` through ``normalise(d⁺ + δ)``.
Departures: CLAPS perturbs a seq2seq decoder's hidden states to *decrease* the target's likelihood and adds
"distant targets" as extra positives; here the perturbation acts on the embedding of a bi-encoder in the
direction the issue asks for (towards the query), and only imposters are added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.strategy import LogitView, Strategy

__all__ = ["Adversarial", "AdversarialParams", "imposters"]


@dataclass(frozen=True)
class AdversarialParams:
    epsilon: float = 0.1
    steps: int = 3
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon <= 2.0:
            raise ValueError(f"epsilon must be in (0, 2] (a distance between unit vectors), got {self.epsilon}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0.0 < self.weight <= 100.0:
            raise ValueError(f"weight must be in (0, 100], got {self.weight}")


def imposters(query: torch.Tensor, positive: torch.Tensor, epsilon: float, steps: int) -> torch.Tensor:
    """``(B, d)`` perturbations ``δ`` (‖δ‖ ≤ epsilon) of each normalised positive that increase its cosine to
    its query: projected gradient ascent with step ``2·epsilon/steps``, no gradient to the inputs."""
    q, p = query.detach().float(), positive.detach().float()
    delta = torch.zeros_like(p)
    step = 2.0 * epsilon / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            score = (q * F.normalize(p + delta, dim=-1)).sum()
            (grad,) = torch.autograd.grad(score, delta)
        with torch.no_grad():
            delta = delta + step * F.normalize(grad, dim=-1)
            norm = delta.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            delta = delta * torch.clamp(epsilon / norm, max=1.0)
    return delta.detach().to(positive.dtype)


class Adversarial(Strategy):
    """One norm-bounded imposter of the positive per row, as an extra negative logit."""

    name = "adversarial"
    citation = (
        "Lee et al. 2021, Contrastive Learning with Adversarial Perturbations for Conditional Text "
        "Generation (CLAPS), ICLR 2021."
    )
    Params = AdversarialParams

    @classmethod
    def search_space(cls):
        return {
            "epsilon": FloatDistribution(0.01, 0.5, log=True),
            "steps": IntDistribution(1, 5),
            "weight": FloatDistribution(0.1, 1.0, log=True),
        }

    def on_logits(self, view: LogitView) -> LogitView:
        rows = torch.arange(len(view.target), device=view.docs.device)
        positive = view.docs[view.target]
        delta = imposters(view.query, positive, self.params.epsilon, self.params.steps)
        imposter = F.normalize(positive + delta, dim=-1)
        logits = view.scale * (view.query * imposter).sum(dim=-1, keepdim=True)
        if self.params.weight != 1.0:
            logits = logits + math.log(self.params.weight)
        with torch.no_grad():
            self.state["imposter_minus_positive"] = float(
                (logits.squeeze(1) - view.logits[rows, view.target]).mean() / view.scale
            )
        return view.add_negatives(logits)
