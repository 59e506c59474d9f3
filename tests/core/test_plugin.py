"""A real third-party plugin (strategies/negbench-semihard) installed with pip and run via `negbench run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.cli.test_cli import suite_text

PLUGIN = Path(__file__).resolve().parents[2] / "strategies" / "negbench-semihard"


@pytest.mark.slow  # out of the default run (its 6-minute budget); `pytest -m slow` runs it
def test_plugin_installs_and_runs_through_the_cli(tmp_path, toy_data, tiny_model):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(PLUGIN),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    listed = subprocess.run(
        [sys.executable, "-m", "negbench", "strategies", "--json"], env=env, capture_output=True, text=True, check=True
    )
    assert '"semi-hard"' in listed.stdout and "negbench-semihard" in listed.stdout
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("semi-hard",)))
    run = subprocess.run(
        [sys.executable, "-m", "negbench", "run", str(suite), "--no-progress"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert rows["strategy_name"].to_list() == ["semi-hard"] and rows["status"].to_list() == ["ok"]
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PLUGIN / "tests")],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stdout[-2000:]
