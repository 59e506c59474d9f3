"""adversarial (CLAPS, Lee et al. 2021): an imposter, a small perturbation of the positive that lowers its
score, is added to each row as an extra negative logit; optionally a distant target, a large perturbation
that keeps the score, joins the positive in the numerator.

The first two tests use only ``on_logits`` with parameters the pre-CLAPS-direction code also accepted, so
they run (and fail) against it: its imposter moved the positive *towards* the query."""

from __future__ import annotations

import itertools
import math
from typing import Any, ClassVar

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.adversarial import Adversarial, AdversarialParams
from negbench.testing import StrategyConformance
from tests.strategies.views import plain_view

SCALE = 20.0


def _view(batch: int = 6, negatives: int = 2, dim: int = 16, seed: int = 0) -> LogitView:
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen), dim=-1)
    positive = F.normalize(query + 0.2 * torch.randn(batch, dim, generator=gen), dim=-1)
    hard = F.normalize(
        positive.repeat(negatives, 1) + 0.15 * torch.randn(batch * negatives, dim, generator=gen), dim=-1
    )
    return _wrap(query, torch.cat([positive, hard]))


def _wrap(query: torch.Tensor, docs: torch.Tensor) -> LogitView:
    return plain_view(query, docs, SCALE)


def _separated(margin: float, batch: int = 4) -> LogitView:
    """Row ``i``: query ``e_i``; positive at cosine ``margin/2``, its mined negative at ``−margin/2``; every
    other column at 0 (orthogonal). The positive beats its median negative by ``margin/2``."""
    eye = torch.eye(3 * batch)
    half, side = margin / 2, math.sqrt(1 - margin**2 / 4)
    query = eye[:batch]
    positive = half * eye[:batch] + side * eye[batch : 2 * batch]
    negative = -half * eye[:batch] + side * eye[2 * batch :]
    return _wrap(query, torch.cat([positive, negative]))


def _median_negative(view: LogitView) -> torch.Tensor:
    cos = view.logits / view.scale
    return cos.masked_fill(~view.negative_mask(), float("nan")).nanmedian(dim=1).values


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_imposter_scores_below_the_positive_and_above_the_median_negative(seed):
    view = _view(seed=seed)
    out = Adversarial.from_params({"epsilon": 0.25}).on_logits(view)
    assert out.extra_logits is not None and out.extra_logits.shape == (6, 1)
    imposter = out.extra_logits.squeeze(1)
    positive = view.logits[torch.arange(6), view.target]
    assert torch.all(_median_negative(view) < positive / SCALE)  # the toy rows are separated
    assert torch.all(imposter < positive)
    assert torch.all(imposter > SCALE * _median_negative(view))
    assert info_nce(out) > info_nce(view)  # still a negative: it can only raise the loss


