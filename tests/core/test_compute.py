"""Compute that does not depend on the machine: FLOPs from the tokens through each encoder, checked against hand
counts on the toy corpus (tokens: each text tokenised alone, so no padding; ``N``: every parameter but the
embedding tables)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.batching import compose_epoch
from negbench.core.budget import budget_for
from negbench.core.compute import FlopMeter, count_tokens, non_embedding_params, watch
from negbench.core.mining import charged_flops
from negbench.core.models import load_model
from negbench.core.search import encode
from negbench.core.strategy import Strategy
from negbench.core.training.loop import train
from negbench.core.types import Negatives
from negbench.evaluation.retrieval import evaluate
from negbench.strategies.ar2 import AR2
from negbench.strategies.dense import DenseNegatives
from negbench.testing import make_context


def _model(model_dir):
    return load_model(ModelConfig(spec=str(model_dir), max_seq_length=32), "cpu")


def _tokens(model, text: str, pair: str | None = None, max_length: int | None = None) -> int:
    """Tokens of one text (or query–document pair) as the model's tokenizer gives it: CLS, pieces, SEP."""
    limit = max_length or model.max_seq_length
    return len(model.tokenizer(text, pair, truncation="longest_first", max_length=limit)["input_ids"])


def _hand_params(module: torch.nn.Module) -> int:
    """``N`` by hand: every parameter less the BERT embedding tables (words, positions, token types)."""
    tables = [m.weight for name, m in module.named_modules() if name.endswith(("_embeddings",))]
    return sum(p.numel() for p in module.parameters()) - sum(t.numel() for t in tables)


def test_n_is_the_non_embedding_parameter_count_and_tokens_leave_padding_out(tiny_model, ctx):
    model = _model(tiny_model)
    assert non_embedding_params(model) == _hand_params(model) == watch(model)
    texts = ["protein kinase", "galaxy star orbit planet telescope gravity comet item1x2"]
    assert count_tokens(model, texts, "document").tolist() == [_tokens(model, t) for t in texts]


def _loss_tokens(model, ctx, batches, negatives=None) -> int:
    """Query, positive and negative tokens of every row of ``batches``: what the loss embeds."""
    total = 0
    for batch in batches:
        for i in batch:
            example = ctx.examples[i]
            total += _tokens(model, example.query) + _tokens(model, ctx.dataset.corpus.texts[example.doc])
            for d in [] if negatives is None else negatives.ids[i]:
                total += _tokens(model, ctx.dataset.corpus.texts[int(d)])
    return total


def test_training_flops_match_a_hand_count_and_leave_epoch_end_evaluations_out(tiny_model, ctx):
    """Two steps of 32 with one negative column: 6·N per query, positive and negative token; the encodings an
    epoch-end callback makes (tuning's dev evaluation) are nobody's training cost."""
    ctx.num_negatives, ctx.batch_size = 1, 32
    candidates = Negatives([ctx.fill_random(i, np.empty(0, dtype=np.int64)) for i in range(len(ctx.examples))])
    cfg = TrainingConfig(epochs=1, batch_size=32, lr=1e-3, num_negatives=1)
    model = _model(tiny_model)
    evaluated = []

    def epoch_end(m, epoch):
        evaluated.append(encode(m, ctx.dataset.corpus.texts, kind="document"))

    outcome = train(model, ctx, Strategy(), cfg, device="cpu", candidates=candidates, on_epoch_end=epoch_end)
    batches = compose_epoch(ctx, Strategy(), budget_for(Strategy(), len(ctx.examples), cfg), 0)
    assert outcome.steps == len(batches) == 2 and evaluated
    hand = 6 * _hand_params(model) * _loss_tokens(model, ctx, batches, candidates)
    assert outcome.train_flops == hand
    assert outcome.excluded_flops == 2 * _hand_params(model) * sum(_tokens(model, t) for t in ctx.dataset.corpus.texts)


