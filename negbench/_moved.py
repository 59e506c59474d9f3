"""Old import paths of modules that moved into the stage subpackages keep working, with a DeprecationWarning.

``import negbench.runner`` (or ``from negbench import results``) gives the module now at its new path
(:data:`MOVED`): the very same module object, so patches and ``isinstance`` checks see one class. Public plugin
modules (:mod:`negbench.strategy`, :mod:`negbench.context`, :mod:`negbench.generators`, :mod:`negbench.testing`)
did not move and need none of this.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

__all__ = ["MOVED"]

MOVED: dict[str, str] = {
    "batching": "core.batching",
    "budget": "core.budget",
    "claims": "run.claims",
    "compare": "report.compare",
    "config": "config.suite",
    "curves": "core.probes.curves",
    "data": "data.dataset",
    "diagnostics": "report.diagnostics",
    "download": "data.download",
    "dry_run": "run.dry_run",
    "evaluation": "evaluation.retrieval",
    "false_negatives": "data.false_negatives",
    "figures": "report.figures",
    "guard": "run.guard",
    "hardness": "core.probes.hardness",
    "html_report": "report.html",
    "interrupts": "run.interrupts",
    "job_process": "run.isolation",
    "loss": "core.loss",
    "measure": "run.measure",
    "metrics": "config.metrics",
    "mining": "core.mining",
    "models": "core.models",
    "mteb_tasks": "data.mteb",
    "negative_diagnostics": "core.probes.negatives",
    "overlap": "report.overlap",
    "plots": "report.plots",
    "provenance": "run.provenance",
    "registry": "core.registry",
    "report": "report.markdown",
    "results": "run.store.parquet",
    "results_sql": "run.store.sql",
    "run_lock": "run.lock",
    "runner": "run.suite",
    "search": "core.search",
    "stats": "report.stats",
    "tracking": "run.tracking",
    "training": "core.training.loop",
    "tuning": "run.tuning",
    "validation": "run.preflight",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``negbench.<old>`` and loads it as the module at its new path."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix("negbench.")
        if fullname.startswith("negbench.") and old in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = f"negbench.{MOVED[spec.name.removeprefix('negbench.')]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module was executed at its new path."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
