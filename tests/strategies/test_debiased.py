"""debiased: exactly plain InfoNCE at τ⁺ = 0; Chuang et al.'s debiased objective (with its clip) for τ⁺ > 0."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from negbench.errors import ConfigError
from negbench.loss import info_nce
from negbench.strategies.debiased import Debiased
from negbench.strategy import LogitView


def _view(batch: int = 6, columns_per_row: int = 3, dim: int = 8, scale: float = 20.0, seed: int = 0,
          extra: bool = False, aligned: bool = False) -> LogitView:
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen, dtype=torch.float64), dim=-1).requires_grad_()
    docs = F.normalize(torch.randn(batch * columns_per_row, dim, generator=gen, dtype=torch.float64), dim=-1)
    if aligned:  # every positive is its query: s⁺ = scale, above every negative
        docs = torch.cat([query.detach(), docs[batch:]])
    docs.requires_grad_()
    mask = torch.zeros(batch, batch * columns_per_row, dtype=torch.bool)
    if batch > 3:
        mask[0, 7] = mask[3, 1] = True  # labelled positives the loss masks
    view = LogitView(query=query, docs=docs, logits=scale * query @ docs.T, target=torch.arange(batch), mask=mask,
                     row_weight=torch.ones(batch, dtype=torch.float64), example_ids=torch.arange(batch),
                     doc_ids=torch.arange(batch * columns_per_row), scale=scale)
    if extra:  # e.g. a memory of earlier documents, one of them masked (−inf)
        memory = F.normalize(torch.randn(4, dim, generator=gen, dtype=torch.float64), dim=-1)
        logits = (scale * query @ memory.T).clone()
        logits[1, 2] = float("-inf")
        view = view.add_negatives(logits)
    return view


def _reference(view: LogitView, tau_plus: float) -> torch.Tensor:
    """DCL exactly as written in the paper (float64, explicit exponentials, a loop over rows)."""
    losses = []
    for i in range(len(view.target)):
        pos = torch.exp(view.logits[i, i])
        negatives = [view.logits[i, j] for j in range(view.logits.shape[1]) if j != i and not view.mask[i, j]]
        if view.extra_logits is not None:
            negatives += [x for x in view.extra_logits[i] if torch.isfinite(x)]
        neg = torch.exp(torch.stack(negatives))
        n = len(negatives)
        ng = (-tau_plus * n * pos + neg.sum()) / (1 - tau_plus)
        ng = torch.clamp(ng, min=n * math.exp(-view.scale))
        losses.append(-torch.log(pos / (pos + ng)))
    return torch.stack(losses).mean().float()


@pytest.mark.parametrize("extra", [False, True])
def test_equals_plain_infonce_at_tau_zero(extra):
    view = _view(extra=extra)
    out = Debiased.from_params({"tau_plus": 0.0}).on_logits(view)
    assert out.extra_logits.shape == (6, 1)
    assert out.mask[view.negative_mask()].all()  # the row's negatives left the softmax …
    plain, debiased = info_nce(view), info_nce(out)
    assert torch.allclose(debiased, plain, rtol=1e-6, atol=1e-6)
    g_plain = torch.autograd.grad(plain, [view.query, view.docs], retain_graph=True)
    g_debiased = torch.autograd.grad(debiased, [view.query, view.docs])
    for a, b in zip(g_plain, g_debiased, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("tau_plus", "extra"), [(0.05, False), (0.1, True), (0.3, False)])
def test_matches_the_paper_and_differs_for_positive_tau(tau_plus, extra):
    view = _view(scale=5.0, extra=extra)
    loss = info_nce(Debiased.from_params({"tau_plus": tau_plus}).on_logits(view))
    assert torch.allclose(loss, _reference(view, tau_plus), rtol=1e-6)
    assert not torch.allclose(loss, info_nce(view), rtol=1e-3)
    grads = torch.autograd.grad(loss, [view.query, view.docs])
    assert all(torch.isfinite(g).all() for g in grads)


def test_clip_at_the_theoretical_minimum():
    view = _view(scale=20.0, aligned=True)
    tau_plus = 0.9  # the corrected sum goes negative for every row: N_g = N·e^{−scale}
    out = Debiased.from_params({"tau_plus": tau_plus}).on_logits(view)
    n = view.negative_mask().sum(1).double()
    torch.testing.assert_close(out.extra_logits[:, 0].double(), torch.log(n) - view.scale, rtol=1e-6, atol=1e-5)
    assert torch.allclose(info_nce(out), _reference(view, tau_plus), rtol=1e-6)
    grads = torch.autograd.grad(info_nce(out), [view.query, view.docs])
    assert all(torch.isfinite(g).all() for g in grads)


def test_row_without_negatives_is_finite():
    view = _view(batch=1, columns_per_row=1)
    for tau in (0.0, 0.2):
        out = Debiased.from_params({"tau_plus": tau}).on_logits(view)
        loss = info_nce(out)
        assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0)
        assert all(torch.isfinite(g).all() for g in torch.autograd.grad(loss, [view.query, view.docs],
                                                                     retain_graph=True))


def test_param_checks():
    with pytest.raises(ConfigError, match="tau_plus"):
        Debiased.from_params({"tau_plus": 1.0})
    with pytest.raises(ConfigError, match="tau_plus"):
        Debiased.from_params({"tau_plus": -0.1})