def test_ar2_counts_its_group_columns_and_its_rankers_pairs(tiny_model, ctx, monkeypatch):
    """Two steps of 8, no negative columns; the ranker is trusted from the second: the group's documents pass through
    the retriever (6·N each), and every step the ranker's query–document pairs (6·N of the ranker, reported with
    ``ctx.compute.add``)."""
    ctx.num_negatives = 0
    ar2 = AR2.from_params({"ranker_lr": 1e-3, "ranker_warmup": 1, "group_size": 2, "top_k": 4})
    groups, embedded = [], []
    draw, columns = ar2.draw_groups, ar2.group_logits
    monkeypatch.setattr(ar2, "draw_groups", lambda *a: groups.append(draw(*a)) or groups[-1])
    monkeypatch.setattr(ar2, "group_logits", lambda view, group: embedded.append(group) or columns(view, group))
    cfg = TrainingConfig(max_steps=2, batch_size=8, lr=1e-3, num_negatives=0)
    model = _model(tiny_model)
    ar2.setup(ctx)
    outcome = train(model, ctx, ar2, cfg, device="cpu", candidates=ar2.mine(ctx))
    batches = compose_epoch(ctx, Strategy(), budget_for(ar2, len(ctx.examples), cfg), 0)[:2]
    n, ranker = _hand_params(model), _hand_params(ar2.ranker)
    assert ranker == ar2.ranker_params and len(groups) == 2 and len(embedded) == 1
    text = ctx.doc_text
    pairs = sum(
        _tokens(model, ctx.examples[int(e)].query, text(int(d)), ar2.ranker.max_length)
        for batch, group in zip(batches, groups, strict=True)
        for e, row in zip(batch, group.tolist(), strict=True)
        for d in row
    )
    group_docs = sum(_tokens(model, text(int(d))) for d in torch.unique(embedded[0][:, 1:]))
    assert ctx.compute.reported == 6 * ranker * pairs
    assert outcome.train_flops == 6 * n * (_loss_tokens(model, ctx, batches) + group_docs) + 6 * ranker * pairs


def test_evaluation_flops_count_the_corpus_and_the_queries_even_from_given_embeddings(tiny_model, ctx):
    model = _model(tiny_model)
    data = ctx.dataset
    qrels = data.test()
    tokens = sum(_tokens(model, t) for t in data.eval_corpus.texts) + sum(
        _tokens(model, data.queries[q]) for q in qrels
    )
    hand = 2 * _hand_params(model) * tokens
    assert evaluate(model, data.eval_corpus, data.queries, qrels, ["ndcg@10"]).flops == hand
    given = encode(model, data.eval_corpus.texts, kind="document")
    assert evaluate(model, data.eval_corpus, data.queries, qrels, ["ndcg@10"], corpus_embeddings=given).flops == hand


def test_mining_flops_are_what_the_embeddings_cost_with_a_cold_or_a_warm_cache(toy_data, tiny_model, tmp_path):
    """As ``mine_s`` is charged: ``dense`` pays for encoding the corpus and its training queries whether the
    embeddings (and the top-k) are computed now, found in memory or loaded from disk by another job."""
    charged = []
    for fresh in (True, False, True):
        if fresh:
            ctx = make_context(toy_data, tiny_model, tmp_path / "cache")
        ctx.services.begin_run()
        with FlopMeter() as meter:
            DenseNegatives().mine(ctx)
        charged.append(charged_flops(meter.flops, [ctx.services]))
    model = ctx.services.base_model
    texts = ctx.dataset.corpus.texts + [ctx.dataset.queries[q] for q in ctx.query_ids]
    hand = 2 * _hand_params(model) * sum(_tokens(model, t) for t in texts)
    assert ctx.services.encode_calls == 0  # the last job's embeddings came from disk
    assert charged == [hand, hand, hand]


@pytest.mark.parametrize("grad", [False, True])
def test_a_forward_pass_counts_6n_per_token_when_autograd_records_it(tiny_model, grad):
    model = _model(tiny_model)
    features = model.preprocess(["protein kinase item0x1", "galaxy"])
    with torch.set_grad_enabled(grad), FlopMeter() as meter:
        model(features)
    assert meter.flops == (6 if grad else 2) * _hand_params(model) * (_tokens(model, "protein kinase item0x1") + 3)
