"""Crash safety: SIGKILL mid-suite, rerun, and the results are complete with no duplicates or stale runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import polars as pl
import pytest
from mlflow.tracking import MlflowClient

from tests.run.test_tuning import tuned_suite

STRATEGIES = """
[[strategies]]
name = "random"
[strategies.search_space."training.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""


# slow (tuned, tracked, two strategies × two seeds, run twice): the default run keeps Ctrl-C's resume
# (test_interrupts) and SIGKILL's cleanup (test_isolation)
@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    text = tuned_suite(toy_data, tiny_model, out).replace("enabled = false", "enabled = true") + STRATEGIES
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    cmd = [sys.executable, "-m", "negbench", "run", str(suite), "--no-progress"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (out / "results.parquet").exists() and pl.read_parquet(out / "results.parquet").height >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "suite finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_rows = pl.read_parquet(out / "results.parquet")
    assert 1 <= killed_rows.height < 4

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = pl.read_parquet(out / "results.parquet")
    assert rows.height == 4 and rows["run_id"].n_unique() == 4
    assert sorted(zip(rows["strategy"], rows["seed"], strict=True)) == [
        ("in-batch", 0),
        ("in-batch", 1),
        ("random", 0),
        ("random", 1),
    ]
    assert (rows["status"] == "ok").all()
    # rows finished before the kill were not re-run
    for rid, created in zip(killed_rows["run_id"], killed_rows["created_at"], strict=True):
        assert rows.filter(pl.col("run_id") == rid)["created_at"].item() == created
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    for summary in optuna.get_all_study_summaries(storage):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
        states = [t.state for t in trials]
        assert optuna.trial.TrialState.RUNNING not in states
        assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("negbench/tune")
    statuses = {r.info.status for r in client.search_runs([experiment.experiment_id], max_results=500)}
    assert "RUNNING" not in statuses
