"""Scale-out: several `negbench worker` processes share one suite through PostgreSQL.

The PostgreSQL server is started by the test set-up on a loopback port (Debian's postgresql, installed
with apt-get when missing and running as root); the tests are skipped with the reason when it cannot start.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import polars as pl
import pytest
import sqlalchemy as sa

from tests.cli.test_cli import suite_text

METRICS = ["ndcg@10", "recall@100", "mrr@10", "map@100"]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    return found


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres():
    if _pg_bin("pg_ctl") is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "postgresql"],
            capture_output=True,
            timeout=900,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    pg_ctl, initdb = _pg_bin("pg_ctl"), _pg_bin("initdb")
    if pg_ctl is None or initdb is None:
        pytest.skip("PostgreSQL server binaries (pg_ctl, initdb) not available and could not be installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg not installed (pip install 'psycopg[binary]')")
    data = Path(tempfile.mkdtemp(prefix="negbench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        subprocess.run(
            _as_postgres([initdb, "-D", str(data), "-U", "postgres", "--auth=trust"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_postgres(
                [
                    pg_ctl,
                    "-D",
                    str(data),
                    "-l",
                    str(data / "log"),
                    "-w",
                    "-o",
                    f"-p {port} -h 127.0.0.1 -k {data}",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        pytest.skip(f"PostgreSQL could not start: {exc}")
    engine = sa.create_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE negbench"))
    engine.dispose()
    yield f"postgresql://postgres@127.0.0.1:{port}/negbench"
    subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
    shutil.rmtree(data, ignore_errors=True)


TUNED = """
[[strategies]]
name = "dense"
label = "dense-tuned"
params = { range_min = 0, sampling = "top" }
[strategies.search_space.range_max]
type = "int"
low = 5
high = 20
"""


def write_suite(tmp_path, name, toy_data, tiny_model, trials: int) -> Path:
    text = suite_text(toy_data, tiny_model, tmp_path / name, strategies=("none", "in-batch", "random"))
    text = text.replace("seeds = [0]", "seeds = [0, 1]")
    text = text.replace("num_negatives = 1", "num_negatives = 1\nmax_steps = 3")
    text += f"\n[tuning]\nn_trials = {trials}\n" + (TUNED if trials else "")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def start_workers(suite: Path, url: str, n: int, *extra: str) -> list[subprocess.Popen]:
    """``n`` worker processes on ``suite`` (heartbeat 0.5 s, grace 4 s), each with the ``extra`` arguments."""
    cmd = [
        sys.executable,
        "-m",
        "negbench",
        "worker",
        str(suite),
        "--storage",
        url,
        "--heartbeat",
        "0.5",
        "--grace",
        "4",
        *extra,
    ]
    return [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
        for _ in range(n)
    ]


def wait_all(procs, timeout=600) -> list[int]:
    codes = []
    for p in procs:
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            raise
        codes.append(p.returncode)
    return codes


def by_job(path: Path) -> pl.DataFrame:
    return pl.read_parquet(path / "results.parquet").sort(["strategy", "seed"])


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_three_workers_match_a_single_process_run(tmp_path, toy_data, tiny_model, postgres):
    single = write_suite(tmp_path, "single", toy_data, tiny_model, trials=0)
    done = subprocess.run(
        [sys.executable, "-m", "negbench", "run", str(single), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    shared = write_suite(tmp_path, "shared", toy_data, tiny_model, trials=0)
    procs = start_workers(shared, postgres, 3)
    assert wait_all(procs) == [0, 0, 0], [p.stderr.read()[-1500:] for p in procs]
    a, b = by_job(tmp_path / "single"), by_job(tmp_path / "shared")
    assert b.height == 6 and b["run_id"].n_unique() == 6
    assert a["run_id"].to_list() == b["run_id"].to_list()
    for metric in METRICS:
        assert (a[metric] - b[metric]).abs().max() < 1e-6


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_worker_killed_mid_run_is_replaced(tmp_path, toy_data, tiny_model, postgres):
    suite = write_suite(tmp_path, "killed", toy_data, tiny_model, trials=3)
    db = postgres.rsplit("/", 1)[0] + "/killed"
    engine = sa.create_engine(postgres.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE killed"))
    engine.dispose()
    procs = start_workers(suite, db, 3)
    engine = sa.create_engine(db)
    victim = None
    deadline = time.time() + 300
    while victim is None and time.time() < deadline:
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT owner FROM negbench_claims WHERE state = 'running'")).all()
        except sa.exc.ProgrammingError:
            rows = []
        pids = {int(owner.split(":")[1]) for (owner,) in rows}
        victim = next((p for p in procs if p.pid in pids), None)
        time.sleep(0.1)
    assert victim is not None, "no worker ever held a claim"
    os.killpg(victim.pid, signal.SIGKILL)
    survivors = [p for p in procs if p is not victim]
    assert wait_all(survivors) == [0, 0], [p.stderr.read()[-1500:] for p in survivors]
    rows = by_job(tmp_path / "killed")
    assert rows.height == 8 and rows["run_id"].n_unique() == 8  # 4 strategies × 2 seeds, no duplicates
    assert (rows["status"] == "ok").all()
    (summary,) = optuna.get_all_study_summaries(db)
    trials = optuna.load_study(study_name=summary.study_name, storage=db).trials
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states
    assert states.count(optuna.trial.TrialState.COMPLETE) == 3  # the global cap, across workers and a kill
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM negbench_claims WHERE state <> 'done'")).scalar()
    assert left == 0
    status = subprocess.run(
        [sys.executable, "-m", "negbench", "status", str(suite), "--storage", db, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert status.returncode == 0, status.stderr[-1500:]
    assert '"seeds_done": 2' in status.stdout and '"complete": 3' in status.stdout


# ------------------------------------------------------------------ workers started together, a worker killed
def tracked_suite(tmp_path, name, toy_data, tiny_model, steps: int = 3) -> Path:
    path = write_suite(tmp_path, name, toy_data, tiny_model, trials=0)
    text = path.read_text().replace("[tracking]\nenabled = false", "[tracking]\nenabled = true")
    path.write_text(text.replace("max_steps = 3", f"max_steps = {steps}"))
    return path


def check_finished_store(out: Path) -> None:
    """Every row ok and unique, no MLflow run left RUNNING, no half-migrated table, no temporaries."""
    rows = by_job(out)
    assert rows.height == 6 and rows["run_id"].n_unique() == 6 and (rows["status"] == "ok").all()
    engine = sa.create_engine(f"sqlite:///{out / 'mlflow.db'}")
    with engine.connect() as conn:
        running = conn.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'RUNNING'")).scalar()
        tables = set(sa.inspect(conn).get_table_names())
    engine.dispose()
    assert running == 0
    assert "alembic_version" in tables and not [t for t in tables if t.startswith("_alembic_tmp_")]
    assert not list(out.glob(".negbench-train-*")) and not list(out.glob(".mlflow-init-*"))


def start_together(suite: Path, db: Path, n: int, gpus: bool) -> list[subprocess.Popen]:
    if gpus:  # one command, one worker per id (CUDA_VISIBLE_DEVICES; on a CPU machine every worker uses the CPU)
        return start_workers(suite, f"sqlite:///{db}", 1, "--gpus", ",".join(str(i) for i in range(n)))
    return start_workers(suite, f"sqlite:///{db}", n)


def start_together_and_check(tmp_path, toy_data, tiny_model, n: int, gpus: bool) -> None:
    """``n`` workers started at the same moment on a fresh SQLite store (tracking on) all finish the suite."""
    tmp_path.mkdir(parents=True, exist_ok=True)  # the repeated (slow) variant passes one folder per attempt
    suite = tracked_suite(tmp_path, "together", toy_data, tiny_model)
    db = tmp_path / "shared.db"
    procs = start_together(suite, db, n, gpus)
    assert all(code == 0 for code in wait_all(procs)), [p.stderr.read()[-1500:] for p in procs]
    check_finished_store(tmp_path / "together")
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT run_id, status FROM negbench_results")).all()
        scored = conn.execute(sa.text("SELECT count(*) FROM negbench_per_query")).scalar()
    engine.dispose()
    assert len(stored) == 6 and {status for _, status in stored} == {"ok"}
    assert scored == 6
    rows = by_job(tmp_path / "together")
    assert sorted(rows["run_id"].to_list()) == sorted(run_id for run_id, _ in stored)
    per_query = pl.read_parquet(tmp_path / "together" / "per_query.parquet")
    assert set(per_query["run_id"]) == set(rows["run_id"]) and set(per_query["metric"]) == set(METRICS)


def test_workers_started_together_on_a_fresh_sqlite_store_keep_results_in_the_database(tmp_path, toy_data, tiny_model):
    """Rows go to the shared database in transactions; results.parquet / per_query.parquet are its export.
    Started together (`--gpus` with several ids), workers used to run MLflow's schema migration on one new
    mlflow.db at once: one died with an alembic error (3 of 3 tries), sometimes leaving tables that broke every
    later command."""
    start_together_and_check(tmp_path, toy_data, tiny_model, 3, gpus=True)


@pytest.mark.slow
@pytest.mark.parametrize(("n", "gpus"), [(2, False), (4, False), (2, True), (4, True)])
def test_workers_started_together_repeatedly(tmp_path, toy_data, tiny_model, n, gpus):
    for attempt in range(5):
        start_together_and_check(tmp_path / str(attempt), toy_data, tiny_model, n, gpus)


# slow (two tracked workers, one killed mid-training): the default run keeps the takeover rules
# (test_a_takeover_from_a_worker_still_running_leaves_its_runs_and_directories_alone)
@pytest.mark.slow
def test_a_killed_workers_runs_and_temporaries_are_closed_by_the_worker_that_takes_over(tmp_path, toy_data, tiny_model):
    """The survivor finished the suite, but the dead worker's MLflow runs stayed RUNNING and its training
    directory stayed until a later `negbench run`."""
    suite = tracked_suite(tmp_path, "killed", toy_data, tiny_model, steps=15)
    out = tmp_path / "killed"
    procs = start_workers(suite, f"sqlite:///{tmp_path / 'shared.db'}", 2)
    victim, deadline = None, time.time() + 300
    while victim is None and time.time() < deadline:  # kill a worker while it trains (its directory exists)
        for entry in out.glob(".negbench-train-*"):
            try:
                pid = json.loads((entry / "negbench-owner.json").read_text())["pid"]
            except (OSError, ValueError):
                continue
            victim = next((p for p in procs if p.pid == pid), None)
        time.sleep(0.01)
    assert victim is not None, "no worker was ever seen training"
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    (survivor,) = [p for p in procs if p is not victim]
    assert wait_all([survivor]) == [0], survivor.stderr.read()[-1500:]
    check_finished_store(out)
    engine = sa.create_engine(f"sqlite:///{out / 'mlflow.db'}")
    with engine.connect() as conn:
        killed = conn.execute(sa.text("SELECT count(*) FROM runs WHERE status = 'KILLED'")).scalar()
    engine.dispose()
    assert killed >= 3  # the dead worker's suite, job and seed runs


def test_a_takeover_from_a_worker_still_running_leaves_its_runs_and_directories_alone(tmp_path):
    """A live worker whose heartbeat went stale (a failed heartbeat thread, a short grace) used to lose its
    training directory and have its runs marked KILLED by the worker that took its unit."""
    from types import SimpleNamespace

    from negbench._io import owned_temporary_dir
    from negbench.config.suite import TrackingConfig
    from negbench.run.claims import worker_id
    from negbench.run.tracking import Tracker
    from negbench.run.workers import WorkerLoop

    tracker = Tracker(TrackingConfig(enabled=True), tmp_path, "w")
    tracker.start(close_stale=False)
    live = worker_id()  # this very process: alive
    run_id = tracker.client.create_run(tracker.experiment_id, tags={"negbench.worker": live}).info.run_id
    survivor = SimpleNamespace(tracker=tracker, plan=SimpleNamespace(output_dir=tmp_path))
    with owned_temporary_dir(tmp_path) as path:
        WorkerLoop.clean_up_after(survivor, live)
        assert Path(path).is_dir() and tracker.client.get_run(run_id).info.status == "RUNNING"
