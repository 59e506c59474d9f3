"""mochi: synthetic negatives are convex mixtures of each row's hardest negatives, and they are harder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.mochi import MoCHi

SCALE = 20.0


def _view(batch: int = 5, columns_per_row: int = 3, dim: int = 16, seed: int = 0, grad: bool = False) -> LogitView:
    """Embeddings in the positive orthant, so every cosine is >= 0."""
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen).abs(), dim=-1)
    docs = F.normalize(torch.randn(batch * columns_per_row, dim, generator=gen).abs(), dim=-1)
    if grad:
        query.requires_grad_()
        docs.requires_grad_()
    n = batch * columns_per_row
    mask = torch.zeros(batch, n, dtype=torch.bool)
    logits = SCALE * query @ docs.T
    hardest_other = int(logits[0].detach().clone().index_fill_(0, torch.tensor([0]), -1e9).argmax())
    mask[0, hardest_other] = True  # row 0's hardest candidate is a labelled positive: never to be mixed
    return LogitView(
        query=query,
        docs=docs,
        logits=logits,
        target=torch.arange(batch),
        mask=mask,
        row_weight=torch.ones(batch),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(n),
        scale=SCALE,
    )


def _run(params: dict, view: LogitView | None = None):
    view = view or _view()
    mochi = MoCHi.from_params(params)
    out = mochi.on_logits(view)
    return view, out, mochi.last_mixtures


def test_mixtures_lie_on_segments_between_the_rows_hardest_negatives():
    hardest = 3
    view, out, mix = _run({"hardest": hardest, "num_mix": 12, "num_query_mix": 6, "query_mix_max": 0.4})
    active = view.negative_mask()
    assert out.extra_logits.shape == (5, 18)
    for i in range(5):
        scores = view.logits[i].masked_fill(~active[i], float("-inf"))
        pool = set(scores.topk(hardest).indices.tolist())
        assert not pool & ({i} | set(view.mask[i].nonzero().flatten().tolist()))
        for m in range(18):
            a, b = mix.sources[i, m].tolist()
            coef = float(mix.coef[i, m])
            h = mix.embeddings[i, m]
            assert b in pool
            if a == -1:  # query–negative mixture, query weight below 0.5
                assert 0.0 <= coef < 0.4
                ends = torch.stack([view.query[i], view.docs[b]])
            else:
                assert a in pool and a != b and 0.0 <= coef <= 1.0
                ends = torch.stack([view.docs[a], view.docs[b]])
            expected = F.normalize(coef * ends[0] + (1 - coef) * ends[1], dim=-1)
            torch.testing.assert_close(h, expected)
            # independent geometric check: h is a non-negative combination of the two endpoints
            c = torch.linalg.lstsq(ends.T.double(), h.double()[:, None]).solution.flatten()
            assert torch.allclose(ends.T.double() @ c, h.double(), atol=1e-6)
            assert (c >= -1e-6).all()
            assert abs(float(h.norm()) - 1.0) < 1e-5


def test_mixtures_are_harder_and_raise_the_loss():
    view, out, mix = _run({"hardest": 4, "num_mix": 16, "num_query_mix": 0})
    synthetic = out.extra_logits
    torch.testing.assert_close(synthetic, SCALE * torch.einsum("bd,bmd->bm", view.query, mix.embeddings))
    for i in range(5):
        for m in range(16):
            a, b = mix.sources[i, m].tolist()
            alpha = float(mix.coef[i, m])
            convex = alpha * view.logits[i, a] + (1 - alpha) * view.logits[i, b]
            assert synthetic[i, m] >= convex - 1e-4  # normalising a chord pushes it toward the query
    mixed_means = torch.stack([view.logits[i, mix.sources[i].flatten()].mean() for i in range(5)])
    assert synthetic.mean() >= mixed_means.mean()
    all_negative_mean = view.logits[view.negative_mask()].mean()
    assert synthetic.mean() > all_negative_mean
    assert info_nce(out) > info_nce(view)


def test_no_gradient_flows_into_the_mixtures():
    view = _view(grad=True)
    out = MoCHi.from_params({"hardest": 4, "num_mix": 8, "num_query_mix": 4}).on_logits(view)
    only_synthetic = out.replace(mask=torch.ones_like(view.mask).index_fill_(1, torch.arange(5), False) | view.mask)
    only_synthetic.mask[torch.arange(5), torch.arange(5)] = False
    loss = info_nce(only_synthetic)
    query_grad, docs_grad = torch.autograd.grad(loss, [view.query, view.docs])
    assert query_grad.abs().sum() > 0
    # docs only receive gradient through the real positive columns, none through the mixtures
    assert docs_grad[5:].abs().sum() == 0


def test_rows_without_negatives_get_no_mixtures():
    view = _view()
    view = view.replace(mask=view.mask.clone())
    view.mask[2] = True
    view.mask[2, 2] = False
    out = MoCHi.from_params({"hardest": 4, "num_mix": 4, "num_query_mix": 2}).on_logits(view)
    assert torch.isneginf(out.extra_logits[2]).all()
    assert torch.isfinite(out.extra_logits[[0, 1, 3, 4]]).all()
    assert torch.isfinite(info_nce(out))


def test_seeded_and_reproducible():
    a, b = MoCHi.from_params({"hardest": 4}), MoCHi.from_params({"hardest": 4})
    view = _view()
    first_a, first_b = a.on_logits(view).extra_logits, b.on_logits(view).extra_logits
    torch.testing.assert_close(first_a, first_b)
    assert not torch.equal(a.on_logits(view).extra_logits, first_a)  # fresh draws each step
    resumed = MoCHi.from_params({"hardest": 4})
    resumed.load_state_dict(b.state_dict())
    torch.testing.assert_close(resumed.on_logits(view).extra_logits, b.on_logits(view).extra_logits)


def test_param_checks():
    with pytest.raises(ConfigError, match="query_mix_max"):
        MoCHi.from_params({"query_mix_max": 0.6})
    with pytest.raises(ConfigError, match="hardest"):
        MoCHi.from_params({"hardest": 0})
    with pytest.raises(ConfigError, match="nothing is mixed"):
        MoCHi.from_params({"num_mix": 0, "num_query_mix": 0})
