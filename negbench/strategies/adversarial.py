"""``adversarial``: CLAPS imposters (a small perturbation of the positive that lowers its score) as an extra
hard negative, and optionally CLAPS distant targets (a large one that keeps its score) as an extra positive.

Reference:
    Lee, Lee, Hwang 2021, "Contrastive Learning with Adversarial Perturbations for Conditional Text
    Generation" (CLAPS), ICLR 2021 (arXiv:2012.07280). An *imposter* adds to the target's hidden states a
    small perturbation ``δ = −ε·g/‖g‖``, ``g = ∇ log p(y|x)``, that *lowers* the target's likelihood: close
    to the target, yet a negative. A *distant target* adds a large perturbation (``η > ε``) that pushes the
    target away from the source (ascent on the contrastive loss) while a KL term keeps its likelihood high:
    far from the target, yet a positive.

Imposter (always on). For row ``i`` with unit query ``q``, unit positive ``p`` and score ``s = cos(q, p)``,
the target's likelihood is its InfoNCE probability, and ``p`` enters every row's softmax (its own as the
target, the others' as a negative): ``−∇_p`` of the batch's log-likelihood is ``Σ_k P_k,i·q_k − q``
(:func:`likelihood_ascent`), away from ``q`` and towards the other queries that score ``p``. With ``a`` its
unit tangent on the sphere at ``p``, the imposter is the geodesic step ``u = cos θ·p + sin θ·a``, with
θ set so the score drops by ``epsilon·|s − m|``, ``m`` the row's median active negative score (in-batch
and mined columns). Not the gradient of ``cos(q, ·)`` alone (the tangent straight away from ``q``): an
imposter in the plane of ``q`` and ``p`` scores as a function of ``s``, its logit's gradient is a multiple of
the positive logit's, so it only re-weights the row's pull (which gradient clipping and Adam then absorb).
A row whose positive beats its median negative gets an imposter strictly between the two, and the imposter
adds at most ``log(1 + weight·exp(−scale·epsilon·(s − m)))`` to that row's loss: it vanishes as the row's
margin grows (no floor). It enters as one extra logit ``scale·cos(q, u)`` (plus
``log weight``); θ and ``a`` carry no gradient (CLAPS treats ``δ`` as a constant), ``u`` keeps the gradient
of ``p`` and the logit that of ``q``.

Distant target (``distant_weight`` > 0; off by default). ``v``, the gradient of the batch's InfoNCE with
respect to ``p`` (CLAPS' ascent direction: towards the other queries that score ``p`` as a negative), is
restricted to the directions that leave ``cos(q, ·)`` unchanged; ``p + eta·v̂`` is then projected back
onto ``q``'s level set ``cos(q, ·) = s``. That is CLAPS' KL constraint made exact: a bi-encoder's likelihood
of the target is its score. The distant target joins the positive in the row's numerator (the target
column's logit becomes ``logaddexp(s_p, s_d + log distant_weight)``, the multiple-positive InfoNCE of
MIL-NCE, Miech et al. 2020); a second softmax column would floor the loss at the target's entropy.

Departures from the paper: perturbations act on a bi-encoder's unit embeddings, not a seq2seq decoder's
hidden states; the imposter's radius is set per row in score units relative to the row's margin (a fixed
radius on the unit sphere, with a fixed scale and no learned projection head to stretch it, would floor the
loss at ``log(1 + exp(−scale·Δ))`` and shrink ``Δ`` to ``≈ ε²/2`` as the positive aligns with the query);
the step is exact (closed form) rather than one linearised gradient step; there is no MLE or KL term, the
level-set projection stands in for the KL; distant targets are off by default so the row isolates the
imposter (CLAPS' full method uses both).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from optuna.distributions import FloatDistribution

from negbench.strategy import LogitView, Strategy

__all__ = [
    "Adversarial",
    "AdversarialParams",
    "batch_ascent",
    "distant_targets",
    "imposters",
    "likelihood_ascent",
    "median_negative",
]

_TINY = 1e-6


@dataclass(frozen=True)
class AdversarialParams:
    epsilon: float = 0.25  # imposter: the fraction of the row's margin over its median negative it drops
    weight: float = 1.0  # the imposter's weight in the softmax denominator (1: a plain negative)
    distant_weight: float = 0.0  # the distant target's weight in the numerator (0: no distant target)
    eta: float = 1.0  # distant target: norm of the large perturbation before the level-set projection

    def __post_init__(self) -> None:
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1) (a fraction of the row's margin), got {self.epsilon}")
        if not 0.0 < self.weight <= 100.0:
            raise ValueError(f"weight must be in (0, 100], got {self.weight}")
        if not 0.0 <= self.distant_weight <= 100.0:
            raise ValueError(f"distant_weight must be in [0, 100] (0: off), got {self.distant_weight}")
        if not 0.0 < self.eta <= 2.0:
            raise ValueError(f"eta must be in (0, 2] (a distance between unit vectors), got {self.eta}")


def median_negative(view: LogitView) -> torch.Tensor:
    """``(B,)`` each row's median cosine over its active negative columns (0 for a row without any)."""
    cos = view.logits.detach().float() / view.scale
    median = cos.masked_fill(~view.negative_mask(), float("nan")).nanmedian(dim=1).values
    return torch.nan_to_num(median, nan=0.0)


