"""debiased: exactly plain InfoNCE at τ⁺ = 0; Chuang et al.'s debiased objective for τ⁺ > 0, clipped at the batch's
own bound so that negbench's scale 20 does not zero the loss of most rows."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.debiased import Debiased, debiased_estimate


def _view(
    batch: int = 6,
    columns_per_row: int = 3,
    dim: int = 8,
    scale: float = 20.0,
    seed: int = 0,
    extra: bool = False,
    aligned: bool = False,
) -> LogitView:
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen, dtype=torch.float64), dim=-1).requires_grad_()
    docs = F.normalize(torch.randn(batch * columns_per_row, dim, generator=gen, dtype=torch.float64), dim=-1)
    if aligned:  # every positive is its query: s⁺ = scale, above every negative
        docs = torch.cat([query.detach(), docs[batch:]])
    docs.requires_grad_()
    mask = torch.zeros(batch, batch * columns_per_row, dtype=torch.bool)
    if batch > 3:
        mask[0, 7] = mask[3, 1] = True  # labelled positives the loss masks
    view = LogitView(
        query=query,
        docs=docs,
        logits=scale * query @ docs.T,
        target=torch.arange(batch),
        mask=mask,
        row_weight=torch.ones(batch, dtype=torch.float64),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(batch * columns_per_row),
        scale=scale,
    )
    if extra:  # e.g. a memory of earlier documents, one of them masked (−inf)
        memory = F.normalize(torch.randn(4, dim, generator=gen, dtype=torch.float64), dim=-1)
        logits = (scale * query @ memory.T).clone()
        logits[1, 2] = float("-inf")
        view = view.add_negatives(logits)
    return view


def _reference(view: LogitView, tau_plus: float, batch_bound: bool = True) -> torch.Tensor:
    """DCL as written in the paper (float64, explicit exponentials, a loop over rows), plus the batch bound:
    the mass left after removing the τ⁺·N most similar negatives (the k-th in part), over (1 − τ⁺)."""
    losses = []
    for i in range(len(view.target)):
        pos = torch.exp(view.logits[i, i])
        negatives = [view.logits[i, j] for j in range(view.logits.shape[1]) if j != i and not view.mask[i, j]]
        if view.extra_logits is not None:
            negatives += [x for x in view.extra_logits[i] if torch.isfinite(x)]
        neg = torch.exp(torch.stack(negatives))
        n = len(negatives)
        ng = (-tau_plus * n * pos + neg.sum()) / (1 - tau_plus)
        if batch_bound:
            k = tau_plus * n
            kept = sum(min(max(r + 1 - k, 0.0), 1.0) * e for r, e in enumerate(sorted(neg, reverse=True)))
            ng = torch.maximum(ng, kept / (1 - tau_plus))
        ng = torch.clamp(ng, min=n * math.exp(-view.scale))
        losses.append(-torch.log(pos / (pos + ng)))
    return torch.stack(losses).mean().float()


def _minilm_like(batch: int = 32, mined: int = 1, scale: float = 20.0, seed: int = 0) -> LogitView:
    """Logits like an off-the-shelf MiniLM batch: positives at cos 0.6–0.8, negatives at 0.1–0.5."""
    gen = torch.Generator().manual_seed(seed)
    columns = batch * (1 + mined)
    cos = 0.1 + 0.4 * torch.rand(batch, columns, generator=gen, dtype=torch.float64)
    cos[torch.arange(batch), torch.arange(batch)] = 0.6 + 0.2 * torch.rand(batch, generator=gen, dtype=torch.float64)
    logits = (scale * cos).requires_grad_()
    return LogitView(
        query=logits,
        docs=logits,
        logits=logits,
        target=torch.arange(batch),
        mask=torch.zeros(batch, columns, dtype=torch.bool),
        row_weight=torch.ones(batch, dtype=torch.float64),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(columns),
        scale=scale,
    )


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


def test_is_the_paper_formula_when_the_row_holds_its_false_negatives():
    # Two negatives per row are as similar as the positive or more (≥ τ⁺·N = 0.9 of them): the paper's premise,
    # so its estimate stands (the batch bound does not bind) and the loss is exactly the paper's.
    view = _view(scale=20.0)
    logits = view.logits.detach().clone()
    for i in range(6):
        logits[i, 6 + 2 * i] = logits[i, i] + 0.5
        logits[i, 7 + 2 * i] = logits[i, i]
    view = view.replace(logits=logits.requires_grad_())
    tau_plus = 0.05
    est = debiased_estimate(view, tau_plus)
    assert (est["paper"] > est["batch_bound"]).all()
    loss = info_nce(Debiased.from_params({"tau_plus": tau_plus}).on_logits(view))
    assert torch.allclose(loss, _reference(view, tau_plus, batch_bound=False), rtol=1e-6)


def test_collapsed_estimate_falls_back_to_the_batch_bound_not_to_zero():
    view = _view(scale=20.0, aligned=True)
    tau_plus = 0.9  # the paper's corrected sum goes negative for every row
    est = debiased_estimate(view, tau_plus)
    assert torch.isinf(est["paper"]).all()
    out = Debiased.from_params({"tau_plus": tau_plus}).on_logits(view)
    n = view.negative_mask().sum(1).double()
    assert (out.extra_logits[:, 0].double() > torch.log(n) - view.scale + 1.0).all()  # well above N·e^{−scale}
    torch.testing.assert_close(out.extra_logits[:, 0].float(), est["batch_bound"] - math.log1p(-tau_plus))
    assert torch.allclose(info_nce(out), _reference(view, tau_plus), rtol=1e-6)
    grads = torch.autograd.grad(info_nce(out), [view.query, view.docs])
    assert all(torch.isfinite(g).all() for g in grads)


def test_paper_clip_still_bounds_extra_logits_below_minus_scale():
    view = _view(batch=2, columns_per_row=1, scale=5.0)
    view = view.replace(mask=view.mask | view.negative_mask())  # only the extra logits are negatives
    view = view.add_negatives(torch.full((2, 4), -30.0, dtype=torch.float64))  # below the cos = −1 logit
    out = Debiased.from_params({"tau_plus": 0.5}).on_logits(view)
    expected = torch.full((2,), math.log(4) - 5.0, dtype=torch.float64)  # the paper's N·e^{−scale}, N = 4
    torch.testing.assert_close(out.extra_logits[:, 0].double(), expected)


def test_scale_20_keeps_most_rows_learning():
    # negbench's fixed scale 20 with MiniLM-like logits: the paper's estimate goes negative on (nearly) every row
    # at the default τ⁺, and clipping it to N·e^{−scale} zeroed loss and gradient there. Rows must stay off that
    # clip and keep a gradient comparable to plain InfoNCE's.
    tau_plus = Debiased.Params().tau_plus
    at_clip, small, rows, ratios = 0, 0, 0, []
    for seed in range(5):
        view = _minilm_like(seed=seed)
        n = view.negative_mask().sum(1).double()
        out = Debiased.from_params({"tau_plus": tau_plus}).on_logits(view)
        at_clip += int((out.extra_logits[:, 0] <= torch.log(n) - view.scale + 1e-3).sum())
        batch = len(n)  # the loss is a mean over rows; × batch gives each row's own gradient
        (grad,) = torch.autograd.grad(info_nce(out) * batch, view.logits)
        (plain,) = torch.autograd.grad(info_nce(view) * batch, view.logits)
        per_row = grad.abs().sum(1)
        small += int((per_row < 1e-3).sum())
        ratios.append(per_row / plain.abs().sum(1))
        rows += batch
    assert at_clip / rows < 0.10
    assert small / rows < 0.10
    assert torch.cat(ratios).median() > 0.3


def test_row_without_negatives_is_finite():
    view = _view(batch=1, columns_per_row=1)
    for tau in (0.0, 0.2):
        out = Debiased.from_params({"tau_plus": tau}).on_logits(view)
        loss = info_nce(out)
        assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0)
        assert all(
            torch.isfinite(g).all() for g in torch.autograd.grad(loss, [view.query, view.docs], retain_graph=True)
        )


def test_param_checks():
    with pytest.raises(ConfigError, match="tau_plus"):
        Debiased.from_params({"tau_plus": 1.0})
    with pytest.raises(ConfigError, match="tau_plus"):
        Debiased.from_params({"tau_plus": -0.1})
