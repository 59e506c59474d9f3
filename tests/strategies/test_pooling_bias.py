"""pooling-bias (CET): a coupled relevance × selection model weights each negative by its probability of being
a true negative; all relevance estimates at 0 is plain InfoNCE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.strategies.pooling_bias import (
    CoupledModel,
    PoolingBias,
    PoolingBiasParams,
    fit_coupled,
    true_negative_weight,
)


def _view(batch: int = 4, seed: int = 0) -> LogitView:
    g = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, 8, generator=g), dim=-1)
    docs = F.normalize(torch.randn(2 * batch, 8, generator=g), dim=-1)
    n = 2 * batch
    return LogitView(
        query=query,
        docs=docs,
        logits=20 * query @ docs.T,
        target=torch.arange(batch),
        mask=torch.zeros(batch, n, dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(n),
        scale=20.0,
    )


def test_relevance_zero_is_plain_infonce():
    view = _view()
    weight = true_negative_weight(torch.zeros(4, 8), torch.rand(4, 8, generator=torch.Generator().manual_seed(1)))
    assert torch.all(weight == 1)
    assert info_nce(view.replace(column_weight=weight)).item() == pytest.approx(info_nce(view).item())


def test_posterior_of_an_unlabelled_document():
    r, s = torch.tensor([0.8, 0.8, 0.0, 1.0]), torch.tensor([0.1, 0.9, 0.5, 0.0])
    # r(1-s)/(1-rs): a likely-relevant document the pool likely skipped is likely a false negative
    expected = 1 - torch.tensor([0.8 * 0.9 / (1 - 0.08), 0.8 * 0.1 / (1 - 0.72), 0.0, 1.0])
    assert torch.allclose(true_negative_weight(r, s), expected)


def _simulate(n: int = 20_000, seed: int = 0):
    """Pools from the model itself: relevance rises with the score, selection falls with both ranks."""
    g = torch.Generator().manual_seed(seed)
    cos = torch.rand(n, generator=g)
    bm25_rank = torch.randint(1, 200, (n,), generator=g).double()
    dense_rank = torch.randint(1, 200, (n,), generator=g).double()
    features = torch.stack([cos.double(), torch.log1p(bm25_rank), torch.log1p(dense_rank)], dim=1)
    r = torch.sigmoid(8 * (cos.double() - 0.8))
    s = torch.sigmoid(3.0 - 1.2 * torch.log1p(bm25_rank) + 0.2 * torch.log1p(dense_rank))
    y = (torch.rand(n, generator=g, dtype=torch.float64) < r * s).double()
    return features, y, r, s


def test_the_joint_fit_recovers_relevance_and_selection():
    features, y, r, s = _simulate()
    model = fit_coupled(features, y, l2=0.0)
    fitted_r, fitted_s = model.split(features)
    assert (fitted_r * fitted_s - r * s).abs().mean() < 0.02  # the observed-label model
    assert (fitted_r - r).abs().mean() < 0.1 and (fitted_s - s).abs().mean() < 0.1  # and its two factors


def test_an_unpooled_likely_relevant_document_weighs_less_than_a_pooled_one():
    """Same relevance evidence (teacher score), different selection: the deep-ranked one, which the pool would
    rarely have judged, is more likely a false negative. Without the selection model they would weigh the
    same."""
    features, y, _, _ = _simulate()
    model = fit_coupled(features, y)
    top = torch.tensor([[0.95, np.log1p(1), np.log1p(1)]], dtype=torch.float64)
    deep = torch.tensor([[0.95, np.log1p(180), np.log1p(180)]], dtype=torch.float64)
    easy = torch.tensor([[0.1, np.log1p(180), np.log1p(180)]], dtype=torch.float64)
    w_top, w_deep, w_easy = (true_negative_weight(*model.split(x)).item() for x in (top, deep, easy))
    assert w_deep < w_top - 0.2, (w_deep, w_top)
    assert w_easy > 0.95  # a low-scoring document is a true negative wherever it ranks


def test_weights_on_the_toy_corpus_are_probabilities_and_never_touch_the_target(ctx):
    strategy = PoolingBias.from_params({"depth": 20})
    strategy.setup(ctx)
    assert isinstance(strategy.model, CoupledModel)
    view = _view()
    out = strategy.on_logits(
        view.replace(
            example_ids=torch.arange(4),
            doc_ids=torch.tensor([int(ctx.positive_docs[i]) for i in range(4)] + [0, 1, 2, 3]),
        )
    )
    assert out.column_weight.shape == (4, 8)
    assert torch.all((out.column_weight >= 0) & (out.column_weight <= 1))
    loss = info_nce(out)  # the target column is weighted 1 by the loss whatever the strategy says
    assert torch.isfinite(loss)


def test_a_guide_changes_the_relevance_features(toy_data, tiny_model, tmp_path):
    from negbench.testing import make_context
    from negbench.testing.fixtures import build_tiny_encoder

    guide = build_tiny_encoder(tmp_path / "guide", seed=5)
    base_ctx = make_context(toy_data, tiny_model, tmp_path / "cache")
    guided_ctx = make_context(toy_data, tiny_model, tmp_path / "cache", guide_dir=guide)
    a, b = PoolingBias.from_params({"depth": 10}), PoolingBias.from_params({"depth": 10})
    a.setup(base_ctx)
    b.setup(guided_ctx)
    rows, docs = np.zeros(5, dtype=np.int64), np.arange(5)
    assert not torch.allclose(a.features(rows, docs)[:, 0], b.features(rows, docs)[:, 0])


@pytest.mark.parametrize("bad", [{"depth": 0}, {"l2": -1.0}, {"source": "tfidf"}])
def test_bad_params(bad):
    with pytest.raises(ValueError):
        PoolingBiasParams(**bad)
