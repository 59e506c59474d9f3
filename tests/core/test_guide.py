"""A stronger teacher (``guide``): strategies that judge negatives with a teacher use the suite's guide model,
its embeddings cached like the base model's, and charged to the run."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.core.strategy import Negatives
from negbench.strategies.gist import GIST
from negbench.strategies.positive_aware import PositiveAware, positive_aware_filter
from negbench.strategies.tas_b import teacher_scores
from negbench.testing import make_context
from negbench.testing.fixtures import build_tiny_encoder
from tests.cli.test_cli import suite_text


@pytest.fixture(scope="module")
def guide_model(tmp_path_factory):
    return build_tiny_encoder(tmp_path_factory.mktemp("guide") / "guide", seed=7, dim=48)


@pytest.fixture
def guided_ctx(toy_data, tiny_model, guide_model, tmp_path):
    return make_context(toy_data, tiny_model, tmp_path / "cache", guide_dir=guide_model)


def test_without_a_guide_the_teacher_is_the_base_model(ctx):
    assert ctx.guided() is ctx


def test_positive_aware_mines_and_filters_with_the_guide(guided_ctx):
    teacher = guided_ctx.guided()
    assert teacher.services is guided_ctx.guide_services and teacher.guided() is teacher
    strategy = PositiveAware.from_params({"perc": 0.99, "depth": 30})
    mined = strategy.mine(guided_ctx)
    by_guide = teacher.dense_candidates(30)
    positive = teacher.positive_scores()
    for i in range(len(guided_ctx.examples)):
        expected, _ = positive_aware_filter(by_guide.ids[i], by_guide.scores[i], float(positive[i]), strategy.params)
        assert mined.ids[i].tolist() == expected.tolist()
    by_base = guided_ctx.dense_candidates(30)
    assert any(a.tolist() != b.tolist() for a, b in zip(by_base.ids, by_guide.ids, strict=True))  # not the base
    assert guided_ctx.services.encode_calls == 1  # the base corpus only for by_base; the guide's is its own
    assert guided_ctx.guide_services.encode_calls == 1  # and cached: encoded once for mine and the check


def test_gist_and_tas_b_score_with_the_guide(guided_ctx):
    gist = GIST()
    gist.setup(guided_ctx)
    guide_docs = guided_ctx.guide_services.corpus_embeddings()
    assert gist.guide_docs.shape == guide_docs.shape and gist.guide_docs.shape[1] == 48  # the guide's width
    ids = Negatives([np.array([0, 1, 2])] * len(guided_ctx.examples))
    scores = teacher_scores(guided_ctx, ids)
    q = guided_ctx.guide_services.query_embeddings(guided_ctx.query_ids)
    assert scores[0] == pytest.approx((guide_docs[[0, 1, 2]] @ q[guided_ctx.example_query[0]]).numpy(), abs=1e-5)


def test_a_suite_names_a_guide_per_model_or_per_strategy(tmp_path, toy_data, tiny_model, guide_model):
    text = suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("positive-aware", "gist"))
    text = text.replace("max_seq_length = 32", f'max_seq_length = 32\nguide = "{guide_model}"')
    (tmp_path / "suite.toml").write_text(text)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "suite.toml"), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert (rows["status"] == "ok").all()
    guided_key = rows.filter(pl.col("strategy") == "positive-aware")["config_key"].item()

    plain = suite_text(toy_data, tiny_model, tmp_path / "plain", strategies=("positive-aware",))
    (tmp_path / "plain.toml").write_text(plain)
    assert CliRunner().invoke(app, ["run", str(tmp_path / "plain.toml"), "--no-progress"]).exit_code == 0
    plain_rows = pl.read_parquet(tmp_path / "plain" / "results.parquet")
    assert plain_rows["config_key"].item() != guided_key  # the guide is part of the configuration

    missing = text.replace(f'guide = "{guide_model}"', f'guide = "{tmp_path / "no-such-model"}"')
    (tmp_path / "missing.toml").write_text(missing)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2 and "models[0].guide" in result.output
    per_strategy = plain.replace('name = "positive-aware"', f'name = "positive-aware"\nguide = "{tmp_path / "nope"}"')
    (tmp_path / "per.toml").write_text(per_strategy)
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "per.toml")])
    assert result.exit_code == 2 and "strategies[0].guide" in result.output
