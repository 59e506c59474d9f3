"""Token counts (:meth:`MiningServices.token_sizes`, :meth:`MiningServices.token_counts`): counted once per dataset ×
model and cached on disk, a subset without tokenising the rest of the corpus, and the same numbers — so the same
compute estimates and "auto" curve points — as the full count every job used to take."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from negbench.core import mining
from negbench.core.compute import EncoderSizes, count_tokens, watch
from negbench.core.mining import MiningServices
from negbench.core.models import load_model, model_fingerprint
from negbench.core.probes import curves
from negbench.core.probes.curves import auto_curve_points
from negbench.core.setup import plain_loss_flops
from negbench.data.dataset import load_dataset
from negbench.run.plan import Job, plan_suite
from negbench.run.suite import SuiteRunner
from tests.cli.test_cli import suite_text


@pytest.fixture
def varied(tmp_path, toy_data) -> Path:
    """The toy corpus with documents and queries of varied lengths (the toy's are all alike, so a count read at the
    wrong index would go unseen), some past the model's 32 tokens (truncated)."""
    rng = np.random.default_rng(7)
    root = tmp_path / "varied"
    shutil.copytree(toy_data, root)
    for name, most in (("corpus.jsonl", 30), ("queries.jsonl", 6)):
        rows = [json.loads(line) for line in (root / name).read_text().splitlines()]
        for row in rows:
            words = row["text"].split()
            row["text"] = " ".join([*words, *rng.choice(words, size=int(rng.integers(0, most)))])
        (root / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return root


def _services(toy_data, tiny_model, cache, loads: list | None = None) -> MiningServices:
    from negbench.config.suite import DatasetConfig, ModelConfig

    cfg = ModelConfig(spec=str(tiny_model), max_seq_length=32)
    dataset = load_dataset(DatasetConfig(source=str(toy_data)))

    def load():
        if loads is not None:
            loads.append(1)
        return load_model(cfg, "cpu")

    return MiningServices(dataset, load, model_fingerprint(cfg.spec, cfg.max_seq_length), cache)


def _full_count(services: MiningServices) -> EncoderSizes:
    """What ``token_sizes`` computed in every job before: every corpus document and query, tokenised now."""
    model, queries = services.base_model, services.dataset.queries
    docs = count_tokens(model, services.dataset.corpus.texts, "document")
    counts = count_tokens(model, list(queries.values()), "query")
    return EncoderSizes(watch(model), docs, dict(zip(queries, map(int, counts), strict=True)))


def test_subset_counts_are_the_full_counts_and_tokenise_only_the_subset(tmp_path, varied, tiny_model, monkeypatch):
    old = _full_count(_services(varied, tiny_model, tmp_path / "reference"))
    assert len(set(old.doc_tokens.tolist())) > 5 and len(set(old.query_tokens.values())) > 3  # lengths vary
    tokenised: list[int] = []
    real = mining.count_tokens

    def counting(model, texts, kind):
        tokenised.append(len(texts))
        return real(model, texts, kind)

    monkeypatch.setattr(mining, "count_tokens", counting)
    services = _services(varied, tiny_model, tmp_path / "cache")
    examples = services.dataset.training_examples("train")
    docs, qids = [e.doc for e in examples], [e.query_id for e in examples]
    pairs = services.token_counts(docs, qids)
    assert sum(tokenised) == len(set(docs)) + len(set(qids))  # only the pairs' texts
    assert len(set(docs)) < len(old.doc_tokens)
    assert (
        pairs.params == old.params and pairs.docs(docs) == old.docs(docs) and pairs.queries(qids) == old.queries(qids)
    )
    assert pairs.mean_pair(examples) == old.mean_pair(examples)  # exactly: the same estimate
    training = plan_suite_training(tmp_path, varied, tiny_model)
    assert plain_loss_flops(examples, pairs, training) == plain_loss_flops(examples, old, training)
    with pytest.raises(KeyError):
        pairs.docs([i for i in range(len(old.doc_tokens)) if i not in set(docs)][:1])
    # the whole count is the old one too, and a subset taken from it (no tokenising) equals one counted alone
    whole = services.token_sizes()
    assert np.array_equal(whole.doc_tokens, old.doc_tokens) and whole.query_tokens == old.query_tokens
    tokenised.clear()
    some = np.arange(0, len(old.doc_tokens), 3)
    derived = services.token_counts(some, sorted(old.query_tokens)[:5])
    assert tokenised == [] and derived.docs(some) == old.docs(some)


def plan_suite_training(tmp_path, toy_data, tiny_model):
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",)))
    return plan_suite(path).suite.training


def test_counts_are_cached_on_disk_once_per_dataset_and_model(tmp_path, toy_data, tiny_model, monkeypatch):
    """A second process (fresh services on the same cache) reads them: no model load, no tokenising; the base model
    a count loaded is let go after it (``counting``)."""
    loads: list[int] = []
    first = _services(toy_data, tiny_model, tmp_path, loads)
    with first.counting():
        counted = first.token_counts([0, 5, 7], sorted(first.dataset.queries)[:2])
        sizes = first.token_sizes()
    assert loads == [1] and first._base_model is None
    monkeypatch.setattr(mining, "count_tokens", lambda *a, **k: pytest.fail("tokenised again"))
    second = _services(toy_data, tiny_model, tmp_path, loads)
    again = second.token_counts([7, 5, 0, 5], counted.query_tokens)
    assert np.array_equal(again.doc_counts, counted.doc_counts) and again.query_tokens == counted.query_tokens
    assert np.array_equal(second.token_sizes(keep_model=False).doc_tokens, sizes.doc_tokens)
    assert loads == [1]  # read from disk: the model was never loaded again


@pytest.mark.parametrize("dev_corpus", ["full", "pooled"])
def test_auto_curve_points_are_those_of_the_full_count(tmp_path, varied, tiny_model, monkeypatch, dev_corpus):
    """:meth:`DevScoring.curve_points_for` (the dev corpus's, the dev queries' and the training pairs' counts only,
    and the judged-documents lower bound first) gives the points the old full count gave, whatever the share: 0
    below three affordable scorings, 3 and 4 above, and 0 where the lower bound affords three but the dev corpus
    does not."""
    path = tmp_path / "suite.toml"
    evaluation = f'dev_corpus = "{dev_corpus}"\ndev_pool_depth = 2\ndiagnostics_every = 0\n'
    path.write_text(suite_text(varied, tiny_model, tmp_path / "out", strategies=("in-batch",), evaluation=evaluation))
    runner = SuiteRunner(plan_suite(path))
    dataset = runner.load_dataset(0)
    job = Job(dataset, runner.suite.models[0], runner.plan.strategies[0])
    services = runner.services_for(job)
    old = _full_count(_services(varied, tiny_model, tmp_path / "reference"))
    # the old computation (FinalStage.diagnostics_for before): the whole corpus's counts, indexed
    dev = runner.dev_corpus(dataset, job.model_cfg, services)
    qids = sorted(dataset.dev)
    reference = plain_loss_flops(dataset.training_examples("train"), old, runner.suite.training)
    scoring = old.encode(old.docs(dev.indices) + old.queries(qids))
    index = dataset.eval_corpus.index
    judged = {index[d] for q in qids for d in dataset.dev[q] if d in index}
    least = old.encode(old.docs(sorted(judged)) + old.queries(qids))
    assert least < scoring
    shares = [k * scoring / reference for k in (1, 2.99, 3, 3.5, 4, 9)] + [3.5 * least / reference]
    seen = set()
    for share in shares:
        monkeypatch.setattr(curves, "AUTO_CURVE_SHARE", share)
        expected = auto_curve_points(reference, scoring)
        assert runner.curve_points_for(dataset, job.model_cfg, services) == expected, share
        seen.add(expected)
    assert seen == {0, 3, 4}
