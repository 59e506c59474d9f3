"""MLflow: suite → job → trial / final-seed runs, all closed, metrics and artifacts logged."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from negbench.cli import app
from tests.cli.test_cli import suite_text
from tests.run.test_tuning import tuned_suite

runner = CliRunner()


def test_run_hierarchy_and_statuses(tmp_path, toy_data, tiny_model):
    suite = tmp_path / "suite.toml"
    suite.write_text(tuned_suite(toy_data, tiny_model, tmp_path / "out").replace("enabled = false", "enabled = true"))
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


# ------------------------------------------------------------------------- one SQLite store, many starters
def _start_tracker(out: str, barrier, failures) -> None:
    """One worker's tracking start-up, released at the same moment as the others'."""
    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    tracker = Tracker(TrackingConfig(enabled=True), Path(out), "negbench/race")
    barrier.wait()
    try:
        tracker.start(close_stale=False)
        with tracker.run("suite"):
            pass
    except BaseException as exc:  # reported to the test, which names it
        failures.put(f"{type(exc).__name__}: {exc}"[:300])
        raise


def test_trackers_started_together_create_and_migrate_one_sqlite_store(tmp_path):
    """Two workers started together used to run MLflow's schema migration on one new mlflow.db at once: one
    or both died with alembic errors, and leftover _alembic_tmp_* tables broke every later command."""
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401 - imported once, before the fork

    fork = mp.get_context("fork")
    for attempt in range(4):
        out = tmp_path / f"out{attempt}"
        barrier, failures = fork.Barrier(4), fork.Queue()
        procs = [fork.Process(target=_start_tracker, args=(str(out), barrier, failures)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=300)
        errors = [failures.get() for _ in range(failures.qsize())] if not failures.empty() else []
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], errors
        with sqlite3.connect(out / "mlflow.db") as conn:
            tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            experiments = conn.execute("SELECT count(*) FROM experiments WHERE name = 'negbench/race'").fetchone()
            runs = conn.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
        assert not {t for t in tables if t.startswith("_alembic_tmp_")} and "alembic_version" in tables
        assert experiments == (1,) and runs == [("FINISHED", 4)]
        assert not list(out.glob(".mlflow-init-*"))


def test_a_half_migrated_store_is_reported_in_one_line(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    out.mkdir()
    with sqlite3.connect(out / "mlflow.db") as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        conn.execute("CREATE TABLE experiments (experiment_id INTEGER)")
        conn.execute("CREATE TABLE _alembic_tmp_experiments (experiment_id INTEGER)")
    suite = tmp_path / "suite.toml"
    suite.write_text(
        suite_text(toy_data, tiny_model, out, strategies=("none",)).replace("enabled = false", "enabled = true")
    )
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()[-1:]
    assert line.startswith(f"error: {out / 'mlflow.db'}: an MLflow schema migration was interrupted")
    assert "_alembic_tmp_experiments" in line and "move the file aside" in line


def test_a_store_whose_creation_is_interrupted_leaves_nothing_behind(tmp_path, monkeypatch):
    """MLflow migrates a new file in a temporary one; an interruption there never leaves a half-made mlflow.db."""
    from mlflow.store.db import utils

    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    def interrupted(engine):  # the tables exist, the migration is under way
        raise KeyboardInterrupt

    monkeypatch.setattr(utils, "_upgrade_db", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Tracker(TrackingConfig(enabled=True), tmp_path, "x").start()
    assert not (tmp_path / "mlflow.db").exists() and not list(tmp_path.glob(".mlflow-init-*"))


def test_close_runs_of_closes_only_the_dead_workers_runs(tmp_path):
    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    dead, alive = (Tracker(TrackingConfig(enabled=True), tmp_path, "w") for _ in range(2))
    dead.worker, alive.worker = "o'brien:1:2:3:aaaaaa", "host:2:3:4:bbbbbb"  # a quote in a host name is fine
    for tracker in (dead, alive):
        tracker.start(close_stale=False)
    dead_run = dead.client.create_run(dead.experiment_id, tags={"negbench.worker": dead.worker}).info.run_id
    with alive.run("suite") as live_run:
        assert alive.close_runs_of(dead.worker) == 1
        assert alive.client.get_run(live_run).info.status == "RUNNING"
    assert alive.client.get_run(dead_run).info.status == "KILLED"
    assert alive.client.get_run(live_run).data.tags["negbench.worker"] == "host:2:3:4:bbbbbb"


def test_a_starting_worker_closes_only_verifiably_dead_workers_runs(tmp_path):
    """A worker started late used to mark every RUNNING run KILLED, its live colleagues' included; one killed
    while it held no claim left its suite run RUNNING (nothing was ever taken over from it)."""
    import multiprocessing

    from negbench.config.suite import TrackingConfig
    from negbench.run.claims import worker_id
    from negbench.run.tracking import Tracker
    from negbench.run.workers import _dead

    child = multiprocessing.get_context("fork").Process(target=_print_worker_id, args=(str(tmp_path / "id"),))
    child.start()
    child.join()
    gone = (tmp_path / "id").read_text()  # a worker id of a process that has exited
    me = Tracker(TrackingConfig(enabled=True), tmp_path, "w")
    me.worker = worker_id()
    me.start(close_stale=False)
    runs = {
        name: me.client.create_run(me.experiment_id, tags=tags).info.run_id
        for name, tags in (
            ("dead", {"negbench.worker": gone}),
            ("live", {"negbench.worker": worker_id()}),
            ("elsewhere", {"negbench.worker": "another-host:1:2:3:cccccc"}),
            ("untagged", {}),
        )
    }
    assert me.close_dead_workers(_dead) == 1
    status = {name: me.client.get_run(run_id).info.status for name, run_id in runs.items()}
    assert status == {"dead": "KILLED", "live": "RUNNING", "elsewhere": "RUNNING", "untagged": "RUNNING"}


def _print_worker_id(path: str) -> None:
    from negbench.run.claims import worker_id

    Path(path).write_text(worker_id())


def test_the_tracking_store_is_readable_as_the_umask_allows(tmp_path):
    """Created through mkstemp, mlflow.db used to be 0600: a colleague's `mlflow ui` could not read it."""
    import os

    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    old = os.umask(0o002)
    try:
        Tracker(TrackingConfig(enabled=True), tmp_path, "x").start()
    finally:
        os.umask(old)
    assert (tmp_path / "mlflow.db").stat().st_mode & 0o777 == 0o664


