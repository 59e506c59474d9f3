"""gist: the guide removes exactly the candidates it scores above the positive (minus the margin)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.config.suite import ModelConfig
from negbench.core.compute import FlopMeter
from negbench.core.loss import info_nce
from negbench.core.models import load_model
from negbench.core.setup import sizes_of
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.gist import GIST
from negbench.testing import build_tiny_encoder

SCALE = 20.0


def _view(batch: int = 6, columns_per_row: int = 2, dim: int = 8, seed: int = 0) -> LogitView:
    gen = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, dim, generator=gen), dim=-1)
    docs = F.normalize(torch.randn(batch * columns_per_row, dim, generator=gen), dim=-1)
    mask = torch.zeros(batch, batch * columns_per_row, dtype=torch.bool)
    mask[0, batch + 1] = True  # a labelled positive of row 0 the loss already masks
    return LogitView(
        query=query,
        docs=docs,
        logits=SCALE * query @ docs.T,
        target=torch.arange(batch),
        mask=mask,
        row_weight=torch.ones(batch),
        example_ids=torch.tensor([3, 0, 5, 1, 4, 2]),
        doc_ids=torch.arange(batch * columns_per_row) * 2 + 1,
        scale=SCALE,
    )


def _guide(n_examples: int = 6, n_corpus: int = 30, dim: int = 8, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return (
        F.normalize(torch.randn(n_examples, dim, generator=gen), dim=-1),
        F.normalize(torch.randn(n_corpus, dim, generator=gen), dim=-1),
    )


def _expected(view: LogitView, gq: torch.Tensor, gd: torch.Tensor, strategy: str, margin: float) -> set:
    """Columns to remove, by a plain loop over the definition (independent of the implementation)."""
    removed = set()
    for i, e in enumerate(view.example_ids.tolist()):
        pos = float(gq[e] @ gd[int(view.doc_ids[i])])
        threshold = pos - margin if strategy == "absolute" else pos - abs(pos) * margin
        for j, d in enumerate(view.doc_ids.tolist()):
            if j != i and not view.mask[i, j] and float(gq[e] @ gd[d]) > threshold:
                removed.add((i, j))
    return removed


@pytest.mark.parametrize(
    ("strategy", "margin"),
    [("absolute", 0.0), ("absolute", 0.1), ("absolute", -0.1), ("relative", 0.0), ("relative", 0.3)],
)
def test_removes_exactly_the_candidates_the_guide_ranks_above_the_positive(strategy, margin):
    view = _view()
    gq, gd = _guide()
    gist = GIST.from_params({"margin_strategy": strategy, "margin": margin})
    gist.set_guide(gq, gd)
    out = gist.on_logits(view)
    expected = _expected(view, gq, gd, strategy, margin)
    removed = {(i, j) for i, j in (out.mask & ~view.mask).nonzero().tolist()}
    assert removed == expected
    assert expected, "the fixture should make the guide remove something"
    assert (out.mask | ~view.mask).all(), "masks already set by the loss stay set"
    assert not out.mask[torch.arange(6), out.target].any(), "a row's own positive is never removed"
    torch.testing.assert_close(out.logits, view.logits)  # only the mask changes
    if strategy == "absolute" and margin == 0.0:  # removing candidates can only lower each row's loss
        assert info_nce(out) < info_nce(view)


def test_margin_makes_filtering_monotone():
    view = _view()
    gq, gd = _guide()
    counts = []
    for margin in (-0.2, 0.0, 0.2):
        gist = GIST.from_params({"margin": margin})
        gist.set_guide(gq, gd)
        counts.append(int((gist.on_logits(view).mask & ~view.mask).sum()))
    assert counts[0] <= counts[1] <= counts[2] and counts[0] < counts[2]


def test_setup_uses_the_frozen_base_model_embeddings(ctx):
    gist = GIST()
    gist.setup(ctx)
    queries = ctx.services.query_embeddings(ctx.query_ids)
    torch.testing.assert_close(gist.guide_queries, queries[torch.as_tensor(ctx.example_query)].float())
    torch.testing.assert_close(gist.guide_docs, ctx.services.corpus_embeddings().float())
    assert gist.guide_queries.shape[0] == len(ctx.examples)


def test_guide_spec_loads_another_model(ctx, tiny_model, tmp_path):
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.sin(torch.arange(p.numel(), dtype=p.dtype)).view_as(p))
    other = tmp_path / "perturbed-guide"
    model.save(str(other))
    gist = GIST.from_params({"guide": str(other), "guide_max_seq_length": 32})
    gist.setup(ctx)
    base = GIST()
    base.setup(ctx)
    assert gist.guide_docs.shape == base.guide_docs.shape
    assert not torch.allclose(gist.guide_docs, base.guide_docs)


def test_needs_a_guide_and_valid_params():
    with pytest.raises(RuntimeError, match="guide"):
        GIST().on_logits(_view())
    with pytest.raises(ConfigError, match="margin_strategy"):
        GIST.from_params({"margin_strategy": "percent"})
    with pytest.raises(ConfigError, match="margin"):
        GIST.from_params({"margin": 2.0})


def test_a_named_guide_is_priced_as_itself(ctx, tmp_path):
    """With ``params.guide`` the estimate's preparation is that model (its own ``N``, its ``guide_max_seq_length``)
    encoding the corpus and training queries, what ``setup`` measures; not the suite's teacher (here the base
    model: before the fix, 1.47 times this guide's cost)."""
    guide = build_tiny_encoder(tmp_path / "guide", dim=48, layers=1)
    gist = GIST.from_params({"guide": str(guide), "guide_max_seq_length": 8})
    work = gist.workload(ctx, sizes_of(ctx.services))
    with FlopMeter() as meter:
        gist.setup(ctx)
    assert work.prep == pytest.approx(meter.flops, rel=1e-9) and not work.negatives
    assert work.prep != pytest.approx(GIST().workload(ctx, sizes_of(ctx.services)).prep, rel=0.1)
