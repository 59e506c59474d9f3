"""The code revision in every key: the content of negbench's source, pinned for a whole suite run."""

from __future__ import annotations

import os

import pytest

from negbench.errors import NegbenchError
from negbench.run import provenance


def test_source_digest_follows_python_sources_only(tmp_path):
    """The key used git's HEAD: a docs commit orphaned every result, and a run spanning a commit mixed two."""
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = provenance.source_digest(tmp_path)
    (tmp_path / "README.md").write_text("docs change\n")
    assert provenance.source_digest(tmp_path) == before
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert provenance.source_digest(tmp_path) != before


def test_the_revision_follows_the_code_that_can_change_a_row(tmp_path):
    """A report or CLI edit used to change every key (stored rows and studies orphaned); a loss edit must."""
    for rel in (
        "report/plots.py",
        "cli/main.py",
        "testing/kit.py",
        "core/loss.py",
        "strategies/dense.py",
        "run/final.py",
        "errors.py",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(f"# {rel}\n")
    before = provenance.source_digest(tmp_path)
    for rel in ("report/plots.py", "cli/main.py", "testing/kit.py"):
        (tmp_path / rel).write_text("changed = True\n")
    assert provenance.source_digest(tmp_path) == before
    for rel in ("core/loss.py", "strategies/dense.py", "run/final.py", "errors.py"):
        (tmp_path / rel).write_text(f"# {rel} edited\n")
        assert provenance.source_digest(tmp_path) != before, rel
        before = provenance.source_digest(tmp_path)


def test_the_real_revision_covers_the_loss_and_not_the_report():
    files = {p.relative_to(provenance.PACKAGE_DIR).as_posix() for p in provenance.row_code_files()}
    assert {
        "core/loss.py",
        "core/training/loop.py",
        "run/final.py",
        "strategies/dense.py",
        "generators/rules.py",
        "data/dataset.py",
        "evaluation/retrieval.py",
    } <= files
    assert not [f for f in files if f.startswith(("report/", "cli/"))]


def test_the_revision_is_pinned_and_a_changed_source_is_refused(monkeypatch):
    monkeypatch.delenv(provenance.PINNED, raising=False)
    pinned = provenance.pin_code_revision()
    assert provenance.code_revision() == pinned and pinned.endswith(provenance.source_digest())
    provenance.check_code_unchanged()  # same source: fine
    monkeypatch.setenv(provenance.PINNED, "negbench 0.1.0 src.000000000000")
    assert provenance.code_revision() == "negbench 0.1.0 src.000000000000"  # job processes inherit the pin
    with pytest.raises(NegbenchError, match="source changed while the suite was running"):
        provenance.check_code_unchanged()


def test_versions_name_the_libraries_strategies_compute_with():
    """k-means (tas-b, ngame) runs in scikit-learn and the report's tests in scipy: a row must say which."""
    from negbench.run.provenance import library_versions

    versions = library_versions()
    assert {"torch", "sentence-transformers", "scikit-learn", "scipy", "bm25s"} <= set(versions)
    assert versions["scikit-learn"] != "not installed"


def test_the_revision_is_pinned_before_the_job_server_imports_negbench(tmp_path, toy_data, tiny_model, monkeypatch):
    """The job server imports negbench when it starts: were the revision pinned after, an edit in between would run
    old code under the new revision's key (the job's check compares the disk with the pin, both new)."""
    from negbench.run import suite as suite_module
    from negbench.run.plan import plan_suite
    from tests.cli.test_cli import suite_text

    class Started(Exception):
        pass

    seen: list[str | None] = []

    def server(*args, **kwargs):
        seen.append(os.environ.get(provenance.PINNED))
        raise Started

    monkeypatch.delenv(provenance.PINNED, raising=False)
    monkeypatch.setattr(suite_module, "start_job_server", server)
    path = tmp_path / "s.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",), isolation="process"))
    with pytest.raises(Started):
        suite_module.SuiteRunner(plan_suite(path)).run()
    assert seen == [provenance.code_revision()] and seen[0] is not None
