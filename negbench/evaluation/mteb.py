"""MTEB evaluation: :func:`evaluate_with_mteb` scores a trained SentenceTransformer on MTEB tasks under a unique
model name and revision, with mteb's result cache kept inside the run directory: mteb keys its cache by (model
name, revision), and every fine-tune of one base model reports the base model's name and revision, so a shared
cache would serve one fine-tune's scores for another.

Importing this module imports mteb (several seconds); import it lazily where ``evaluation.mteb_tasks`` are used.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import mteb
from mteb.abstasks.abstask import AbsTask
from mteb.models import SentenceTransformerEncoderWrapper

from negbench.data.mteb import load_task_data, resolve_mteb_task
from negbench.errors import DataError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["evaluate_with_mteb", "mteb_model_identity", "mteb_results_dir"]

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def mteb_model_identity(model: str, label: str, config_hash: str, seed: int) -> tuple[str, str]:
    """A unique MTEB (model name, revision) for one trained model: ``negbench/<model>--<label>``, ``<hash>-seed<n>``.

    The suite's config hash is shared by all its strategies, so the strategy label goes into the name.
    """
    base = _SAFE.sub("_", model.rstrip("/").split("/")[-1])
    return f"negbench/{base}--{_SAFE.sub('_', label)}", f"{_SAFE.sub('_', config_hash)}-seed{seed}"


def mteb_results_dir(run_dir: str | Path, model_name: str, revision: str) -> Path:
    """Folder holding MTEB's ``<Task>.json`` results (and ``model_meta.json``) for this model in ``run_dir``."""
    return Path(run_dir) / "mteb" / "results" / model_name.replace("/", "__").replace(" ", "_") / revision


def evaluate_with_mteb(
    model: SentenceTransformer,
    tasks: Sequence[str | AbsTask],
    *,
    run_dir: str | Path,
    model_name: str,
    revision: str,
    batch_size: int = 128,
    ignore_identical_ids: bool = True,
) -> dict[str, float]:
    """Evaluate SentenceTransformer ``model`` on MTEB ``tasks`` with mteb's evaluator; returns {task: main score}.

    ``tasks`` entries are MTEB registry names (``SciFact`` or ``mteb:SciFact``), BEIR directory paths (wrapped
    as :class:`BeirDirectoryTask`) or task instances. The model is reported to mteb as ``model_name`` /
    ``revision`` (make them unique per trained model, e.g. with :func:`mteb_model_identity`); mteb's result
    cache lives in ``run_dir/mteb`` and every task is re-run (never served from the cache), writing its
    result JSON to :func:`mteb_results_dir`.
    """
    if "/" not in model_name:
        raise ValueError(f"MTEB model names look like 'organisation/name', got {model_name!r}")
    if not revision or _SAFE.search(revision):
        raise ValueError(f"revision must be a non-empty file-name-safe string, got {revision!r}")
    resolved = [
        t if isinstance(t, AbsTask) else resolve_mteb_task(t, ignore_identical_ids=ignore_identical_ids) for t in tasks
    ]  # every name is checked before any encoding
    names = [t.metadata.name for t in resolved]
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise DataError(
            f"duplicate MTEB task name(s) {duplicates}: give local directories distinct names", field="mteb_tasks"
        )

    encoder = SentenceTransformerEncoderWrapper(model)
    encoder.mteb_model_meta = encoder.mteb_model_meta.model_copy(update={"name": model_name, "revision": revision})
    cache = mteb.ResultCache(cache_path=Path(run_dir) / "mteb")
    scores: dict[str, float] = {}
    for task, name in zip(resolved, names, strict=True):
        load_task_data(task, field="mteb_tasks")
        try:
            result = mteb.evaluate(
                encoder,
                task,
                cache=cache,
                overwrite_strategy="always",
                co2_tracker=False,
                show_progress_bar=False,
                encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            )
        finally:
            task.unload_data()
        if result.exceptions or not result.task_results:
            raise RuntimeError(f"MTEB evaluation of {name} failed: {result.exceptions}")
        scores[name] = float(result.task_results[0].get_score())
    return scores
