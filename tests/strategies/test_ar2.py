"""ar2 (AR2's adversarial retriever–ranker): a cross-encoder ranker learns to pick the positive among the
retriever's own candidates, and the retriever fits the ranker's distribution over them; with the ranker frozen
(or not distilled from) it is the static hard-negative run, step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.loss import info_nce
from negbench.core.models import load_model
from negbench.core.strategy import LogitView
from negbench.core.training.loop import train
from negbench.strategies.ar2 import AR2, AR2Params, own_columns
from negbench.strategies.dense import DenseNegatives

SCALE = 20.0


def _run(ctx, model_dir, strategy, steps: int = 4):
    model = load_model(ModelConfig(spec=str(model_dir), max_seq_length=32), "cpu")
    strategy.setup(ctx)
    cfg = TrainingConfig(max_steps=steps, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    outcome = train(model, ctx, strategy, cfg, device="cpu", candidates=strategy.mine(ctx))
    return outcome, [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("params", [{"ranker_lr": 0.0}, {"ranker_lr": 1e-3, "ranker_warmup": 1, "distill_weight": 0.0}])
def test_without_the_rankers_distribution_it_is_the_static_dense_run(ctx, tiny_model, params):
    window = {"range_max": 10, "sampling": "top"}
    dense_outcome, dense_params = _run(ctx, tiny_model, DenseNegatives.from_params(window))
    ar2 = AR2.from_params({**window, "refresh_every": 1000, **params})
    ar2_outcome, ar2_params = _run(ctx, tiny_model, ar2)
    assert ar2_outcome.losses == dense_outcome.losses
    assert all(torch.equal(a, b) for a, b in zip(ar2_params, dense_params, strict=True))
    assert ar2.state["distilled_steps"] == 0
    assert ar2.state["ranker_updates"] == (0 if params["ranker_lr"] == 0 else 4)  # it trained, the retriever
    # did not notice (its own random stream is left alone)


def test_distilling_from_the_ranker_changes_the_run(ctx, tiny_model):
    window = {"range_max": 10, "sampling": "top", "refresh_every": 1000}
    dense_outcome, _ = _run(ctx, tiny_model, AR2.from_params({**window, "ranker_lr": 0.0}))
    ar2 = AR2.from_params({**window, "ranker_lr": 1e-3, "ranker_warmup": 1, "distill_weight": 1.0})
    ar2_outcome, _ = _run(ctx, tiny_model, ar2)
    assert ar2.state["distilled_steps"] == 3  # every step after the first (warm-up) update
    assert ar2_outcome.losses != dense_outcome.losses


def _batch_view(ctx, batch: int = 8) -> LogitView:
    """A batch of the first ``batch`` examples with their two hardest dense negatives as the negative columns."""
    mined = ctx.dense_candidates(5)
    examples = torch.arange(batch)
    positives = torch.as_tensor(ctx.positive_docs[:batch])
    negatives = [torch.as_tensor([int(mined.ids[i][j]) for i in range(batch)]) for j in range(2)]
    doc_ids = torch.cat([positives, *negatives])
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(batch, len(doc_ids), generator=gen)
    return LogitView(
        query=torch.zeros(batch, 4),
        docs=torch.zeros(len(doc_ids), 4),
        logits=logits,
        target=torch.arange(batch),
        mask=torch.zeros(batch, len(doc_ids), dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=examples,
        doc_ids=doc_ids,
        scale=SCALE,
    )


def test_the_ranker_learns_to_pick_the_positive_among_the_retrievers_candidates(ctx):
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_warmup": 1})
    ar2.setup(ctx)
    view = _batch_view(ctx)
    columns = own_columns(view)
    first = torch.softmax(ar2.train_ranker(view, columns), dim=1)[:, 0].mean()
    for _ in range(25):
        last = torch.softmax(ar2.train_ranker(view, columns), dim=1)[:, 0].mean()
    assert first < 0.5 < 0.9 < last, (float(first), float(last))  # from near-uniform over 3 to the positive


def test_the_soft_target_is_the_rankers_distribution_over_the_rows_own_documents(ctx):
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_warmup": 2, "distill_weight": 0.6, "temperature": 2.0})
    ar2.setup(ctx)
    view = _batch_view(ctx)
    view.mask[3, 8 + 3] = True  # row 3's first negative is, say, a repeated document: no mass, no ranker say
    for _ in range(2):  # warm-up: plain InfoNCE
        assert ar2.on_logits(view).soft_target is None
    seen = []
    train_ranker = ar2.train_ranker
    ar2.train_ranker = lambda *args: seen.append(train_ranker(*args)) or seen[-1]
    out = ar2.on_logits(view)
    target = out.soft_target
    assert target is not None and target.shape == view.logits.shape
    columns = own_columns(view)
    own = target.gather(1, columns)
    assert torch.allclose(target.sum(dim=1), torch.ones(8))
    in_batch = torch.ones_like(target, dtype=torch.bool).scatter(1, columns, False)
    assert torch.all(target[in_batch] == 0)
    assert own[3, 1] == 0
    assert torch.all(own[:, 0] >= 0.4 - 1e-6)  # (1 − w) on the positive, plus the ranker's share
    ranker = torch.softmax(seen[0] / 2.0, dim=1)  # its scores before this step's update, temperature 2
    expected = 0.6 * ranker
    expected[:, 0] += 0.4
    assert torch.allclose(own, expected, atol=1e-6)
    # the retriever's gradient on its own columns moves its softmax toward that target
    logits = view.logits.clone().requires_grad_(True)
    info_nce(out.replace(logits=logits)).backward()
    probs = torch.softmax(view.logits.masked_fill(view.mask, float("-inf")), dim=1)
    assert torch.allclose(logits.grad, (probs - target) / 8, atol=1e-6)


def test_ranker_scores_come_from_joint_encoding_of_query_and_document(ctx):
    ar2 = AR2.from_params({"ranker_lr": 1e-3})
    ar2.setup(ctx)
    ranker = ar2.ranker.eval()
    with torch.no_grad():
        a = ranker(["alpha beta", "alpha beta"], ["gamma delta", "epsilon"])
        b = ranker(["epsilon", "alpha beta"], ["gamma delta", "epsilon"])
    assert a.shape == (2,) and not torch.isclose(a[0], b[0])  # the query changes the document's score
    assert torch.isclose(a[1], b[1])


def test_the_ranker_starts_from_the_base_transformer_and_leaves_it_untouched(ctx):
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_warmup": 1})
    ar2.setup(ctx)
    base = ctx.services.base_model[0].auto_model
    before = [p.detach().clone() for p in base.parameters()]
    for a, b in zip(ar2.ranker.transformer.parameters(), base.parameters(), strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    view = _batch_view(ctx)
    ar2.train_ranker(view, own_columns(view))
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ar2.ranker.transformer.parameters(), before, strict=True))


def test_a_chunked_ranker_step_is_the_same_step(ctx):
    """``ranker_chunk`` changes memory, not the step: the same scores and the same gradient."""
    view = _batch_view(ctx)
    runs = []
    for chunk in (3, 8):
        ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_chunk": chunk})
        ar2.setup(ctx)
        for module in ar2.ranker.modules():  # dropout draws differ with the chunking; the arithmetic must not
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        scores = ar2.train_ranker(view, own_columns(view))
        runs.append((scores, [p.grad.clone() for p in ar2.ranker.parameters() if p.grad is not None]))
    (scores_a, grads_a), (scores_b, grads_b) = runs
    assert torch.allclose(scores_a, scores_b, atol=1e-5)
    assert len(grads_a) == len(grads_b) > 0
    # atol: summation order differs with the chunking (embedding rows: ~1e-7 seen); a wrong split is ~1e-3
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(grads_a, grads_b, strict=True))


@pytest.mark.parametrize(
    "bad",
    [
        {"ranker_lr": -1e-5},
        {"ranker_warmup": 0},
        {"distill_weight": 1.5},
        {"temperature": 0.0},
        {"refresh_every": 0},
        {"ranker_chunk": 0},
        {"temperature": 1e-300},
        {"temperature": 0.009},
        {"ranker_warmup": 10**19},
    ],
)
def test_bad_params(bad):
    with pytest.raises(ValueError):
        AR2Params(**bad)


def test_search_space_is_anances_plus_the_rankers():
    space = AR2.search_space()
    assert {"refresh_every", "ranker_lr", "ranker_warmup", "distill_weight", "temperature"} <= set(space)
    assert np.isclose(space["ranker_lr"].low, 1e-5)


def test_a_warmup_longer_than_the_run_is_warned_about(ctx, caplog):
    """ranker_warmup >= the run's steps: the ranker would train every step and never be used (ance plus cost)."""
    ctx.total_steps = 20
    with caplog.at_level("WARNING", logger="negbench.strategies.ar2"):
        AR2.from_params({"ranker_warmup": 19}).setup(ctx)
    assert not caplog.records
    with caplog.at_level("WARNING", logger="negbench.strategies.ar2"):
        AR2.from_params({"ranker_warmup": 20}).setup(ctx)
    assert "never trusted" in caplog.text
