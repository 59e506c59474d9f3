"""adversarial: a norm-bounded perturbation of the positive that the query prefers (an imposter) is added
to each row as an extra negative logit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.strategies.adversarial import Adversarial, AdversarialParams, imposters

SCALE = 20.0


def _view(batch: int = 6, negatives: int = 2, dim: int = 16, seed: int = 0) -> LogitView:
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen), dim=-1)
    positive = F.normalize(query + 0.8 * torch.randn(batch, dim, generator=gen), dim=-1)
    hard = F.normalize(
        positive.repeat(negatives, 1) + 0.05 * torch.randn(batch * negatives, dim, generator=gen), dim=-1
    )
    docs = torch.cat([positive, hard])
    n = docs.shape[0]
    return LogitView(
        query=query,
        docs=docs,
        logits=SCALE * query @ docs.T,
        target=torch.arange(batch),
        mask=torch.zeros(batch, n, dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(n),
        scale=SCALE,
    )


def test_imposters_stay_within_the_bound_and_score_above_the_positive_and_its_nearest_negative():
    view = _view()
    positive = view.docs[:6]
    delta = imposters(view.query, positive, epsilon=0.3, steps=5)
    assert torch.all(delta.norm(dim=-1) <= 0.3 + 1e-5)
    imposter = F.normalize(positive + delta, dim=-1)
    score = (view.query * imposter).sum(-1)
    pos_score = (view.query * positive).sum(-1)
    corpus = view.docs[6:]  # the negatives: near-copies of the positives
    nearest = (positive @ corpus.T).argmax(dim=1)  # each positive's nearest corpus negative
    nearest_score = (view.query * corpus[nearest]).sum(-1)
    assert torch.all(score > pos_score) and torch.all(score > nearest_score)
    # the perturbation is the best the bound allows: a random direction of the same norm does worse
    random = F.normalize(torch.randn_like(delta), dim=-1) * delta.norm(dim=-1, keepdim=True)
    assert torch.all(score > (view.query * F.normalize(positive + random, dim=-1)).sum(-1))


def test_one_extra_logit_per_row_that_raises_the_loss():
    view = _view()
    strategy = Adversarial.from_params({"epsilon": 0.2})
    out = strategy.on_logits(view)
    assert out.extra_logits is not None and out.extra_logits.shape == (6, 1)
    assert torch.all(out.extra_logits.squeeze(1) > view.logits[torch.arange(6), view.target])
    assert info_nce(out) > info_nce(view)
    assert strategy.state["imposter_minus_positive"] > 0
    lighter = Adversarial.from_params({"epsilon": 0.2, "weight": 0.5}).on_logits(view)
    assert torch.allclose(lighter.extra_logits, out.extra_logits + torch.log(torch.tensor(0.5)), atol=1e-5)


def test_gradient_reaches_query_and_positive():
    view = _view()
    query = view.query.clone().requires_grad_(True)
    docs = view.docs.clone().requires_grad_(True)
    view = view.replace(query=query, docs=docs, logits=SCALE * query @ docs.T)
    info_nce(Adversarial().on_logits(view)).backward()
    assert query.grad is not None and docs.grad[:6].abs().sum() > 0


@pytest.mark.parametrize("bad", [{"epsilon": 0.0}, {"epsilon": 3.0}, {"steps": 0}, {"weight": 0.0}])
def test_bad_params(bad):
    with pytest.raises(ValueError):
        AdversarialParams(**bad)
