"""dense: static base-model top-k in a rank window; corpus encoded once (cached)."""

from __future__ import annotations

import numpy as np
import pytest

from negbench.errors import ConfigError
from negbench.strategies.dense import DenseNegatives


def test_window_of_base_model_ranking(ctx):
    strategy = DenseNegatives.from_params({"range_min": 3, "range_max": 9, "sampling": "top"})
    cands = strategy.mine(ctx)
    q = ctx.services.query_embeddings(ctx.query_ids)
    d = ctx.services.corpus_embeddings()
    for i, row in enumerate(ctx.example_query):
        sims = (d @ q[row]).numpy()
        ranked = [int(j) for j in np.argsort(-sims, kind="stable") if int(j) not in ctx.forbidden(i)]
        assert set(cands.ids[i].tolist()) == set(ranked[3:9])
        np.testing.assert_allclose(np.sort(cands.scores[i])[::-1], np.sort(sims[ranked[3:9]])[::-1], rtol=1e-4)


def test_services_encode_the_corpus_once(ctx):
    ctx.services._memo.clear()
    calls = ctx.services.encode_calls
    DenseNegatives.from_params({"range_max": 10}).mine(ctx)
    DenseNegatives.from_params({"range_min": 1, "range_max": 12}).mine(ctx)
    assert ctx.services.encode_calls - calls <= 1  # on disk from an earlier test, or encoded once here


def test_bad_window_is_a_config_error():
    with pytest.raises(ConfigError, match="range_max"):
        DenseNegatives.from_params({"range_min": 10, "range_max": 5})
    with pytest.raises(ConfigError, match="no parameter 'rang_max'"):
        DenseNegatives.from_params({"rang_max": 5})
