"""Tuning: search spaces as data, validated before training; dev-only objective; test never read early."""

from __future__ import annotations

import optuna
import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.config import StrategyConfig
from negbench.errors import ConfigError
from negbench.strategies.dense import DenseNegatives
from negbench.tuning import build_space, split_params

runner = CliRunner()


def cfg(**kw) -> StrategyConfig:
    return StrategyConfig.model_validate({"name": "dense", **kw})


def test_space_merges_defaults_toml_and_pins():
    space = build_space(DenseNegatives, cfg(params={"sampling": "top"},
                                            search_space={"range_max": {"type": "int", "low": 40, "high": 60},
                                                          "training.lr": {"type": "float", "low": 1e-5,
                                                                          "high": 1e-4, "log": True}}), "s")
    assert "sampling" not in space  # pinned
    assert (space["range_max"].low, space["range_max"].high) == (40, 60)  # replaced
    assert "range_min" in space  # default kept
    assert space["training.lr"].log
    assert split_params({"range_max": 50, "training.lr": 1e-5}) == ({"range_max": 50}, {"lr": 1e-5})


@pytest.mark.parametrize(("search_space", "message"), [
    ({"nope": {"type": "int", "low": 1, "high": 2}}, "has no parameter 'nope'"),
    ({"range_min": {"type": "int", "low": 0, "high": 80}}, "range_max"),  # an edge violates range_min < max
    ({"training.scale": {"type": "float", "low": 1, "high": 2}}, "not tunable"),
    ({"training.lr": {"type": "float", "low": -1, "high": 2}}, "training.lr"),
])
def test_bad_spaces_fail_before_training(search_space, message):
    with pytest.raises(ConfigError, match=message):
        build_space(DenseNegatives, cfg(params={"range_max": 30}, search_space=search_space), "strategies[0]")


def test_pinned_and_searched_is_an_error():
    with pytest.raises(ConfigError, match="pinned"):
        build_space(DenseNegatives, cfg(params={"range_max": 30},
                                        search_space={"range_max": {"type": "int", "low": 30, "high": 40}}), "s")


def tuned_suite(toy_data, tiny_model, out, n_trials=2) -> str:
    return f"""
[suite]
name = "tune"
seeds = [0, 1]
output_dir = "{out}"

[[datasets]]
source = "{toy_data}"

[[models]]
spec = "{tiny_model}"
max_seq_length = 32

[training]
epochs = 1
max_steps = 2
batch_size = 16
num_negatives = 1

[tuning]
n_trials = {n_trials}
metric = "ndcg@10"

[tracking]
enabled = false

[[strategies]]
name = "in-batch"
[strategies.search_space."training.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""


def test_tuned_run_records_trial_and_never_reads_test_before_final(tmp_path, toy_data, tiny_model):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    (data / "qrels" / "test.tsv").write_text("garbage that crashes when parsed\n")
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    # the final stage reads test qrels and fails; tuning before it completed without touching them
    assert result.exit_code == 2 and "test.tsv" in result.output
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "out" / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_tuned_run_end_to_end(tmp_path, toy_data, tiny_model):
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(toy_data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert rows.height == 2 and set(rows["seed"].to_list()) == {0, 1}
    assert rows["trial"].drop_nulls().len() == 2 and rows["dev_metric"].drop_nulls().len() == 2
    assert '"lr":' in rows["training"][0]
    # rerun: the study is complete, every seed finished → nothing new
    again = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert again.exit_code == 0 and pl.read_parquet(tmp_path / "out" / "results.parquet").height == 2


def test_tuning_metric_must_be_evaluated(tmp_path, toy_data, tiny_model):
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(toy_data, tiny_model, tmp_path / "out").replace('metric = "ndcg@10"',
                                                                                'metric = "ndcg@5"'))
    result = runner.invoke(app, ["validate", str(suite)])
    assert result.exit_code == 2 and "tuning.metric" in result.output
