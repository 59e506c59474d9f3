"""What "auto" learning curves and the equal-compute budget read — token counts, a dev pool — is taken once, in the
suite process before any job (and cached on disk), never per job inside it; and a pool is built only when "auto"
could take a curve point on it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from negbench.core import mining
from negbench.core.probes import curves
from negbench.run.plan import plan_suite
from negbench.run.suite import SuiteRunner
from tests.cli.test_cli import suite_text
from tests.run.test_dev_pool import TUNING

POOLED = 'dev_corpus = "pooled"\ndev_pool_depth = 2\ndiagnostics_every = 0\n'
COMPUTE = 'budget = "compute"\n'
POOL_FILES = ("corpus-emb", "bm25-topk", "dense-topk", "query-emb", "dev-pool")


def _runner(tmp_path, toy_data, tiny_model, out, evaluation, strategies=("in-batch", "bm25"), extra="", console=None):
    path = tmp_path / f"{out}.toml"
    text = suite_text(toy_data, tiny_model, tmp_path / out, strategies=strategies, extra=extra, evaluation=evaluation)
    path.write_text(text.replace('isolation = "none"', f'isolation = "none"\ncache_dir = "{tmp_path / "cache"}"'))
    return SuiteRunner(plan_suite(path), console=console)


@pytest.fixture
def tokenised(monkeypatch) -> list[tuple[bool, str, int]]:
    """Every tokenising of the mining services: (inside a job?, kind, texts)."""
    seen: list[tuple[bool, str, int]] = []
    in_job = [False]
    count, run_job = mining.count_tokens, SuiteRunner.run_job

    def counting(model, texts, kind, *args, **kwargs):
        seen.append((in_job[0], kind, len(texts)))
        return count(model, texts, kind, *args, **kwargs)

    def job(self, job):
        in_job[0] = True
        try:
            return run_job(self, job)
        finally:
            in_job[0] = False

    monkeypatch.setattr(mining, "count_tokens", counting)
    monkeypatch.setattr(SuiteRunner, "run_job", job)
    return seen


@pytest.mark.parametrize(
    "tuning",
    ["", pytest.param(TUNING, marks=pytest.mark.slow)],  # the tuned case: out of the default run's 6 minutes
    ids=["untuned", "tuned"],
)
def test_auto_curves_count_only_what_they_read_once_before_any_job(tmp_path, toy_data, tiny_model, tokenised, tuning):
    """Every job used to tokenise the whole corpus (``token_sizes``) for the "auto" decision, in its own process,
    in no row's time. Now the suite counts the training pairs, the dev queries and the dev corpus (here the pool)
    once before any job (a tuned job's too); jobs and a later suite on the same cache read the counts from disk."""
    runner = _runner(tmp_path, toy_data, tiny_model, "out", POOLED, extra=tuning)
    rows = runner.run().rows()
    assert rows["status"].to_list() == ["ok", "ok"] and len(set(rows["curve_points"])) == 1
    corpus = len(runner.load_dataset(0).corpus)
    assert tokenised and not any(in_job for in_job, _, _ in tokenised)  # none inside a job
    assert all(n < corpus for _, kind, n in tokenised if kind == "document")  # never the whole corpus
    tokenised.clear()
    again = _runner(tmp_path, toy_data, tiny_model, "again", POOLED, extra=tuning).run().rows()
    assert tokenised == [] and again["curve_points"].to_list() == rows["curve_points"].to_list()  # from disk


def test_the_compute_budgets_counts_are_taken_once_before_any_job(tmp_path, toy_data, tiny_model, tokenised):
    """The equal-compute estimate prices encoding the whole corpus: its counts are the whole corpus's, taken once in
    the suite process (every job read them again before)."""
    runner = _runner(tmp_path, toy_data, tiny_model, "out", "curve_points = 0\n", ("in-batch", "dense"), COMPUTE)
    rows = runner.run().rows()
    assert rows["status"].to_list() == ["ok", "ok"] and rows["budget_rule"].to_list() == ["compute"] * 2
    corpus = len(runner.load_dataset(0).corpus)
    assert [(in_job, n) for in_job, kind, n in tokenised if kind == "document"] == [(False, corpus)]


def test_no_pool_is_built_for_auto_curves_that_take_no_point(tmp_path, toy_data, tiny_model):
    """In-batch only, pooled dev corpus, "auto" curves, one step: even the smallest pool (the judged documents)
    costs more dev scoring than "auto" allows, so no BM25 index, corpus encoding or pool is made, and nothing is
    scored on dev."""
    out = io.StringIO()
    runner = _runner(
        tmp_path, toy_data, tiny_model, "out", POOLED, ("in-batch",), "max_steps = 1\n", Console(file=out, width=300)
    )
    row = runner.run().rows().row(0, named=True)
    assert row["status"] == "ok" and row["curve_points"] == 0 and row["dev_corpus"] is None
    assert "dev corpus of" not in out.getvalue()
    cached = [p.name for p in (tmp_path / "cache").iterdir()]
    assert not [name for name in cached if any(kind in name for kind in POOL_FILES)], cached


def test_a_pool_is_built_when_auto_curves_take_points(tmp_path, toy_data, tiny_model, monkeypatch):
    monkeypatch.setattr(curves, "AUTO_CURVE_SHARE", 1e9)
    out = io.StringIO()
    runner = _runner(
        tmp_path, toy_data, tiny_model, "out", POOLED, ("in-batch",), "max_steps = 1\n", Console(file=out, width=300)
    )
    row = runner.run().rows().row(0, named=True)
    assert row["status"] == "ok" and row["curve_points"] == 1 and row["dev_corpus"].startswith("pooled:")
    assert "dev corpus of toy × tiny: pooled" in out.getvalue()
    cached = [p.name for p in (tmp_path / "cache").iterdir()]
    assert all(any(kind in name for name in cached) for kind in ("corpus-emb", "bm25-topk", "dev-pool")), cached
