"""The code revision in every key: the content of negbench's source, pinned for a whole suite run."""

from __future__ import annotations

import pytest

from negbench import provenance
from negbench.errors import NegbenchError


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
    from negbench.provenance import library_versions

    versions = library_versions()
    assert {"torch", "sentence-transformers", "scikit-learn", "scipy", "bm25s"} <= set(versions)
    assert versions["scikit-learn"] != "not installed"
