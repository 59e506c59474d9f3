"""MLflow: suite → job → trial / final-seed runs, all closed, metrics and artifacts logged."""

from __future__ import annotations

from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from negbench.cli import app
from tests.test_tuning import tuned_suite

runner = CliRunner()


def test_run_hierarchy_and_statuses(tmp_path, toy_data, tiny_model):
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(toy_data, tiny_model, tmp_path / "out").replace("enabled = false",
                                                                                "enabled = true"))
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "negbench/tune"]
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    kinds = {}
    for run in runs:
        kinds.setdefault(run.data.tags["kind"], []).append(run)
        assert run.info.status == "FINISHED"
    assert len(kinds["suite"]) == 1 and len(kinds["job"]) == 1
    assert len(kinds["trial"]) == 2 and len(kinds["final"]) == 2
    job_id = kinds["job"][0].info.run_id
    assert all(r.data.tags["mlflow.parentRunId"] == job_id for r in kinds["trial"] + kinds["final"])
    assert kinds["job"][0].data.tags["mlflow.parentRunId"] == kinds["suite"][0].info.run_id
    final = kinds["final"][0]
    assert "ndcg_at_10" in final.data.metrics and "train_examples_per_s" in final.data.metrics
    assert "dev_ndcg_at_10" in kinds["trial"][0].data.metrics
    artifacts = {a.path for a in client.list_artifacts(kinds["suite"][0].info.run_id)}
    assert {"suite.toml", "results.parquet", "leaderboard.md"} <= artifacts
