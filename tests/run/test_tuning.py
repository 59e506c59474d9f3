"""Tuning: search spaces as data, validated before training; dev-only objective; test never read early."""

from __future__ import annotations

import optuna
import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.config.suite import StrategyConfig
from negbench.errors import ConfigError
from negbench.run.tuning import build_space, split_params
from negbench.strategies.dense import DenseNegatives

runner = CliRunner()


def cfg(**kw) -> StrategyConfig:
    return StrategyConfig.model_validate({"name": "dense", **kw})


def test_space_merges_defaults_toml_and_pins():
    space = build_space(
        DenseNegatives,
        cfg(
            params={"sampling": "top"},
            search_space={
                "range_max": {"type": "int", "low": 40, "high": 60},
                "training.lr": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
            },
        ),
        "s",
    )
    assert "sampling" not in space  # pinned
    assert (space["range_max"].low, space["range_max"].high) == (40, 60)  # replaced
    assert "range_min" in space  # default kept
    assert space["training.lr"].log
    assert split_params({"range_max": 50, "training.lr": 1e-5}) == ({"range_max": 50}, {"lr": 1e-5})


@pytest.mark.parametrize(
    ("search_space", "message"),
    [
        ({"nope": {"type": "int", "low": 1, "high": 2}}, "has no parameter 'nope'"),
        ({"range_min": {"type": "int", "low": 0, "high": 80}}, "range_max"),  # an edge violates range_min < max
        ({"training.scale": {"type": "float", "low": 1, "high": 2}}, "not tunable"),
        ({"training.lr": {"type": "float", "low": -1, "high": 2}}, "training.lr"),
    ],
)
def test_bad_spaces_fail_before_training(search_space, message):
    with pytest.raises(ConfigError, match=message):
        build_space(DenseNegatives, cfg(params={"range_max": 30}, search_space=search_space), "strategies[0]")


def test_pinned_and_searched_is_an_error():
    with pytest.raises(ConfigError, match="pinned"):
        build_space(
            DenseNegatives,
            cfg(params={"range_max": 30}, search_space={"range_max": {"type": "int", "low": 30, "high": 40}}),
            "s",
        )


def tuned_suite(toy_data, tiny_model, out, n_trials=2) -> str:
    return f"""
[suite]
name = "tune"
seeds = [0, 1]
output_dir = "{out}"
isolation = "none"

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


def test_garbage_test_qrels_are_refused_before_tuning(tmp_path, toy_data, tiny_model):
    """The validation stage parses the test qrels (and discards them): garbage there is found before any trial."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    (data / "qrels" / "test.tsv").write_text("garbage that crashes when parsed\n")
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 2 and "test.tsv" in result.output
    assert not (tmp_path / "out").exists()


def test_tuned_run_records_trial_and_never_reads_test_before_final(tmp_path, toy_data, tiny_model, monkeypatch):
    from negbench.data.dataset import RetrievalDataset
    from negbench.run.tuning import Tuner

    state = {"tuning": False, "read_while_tuning": 0, "reads": 0}
    real_run, real_test = Tuner.run, RetrievalDataset.test

    def run(self, objective):
        state["tuning"] = True
        try:
            return real_run(self, objective)
        finally:
            state["tuning"] = False

    def test(self):
        state["read_while_tuning"] += state["tuning"]
        state["reads"] += 1
        return real_test(self)

    monkeypatch.setattr(Tuner, "run", run)
    monkeypatch.setattr(RetrievalDataset, "test", test)
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(toy_data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert state["read_while_tuning"] == 0 and state["reads"] > 0  # read, but only by the final stage
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "out" / "optuna.journal"))
    )
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
    suite.write_text(
        tuned_suite(toy_data, tiny_model, tmp_path / "out").replace('metric = "ndcg@10"', 'metric = "ndcg@5"')
    )
    result = runner.invoke(app, ["validate", str(suite)])
    assert result.exit_code == 2 and "tuning.metric" in result.output


def _studies(out):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    return {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
    }


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_editing_the_suite_trains_new_trials_and_rows_never_pooled(tmp_path, toy_data, tiny_model):
    """The study name used to leave out the training config: after editing the suite the old study counted
    as complete and its parameters were reused; the leaderboard averaged the two configurations."""
    suite = tmp_path / "suite.toml"
    text = tuned_suite(toy_data, tiny_model, tmp_path / "out").replace("seeds = [0, 1]", "seeds = [0]")
    suite.write_text(text)
    assert runner.invoke(app, ["run", str(suite), "--no-progress"]).exit_code == 0
    suite.write_text(text.replace("max_steps = 2", "max_steps = 2\nlr = 5e-3"))  # the user edits training.lr
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    studies = _studies(tmp_path / "out")
    assert len(studies) == 2  # a new study for the new configuration
    assert all(len(s.trials) == 2 for s in studies.values())
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert rows.height == 2 and rows["config_key"].n_unique() == 2
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    primary = board[board.index("(primary)") : board.index("\n### ", board.index("(primary)"))]
    table_rows = [line for line in primary.splitlines() if line.startswith("| in-batch")]
    assert len(table_rows) == 2 and all("[cfg" in r for r in table_rows), board  # one row per configuration


def test_an_invalid_draw_fails_its_trial_not_the_suite(tmp_path, toy_data, tiny_model):
    """Each edge of this space is valid alone, but end_min = end_max = 10 is not a window: progressive's old
    default space could draw it, and its ConfigError aborted the whole suite."""
    suite = tmp_path / "suite.toml"
    text = tuned_suite(toy_data, tiny_model, tmp_path / "out").replace("seeds = [0, 1]", "seeds = [0]")
    text = (
        text.split("[[strategies]]")[0]
        + """[[strategies]]
name = "progressive"
params = { start_min = 20, start_max = 40 }
[strategies.search_space.end_min]
type = "categorical"
choices = [10]
[strategies.search_space.end_max]
type = "categorical"
choices = [10]
"""
    )
    suite.write_text(text)
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    (study,) = _studies(tmp_path / "out").values()
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert rows["status"].to_list() == ["ok"]  # no complete trial: the declared parameters are used


def test_a_tuned_training_setting_is_named_in_the_budget(tmp_path, toy_data, tiny_model):
    """A strategy's own search space over training.epochs / num_negatives gave its row budget "equal" (the tuned
    values were folded into the reference the budget compares with): it trained 4x the steps of in-batch."""
    out = tmp_path / "out"
    text = tuned_suite(toy_data, tiny_model, out, n_trials=1).replace("seeds = [0, 1]", "seeds = [0]")
    text += """
[[strategies]]
name = "random"
[strategies.search_space."training.epochs"]
type = "categorical"
choices = [2]
[strategies.search_space."training.num_negatives"]
type = "categorical"
choices = [2]
"""
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out / "results.parquet")
    budget = rows.filter(pl.col("strategy") == "random")["budget"].item()
    assert "epochs 2 (suite: 1, tuned)" in budget and "num_negatives 2 (suite: 1, tuned)" in budget
    assert "lr" in rows.filter(pl.col("strategy") == "in-batch")["budget"].item()  # its tuned lr, named too
