"""``[training] budget = "compute"`` end to end on the toy corpus: ``plan`` shows each strategy's steps and estimated
compute, a run records them with the measured TFLOPs, a strategy whose preparation alone exceeds the budget fails its
row with the reason, and the board says which rule it used."""

from __future__ import annotations

import json

import polars as pl
import pytest

from negbench.cli import app
from tests.cli.test_cli import runner, suite_text

COMPUTE = 'budget = "compute"\n'


def _suite(tmp_path, toy_data, tiny_model, strategies, extra=COMPUTE, epochs=2):
    path = tmp_path / "suite.toml"
    text = suite_text(toy_data, tiny_model, tmp_path / "out", strategies=strategies, extra=extra)
    text = text.replace("epochs = 1\n", f"epochs = {epochs}\n")
    path.write_text(text.replace('name = "ance"\n', 'name = "ance"\nparams = { refresh_every = 1 }\n'))
    return path


def test_plan_shows_each_strategys_steps_and_compute_under_the_compute_rule(tmp_path, toy_data, tiny_model):
    path = _suite(tmp_path, toy_data, tiny_model, ("none", "in-batch", "dense", "ance"))
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    jobs = {job["strategy"]: job for job in json.loads(result.stdout)}
    base, dense, ance = jobs["in-batch"], jobs["dense"], jobs["ance"]
    assert base["total_steps"] == 2 * base["steps_per_epoch"] == 10 and base["est_prep_tflop"] == 0
    assert ance["total_steps"] < dense["total_steps"] < base["total_steps"]
    target = base["est_prep_tflop"] + base["est_train_tflop"]
    for job in (dense, ance):
        assert job["budget_rule"] == "compute" and job["est_prep_tflop"] > 0
        assert job["est_prep_tflop"] + job["est_train_tflop"] <= target
        assert job["budget"].startswith(f"compute: {job['total_steps']} step")
    assert jobs["none"]["est_train_tflop"] is None
    table = runner.invoke(app, ["plan", str(path)])
    assert table.exit_code == 0 and "TFLOP prep + train" in table.output
    assert "budget rule: equal compute (training.budget)" in table.output


def test_a_compute_run_records_estimated_and_measured_tflops(tmp_path, toy_data, tiny_model):
    path = _suite(tmp_path, toy_data, tiny_model, ("none", "in-batch", "dense"))
    planned = {j["strategy"]: j for j in json.loads(runner.invoke(app, ["plan", str(path), "--json"]).stdout)}
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = {r["strategy"]: r for r in pl.read_parquet(tmp_path / "out" / "results.parquet").iter_rows(named=True)}
    for name in ("in-batch", "dense"):
        row = rows[name]
        assert row["status"] == "ok" and row["budget_rule"] == "compute"
        assert row["steps"] == planned[name]["total_steps"]
        assert row["est_train_tflop"] == pytest.approx(planned[name]["est_train_tflop"])
        assert row["train_tflop"] == pytest.approx(row["est_train_tflop"], rel=0.3)  # mean lengths vs these texts
        assert row["eval_tflop"] > 0 and row["encoder_params"] > 0
    assert rows["in-batch"]["prep_tflop"] == 0 and rows["dense"]["steps"] < rows["in-batch"]["steps"]
    # dense's mining encodes the corpus and its training queries once: exactly what the estimate counts
    assert rows["dense"]["prep_tflop"] == pytest.approx(rows["dense"]["est_prep_tflop"], rel=1e-9)
    assert rows["none"]["train_tflop"] is None and rows["none"]["eval_tflop"] == pytest.approx(
        rows["in-batch"]["eval_tflop"]
    )
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "train TFLOP" in board and "device (times)" in board and "Budget rule: equal compute" in board


def test_a_strategy_whose_preparation_exceeds_the_compute_budget_fails_its_row(tmp_path, toy_data, tiny_model):
    """One baseline step is less compute than encoding the corpus for ``dense``'s mining."""
    path = _suite(tmp_path, toy_data, tiny_model, ("in-batch", "dense"), extra=COMPUTE + "max_steps = 1\n")
    plan = runner.invoke(app, ["plan", str(path), "--json"])
    assert plan.exit_code == 2 and "strategy 'dense': its preparation alone" in plan.output
    assert "strategy 'dense': strategy 'dense'" not in plan.output  # named once
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = {r["strategy"]: r for r in pl.read_parquet(tmp_path / "out" / "results.parquet").iter_rows(named=True)}
    assert rows["in-batch"]["status"] == "ok" and rows["in-batch"]["steps"] == 1
    assert rows["dense"]["status"] == "failed: BudgetError"
    assert "its preparation alone" in rows["dense"]["error"] and "baseline 'in-batch'" in rows["dense"]["error"]


@pytest.mark.parametrize(
    ("extra", "strategies", "message"),
    [
        ('budget = "flops"\n', ("in-batch",), "training.budget: Input should be 'data' or 'compute'"),
        (COMPUTE, ("dense", "bm25"), 'training.budget: budget = "compute" gives every strategy the compute of'),
        (COMPUTE, ("none", "dense"), "'in-batch' is not a strategy label"),
    ],
)
def test_the_budget_rule_is_validated_with_one_line_naming_training_budget(
    tmp_path, toy_data, tiny_model, extra, strategies, message
):
    path = _suite(tmp_path, toy_data, tiny_model, strategies, extra=extra)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_a_strategy_cannot_set_its_own_budget_rule(tmp_path, toy_data, tiny_model):
    path = _suite(tmp_path, toy_data, tiny_model, ("in-batch",), extra="")
    path.write_text(path.read_text() + '[[strategies]]\nname = "dense"\ntraining = { budget = "compute" }\n')
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "training.budget: the budget rule is the suite's" in result.output
