"""Dev scoring on a pooled corpus ([evaluation] dev_corpus): every dev scoring searches the pool, the test split
the full evaluation corpus; "auto" pools from dev_pool_min_docs up; the settings are validated and keyed."""

from __future__ import annotations

import io
import tomllib

import pytest
from rich.console import Console

from negbench.config.load import parse_suite
from negbench.errors import ConfigError
from negbench.run.plan import Job, job_key, plan_suite
from negbench.run.suite import SuiteRunner
from tests.cli.test_cli import suite_text

TUNING = """
[tuning]
n_trials = 1
metric = "ndcg@10"
pruner = "none"

[tuning.search_space."training.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""


def _plan(tmp_path, toy_data, tiny_model, evaluation: str, strategies=("in-batch",), extra: str = "", epochs: int = 1):
    path = tmp_path / "suite.toml"
    text = suite_text(toy_data, tiny_model, tmp_path / "out", strategies=strategies, extra=extra, evaluation=evaluation)
    path.write_text(text.replace("epochs = 1", f"epochs = {epochs}"))
    return plan_suite(path)


@pytest.mark.slow  # 26 s: out of the default run (its 6 minutes); the untrained-model test covers the test split
def test_every_dev_scoring_searches_the_pool_and_the_test_split_the_full_corpus(
    tmp_path, toy_data, tiny_model, monkeypatch
):
    """Tuning's trial score and pruning epochs and the final run's learning curve search the pool; the final test
    searches every document of the evaluation corpus."""
    from negbench.run import final

    test_qids = {line.split("\t")[0] for line in (toy_data / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    calls: list[tuple[str, list[str]]] = []
    real_evaluate = final.evaluate

    def watched(model, corpus, queries, qrels, *args, **kwargs):
        calls.append(("test" if set(qrels) <= test_qids else "dev", list(corpus.ids)))
        return real_evaluate(model, corpus, queries, qrels, *args, **kwargs)

    monkeypatch.setattr(final, "evaluate", watched)
    plan = _plan(
        tmp_path,
        toy_data,
        tiny_model,
        'metrics = ["ndcg@10"]\ncurve_points = 2\ndiagnostics_every = 0\ndev_corpus = "pooled"\ndev_pool_depth = 2\n',
        strategies=("none", "in-batch", "bm25"),
        extra=TUNING,
        epochs=2,  # the first epoch's dev score is reported to the pruner
    )
    out = io.StringIO()
    rows = SuiteRunner(plan, console=Console(file=out, width=400)).run().rows()

    dataset = SuiteRunner(plan).load_dataset(0)
    full = dataset.eval_corpus.ids
    said = [line for line in out.getvalue().splitlines() if line.startswith("dev corpus of")]
    assert len(said) == 1, out.getvalue()  # reported once for the dataset × model, not per job
    pooled = [ids for split, ids in calls if split == "dev"]
    # per trained job: 1 trial (a pruning epoch and its final score) and one seed's 2 curve points
    assert len(pooled) == 2 * (2 + 2)
    assert all(ids == pooled[0] for ids in pooled) and 0 < len(pooled[0]) < len(full)
    assert set(pooled[0]) <= set(full) and {d for q in dataset.dev for d in dataset.dev[q]} <= set(pooled[0])
    assert f"pooled {len(pooled[0]):,} of {len(full)} documents" in said[0]
    tested = [ids for split, ids in calls if split == "test"]
    assert len(tested) == 3 and all(ids == full for ids in tested)  # one seed of each strategy, "none" included
    labels = dict(zip(rows["strategy"], rows["dev_corpus"], strict=True))
    assert labels == {"none": None, "in-batch": f"pooled:{len(pooled[0])}", "bm25": f"pooled:{len(pooled[0])}"}
    assert rows["status"].to_list() == ["ok"] * 3


def test_the_test_split_of_an_untrained_model_searches_the_full_corpus_too(tmp_path, toy_data, tiny_model, monkeypatch):
    """``none`` scores test on the base model's cached corpus embeddings: every evaluation-corpus document's."""
    from negbench.run import final

    seen = []
    real_evaluate = final.evaluate

    def watched(model, corpus, queries, qrels, *args, corpus_embeddings=None, **kwargs):
        seen.append((list(corpus.ids), None if corpus_embeddings is None else corpus_embeddings.shape[0]))
        return real_evaluate(model, corpus, queries, qrels, *args, corpus_embeddings=corpus_embeddings, **kwargs)

    monkeypatch.setattr(final, "evaluate", watched)
    plan = _plan(tmp_path, toy_data, tiny_model, 'curve_points = 0\ndev_corpus = "pooled"\n', strategies=("none",))
    SuiteRunner(plan).run()
    full = SuiteRunner(plan).load_dataset(0).eval_corpus.ids
    assert seen == [(full, len(full))]


def test_auto_pools_from_dev_pool_min_docs_up(tmp_path, toy_data, tiny_model):
    dataset = SuiteRunner(_plan(tmp_path, toy_data, tiny_model, "")).load_dataset(0)
    n = len(dataset.eval_corpus)
    for min_docs, expected in ((n, "pooled:"), (n + 1, "full")):
        plan = _plan(
            tmp_path, toy_data, tiny_model, f'dev_corpus = "auto"\ndev_pool_depth = 2\ndev_pool_min_docs = {min_docs}\n'
        )
        runner = SuiteRunner(plan)
        job = Job(dataset, runner.suite.models[0], runner.plan.strategies[0])
        dev = runner.dev_corpus(dataset, job.model_cfg, runner.services_for(job))
        assert dev.label.startswith(expected), (min_docs, dev.label)
        assert (len(dev.corpus) < n) == (expected == "pooled:")


def test_the_resolved_dev_corpus_is_in_the_job_key_and_unused_pool_settings_are_not(tmp_path, toy_data, tiny_model):
    """What a job's dev scoring searches is in its key; pool settings that change no search are not (they made every
    stored row stale)."""
    plan = _plan(tmp_path, toy_data, tiny_model, "")
    dataset = SuiteRunner(plan).load_dataset(0)
    model = plan.suite.models[0]

    def key(evaluation: str) -> str:
        edited = _plan(tmp_path, toy_data, tiny_model, evaluation)
        return job_key(edited.suite, dataset, model, edited.strategies[0])

    base = key("")  # "auto" curves: dev is scored, on the full corpus (the toy corpus is far below the threshold)
    for setting in ('dev_corpus = "pooled"', "dev_pool_min_docs = 10"):  # both make it search a pool
        assert key(setting) != base, setting
    assert key('dev_corpus = "pooled"\ndev_pool_depth = 50') != key('dev_corpus = "pooled"')
    for setting in ("dev_pool_depth = 50", "dev_pool_min_docs = 200000", 'dev_corpus = "full"'):  # still full
        assert key(setting) == base, setting
    no_dev = "curve_points = 0"  # no curve and no tuning: no dev scoring, whatever the pool settings
    assert key(f'{no_dev}\ndev_corpus = "pooled"') == key(no_dev)


@pytest.mark.parametrize(
    ("setting", "field", "message"),
    [
        ("dev_pool_depth = 0", "evaluation.dev_pool_depth", "greater than 0"),
        ("dev_pool_depth = -3", "evaluation.dev_pool_depth", "greater than 0"),
        ('dev_corpus = "sampled"', "evaluation.dev_corpus", "'auto', 'full' or 'pooled'"),
        ("dev_pool_min_docs = 0", "evaluation.dev_pool_min_docs", "greater than 0"),
    ],
)
def test_bad_dev_corpus_settings_are_one_line_errors_naming_the_field(setting, field, message):
    raw = {
        "suite": {"name": "t"},
        "datasets": [{"source": "x"}],
        "models": [{"spec": "m"}],
        "strategies": [{"name": "in-batch"}],
        **tomllib.loads(f"[evaluation]\n{setting}\n"),
    }
    with pytest.raises(ConfigError) as info:
        parse_suite(raw, "suite.toml")
    line = info.value.one_line()
    assert f"suite.toml: {field}: " in line and message in line and "\n" not in line
