"""Ctrl-C and SIGTERM during a trial re-queue it; the rerun matches an uninterrupted run; nothing is swallowed.

The interrupted runs are real ``negbench run`` processes (real signals, Optuna's own logging on stderr); the
strategy that interrupts them is registered by :func:`cli` (``python -c "from tests.run.test_interrupts import
cli; cli()" run suite.toml``) and signals its own process once, while a flag file exists.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import polars as pl
import pytest

from negbench.run import interrupts
from negbench.run.tuning import Tuner, requeued
from negbench.strategies.in_batch import InBatch
from tests.cli.test_cli import suite_text, tuning_block
from tests.run.test_isolation import _with

FLAG = "NEGBENCH_TEST_SIGNAL_FLAG"  # a file: while it exists, the next trial's setup signals its process
TUNING = "max_steps = 2\n" + tuning_block(3)


class SelfSignal(InBatch):
    """In-batch, except that its setup sends ``$NEGBENCH_TEST_SIGNAL`` to its own process once (flag file)."""

    name = "self-signal"

    def setup(self, ctx):
        flag = Path(os.environ.get(FLAG, "/nonexistent"))
        if flag.exists():
            flag.unlink()
            os.kill(os.getpid(), getattr(signal, os.environ["NEGBENCH_TEST_SIGNAL"]))
        super().setup(ctx)


def cli() -> None:
    """``negbench`` with :class:`SelfSignal` registered (a subprocess cannot see a test's registry)."""
    import negbench.run.plan
    from negbench.cli import app

    original = negbench.run.plan.plan_suite
    negbench.run.plan.plan_suite = lambda path: original(path, reg=_with(SelfSignal))
    app(sys.argv[1:])


def _suite(tmp_path: Path, toy_data, tiny_model, name: str, isolation: str = "none") -> Path:
    out = tmp_path / name
    path = tmp_path / f"{name}.toml"
    path.write_text(
        suite_text(toy_data, tiny_model, out, strategies=("self-signal",), extra=TUNING, isolation=isolation)
    )
    return path


def _negbench(suite: Path, flag: Path | None = None, sig: str = "SIGINT") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", FLAG: str(flag or "/nonexistent"), "NEGBENCH_TEST_SIGNAL": sig}
    cmd = [sys.executable, "-c", "from tests.run.test_interrupts import cli; cli()", "run", str(suite), "--no-progress"]
    return subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2]
    )


def _study(out: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / "optuna.journal")))
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _interrupt_then_resume(tmp_path, toy_data, tiny_model, sig: str, isolation: str = "none"):
    suite = _suite(tmp_path, toy_data, tiny_model, "interrupted", isolation)
    flag = tmp_path / "flag"
    flag.touch()
    stopped = _negbench(suite, flag, sig)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    assert not flag.exists()  # the signal was sent, during trial 0
    assert "Traceback" not in stopped.stderr and "failed because of" not in stopped.stderr, stopped.stderr
    assert stopped.stderr.count("interrupted") == 1, stopped.stderr
    study = _study(tmp_path / "interrupted")
    (trial,) = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    assert trial.number == 0 and requeued(study.trials) == {0} and trial.state == optuna.trial.TrialState.FAIL
    assert Tuner.counted(study) == 0  # the interrupted trial used no budget ...
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert waiting.system_attrs["fixed_params"] == trial.params  # ... and its parameters are evaluated again
    resumed = _negbench(suite)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return suite


