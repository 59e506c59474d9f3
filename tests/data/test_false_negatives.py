"""Planted false negatives: planting, evaluation never seeing the plants, and which strategies pick them."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

import negbench.run.final
from negbench.cli import app
from negbench.config.load import parse_suite
from negbench.config.suite import DatasetConfig, FalseNegatives, ModelConfig
from negbench.core.context import Context
from negbench.core.mining import MiningServices
from negbench.core.models import load_model, model_fingerprint
from negbench.core.probes.negatives import planted_copies, planted_fn_share
from negbench.core.registry import registry
from negbench.data.dataset import load_dataset
from negbench.data.false_negatives import perturb
from negbench.errors import ConfigError
from tests.cli.test_cli import suite_text

PLANT = FalseNegatives(rate=0.3, kind="duplicate")


def planted_dataset(toy_data, **kwargs):
    return load_dataset(
        DatasetConfig(
            source=str(toy_data), false_negatives=FalseNegatives(**{"rate": 0.3, "kind": "duplicate", **kwargs})
        )
    )


def planted_context(toy_data, tiny_model, cache, num_negatives: int) -> Context:
    dataset = planted_dataset(toy_data)
    model_cfg = ModelConfig(spec=str(tiny_model), max_seq_length=32, batch_size=32)
    services = MiningServices(
        dataset, lambda: load_model(model_cfg, "cpu"), model_fingerprint(str(tiny_model), 32), cache, batch_size=32
    )
    return Context(
        dataset=dataset,
        examples=dataset.training_examples(),
        services=services,
        num_negatives=num_negatives,
        batch_size=8,
        epochs=1,
        seed=0,
    )


def base_rate(ctx: Context) -> float:
    """Expected planted share of a uniform draw: per example, its planted copies over the documents it may draw."""
    n = len(ctx.dataset.corpus)
    return float(np.mean([len(planted_copies(ctx, i)) / (n - len(ctx.forbidden(i))) for i in range(len(ctx.examples))]))


def test_planting_adds_unlabelled_copies_of_training_positives_to_the_training_corpus_only(toy_data):
    plain = load_dataset(DatasetConfig(source=str(toy_data)))
    ds = planted_dataset(toy_data)
    assert ds.name == "toy+fn0.3dup" and ds.fingerprint != plain.fingerprint
    assert ds.base_fingerprint == plain.fingerprint == plain.base_fingerprint
    assert len(ds.planted) == round(0.3 * len(ds.train)) and len(ds.corpus) == len(plain.corpus) + len(ds.planted)
    assert ds.eval_corpus.ids == plain.corpus.ids and ds.corpus.ids[: len(plain.corpus)] == plain.corpus.ids
    labelled = {d for split in (ds.train, ds.dev, ds.test()) for docs in split.values() for d in docs}
    for index, plant in ds.planted.items():
        assert ds.corpus.ids[index].startswith(f"planted:{ds.corpus.ids[plant.source]}:")
        assert ds.corpus.texts[index] == ds.corpus.texts[plant.source]  # exact duplicate
        assert plant.query_id in ds.train and ds.corpus.ids[plant.source] in ds.train[plant.query_id]
        assert ds.corpus.ids[index] not in labelled  # never a labelled positive
    # same seed → same plants; another seed → other queries
    assert planted_dataset(toy_data).planted == ds.planted
    assert planted_dataset(toy_data, seed=1).planted != ds.planted


def test_near_duplicates_are_perturbed_deterministically(toy_data):
    ds = planted_dataset(toy_data, kind="near-duplicate")
    assert ds.name == "toy+fn0.3near"
    for index, plant in ds.planted.items():
        copy, source = ds.corpus.texts[index], ds.corpus.texts[plant.source]
        assert copy != source and set(copy.split()) <= set(source.split())
    text = "First sentence here. Second one is longer still. Third comes now. Fourth ends it all."
    out = perturb(text, 0, "k")
    assert out == perturb(text, 0, "k") and out != text
    assert len(out.split()) < len(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "Long first sentence with very many words in it that carries most of the meaning here. Short. Tiny. End.",
        "alpha beta",
        "a b c d",
        "x. y. z.",
        "One two three four five six seven eight nine ten eleven.",
    ],
)
def test_near_duplicates_differ_and_keep_most_of_the_text(text):
    """A hostile review: a one-sentence or short text came out identical, and dropping the long sentence lost
    most of the text."""
    for key in map(str, range(20)):
        out = perturb(text, 0, key)
        assert out != text
        assert len(out.split()) >= 0.6 * len(text.split())


def test_a_text_of_one_distinct_word_stays_an_exact_copy():
    assert perturb("word", 0, "k") == "word" and perturb("ha ha", 0, "k") == "ha ha"


@pytest.mark.parametrize(
    ("value", "message"),
    [(0.0, "greater than 0"), (1.5, "less than or equal to 1"), ("0.3", "valid number"), (True, "valid number")],
)
def test_bad_rate_is_one_config_error_naming_the_field(value, message):
    raw = {
        "suite": {"name": "s"},
        "datasets": [{"source": "x", "false_negatives": {"rate": value}}],
        "models": [{"spec": "m"}],
        "strategies": [{"name": "in-batch"}],
    }
    with pytest.raises(ConfigError) as err:
        parse_suite(raw, "s.toml")
    line = err.value.one_line()
    assert "datasets[0].false_negatives.rate" in line and message in line and "\n" not in line
    raw["datasets"][0]["false_negatives"] = {"rate": 0.3, "kind": "copy"}
    with pytest.raises(ConfigError, match=r"datasets\[0\]\.false_negatives\.kind"):
        parse_suite(raw, "s.toml")


def test_dense_top_window_picks_planted_copies_and_random_picks_them_at_the_base_rate(toy_data, tiny_model, toy_root):
    """The acceptance experiment at the sampling level: the base model ranks a duplicate exactly where it ranks
    the positive, so a top-of-window dense miner takes it; a uniform draw takes it at the base rate."""
    ctx = planted_context(toy_data, tiny_model, toy_root / "cache", num_negatives=1)
    base = base_rate(ctx)
    assert 0 < base < 0.005
    dense = registry.get("dense")
    strategy = dense(dense.parse_params({"sampling": "top"}))
    dense_share = planted_fn_share(ctx, strategy.sample(ctx, strategy.mine(ctx), 0))
    assert dense_share > 10 * base
    random = registry.get("random")()
    candidates = random.mine(ctx)
    epochs = 300  # epochs re-draw: enough draws (≈ 28 000) for the share to sit near its expectation
    shares = [planted_fn_share(ctx, random.sample(ctx, candidates, epoch)) for epoch in range(epochs)]
    draws = epochs * len(ctx.examples)
    assert abs(np.mean(shares) - base) < 4 * np.sqrt(base / draws)


def test_suite_reports_planted_shares_and_never_evaluates_planted_documents(
    tmp_path, toy_data, tiny_model, monkeypatch
):
    """End to end: rows carry the planted-FN columns (dense high, random and in-batch at or below the base rate),
    and every evaluation (final test, zero-shot reference) searched the corpus without the plants."""
    evaluated = []
    real = negbench.run.final.evaluate

    def spy(model, corpus, *args, corpus_embeddings=None, **kwargs):
        evaluated.append((list(corpus.ids), None if corpus_embeddings is None else int(corpus_embeddings.shape[0])))
        return real(model, corpus, *args, corpus_embeddings=corpus_embeddings, **kwargs)

    monkeypatch.setattr(negbench.run.final, "evaluate", spy)
    text = suite_text(
        toy_data,
        tiny_model,
        tmp_path / "out",
        strategies=("none", "in-batch", "random"),
        evaluation="curve_points = 2\n",
    )
    text = text.replace(
        f'source = "{toy_data}"\n', f'source = "{toy_data}"\nfalse_negatives = {{ rate = 0.3, kind = "duplicate" }}\n'
    )
    text = text.replace("[evaluation]", '[[strategies]]\nname = "dense"\nparams = { sampling = "top" }\n\n[evaluation]')
    (tmp_path / "suite.toml").write_text(text)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "suite.toml"), "--no-progress"])
    assert result.exit_code == 0, result.output

    plain = load_dataset(DatasetConfig(source=str(toy_data)))
    assert len(evaluated) >= 4 + 3 * 2  # a test evaluation per row, and two dev curve points per trained row
    for ids, n_embedded in evaluated:
        assert ids == plain.corpus.ids and not any(i.startswith("planted:") for i in ids)
        assert n_embedded in (None, len(plain.corpus))

    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert (rows["status"] == "ok").all() and (rows["dataset"] == "toy+fn0.3dup").all()
    assert (rows["planted_fn_rate"] == 0.3).all() and (rows["planted_fn_kind"] == "duplicate").all()
    assert (rows["base_dataset_fingerprint"] == plain.fingerprint).all()
    by = {r["strategy"]: r for r in rows.iter_rows(named=True)}
    ctx = planted_context(toy_data, tiny_model, tmp_path / "cache", num_negatives=1)
    base = base_rate(ctx)
    assert by["dense"]["planted_fn_share"] > 10 * base
    assert by["random"]["planted_fn_share"] <= 6 * base  # one epoch-0 draw per example: 0 or 1 hit expected
    assert by["in-batch"]["planted_fn_share"] is None  # samples no negatives
    # in-batch columns are other rows' positives, never a planted copy: at (below) the base rate
    assert by["in-batch"]["planted_fn_inbatch_share"] <= base
    assert by["dense"]["planted_fn_inbatch_share"] > by["random"]["planted_fn_inbatch_share"]
    assert by["none"]["planted_fn_inbatch_share"] is None
    negatives = pl.read_parquet(tmp_path / "out" / "negatives" / f"{by['dense']['run_id']}.parquet")
    assert negatives.columns == ["run_id", "query_id", "positive_id", "doc_id"]
    assert negatives["doc_id"].str.starts_with("planted:").any()
