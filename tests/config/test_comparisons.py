"""``[[comparisons]]``: declared one-sided claims between strategy labels, validated against the suite's labels and
kept out of every hash (report-only)."""

from __future__ import annotations

from negbench.config.load import load_suite
from tests.config.test_config import VALID, error_of, write

TWO = VALID + '\n[[strategies]]\nname = "random"\n'


def claim(better: str, worse: str) -> str:
    return f'\n[[comparisons]]\nbetter = "{better}"\nworse = "{worse}"\n'


def test_declared_comparisons_load_and_stay_out_of_the_hash(tmp_path):
    plain = load_suite(write(tmp_path, TWO))
    declared = load_suite(write(tmp_path, TWO + claim("random", "in-batch")))
    assert [(c.better, c.worse) for c in declared.comparisons] == [("random", "in-batch")]
    assert "comparisons" not in declared.model_dump(mode="json")
    assert declared.config_hash() == plain.config_hash()


def test_a_comparison_names_strategy_labels_of_the_suite(tmp_path):
    msg = error_of(tmp_path, TWO + claim("random", "in-batch") + claim("star", "random"))
    assert msg.startswith(f"{tmp_path / 'suite.toml'}: comparisons: [1].better = 'star' is not a strategy label")
    assert "(in-batch, random)" in msg and "\n" not in msg.strip()
    assert "[0].worse = 'dense'" in error_of(tmp_path, TWO + claim("random", "dense"))


def test_a_comparison_needs_two_strategies_once(tmp_path):
    assert "both 'random'" in error_of(tmp_path, TWO + claim("random", "random"))
    again = error_of(tmp_path, TWO + claim("random", "in-batch") + claim("in-batch", "random"))
    assert "comparisons: [1] compares 'in-batch' and 'random' again (see [0])" in again
    assert "comparisons[0].worse" in error_of(tmp_path, TWO + '\n[[comparisons]]\nbetter = "random"\n')
    assert "comparisons[0].than" in error_of(tmp_path, TWO + claim("random", "in-batch") + 'than = "x"\n')
