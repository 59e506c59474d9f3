"""ar2 (AR2's adversarial retriever–ranker, Zhang et al. ICLR 2022): a cross-encoder ranker learns to pick the
positive out of a group of the retriever's own top-k candidates (positive + ``group_size`` drawn from the top
``top_k``, independent of the suite's ``num_negatives``), and the retriever fits the ranker's distribution over that
group only; with the ranker frozen (or not distilled from) it is the static hard-negative run, step for step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import negbench.strategies.ar2 as ar2_module
from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.budget import EQUAL, budget_for
from negbench.core.loss import info_nce
from negbench.core.models import load_model
from negbench.core.strategy import LogitView
from negbench.core.training.loop import train
from negbench.strategies._ar2_ranker import mean_pair_tokens
from negbench.strategies._windows import POSITIVE_SLACK
from negbench.strategies.ar2 import AR2, AR2Params
from negbench.strategies.dense import DenseNegatives
from negbench.testing import make_context, toy_setup
from negbench.testing.conformance import LONG_DOC_WORDS

SCALE = 20.0


def _model(model_dir):
    return load_model(ModelConfig(spec=str(model_dir), max_seq_length=32), "cpu")


def _run(ctx, model_dir, strategy, steps: int = 4):
    model = _model(model_dir)
    strategy.setup(ctx)
    cfg = TrainingConfig(max_steps=steps, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    outcome = train(model, ctx, strategy, cfg, device="cpu", candidates=strategy.mine(ctx))
    return outcome, [p.detach().clone() for p in model.parameters()]


def _spy_ranker(monkeypatch) -> list[tuple[list[str], list[list[str]], torch.Tensor]]:
    """Record every ranker step's queries, groups of documents and scores."""
    seen = []
    step = ar2_module.ranker_step

    def spy(ranker, optimizer, queries, documents, chunk, seed):
        scores, loss = step(ranker, optimizer, queries, documents, chunk, seed)
        seen.append((queries, documents, scores))
        return scores, loss

    monkeypatch.setattr(ar2_module, "ranker_step", spy)
    return seen


def _top_k(ctx, top_k: int, range_max: int = 30) -> list[list[int]]:
    """Each example's top ``top_k`` under the base model, positives removed (the groups' pool)."""
    ranked = ctx.dense_candidates(max(top_k, range_max) + POSITIVE_SLACK)
    return [[int(d) for d in ids[:top_k]] for ids in ranked.ids]


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


def test_distilling_from_the_ranker_over_its_group_changes_the_run(ctx, tiny_model, monkeypatch):
    """At the suites' ``num_negatives = 1`` the ranker still ranks a group of ``1 + group_size`` every step."""
    ctx.num_negatives = 1
    window = {"range_max": 10, "sampling": "top", "refresh_every": 1000}
    dense_outcome, _ = _run(ctx, tiny_model, AR2.from_params({**window, "ranker_lr": 0.0}))
    seen = _spy_ranker(monkeypatch)
    ar2 = AR2.from_params({**window, "ranker_lr": 1e-3, "ranker_warmup": 1, "distill_weight": 1.0, "group_size": 4})
    ar2_outcome, _ = _run(ctx, tiny_model, ar2)
    assert ar2.state["distilled_steps"] == 3  # every step after the first (warm-up) update
    assert ar2_outcome.losses != dense_outcome.losses and all(np.isfinite(ar2_outcome.losses))
    assert [tuple(scores.shape) for *_, scores in seen] == [(8, 5)] * 4


def _batch_view(ctx, batch: int = 8) -> LogitView:
    """A batch of the first ``batch`` examples with ``ctx.num_negatives`` dense negatives as negative columns."""
    mined = ctx.dense_candidates(5)
    examples = torch.arange(batch)
    positives = torch.as_tensor(ctx.positive_docs[:batch])
    negatives = [torch.as_tensor([int(mined.ids[i][j]) for i in range(batch)]) for j in range(ctx.num_negatives)]
    doc_ids = torch.cat([positives, *negatives])
    gen = torch.Generator().manual_seed(0)
    query = torch.nn.functional.normalize(torch.randn(batch, 32, generator=gen), dim=-1)
    return LogitView(
        query=query,
        docs=torch.zeros(len(doc_ids), 32),
        logits=torch.randn(batch, len(doc_ids), generator=gen),
        target=torch.arange(batch),
        mask=torch.zeros(batch, len(doc_ids), dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=examples,
        doc_ids=doc_ids,
        scale=SCALE,
    )


def test_the_ranker_scores_the_positive_and_group_size_of_the_retrievers_top_k(ctx, monkeypatch):
    """The group is the positive + ``group_size`` distinct documents of the retriever's top ``top_k`` (no labelled
    positive), whatever the suite's ``num_negatives``; the ranker's softmax is over the whole group."""
    ctx.num_negatives = 1
    seen = _spy_ranker(monkeypatch)
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "group_size": 5, "top_k": 12, "range_max": 10})
    ar2.setup(ctx)
    ar2.mine(ctx)
    view = _batch_view(ctx)
    assert view.logits.shape == (8, 16)  # in-batch: 8 positives + 8 suite negatives (num_negatives 1)
    assert ar2.on_logits(view) is view  # warm-up: the retriever's loss is untouched
    (queries, documents, scores), pool = seen[0], _top_k(ctx, 12)
    assert scores.shape == (8, 6)
    assert queries == [ctx.examples[i].query for i in range(8)]
    texts = {ctx.doc_text(d): d for d in range(len(ctx.dataset.corpus))}
    for i, group in enumerate(documents):
        ids = [texts[t] for t in group]
        assert ids[0] == ctx.positive_docs[i] and len(set(ids)) == 6
        assert set(ids[1:]) <= set(pool[i]) and not set(ids[1:]) & ctx.forbidden(i)
    groups = ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 0)
    assert torch.equal(groups, ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 0))
    assert not torch.equal(groups, ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 1))


