"""Strategy code that raises or calls sys.exit fails its trial or row, tuned or not, in one process or many."""

from __future__ import annotations

import sys

import optuna
import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.core.strategy import Strategy
from negbench.run.guard import StrategyFailure, guarded
from negbench.run.plan import plan_suite
from negbench.run.suite import SuiteRunner
from negbench.run.tracking import Terminated
from negbench.run.tuning import FAILURE, Tuner, requeued
from negbench.strategies.random_negatives import RandomNegatives
from tests.cli.test_cli import suite_text, tuning_block
from tests.run.test_isolation import _with

TUNING = "max_steps = 2\n" + tuning_block(2)


class MineRaises(Strategy):
    name = "mine-raises"

    def mine(self, ctx):
        raise RuntimeError("mine broke")


class SampleRaises(RandomNegatives):
    name = "sample-raises"

    def sample(self, ctx, candidates, epoch):
        raise ValueError("sample broke")


class Exits7(Strategy):
    name = "exits-7"

    def setup(self, ctx):
        sys.exit(7)


class Exits0(Strategy):
    name = "exits-0"

    def mine(self, ctx):
        sys.exit(0)


FAILING = {
    "mine-raises": ("RuntimeError", "mine broke"),
    "sample-raises": ("ValueError", "sample broke"),
    "exits-7": ("SystemExit", "sys.exit(7)"),
    "exits-0": ("SystemExit", "sys.exit(0)"),
}


def _suite(tmp_path, toy_data, tiny_model, names, isolation):
    """A toy suite tuning training.lr (2 trials) for in-batch and ``names``."""
    text = suite_text(
        toy_data, tiny_model, tmp_path / "out", strategies=("in-batch", *names), extra=TUNING, isolation=isolation
    )
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def _check(tmp_path, rows: pl.DataFrame, names) -> None:
    by = {r["strategy"]: r for r in rows.iter_rows(named=True)}
    assert by["in-batch"]["status"] == "ok"
    assert by["in-batch"]["trial"] is not None  # tuned: its trials completed
    for name in names:
        kind, text = FAILING[name]
        assert by[name]["status"] == f"failed: {kind}", by[name]
        assert kind in by[name]["error"] and text in by[name]["error"], by[name]["error"]
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "out" / "optuna.journal"))
    )
    studies = {
        s.study_name.split("/")[3]: optuna.load_study(study_name=s.study_name, storage=storage)
        for s in optuna.get_all_study_summaries(storage)
    }
    for name in names:  # every trial of a failing plugin failed with its reason, and used the budget
        trials = studies[name].trials
        assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL] * 2
        assert all(FAILING[name][1] in t.user_attrs[FAILURE] for t in trials)
        assert not requeued(trials)
        assert Tuner.counted(studies[name]) == 2


def test_failing_plugins_fail_their_rows_in_a_tuned_suite(tmp_path, toy_data, tiny_model, monkeypatch):
    """Used to abort the whole suite with a traceback (0 rows), or end it with exit 7 and no message."""
    names = ("mine-raises", "sample-raises", "exits-7", "exits-0")
    reg = _with(MineRaises, SampleRaises, Exits7, Exits0)
    original = plan_suite
    monkeypatch.setattr("negbench.run.plan.plan_suite", lambda path: original(path, reg=reg))
    path = _suite(tmp_path, toy_data, tiny_model, names, "none")
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "some jobs failed" in result.output
    _check(tmp_path, pl.read_parquet(tmp_path / "out" / "results.parquet"), names)


def test_failing_plugins_fail_their_rows_in_job_processes(tmp_path, toy_data, tiny_model):
    """In a job process sys.exit(0) used to end the process: a "crashed" row with no reason."""
    names = ("sample-raises", "exits-0")
    path = _suite(tmp_path, toy_data, tiny_model, names, "process")
    rows = SuiteRunner(plan_suite(path, reg=_with(SampleRaises, Exits0))).run().rows()
    _check(tmp_path, rows, names)


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), Terminated("signal 15")])
def test_the_guard_never_catches_interrupts(exc):
    with pytest.raises(type(exc)), guarded():
        raise exc


@pytest.mark.parametrize("exc", [RuntimeError("x"), SystemExit(0), SystemExit(3), SystemExit()])
def test_the_guard_turns_exceptions_and_exits_into_failures(exc):
    with pytest.raises(StrategyFailure) as info, guarded():
        raise exc
    assert info.value.kind == type(exc).__name__
