"""One run per output directory: a second `negbench run` is refused in one line; workers share; a killed
holder blocks nothing; temporaries a killed run left are removed once the lock is held."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from negbench._io import owned_temporary_dir
from negbench.cli import app
from negbench.run.lock import LOCK_FILE, OutputDirInUse, RunLock, remove_stale_temporaries
from tests.cli.test_cli import suite_text

REPO = Path(__file__).resolve().parents[2]
cli = CliRunner()


def _python(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE, text=True)


def _wait_for(path: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.is_file():
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} never appeared")


def _wait_for_training(out: Path, first: subprocess.Popen, timeout: float = 180) -> None:
    """Until the first run's second job trains (its training directory exists beside its first row)."""
    deadline = time.time() + timeout
    while time.time() < deadline and first.poll() is None:
        if (out / "results.parquet").is_file() and any(out.glob(".negbench-train-*")):
            return
        time.sleep(0.05)
    raise AssertionError("the first run never started training its second job")


# slow (two full runs): the default run keeps the refusal's one line (test_a_refused_worker_prints_one_line)
@pytest.mark.slow
def test_second_run_on_one_output_directory_is_refused_and_the_first_finishes_intact(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    suite = tmp_path / "suite.toml"
    suite.write_text(
        suite_text(toy_data, tiny_model, out, strategies=("none", "in-batch"), extra="max_steps = 60")
    )  # the second run is refused within a second (in-process): the first's job need not be long
    cmd = [sys.executable, "-m", "negbench", "run", str(suite), "--no-progress"]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_training(out, first)
        second = cli.invoke(app, ["run", str(suite), "--no-progress"])
        still_running = first.poll() is None
        _, stderr = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert still_running, "the first run finished before the second was refused: make its job slower"
    assert second.exit_code == 2, second.output
    lines = second.output.strip().splitlines()
    assert len(lines) == 1, second.output
    assert lines[0].startswith(f"error: {out}: output directory is in use by negbench run pid {first.pid} on host ")
    assert "negbench worker" in lines[0]
    assert first.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    rows = pl.read_parquet(out / "results.parquet")
    assert sorted(rows["strategy"].to_list()) == ["in-batch", "none"]
    assert (rows["status"] == "ok").all()
    assert rows.filter(pl.col("strategy") == "in-batch")["steps"].to_list() == [60]
    assert set(pl.read_parquet(out / "per_query.parquet")["run_id"]) == set(rows["run_id"])


def test_run_and_workers_exclude_each_other_and_workers_share(tmp_path):
    run = RunLock(tmp_path).acquire()
    with pytest.raises(OutputDirInUse, match=f"negbench run pid {os.getpid()}"):
        RunLock(tmp_path, shared=True).acquire()
    with pytest.raises(OutputDirInUse):
        RunLock(tmp_path).acquire()
    run.release()
    a = RunLock(tmp_path, shared=True).acquire()
    assert a.exclusive  # the first worker holds it alone until it has cleaned up
    a.downgrade()
    b = RunLock(tmp_path, shared=True).acquire()
    assert not b.exclusive
    with pytest.raises(OutputDirInUse, match="negbench worker pid"):
        RunLock(tmp_path).acquire()
    a.release()
    with pytest.raises(OutputDirInUse):
        RunLock(tmp_path).acquire()
    b.release()
    RunLock(tmp_path).acquire().release()


STALE = [
    ".results.parquet.abc12_xy.tmp",
    ".per_query.parquet.k9k9k9k9.tmp",
    ".leaderboard.md.zz00zz00",
    ".suite.toml.q1q1q1q1",  # the suite copy a killed run was writing
]
STALE_DIRS = ["tmpa1b2c3d4", ".negbench-train-q1w2e3r4"]
KEEP = ["results.parquet", "notes.txt", ".results.lock"]


def _litter(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in STALE + KEEP:
        (out / name).write_text("x")
    for name in [*STALE_DIRS, "tmp-mine"]:
        (out / name).mkdir()
        (out / name / "model.safetensors").write_text("x")
    (out / "cache").mkdir()
    (out / "cache" / ".bm25-abc.pt.x1y2z3w4").write_text("x")
    (out / "cache" / "bm25-abc.pt").write_text("x")


def test_stale_temporaries_are_removed_on_start(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    _litter(out)
    (out / "results.parquet").unlink()  # not a results store
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, out, strategies=("none",)))
    result = cli.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    left = {p.name for p in out.iterdir()} | {p.name for p in (out / "cache").iterdir()}
    assert not left & set(STALE + STALE_DIRS + [".bm25-abc.pt.x1y2z3w4"]), left
    assert {"notes.txt", ".results.lock", "tmp-mine", "bm25-abc.pt", "results.parquet"} <= left


def test_temporaries_are_kept_while_another_process_holds_the_lock(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    _litter(out)
    (out / "results.parquet").unlink()
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, out, strategies=("none",)))
    with RunLock(out, shared=True):  # a worker at work
        result = cli.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 2
    assert "in use by negbench worker" in result.output
    assert all((out / name).exists() for name in STALE + STALE_DIRS)
    # a worker joining other workers leaves their temporaries alone too
    with RunLock(out, shared=True) as first:
        first.downgrade()
        joining = RunLock(out, shared=True).acquire()
        assert not joining.exclusive
        joining.release()
    assert all((out / name).exists() for name in STALE + STALE_DIRS)