def test_a_hash_in_the_output_path_is_not_read_as_a_uri_fragment(tmp_path):
    """The half-migration check built `file:<path>?mode=...` unescaped: `exp#2` opened `exp` (created it, or
    reported a healthy store as unreadable)."""
    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    out = tmp_path / "exp#2"
    for _ in range(2):
        Tracker(TrackingConfig(enabled=True), out, "x").start()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp#2"]


def test_a_store_left_by_a_killed_writer_is_opened_and_rolled_back(tmp_path):
    """A run SIGKILLed mid-write leaves a hot ``mlflow.db-journal``. The half-migration check opened the file
    read-only, SQLite could not roll the journal back, and the next run stopped with "not a readable tracking
    database (attempt to write a readonly database)" (CI, tests/run/test_resume.py::test_sigkill_then_resume)."""
    from negbench.config.suite import TrackingConfig
    from negbench.run.tracking import Tracker

    Tracker(TrackingConfig(enabled=True), tmp_path, "x").start()
    database = tmp_path / "mlflow.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA cache_size = 1")
        (before,) = conn.execute("SELECT group_concat(name) FROM experiments").fetchone()
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA cache_size = 1")
        conn.execute("CREATE TABLE filler (x BLOB)")
        conn.executemany("INSERT INTO filler VALUES (randomblob(4000))", [()] * 200)
    child = mp.get_context("fork").Process(target=_write_many_then_die, args=(str(database),))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == -signal.SIGKILL
    assert (tmp_path / "mlflow.db-journal").stat().st_size > 0, "no hot journal was left: the test proves nothing"
    Tracker(TrackingConfig(enabled=True), tmp_path, "x").start()
    with sqlite3.connect(database) as conn:
        (after,) = conn.execute("SELECT group_concat(name) FROM experiments").fetchone()
    assert after == before


def _write_many_then_die(database: str) -> None:
    conn = sqlite3.connect(database, isolation_level=None)
    conn.execute("PRAGMA cache_size = 1")  # pages spill to the file before commit, so the journal is hot
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE experiments SET name = name || '-half-written'")
    conn.execute("UPDATE filler SET x = randomblob(4000)")
    os.kill(os.getpid(), signal.SIGKILL)