def imposters(
    query: torch.Tensor,
    positive: torch.Tensor,
    median: torch.Tensor,
    epsilon: float,
    ascent: torch.Tensor | None = None,
) -> torch.Tensor:
    """``(B, d)`` CLAPS imposters: each unit positive rotated along ``ascent`` (the direction that lowers its
    likelihood, :func:`likelihood_ascent`; its part tangent to the sphere at the positive) until its score drops
    by ``epsilon·|score − median|``; gradient flows through ``positive``. Without ``ascent`` (or where it has no
    tangent part) the positive is rotated away from its query: such an imposter stays in the plane of query and
    positive, so its logit's gradient is a multiple of the positive's (a re-weighting of the row, no negative)."""
    q, p = query.detach().double(), positive.detach().double()
    score = (q * p).sum(-1).clamp(-1.0, 1.0)
    goal = (score - epsilon * (score - median.double()).abs()).clamp(-1.0, 1.0)
    off_axis = q - score[:, None] * p
    length = off_axis.norm(dim=-1)
    flat = length < 1e-4  # q = p: no tangent towards q
    away = torch.where(flat[:, None], torch.zeros_like(q), -off_axis / length.clamp_min(_TINY)[:, None])
    if ascent is not None:
        g = ascent.detach().double()
        tangent = g - (g * p).sum(-1, keepdim=True) * p
        size = tangent.norm(dim=-1, keepdim=True)
        moves = size > 1e-9 * g.norm(dim=-1, keepdim=True).clamp_min(_TINY)
        away = torch.where(moves, tangent / size.clamp_min(1e-300), away)
    # the score along the geodesic p·cos θ + away·sin θ is s·cos θ + c·sin θ = r·cos(θ − α); θ reaches `goal`
    slope = (q * away).sum(-1)
    radius = torch.hypot(score, slope).clamp_min(_TINY)
    theta = (torch.atan2(slope, score) + torch.arccos((goal / radius).clamp(-1.0, 1.0))).clamp_min(0.0)[:, None]
    cos, sin = torch.cos(theta).to(positive.dtype), torch.sin(theta).to(positive.dtype)
    return cos * positive + sin * away.to(positive.dtype)