def test_the_imposter_puts_no_floor_under_the_loss():
    losses = []
    for margin in (0.4, 0.8, 1.2, 1.6, 1.9):
        view = _separated(margin)
        out = Adversarial.from_params({"epsilon": 0.25}).on_logits(view)
        losses.append(float(info_nce(out)))
        # the imposter's share is at most log(1 + exp(−scale·epsilon·(positive − median negative)))
        share = float(info_nce(out) - info_nce(view))
        assert 0.0 <= share <= math.log1p(math.exp(-SCALE * 0.25 * margin / 2)) + 1e-6, (margin, share)
    assert all(a > b for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.01 < math.log(2), losses  # the imposter's share vanishes with the margin


def test_the_imposter_is_the_steepest_score_lowering_step_of_its_size():
    from negbench.strategies.adversarial import imposters, median_negative

    view = _view()
    positive = view.docs[:6]
    imposter = imposters(view.query, positive, median_negative(view), epsilon=0.25)
    assert torch.allclose(imposter.norm(dim=-1), torch.ones(6), atol=1e-5)
    score = (view.query * imposter).sum(-1)
    pos = (view.query * positive).sum(-1)
    expected = pos - 0.25 * (pos - median_negative(view))
    assert torch.allclose(score, expected, atol=1e-5)
    # same-size perturbations in random directions lower the score less: it is the adversarial direction
    gen = torch.Generator().manual_seed(7)
    for _ in range(20):
        noise = torch.randn(positive.shape, generator=gen)
        noise = noise - (noise * positive).sum(-1, keepdim=True) * positive
        angle = torch.arccos((imposter * positive).sum(-1).clamp(-1, 1))[:, None]
        other = torch.cos(angle) * positive + torch.sin(angle) * F.normalize(noise, dim=-1)
        assert torch.all((view.query * other).sum(-1) > score - 1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_imposter_is_a_negative_not_a_reweighted_positive(seed):
    """An imposter in the plane of query and positive (the positive rotated straight away from its query) has a
    logit whose gradient is a multiple of the positive logit's, at the query and at the positive: it only
    re-weights the row's pull (on MiniLM / SciFact its run's gradient had cosine 0.9992 with in-batch's, and
    the global-norm clipping and Adam absorb a re-weighting). CLAPS' imposter lowers the target's likelihood,
    which in a batch's InfoNCE also holds the other queries that score it: it leaves that plane."""
    gen = torch.Generator().manual_seed(seed)
    raw_query = torch.randn(16, generator=gen) + 1.2 * torch.randn(8, 16, generator=gen)  # one topic
    raw_positive = F.normalize(raw_query, dim=-1) + 0.9 * torch.randn(8, 16, generator=gen)

    def query_gradient(of_imposter: bool) -> torch.Tensor:
        query, positive = raw_query.clone().requires_grad_(True), raw_positive.clone().requires_grad_(True)
        view = _wrap(F.normalize(query, dim=-1), F.normalize(positive, dim=-1))
        out = Adversarial().on_logits(view)
        (out.extra_logits.sum() if of_imposter else view.positive_logits().sum()).backward()
        return query.grad

    cosine = F.cosine_similarity(query_gradient(True), query_gradient(False), dim=-1)
    assert cosine.min() < 0.95, cosine


def test_imposter_of_a_positive_equal_to_its_query_still_scores_lower():
    from negbench.strategies.adversarial import imposters

    query = F.normalize(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    imposter = imposters(query, query.clone(), torch.zeros(3), epsilon=0.5)
    assert torch.allclose((query * imposter).sum(-1), torch.full((3,), 0.5), atol=1e-5)


def test_weight_shifts_the_imposter_logit_and_state_records_the_gaps():
    view = _view()
    strategy = Adversarial.from_params({"epsilon": 0.2})
    out = strategy.on_logits(view)
    assert strategy.state["imposter_minus_positive"] < 0 < strategy.state["imposter_minus_median"]
    lighter = Adversarial.from_params({"epsilon": 0.2, "weight": 0.5}).on_logits(view)
    assert torch.allclose(lighter.extra_logits, out.extra_logits + math.log(0.5), atol=1e-5)


def test_distant_targets_are_off_by_default():
    view = _view()
    out = Adversarial().on_logits(view)
    assert torch.equal(out.logits, view.logits)


def test_distant_target_keeps_the_score_moves_far_and_towards_other_queries():
    from negbench.strategies.adversarial import batch_ascent, distant_targets

    view = _view(batch=8, dim=12, seed=3)
    positive = view.docs[:8]
    distant = distant_targets(view.query, positive, batch_ascent(view), eta=1.0)
    assert torch.allclose(distant.norm(dim=-1), torch.ones(8), atol=1e-5)
    assert torch.allclose((view.query * distant).sum(-1), (view.query * positive).sum(-1), atol=1e-5)
    assert torch.all((distant - positive).norm(dim=-1) > 0.2)
    # CLAPS' ascent: as the positive column the distant target raises the batch's contrastive loss
    docs = view.docs.clone()
    docs[:8] = distant
    assert info_nce(_wrap(view.query, docs)) > info_nce(view)
    smaller = distant_targets(view.query, positive, batch_ascent(view), eta=0.3)
    assert torch.all((smaller - positive).norm(dim=-1) < (distant - positive).norm(dim=-1))


def test_distant_target_joins_the_numerator_without_a_floor():
    view = _separated(1.2)
    plain = Adversarial().on_logits(view)
    both = Adversarial.from_params({"distant_weight": 1.0}).on_logits(view)
    rows = torch.arange(4)
    # it keeps the positive's score, so the target logit gains log(1 + distant_weight)
    gained = both.logits[rows, view.target] - view.logits[rows, view.target]
    assert torch.allclose(gained, torch.full((4,), math.log(2.0)), atol=1e-4)
    assert info_nce(both) < info_nce(plain)
    far = Adversarial.from_params({"distant_weight": 1.0}).on_logits(_separated(1.9))
    assert info_nce(far) < 0.01


@pytest.mark.parametrize("params", [{}, {"distant_weight": 0.5}])
def test_gradient_reaches_query_and_positive(params):
    view = _view()
    query = view.query.clone().requires_grad_(True)
    docs = view.docs.clone().requires_grad_(True)
    view = view.replace(query=query, docs=docs, logits=SCALE * query @ docs.T)
    info_nce(Adversarial.from_params(params).on_logits(view)).backward()
    assert query.grad is not None and query.grad.abs().sum() > 0 and docs.grad[:6].abs().sum() > 0


@pytest.mark.parametrize(
    "bad",
    [
        {"epsilon": 0.0},
        {"epsilon": 1.0},
        {"weight": 0.0},
        {"weight": 101.0},
        {"distant_weight": -0.1},
        {"eta": 0.0},
        {"eta": 2.5},
    ],
)
def test_bad_params(bad):
    with pytest.raises(ValueError):
        AdversarialParams(**bad)
    with pytest.raises(ConfigError) as info:
        Adversarial.from_params(bad)
    assert info.value.field == f"params.{next(iter(bad))}"


class TestConformanceWithDistantTargets(StrategyConformance):
    """The contracts, training included, with distant targets on (the registry's run has them off)."""

    strategy_cls = Adversarial
    params: ClassVar[dict[str, Any]] = {"epsilon": 0.5, "distant_weight": 0.5, "eta": 1.5}