def test_the_groups_pool_is_the_retrievers_own_refreshed_top_k(ctx, tiny_model):
    ar2 = AR2.from_params({"ranker_lr": 0.0, "top_k": 12, "range_max": 10})
    ar2.setup(ctx)
    assert len(ar2.mine(ctx).ids[0]) == 10  # the suite's columns still come from ance's window
    assert [list(p) for p in ar2.pool] == _top_k(ctx, 12)
    ctx.model = _model(tiny_model)
    for p in ctx.model.parameters():  # a different retriever: a different top-k
        p.data.add_(0.05 * torch.randn_like(p))
    ar2.refresh(ctx, 7)
    ranked = ctx.dense_candidates(30 + POSITIVE_SLACK, ctx.model)
    assert [list(p) for p in ar2.pool] == [[int(d) for d in ids[:12]] for ids in ranked.ids]


def test_the_ranker_learns_to_pick_the_positive_among_the_retrievers_candidates(ctx):
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_warmup": 1, "group_size": 2})
    ar2.setup(ctx)
    ar2.mine(ctx)
    group = ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 0)
    first = torch.softmax(ar2.train_ranker(torch.arange(8), group), dim=1)[:, 0].mean()
    for _ in range(25):
        last = torch.softmax(ar2.train_ranker(torch.arange(8), group), dim=1)[:, 0].mean()
    assert first < 0.5 < 0.9 < last, (float(first), float(last))  # from near-uniform over 3 to the positive


def test_the_retriever_fits_the_rankers_distribution_over_the_group_only(ctx, tiny_model, monkeypatch):
    """Once trusted, each row's softmax is its group (positive + the group's documents, embedded by the model under
    training); the soft target puts no mass outside the group and the retriever's gradient is that of the KL to
    the ranker's distribution normalised over the group, with nothing on the batch's other columns."""
    ctx.num_negatives = 1
    ctx.model = _model(tiny_model).eval()  # eval: no dropout, so the group's embeddings can be recomputed
    seen = _spy_ranker(monkeypatch)
    params = {"ranker_lr": 1e-3, "ranker_warmup": 2, "distill_weight": 0.6, "temperature": 2.0, "group_size": 5}
    ar2 = AR2.from_params(params)
    ar2.setup(ctx)
    ar2.mine(ctx)
    view = _batch_view(ctx)
    for _ in range(2):  # warm-up: plain InfoNCE
        assert ar2.on_logits(view).soft_target is None
    out = ar2.on_logits(view)
    batch, n = view.logits.shape
    target, ranker_scores = out.soft_target, seen[-1][2]
    assert out.extra_logits.shape == (batch, 5) and target.shape == (batch, n + 5)
    group = ar2.draw_groups(view.example_ids, view.doc_ids[view.target], view.step)
    texts = [ctx.doc_text(int(d)) for d in group[:, 1:].reshape(-1)]
    docs = torch.nn.functional.normalize(ctx.model.encode(texts, convert_to_tensor=True), dim=-1).view(batch, 5, -1)
    retriever = SCALE * torch.einsum("bd,bgd->bg", view.query, docs)  # each row's group under the retriever
    assert torch.allclose(out.extra_logits, retriever, atol=1e-4)
    in_group = torch.zeros_like(target, dtype=torch.bool)
    in_group[torch.arange(batch), view.target] = True
    in_group[:, n:] = True
    assert torch.all(target[~in_group] == 0) and torch.all(out.mask == ~in_group[:, :n])  # support: the group
    assert torch.allclose(target.sum(dim=1), torch.ones(batch))
    ranker = torch.softmax(ranker_scores / 2.0, dim=1)  # its scores before this step's update, temperature 2
    expected = 0.6 * ranker
    expected[:, 0] += 0.4
    assert torch.allclose(target[in_group].view(batch, 6), expected, atol=1e-6)
    logits = view.logits.clone().requires_grad_(True)
    extra = out.extra_logits.detach().clone().requires_grad_(True)
    info_nce(out.replace(logits=logits, extra_logits=extra)).backward()
    group_logits = torch.cat([view.logits.diagonal()[:, None], extra.detach()], dim=1)
    grad = (torch.softmax(group_logits, dim=1) - expected) / batch  # the group's softmax, not the batch's
    assert torch.all(logits.grad[~in_group[:, :n]] == 0)
    assert torch.allclose(torch.cat([logits.grad.diagonal()[:, None], extra.grad], dim=1), grad, atol=1e-6)