def test_a_sigkilled_holder_blocks_nothing(tmp_path, toy_data, tiny_model):
    out = tmp_path / "out"
    holder = _python(f"""
        from pathlib import Path
        import time
        from negbench.run.lock import RunLock
        lock = RunLock({str(out)!r}).acquire()
        Path({str(out)!r}, ".results.parquet.deadbeef.tmp").write_text("half a write")
        Path({str(out)!r}, "tmpdeadbeef").mkdir()
        print("held", flush=True)
        time.sleep(600)
    """)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputDirInUse):
            RunLock(out).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert json.loads((out / LOCK_FILE).read_text().splitlines()[-1])["pid"] == holder.pid  # left behind
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, out, strategies=("none",)))
    result = cli.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert not (out / ".results.parquet.deadbeef.tmp").exists() and not (out / "tmpdeadbeef").exists()
    assert pl.read_parquet(out / "results.parquet")["status"].to_list() == ["ok"]


def test_a_cache_outside_the_output_directory_is_left_alone(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "shared-cache"
    out.mkdir()
    cache.mkdir()
    (cache / ".dense-abc.pt.x1y2z3w4").write_text("another suite's write in progress")
    assert remove_stale_temporaries(out, cache) == []
    assert (cache / ".dense-abc.pt.x1y2z3w4").exists()


def test_a_worker_waits_for_another_workers_clean_up_instead_of_being_refused(tmp_path):
    import threading

    first = RunLock(tmp_path, shared=True).acquire()
    assert first.exclusive  # cleaning up, alone
    got: list[RunLock] = []
    joining = threading.Thread(target=lambda: got.append(RunLock(tmp_path, shared=True).acquire()))
    joining.start()
    time.sleep(0.5)
    assert not got  # still waiting
    first.downgrade()
    joining.join(timeout=10)
    assert got and not got[0].exclusive
    got[0].release()
    first.release()


def test_a_dead_processes_temporaries_are_removed_and_no_one_elses(tmp_path):
    """What a killed worker or crashed job process left (its marked training directories) goes at once; a
    directory of the same host and pid but another start time or pid namespace is another process's."""
    from negbench._io import ProcessIdentity, this_process
    from negbench.run.lock import remove_temporaries_of

    me = this_process()
    with owned_temporary_dir(tmp_path) as path:
        assert json.loads((Path(path) / "negbench-owner.json").read_text()) == me.as_dict()
    assert not Path(path).exists()
    dead = ProcessIdentity(me.host, 4242, 777, me.pidns)
    dirs = {}
    owners = {
        "deadpid1": dead,
        "reusedpd": ProcessIdentity(me.host, 4242, 778, me.pidns),
        "otherns1": ProcessIdentity(me.host, 4242, 777, (me.pidns or 0) + 1),
        "livepid1": me,
        "otherhst": ProcessIdentity("elsewhere", 4242, 777, me.pidns),
        "unmarked": None,
    }
    for name, owner in owners.items():
        dirs[name] = tmp_path / f".negbench-train-{name}"
        dirs[name].mkdir()
        if owner is not None:
            (dirs[name] / "negbench-owner.json").write_text(json.dumps(owner.as_dict()))
    assert remove_temporaries_of(tmp_path, dead) == [dirs["deadpid1"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(d.name for k, d in dirs.items() if k != "deadpid1")


def test_an_interrupted_tracking_store_creation_leaves_no_journal_behind(tmp_path):
    """A worker killed while MLflow migrated left .mlflow-init-XXXXXXXX.db-journal for ever."""
    from negbench.run.lock import remove_stale_temporaries

    for name in (".mlflow-init-ab12cd34.db", ".mlflow-init-ab12cd34.db-journal", ".mlflow-init-ab12cd34.db-wal"):
        (tmp_path / name).write_text("x")
    (tmp_path / "mlflow.db-journal").write_text("x")  # the real store's journal: never touched
    assert len(remove_stale_temporaries(tmp_path)) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["mlflow.db-journal"]


@pytest.mark.parametrize("gpus", [[], ["--gpus", "0,1"]], ids=["one", "gpus"])
def test_a_refused_worker_prints_one_line(tmp_path, toy_data, tiny_model, gpus):
    """The worker's banner used to come before the refusal; with `--gpus 0,1` every worker printed its own."""
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("none",)))
    cmd = [sys.executable, "-m", "negbench", "worker", str(suite), *gpus, "--storage", f"sqlite:///{tmp_path / 'db'}"]
    with RunLock(tmp_path / "out"):  # a run holds the directory
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "is in use by negbench run" in lines[0], lines


def test_a_grace_shorter_than_two_heartbeats_is_refused(tmp_path, toy_data, tiny_model):
    """`--heartbeat 10 --grace 1` used to be accepted: every live worker's claim went stale between beats."""
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("none",)))
    result = cli.invoke(app, ["worker", str(suite), "--heartbeat", "10", "--grace", "1"])
    assert result.exit_code == 2 and "--grace: the grace (--grace = 1 s) must be at least twice" in result.output
    result = cli.invoke(app, ["worker", str(suite), "--heartbeat", "40"])  # the grace comes from [tuning]
    assert result.exit_code == 2
    assert "--heartbeat: the grace ([tuning] grace_s = 60 s) must be at least twice the heartbeat" in result.output
    suite.write_text(suite.read_text() + "\n[tuning]\nheartbeat_s = 10\ngrace_s = 5\n")
    result = cli.invoke(app, ["validate", str(suite)])
    assert result.exit_code == 2 and "grace_s must be at least twice heartbeat_s" in result.output
