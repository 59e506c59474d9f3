"""Per-job process isolation: peak memory does not depend on the jobs run before; a crash fails one job."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negbench.core.registry import GROUP, Entry, Registry
from negbench.core.strategy import Strategy
from negbench.run.plan import plan_suite
from negbench.run.suite import SuiteRunner
from negbench.strategies.in_batch import InBatch
from tests.cli.test_cli import suite_text

_HELD: list[np.ndarray] = []  # what Leaky keeps alive in its process


class Leaky(Strategy):
    """Keeps 600 MB alive after it ran: in one shared process every later job's peak would include it."""

    name = "leaky"

    def setup(self, ctx):
        _HELD.append(np.ones(600 * 2**20 // 8))


class Crasher(Strategy):
    """Kills its own process in its first training step (as a segfault or the OOM killer would), while the
    trainer's temporary output directory exists."""

    name = "crasher"

    def on_logits(self, view):
        os.kill(os.getpid(), signal.SIGKILL)


def _registry() -> Registry:
    """A registry holding in-batch and this module's test strategies (importable by the job processes)."""
    return _with(Leaky, Crasher)


def _with(*classes: type[Strategy]) -> Registry:
    reg = Registry()
    reg._entries = {}
    for cls in (InBatch, *classes):
        target = f"{cls.__module__}:{cls.__qualname__}"
        reg._entries[cls.name] = (EntryPoint(cls.name, target, GROUP), Entry(cls.name, target, None, cls=cls))
    return reg


def _run(tmp_path, toy_data, tiny_model, strategies: str, isolation: str = "process") -> pl.DataFrame:
    text = suite_text(toy_data, tiny_model, tmp_path / "out", strategies=(), isolation=isolation) + strategies
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return SuiteRunner(plan_suite(path, reg=_registry())).run().rows()


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_peak_memory_does_not_depend_on_job_order(tmp_path, toy_data, tiny_model):
    """The same strategy first and last (different labels) around a job that leaves 600 MB behind."""
    rows = _run(
        tmp_path,
        toy_data,
        tiny_model,
        """
[[strategies]]
name = "in-batch"
label = "first"
[[strategies]]
name = "leaky"
[[strategies]]
name = "in-batch"
label = "last"
""",
    )
    peak = {r["strategy"]: r["train_peak_rss_mb"] for r in rows.iter_rows(named=True)}
    assert set(rows["status"]) == {"ok"}
    assert peak["leaky"] > peak["first"] + 400  # the leak is real and measured in its own job
    assert abs(peak["last"] - peak["first"]) <= 0.10 * peak["first"], peak


def test_a_crashed_job_becomes_a_failed_row_and_the_suite_goes_on(tmp_path, toy_data, tiny_model):
    rows = _run(
        tmp_path,
        toy_data,
        tiny_model,
        """
[[strategies]]
name = "crasher"
[[strategies]]
name = "in-batch"
""",
    )
    by = {r["strategy"]: r for r in rows.iter_rows(named=True)}
    assert by["crasher"]["status"] == "failed: crashed (SIGKILL)"  # the board shows the status column
    assert "signal SIGKILL (9)" in by["crasher"]["error"]
    assert by["in-batch"]["status"] == "ok"
    assert not list((tmp_path / "out").glob(".negbench-train-*"))  # removed when the crash row was written


class Exiter(Strategy):
    """Calls sys.exit(0) while mining: the job used to end with no row and count as a success; then as a
    "crashed" row with no reason. The guard around strategy code fails its row, naming the exit."""

    name = "exiter"

    def mine(self, ctx):
        raise SystemExit(0)


def test_a_strategy_that_exits_0_is_a_failed_row(tmp_path, toy_data, tiny_model, monkeypatch):
    monkeypatch.setattr("tests.run.test_isolation._registry", lambda: _with(Exiter))
    rows = _run(tmp_path, toy_data, tiny_model, '[[strategies]]\nname = "exiter"\n[[strategies]]\nname = "in-batch"\n')
    by = {r["strategy"]: r for r in rows.iter_rows(named=True)}
    assert by["exiter"]["status"] == "failed: SystemExit" and "sys.exit(0)" in by["exiter"]["error"]
    assert by["in-batch"]["status"] == "ok"


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_job_processes_are_as_quiet_as_the_suite_process(tmp_path, toy_data, tiny_model):
    """A spawned job used to print transformers' "Loading weights" bars the suite process had turned off."""
    import subprocess
    import sys
    from pathlib import Path

    suite = tmp_path / "s.toml"
    suite.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",), isolation="process"))
    done = subprocess.run(
        [sys.executable, "-m", "negbench", "run", str(suite), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NEGBENCH_VERBOSE": ""},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert "Loading weights" not in done.stderr and "Computing widget examples" not in done.stderr, done.stderr


class Sleeper(InBatch):
    """Writes its job process's pid to ``$NEGBENCH_TEST_PID_FILE``, then sleeps in setup."""

    name = "sleeper"

    def setup(self, ctx):
        Path(os.environ["NEGBENCH_TEST_PID_FILE"]).write_text(str(os.getpid()))
        time.sleep(300)


def sleeper_cli() -> None:
    """``negbench`` with :class:`Sleeper` registered (a subprocess cannot see a test's registry)."""
    import negbench.run.plan
    from negbench.cli import app

    original = negbench.run.plan.plan_suite
    negbench.run.plan.plan_suite = lambda path: original(path, reg=_with(Sleeper))
    app(sys.argv[1:])


def test_a_suite_killed_with_sigkill_leaves_no_job_process(tmp_path, toy_data, tiny_model):
    """Job processes come from a fork server, so the kernel's parent-death signal followed the server, which a
    job process kept alive: SIGKILL of the suite process alone left the job (and the server) running."""
    from negbench._io import ProcessIdentity, is_alive, pid_namespace, start_ticks

    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("sleeper",), isolation="process"))
    pid_file = tmp_path / "job.pid"
    code = "from tests.run.test_isolation import sleeper_cli; sleeper_cli()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(suite), "--no-progress"],
        env={**os.environ, "NEGBENCH_TEST_PID_FILE": str(pid_file)},
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 240
        while not pid_file.is_file() and time.time() < deadline:
            time.sleep(0.1)
        assert pid_file.is_file(), "the job process never started"
        pid = int(pid_file.read_text())
        job = ProcessIdentity(socket.gethostname(), pid, start_ticks(pid), pid_namespace())
        os.kill(proc.pid, signal.SIGKILL)  # the suite process alone, not its process group
        proc.wait()
        deadline = time.time() + 30
        while is_alive(job) and time.time() < deadline:
            time.sleep(0.1)
        assert is_alive(job) is False, "the job process outlived the suite"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def killed_at_start_cli() -> None:
    """``negbench`` whose suite process SIGKILLs itself as soon as its first job process has started, having written
    the pid and start time of that process, of the fork server and of multiprocessing's resource tracker to
    ``$NEGBENCH_TEST_PID_FILE``. With ``$NEGBENCH_TEST_ARM_DELAY`` the job process sleeps that many seconds first,
    before it arms its lifeline: the window in which a killed suite once left an orphan running its job."""
    from multiprocessing import context, forkserver, resource_tracker

    import negbench.run.isolation
    from negbench._io import start_ticks
    from negbench.cli import app

    start = context.ForkServerProcess.start

    def start_then_die(self) -> None:
        start(self)
        pids = {
            "job": self.pid,
            "fork server": forkserver._forkserver._forkserver_pid,
            "resource tracker": resource_tracker._resource_tracker._pid,
        }
        ids = {name: [pid, start_ticks(pid)] for name, pid in pids.items()}
        Path(os.environ["NEGBENCH_TEST_PID_FILE"]).write_text(json.dumps(ids))
        os.kill(os.getpid(), signal.SIGKILL)

    context.ForkServerProcess.start = start_then_die
    if os.environ.get("NEGBENCH_TEST_ARM_DELAY"):
        negbench.run.isolation._child = _late_child
    app(sys.argv[1:])


def _late_child(*args) -> None:
    """The job process's entry point, after a sleep (in the job process, the real one: only the suite's is patched)."""
    from negbench.run.isolation import _child

    time.sleep(float(os.environ["NEGBENCH_TEST_ARM_DELAY"]))
    _child(*args)


@pytest.mark.parametrize(
    "arm_delay",
    [None, pytest.param(2.0, marks=pytest.mark.slow)],  # the second: slow set (the default run's time)
    ids=["as-start-returns", "before-the-lifeline-is-armed"],
)
def test_a_suite_killed_as_its_job_process_starts_leaves_nothing_running(tmp_path, toy_data, tiny_model, arm_delay):
    """Issue 28: a SIGKILL of the suite process in the first moments of a job process (before it armed its death
    with its parent) left an orphan that ran its job beside the rerun and wrote duplicate FINISHED MLflow runs.
    Killed right as the job process starts, and while it sleeps before arming: nothing survives (the job process,
    the fork server, the resource tracker), and no job process writes a row or finishes an MLflow run."""
    from negbench._io import ProcessIdentity, is_alive, pid_namespace

    out = tmp_path / "out"
    text = suite_text(toy_data, tiny_model, out, strategies=("in-batch",), isolation="process")
    suite = tmp_path / "suite.toml"
    suite.write_text(text.replace("[tracking]\nenabled = false", "[tracking]\nenabled = true"))
    pid_file = tmp_path / "pids.json"
    env = {**os.environ, "NEGBENCH_TEST_PID_FILE": str(pid_file)}
    if arm_delay is not None:
        env["NEGBENCH_TEST_ARM_DELAY"] = str(arm_delay)
    code = "from tests.run.test_isolation import killed_at_start_cli; killed_at_start_cli()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "run", str(suite), "--no-progress"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    survivors: dict[str, ProcessIdentity] = {}
    try:
        _, stderr = proc.communicate(timeout=240)
        assert proc.returncode == -signal.SIGKILL, stderr.decode(errors="replace")[-2000:]
        here = (socket.gethostname(), pid_namespace())
        survivors = {
            name: ProcessIdentity(here[0], pid, ticks, here[1])
            for name, (pid, ticks) in json.loads(pid_file.read_text()).items()
        }
        deadline = time.time() + 15 + (arm_delay or 0)
        while any(is_alive(p) for p in survivors.values()) and time.time() < deadline:
            time.sleep(0.1)
        assert {name: is_alive(p) for name, p in survivors.items()} == dict.fromkeys(survivors, False)
        assert not (out / "results.parquet").exists()  # no job process wrote a row
        with contextlib.closing(sqlite3.connect(out / "mlflow.db")) as db:
            runs = dict(db.execute("SELECT name, status FROM runs"))
        assert runs.pop("suite toy") == "RUNNING"  # the killed suite's own run (marked KILLED by the next start)
        # A job process may have opened its run in the moment before the suite died (a loaded machine can deschedule
        # the suite between start and kill): killed with the suite, it is left RUNNING, never FINISHED or FAILED
        assert set(runs.values()) <= {"RUNNING"}, runs
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for p in survivors.values():
            if is_alive(p):
                os.kill(p.pid, signal.SIGKILL)