def test_budget_reason_names_the_groups_extra_retriever_columns(ctx):
    ar2 = AR2.from_params({})  # the defaults: a group of 7 from the top 30
    reason = ar2.budget_reason()
    assert reason is not None and "positive + 7" in reason and "top 30" in reason and "num_negatives" in reason
    cfg = TrainingConfig(epochs=1, batch_size=8, num_negatives=1)
    assert budget_for(ar2, len(ctx.examples), cfg).reason == reason
    assert AR2.from_params({"ranker_lr": 0.0}).budget_reason() is None  # a frozen ranker is the ance run
    assert budget_for(AR2.from_params({"distill_weight": 0.0}), len(ctx.examples), cfg).reason == EQUAL


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
    ar2.train_ranker(torch.arange(8), ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 0))
    assert all(torch.equal(a, b) for a, b in zip(before, base.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(ar2.ranker.transformer.parameters(), before, strict=True))


def test_a_chunked_ranker_step_is_the_same_step(ctx):
    """``ranker_chunk`` changes memory, not the step: the same scores and the same gradient."""
    runs = []
    for chunk in (3, 8):
        ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_chunk": chunk, "group_size": 3})
        ar2.setup(ctx)
        for module in ar2.ranker.modules():  # dropout draws differ with the chunking; the arithmetic must not
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        group = ar2.draw_groups(torch.arange(8), torch.as_tensor(ctx.positive_docs[:8]), 0)
        scores = ar2.train_ranker(torch.arange(8), group)
        runs.append((scores, [p.grad.clone() for p in ar2.ranker.parameters() if p.grad is not None]))
    (scores_a, grads_a), (scores_b, grads_b) = runs
    assert scores_a.shape == (8, 4) and torch.allclose(scores_a, scores_b, atol=1e-5)
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
        {"group_size": 0},
        {"group_size": 8, "top_k": 7},
        {"top_k": 10**9},
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


def test_mean_pair_tokens_is_the_mean_over_every_query_and_document_pair():
    rng = np.random.default_rng(0)
    queries, docs = rng.integers(0, 40, 17), rng.integers(0, 120, 50)
    brute = np.minimum(queries[:, None] + docs[None, :] + 3, 64).mean()  # longest_first: a pair trimmed to 64
    assert mean_pair_tokens(queries, docs, 3, 64) == pytest.approx(brute, rel=1e-12)


def test_the_estimate_prices_each_ranker_pair_as_the_ranker_truncates_it(toy_root, tiny_model):
    """Documents longer than the bi-encoder's ``max_seq_length`` (32): the ranker reads a pair of up to twice that,
    so a pair costs what the ranker's own tokenisation makes of it (here 64 tokens), not the example's query plus
    the bi-encoder's truncated document (38, the estimate before the fix; 27% low on SciFact)."""
    data, _ = toy_setup(toy_root, LONG_DOC_WORDS)
    ctx = make_context(data, tiny_model, toy_root / "cache")
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "group_size": 3})
    ar2.setup(ctx)
    ranker, corpus, queries = ar2.ranker, ctx.dataset.corpus.texts, [e.query for e in ctx.examples]
    with torch.no_grad():  # the pairs of each example with its positive, counted by the ranker itself
        ranker(queries, [corpus[d] for d in ctx.positive_docs])
    pairs = ranker.tokenizer(
        [q for q in queries for _ in corpus],
        [d for _ in queries for d in corpus],
        truncation="longest_first",
        max_length=ranker.max_length,
    )  # every example's query with every document, tokenised as Ranker.forward does
    every = np.mean([len(ids) for ids in pairs["input_ids"]])
    assert ar2.ranker_pair_tokens(ctx) == pytest.approx((ranker.tokens / len(queries) + 3 * every) / 4, rel=1e-9)
    sizes = ctx.services.token_sizes()
    assert (
        ranker.max_length == 64
        and sizes.mean_doc == 32
        and ar2.ranker_pair_tokens(ctx)
        > 1.5 * (sizes.queries([e.query_id for e in ctx.examples]) / len(ctx.examples) + sizes.mean_doc)
    )


def test_unexercised_names_its_own_gaps_not_ances() -> None:
    """AR2 inherited ANCE's note, "trains on the base model's negatives as dense does", false for AR2 (its ranker
    trains every step); its own gap, a warm-up as long as the run (the retriever never distilled), went unsaid."""
    short = AR2().unexercised(1, 8)  # refresh_every 50, ranker_warmup 10
    assert "as dense does" not in short and "feeds its groups throughout" in short
    assert "ranker_warmup" in short and "never distilled, so it trains as ance does" in short
    assert "ranker_warmup" not in AR2().unexercised(1, 25) and AR2().unexercised(1, 51) is None
