"""The store's copy of its suite (``suite.toml``, where `negbench report` reads the baseline, primary metric and
declared comparisons): the text the run validated, written when the run finishes, never over the suite file
itself."""

from __future__ import annotations

from types import SimpleNamespace

from negbench.run.plan import plan_suite
from negbench.run.suite import SuiteRunner
from tests.cli.test_cli import suite_text


def _copy(plan) -> None:
    SuiteRunner.copy_suite(SimpleNamespace(plan=plan))  # what the runner does once every job is done


def test_the_copy_is_the_text_the_run_validated(tmp_path, toy_data, tiny_model):
    """Edited while the run validated it, the file on disk is not what the rows were run with."""
    path = tmp_path / "s.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out"))
    plan = plan_suite(path)
    path.write_text(path.read_text() + '\n[[comparisons]]\nbetter = "dense"\nworse = "bm25"\n')
    _copy(plan)
    assert (tmp_path / "out" / "suite.toml").read_text() == suite_text(toy_data, tiny_model, tmp_path / "out")


def test_a_suite_kept_as_the_stores_suite_toml_is_left_alone(tmp_path, toy_data, tiny_model):
    """The output folder's suite.toml is the suite file itself (or a link to it): it stays a link."""
    out = tmp_path / "out"
    out.mkdir()
    real = tmp_path / "s.toml"
    real.write_text(suite_text(toy_data, tiny_model, out))
    (out / "suite.toml").symlink_to(real)
    _copy(plan_suite(out / "suite.toml"))
    _copy(plan_suite(real))
    assert (out / "suite.toml").is_symlink() and (out / "suite.toml").read_text() == real.read_text()
