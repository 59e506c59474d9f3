"""The pooled-dev benchmark script (``tests/benchmarks/dev_pool.py``): its agreement figures, its table, and one
end-to-end run of a tuning study on the toy dataset with the tiny encoder."""

from __future__ import annotations

import re

import pytest

from tests.benchmarks import dev_pool


def test_agreement_ranks_the_trials_and_reports_the_level_bias_and_the_cost_of_the_pools_choice():
    full = {0: 0.40, 1: 0.42, 2: 0.38, 3: 0.41}
    pooled = {0: 0.50, 1: 0.51, 2: 0.47, 3: 0.52}  # trials 1 and 3 swapped: one discordant pair of six
    fig = dev_pool.agreement(full, pooled)
    assert fig.tau == pytest.approx(4 / 6)
    assert 0 < fig.p < 1
    assert (fig.best_full, fig.best_pooled, fig.same_best) == (1, 3, False)
    assert fig.choice_cost == pytest.approx(0.01)
    assert fig.bias == pytest.approx(0.0975) and (fig.bias_min, fig.bias_max) == pytest.approx((0.09, 0.11))
    same = dev_pool.agreement(full, {t: v + 0.1 for t, v in full.items()})
    assert same.tau == pytest.approx(1.0) and same.same_best and same.choice_cost == 0


def test_the_table_has_one_row_per_depth_with_the_speed_up_and_the_curve_gap():
    full, pooled = {0: 0.40, 1: 0.42}, {20: {0: 0.45, 1: 0.47}}
    curve = [{"full": 0.30, 20: 0.40}, {"full": 0.42, 20: 0.47}]
    table = dev_pool.render([20], {20: (500, 5_000)}, {"full": [10.0, 12.0], 20: [2.0]}, full, pooled, curve)
    row = table.splitlines()[-1]
    assert row.startswith("| 20 | 500 (10.0%) | 11.00 | 2.00 | 5.5× | 1.000 (")
    assert "| yes | 0.0000 | +0.0500 [+0.0500, +0.0500] | 0.1000 |" in row


@pytest.mark.slow  # a whole (tiny) tuning study: out of the default run
def test_a_tiny_study_runs_end_to_end(toy_data, tiny_model, capsys):
    argv = ["--data", str(toy_data), "--model", str(tiny_model), "--max-seq-length", "32", "--batch-size", "8"]
    argv += ["--trials", "3", "--steps", "4", "--curve-points", "2", "--depths", "2,5", "--lr-range", "1e-3,1e-1"]
    assert dev_pool.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("  trial ") == 3 and "(chosen)" in out
    assert "last point: the trial's own model" in out and "its scores reused" in out
    rows = [line for line in out.splitlines() if re.match(r"\| [25] \| \d+ \(\d+\.\d%\) \|", line)]
    assert len(rows) == 2 and all("×" in r for r in rows)
    assert "Kendall τ (p), 3 trials" in out and "whose encoded and reused-embedding scores differ by at most 0" in out