def _compare_with_uninterrupted(tmp_path, toy_data, tiny_model) -> None:
    clean = _negbench(_suite(tmp_path, toy_data, tiny_model, "clean"))
    assert clean.returncode == 0, clean.stderr[-3000:]
    resumed, uninterrupted = _study(tmp_path / "interrupted"), _study(tmp_path / "clean")
    assert Tuner.counted(resumed) == 3 == Tuner.counted(uninterrupted)
    complete = optuna.trial.TrialState.COMPLETE

    def run(study):  # (slot, params, dev value) of every complete trial, in order
        return [(t.user_attrs["slot"], t.params, t.value) for t in study.get_trials(states=(complete,))]

    assert run(resumed) == run(uninterrupted)
    assert resumed.trials[1].user_attrs["requeued_from"] == 0  # the re-queued trial took slot 0
    assert resumed.best_params == uninterrupted.best_params
    rows = [pl.read_parquet(tmp_path / name / "results.parquet") for name in ("interrupted", "clean")]
    columns = ["status", "params", "training", "dev_metric", "ndcg@10", "recall@100", "mrr@10", "map@100"]
    assert rows[0].select(columns).to_dicts() == rows[1].select(columns).to_dicts()
    assert rows[0]["status"].to_list() == ["ok"]


def test_ctrl_c_during_a_trial_requeues_it_and_the_rerun_matches_an_uninterrupted_run(tmp_path, toy_data, tiny_model):
    """The interrupted trial used to be FAIL and counted: the rerun tuned one trial fewer (other parameters),
    after an Optuna traceback."""
    _interrupt_then_resume(tmp_path, toy_data, tiny_model, "SIGINT")
    _compare_with_uninterrupted(tmp_path, toy_data, tiny_model)


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_sigterm_during_a_trial_requeues_it(tmp_path, toy_data, tiny_model):
    suite = _interrupt_then_resume(tmp_path, toy_data, tiny_model, "SIGTERM")
    assert Tuner.counted(_study(tmp_path / "interrupted")) == 3
    assert _negbench(suite).returncode == 0


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_ctrl_c_in_a_job_process_requeues_its_trial(tmp_path, toy_data, tiny_model):
    """Job processes: the Ctrl-C reaches the child (its own handling) and the parent (exit 130)."""
    _interrupt_then_resume(tmp_path, toy_data, tiny_model, "SIGINT", isolation="process")
    assert Tuner.counted(_study(tmp_path / "interrupted")) == 3


class GcInterrupt:
    """A gc callback that raises KeyboardInterrupt once it is armed (CPython prints it and goes on)."""

    def __init__(self) -> None:
        self.armed = False

    def __call__(self, phase, info) -> None:
        if self.armed and phase == "stop":
            self.armed = False
            raise KeyboardInterrupt


class ArmsGcInterrupt(InBatch):
    """In-batch, arming the module's :class:`GcInterrupt` when a run sets up (inside a trial)."""

    name = "arms-gc-interrupt"
    callback = GcInterrupt()

    def setup(self, ctx):
        type(self).callback.armed = True
        super().setup(ctx)


@pytest.fixture
def gc_interrupt():
    gc.callbacks.append(ArmsGcInterrupt.callback)
    yield ArmsGcInterrupt.callback
    gc.callbacks.remove(ArmsGcInterrupt.callback)


def test_an_interrupt_in_a_gc_callback_is_not_swallowed(tmp_path, toy_data, tiny_model, monkeypatch, gc_interrupt):
    """It used to be printed as "Exception ignored" and the run finished with exit 0."""
    from typer.testing import CliRunner

    import negbench.run.plan
    from negbench.cli import app

    original = negbench.run.plan.plan_suite
    monkeypatch.setattr(negbench.run.plan, "plan_suite", lambda path: original(path, reg=_with(ArmsGcInterrupt)))
    path = tmp_path / "suite.toml"
    path.write_text(
        suite_text(
            toy_data,
            tiny_model,
            tmp_path / "out",
            strategies=("arms-gc-interrupt",),
            extra="max_steps = 2\n" + tuning_block(2),
        )
    )
    result = CliRunner().invoke(app, ["run", str(path), "--no-progress"])
    assert not gc_interrupt.armed  # it fired
    assert result.exit_code == 130, result.output
    assert not (tmp_path / "out" / "results.parquet").exists()


def test_collect_raises_an_interrupt_a_gc_callback_swallowed(gc_interrupt):
    with pytest.raises(KeyboardInterrupt), interrupts.trapped():
        gc_interrupt.armed = True
        gc.collect()  # CPython swallows it here ...
        assert not gc_interrupt.armed
        interrupts.collect()  # ... and negbench raises it again
