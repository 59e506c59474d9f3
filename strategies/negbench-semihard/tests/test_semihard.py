"""The plugin's own tests: negbench's conformance class plus its algorithmic check."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from negbench_semihard import SemiHard

from negbench.testing import StrategyConformance


class TestSemiHardConformance(StrategyConformance):
    strategy_cls = SemiHard
    params: ClassVar[dict] = {"margin": 0.2, "depth": 30}


def test_candidates_lie_in_the_semi_hard_band(tmp_path):
    from negbench.testing import make_context, toy_setup

    data, model = toy_setup(tmp_path)
    ctx = make_context(data, model, tmp_path / "cache")
    cands = SemiHard.from_params({"margin": 0.05, "depth": 60}).mine(ctx)
    positive = ctx.positive_scores()
    for i, scores in enumerate(cands.scores):
        assert np.all(scores < positive[i]) and np.all(scores > positive[i] - 0.05)
