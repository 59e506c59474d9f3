"""generated: negatives written from each positive by a generator plugin, as training-only documents — never
corpus documents — cached per dataset, drawn per epoch, topped up with random corpus documents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from negbench.core import registry as registry_module
from negbench.core.probes.negatives import sampled_negative_ids, score_gap
from negbench.core.training.feeding import NegativeCollator, NegativeState, check_negatives
from negbench.errors import ConfigError
from negbench.generators import NegativeGenerator
from negbench.strategies.generated import Generated, GeneratedParams, generate_pool
from negbench.testing import make_context


class Rewriter(NegativeGenerator):
    """A test generator: ``count`` marked rewrites of the positive; counts its calls."""

    name = "rewriter"
    calls = 0

    def generate(self, query, positive, count, rng):
        Rewriter.calls += 1
        return [f"{positive} variant{k} {int(rng.integers(1000))}" for k in range(count)]


@pytest.fixture
def rewriter(monkeypatch):
    real = registry_module.generators.get
    monkeypatch.setattr(
        registry_module.generators,
        "get",
        lambda name, field=None: Rewriter if name == "rewriter" else real(name, field),
    )
    Rewriter.calls = 0
    return Rewriter


def test_negatives_are_generated_texts_of_the_examples_own_positive(ctx):
    strategy = Generated.from_params({"pool": 3})
    candidates = strategy.mine(ctx)
    n_corpus = len(ctx.dataset.corpus)
    for i, pool in enumerate(candidates.ids):
        assert len(pool) >= 1 and all(d >= n_corpus for d in pool)  # not corpus documents
        positive = ctx.dataset.corpus.texts[ctx.examples[i].doc].split()
        for d in pool:
            text = ctx.doc_text(int(d)).split()
            assert text != positive and len(set(text) & set(positive)) >= 0.8 * len(set(positive))
    sampled = strategy.sample(ctx, candidates, 0)
    for i, row in enumerate(sampled.ids):  # per_example 1 generated, the other of 2 a corpus document
        assert len(row) == 2 and row[0] >= n_corpus and row[1] < n_corpus
        assert row[0] in candidates.ids[i]


def test_generated_negatives_are_harder_than_random_ones(ctx):
    """An edit of the positive is closer to the query (base model) than a random document: the score gap of the
    generated negatives is smaller than that of random corpus negatives."""
    strategy = Generated()
    sampled = strategy.sample(ctx, strategy.mine(ctx), 0)
    generated = type(sampled)([row[:1] for row in sampled.ids])
    random = type(sampled)([row[1:] for row in sampled.ids])
    assert score_gap(ctx, generated) < 0.5 * score_gap(ctx, random)


def test_pool_is_drawn_per_epoch_and_deterministic(ctx, toy_data, tiny_model, toy_root, rewriter):
    strategy = Generated.from_params({"generator": "rewriter", "pool": 4, "per_example": 2})
    candidates = strategy.mine(ctx)
    epochs = [strategy.sample(ctx, candidates, epoch) for epoch in range(3)]
    assert any(not np.array_equal(a, b) for a, b in zip(epochs[0].ids, epochs[1].ids, strict=True))
    again = make_context(toy_data, tiny_model, toy_root / "cache", num_negatives=2)
    other = Generated.from_params({"generator": "rewriter", "pool": 4, "per_example": 2})
    other_epoch = other.sample(again, other.mine(again), 1)
    assert [[again.doc_text(int(d)) for d in row] for row in other_epoch.ids] == [
        [ctx.doc_text(int(d)) for d in row] for row in epochs[1].ids
    ]


def test_generated_texts_are_cached_per_dataset_not_per_seed(toy_data, tiny_model, tmp_path, rewriter):
    first = make_context(toy_data, tiny_model, tmp_path, seed=0)
    Generated.from_params({"generator": "rewriter"}).mine(first)
    calls = Rewriter.calls
    assert calls == len({(e.query, e.doc) for e in first.examples})
    second = make_context(toy_data, tiny_model, tmp_path, seed=7)  # a fresh process's services, another seed
    texts = [
        second.doc_text(int(d))
        for row in Generated.from_params({"generator": "rewriter"}).mine(second).ids
        for d in row
    ]
    assert Rewriter.calls == calls  # read from the cache, not generated again
    assert texts == [
        first.doc_text(int(d)) for row in Generated.from_params({"generator": "rewriter"}).mine(first).ids for d in row
    ]


def test_the_collator_embeds_the_generated_text(ctx):
    strategy = Generated()
    candidates = strategy.mine(ctx)
    state = NegativeState(ctx, strategy, candidates)
    sampler = type("Sampler", (), {"epoch": 0})()
    collator = NegativeCollator(
        type("Base", (), {"valid_label_columns": ["label"], "__call__": lambda self, rows: rows})(), state, sampler
    )
    rows = collator([{"query": ctx.examples[0].query, "label": 0}])
    negative = int(state.current.ids[0][0])
    assert negative >= len(ctx.dataset.corpus)
    assert rows[0]["negative_0"] == ctx.doc_text(negative) and rows[0]["label"][2] == negative


def test_long_form_ids_name_generated_texts_by_content(ctx):
    strategy = Generated()
    sampled = strategy.sample(ctx, strategy.mine(ctx), 0)
    ids = sampled_negative_ids(ctx, sampled)["doc_id"]
    generated = [d for d in ids if d.startswith("generated:")]
    assert len(generated) == len(ctx.examples) and len(set(generated)) == len(set(ids[::2]))


def test_an_index_outside_corpus_and_generated_texts_is_refused(ctx):
    ctx.add_texts(["one extra text"])
    bad = type(Generated().mine(ctx))([np.array([1, ctx.num_documents])] + [np.array([1, 2])] * (len(ctx.examples) - 1))
    with pytest.raises(RuntimeError, match="neither a corpus document nor a text added"):
        check_negatives(ctx, bad, "x")


def test_add_texts_gives_one_index_per_text(ctx):
    n = len(ctx.dataset.corpus)
    ids = ctx.add_texts(["a", "b", "a"])
    assert ids.tolist() == [n, n + 1, n] and ctx.num_documents == n + 2
    assert ctx.doc_text(n + 1) == "b" and ctx.doc_id(n) == ctx.doc_id(n)
    assert torch.equal(ctx.document_embeddings()[:n], ctx.services.corpus_embeddings())
    assert ctx.document_embeddings().shape[0] == n + 2


def test_unknown_generator_is_a_one_line_error_on_the_field():
    pattern = (
        r"params.generator: generator must name an installed generator: "
        r"unknown generator 'nope' \(see `negbench generators`\)"
    )
    with pytest.raises(ConfigError, match=pattern):
        Generated.parse_params({"generator": "nope"})


@pytest.mark.parametrize(
    "bad", [{"pool": 0}, {"per_example": 0}, {"pool": 2, "per_example": 3}, {"pool": 33}, {"pool": 100_000_000}]
)
def test_bad_params(bad):
    with pytest.raises(ValueError):
        GeneratedParams(**bad)


class Echo(NegativeGenerator):
    """A bad test generator: the positive with extra whitespace, an empty text, and one real edit."""

    name = "echo"

    def generate(self, query, positive, count, rng):
        reverse = " ".join(positive.split()[::-1])
        return [positive + " ", "  \n", reverse, "\t" + positive.replace(" ", "  "), reverse.replace(" ", "\n")]


class Wrong(NegativeGenerator):
    name = "wrong"

    def generate(self, query, positive, count, rng):
        return None


@pytest.fixture
def bad_generators(monkeypatch):
    real = registry_module.generators.get
    known = {"echo": Echo, "wrong": Wrong}
    monkeypatch.setattr(
        registry_module.generators, "get", lambda name, field=None: known[name] if name in known else real(name, field)
    )


def test_a_text_equal_to_the_positive_up_to_whitespace_or_empty_is_dropped(ctx, bad_generators):
    """A generated "negative" that is the positive (or another labelled positive of the query) with other
    whitespace is a false negative; an empty one is no text: both are dropped, the real edit is kept once (its
    copy with other whitespace would be drawn as a second, identical negative)."""
    pools = generate_pool(ctx, "echo", 4)
    for i, pool in enumerate(pools):
        positive = ctx.dataset.corpus.texts[ctx.examples[i].doc]
        assert pool == [" ".join(positive.split()[::-1])] or (pool == [] and len(set(positive.split())) == 1)


def test_a_generator_returning_something_else_than_texts_is_named(ctx, bad_generators):
    with pytest.raises(TypeError, match="generator 'wrong': generate\\(\\) must return a list of str, got NoneType"):
        generate_pool(ctx, "wrong", 2)