def distant_targets(query: torch.Tensor, positive: torch.Tensor, ascent: torch.Tensor, eta: float) -> torch.Tensor:
    """``(B, d)`` CLAPS distant targets: ``positive + eta·v̂`` projected back onto ``cos(query, ·) = score``,
    ``v̂`` the part of ``ascent`` that leaves the score unchanged; a rotation about the query, so the score and
    its gradient are the positive's. A positive equal to its query, or no such direction, is kept as is."""
    q, p, g = query.detach().double(), positive.detach().double(), ascent.detach().double()
    score = (q * p).sum(-1, keepdim=True)
    off_axis = p - score * q
    radius = off_axis.norm(dim=-1, keepdim=True)
    w = off_axis / radius.clamp_min(_TINY)
    v = g - (g * q).sum(-1, keepdim=True) * q
    v = v - (v * w).sum(-1, keepdim=True) * w
    size = v.norm(dim=-1, keepdim=True)
    moves = size > 1e-12 * g.norm(dim=-1, keepdim=True)
    phi = torch.where(moves, torch.atan(eta / radius.clamp_min(_TINY)), torch.zeros_like(radius))
    v = torch.where(moves, v / size.clamp_min(1e-300), torch.zeros_like(v))
    turn = (torch.cos(phi) - 1.0) * w + torch.sin(phi) * v  # rotates w towards v by φ; fixes q
    along = (positive * w.to(positive.dtype)).sum(-1, keepdim=True)  # the positive's off-axis length
    return positive + along * turn.to(positive.dtype)


def batch_ascent(view: LogitView) -> torch.Tensor:
    """``(B, d)`` the gradient of the view's InfoNCE with respect to each row's positive, up to a positive
    factor and its own query's term (which the level-set projection removes): ``Σ_{k≠i} P_k,t(i)·q_k``,
    ``P`` the rows' softmax over all their columns (float64: the weights may be tiny, only their
    direction counts)."""
    logits = view.logits.detach().double().masked_fill(view.mask, float("-inf"))
    if view.extra_logits is not None:
        logits = torch.cat([logits, view.extra_logits.detach().double()], dim=1)
    probs = torch.softmax(logits, dim=1)[:, : view.logits.shape[1]]
    weights = probs[:, view.target].clone()  # (rows k, positives i)
    weights.fill_diagonal_(0.0)
    return weights.T @ view.query.detach().double()


def likelihood_ascent(view: LogitView) -> torch.Tensor:
    """``(B, d)`` the gradient of the view's InfoNCE with respect to each row's positive, up to a positive
    factor: ``Σ_k P_k,t(i)·q_k − q_i``. The positive enters its own row as the target and every other row as a
    negative; CLAPS' imposter direction (``−∇ log p(y|x)``, the training likelihood of the target)."""
    logits = view.logits.detach().double().masked_fill(view.mask, float("-inf"))
    if view.extra_logits is not None:
        logits = torch.cat([logits, view.extra_logits.detach().double()], dim=1)
    probs = torch.softmax(logits, dim=1)[:, : view.logits.shape[1]]
    query = view.query.detach().double()
    return probs[:, view.target].T @ query - query


class Adversarial(Strategy):
    """A CLAPS imposter of the positive per row as an extra negative; optionally a distant target as an
    extra positive."""

    name = "adversarial"
    citation = (
        "Lee et al. 2021, Contrastive Learning with Adversarial Perturbations for Conditional Text "
        "Generation (CLAPS), ICLR 2021."
    )
    Params = AdversarialParams

    @classmethod
    def search_space(cls):
        return {
            "epsilon": FloatDistribution(0.05, 0.75),
            "weight": FloatDistribution(0.1, 1.0, log=True),
        }

    def on_logits(self, view: LogitView) -> LogitView:
        rows = torch.arange(len(view.target), device=view.docs.device)
        positive = view.docs[view.target]
        median = median_negative(view)
        imposter = imposters(view.query, positive, median, self.params.epsilon, likelihood_ascent(view))
        logits = view.scale * (view.query * imposter).sum(dim=-1, keepdim=True)
        if self.params.weight != 1.0:
            logits = logits + math.log(self.params.weight)
        with torch.no_grad():
            score = (view.query * imposter).sum(-1).float()
            self.state["imposter_minus_positive"] = float((score - view.logits[rows, view.target] / view.scale).mean())
            self.state["imposter_minus_median"] = float((score - median).mean())
        out = view.add_negatives(logits)
        if self.params.distant_weight == 0.0:
            return out
        distant = distant_targets(view.query, positive, batch_ascent(out), self.params.eta)
        extra = view.scale * (view.query * distant).sum(dim=-1) + math.log(self.params.distant_weight)
        merged = view.logits.clone()
        merged[rows, view.target] = torch.logaddexp(view.logits[rows, view.target], extra.to(view.logits.dtype))
        return out.replace(logits=merged)
