"""The validation stage: everything about a suite that can be checked without training, before anything is
created on disk.

``validate``, ``run``, ``worker`` and ``status`` all pass through :func:`validate_plan` after
:func:`negbench.run.suite.plan_suite` (which checks the TOML, strategies, parameters and search spaces). It checks:

- storage and tracking URLs (a known SQL backend with its driver installed; a SQLite file's directory exists);
- the output and cache directories (not a file; the nearest existing directory is writable);
- every model (resolvable, a loadable config and tokenizer) and its device (known, and present);
- every dataset: all splits parsed, test qrels included (parsed, checked and discarded: tuning never holds
  them), tuning's dev split present, sizes against each strategy's ``batch_size`` and ``num_negatives``,
  and, as notes, what loading did to keep the test split apart: train/dev queries dropped because their text
  is a test query's (BEIR datasets have some), and a subset's share of documents relevant only to test queries
  against the full corpus's (:mod:`negbench.data.subset`).

Every problem is one :class:`~negbench.errors.NegbenchError` naming the suite file and the field.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from negbench.core.budget import budget_for
from negbench.core.models import resolve_model
from negbench.data.dataset import RetrievalDataset, load_dataset
from negbench.errors import ConfigError, DataError, ModelError, NegbenchError
from negbench.run.tuning import edges

if TYPE_CHECKING:
    from negbench.run.plan import Plan

__all__ = [
    "SQL_BACKENDS",
    "TRACKING_SCHEMES",
    "Validated",
    "check_dataset",
    "check_device",
    "check_model",
    "check_storage_url",
    "check_tracking_uri",
    "check_writable_dir",
    "load_suite_dataset",
    "transformer_dir",
    "validate_plan",
]
SQL_BACKENDS = frozenset({"sqlite", "postgresql", "mysql"})
TRACKING_SCHEMES = frozenset({"http", "https", "file", "databricks", *SQL_BACKENDS})


@dataclass
class Validated:
    """What validation loaded (reused by the run) and what it noticed without refusing."""

    datasets: list[RetrievalDataset]
    notes: list[str] = field(default_factory=list)


def validate_plan(plan: Plan) -> Validated:
    """Check ``plan`` as the module docstring says; raise the first problem as a one-line error."""
    suite, path = plan.suite, plan.path
    check_storage_url(suite.tuning.storage, path, "tuning.storage")
    check_tracking_uri(suite.tracking.uri, path)
    check_writable_dir(Path(suite.suite.output_dir), path, "suite.output_dir")
    if suite.suite.cache_dir is not None:
        check_writable_dir(Path(suite.suite.cache_dir), path, "suite.cache_dir")
    for i, model_cfg in enumerate(suite.models):
        check_model(model_cfg.spec, path, f"models[{i}].spec")
        if model_cfg.guide:
            check_model(model_cfg.guide, path, f"models[{i}].guide")
        check_device(model_cfg.device, path, f"models[{i}].device")
    for i, strategy_cfg in enumerate(suite.strategies):
        if strategy_cfg.guide:
            check_model(strategy_cfg.guide, path, f"strategies[{i}].guide")
    datasets, notes = [], []
    for i in range(len(suite.datasets)):
        dataset = load_suite_dataset(plan, i)
        notes += check_dataset(plan, i, dataset)
        datasets.append(dataset)
    return Validated(datasets, notes)


def load_suite_dataset(plan: Plan, index: int) -> RetrievalDataset:
    """Dataset ``index`` of ``plan``, errors naming the suite file and ``datasets[index]``."""
    try:
        return load_dataset(plan.suite.datasets[index], plan.suite.suite.data_dirs)
    except NegbenchError as exc:
        where = f"datasets[{index}]" + (f".{exc.field}" if exc.field else "")
        raise type(exc)(exc.message, file=exc.file or plan.path, field=where) from None


# --------------------------------------------------------------------------------------- datasets


def check_dataset(plan: Plan, index: int, dataset: RetrievalDataset) -> list[str]:
    """Test split, dev split for tuning, sizes per strategy; returns notes (test twins dropped, subset shares)."""
    suite, path, where = plan.suite, plan.path, f"datasets[{index}]"
    try:
        dataset.test_query_ids()  # parsed and checked, then discarded
    except NegbenchError as exc:
        raise type(exc)(exc.message, file=exc.file or path, field=f"{where}.test_split") from None
    if not dataset.train:
        raise DataError(
            "no training query left (after the dev split and max_train_queries)",
            file=path,
            field=f"{where}.train_split",
        )
    tuned = [s for s in plan.strategies if suite.tuning.n_trials > 0 and s.cls.trains and s.space]
    if tuned and not dataset.dev:
        raise DataError(
            f"tuning ({suite.tuning.n_trials} trials for {tuned[0].label!r}) needs a dev split, "
            "and this dataset has no dev query",
            file=path,
            field=f"{where}.dev_split",
        )
    n_examples = len(dataset.training_examples("train"))
    for spec in plan.strategies:
        if not spec.cls.trains:
            continue
        training = suite.training_for(spec.index)
        negatives = max([training.num_negatives, *_space_edges(spec, "training.num_negatives")])
        if negatives >= len(dataset.corpus):
            raise DataError(
                f"num_negatives {negatives} for {spec.label!r} needs more than {negatives} documents; "
                f"the corpus has {len(dataset.corpus)}",
                file=path,
                field=f"{where}.source",
            )
        for batch_size in {training.batch_size, *_space_edges(spec, "training.batch_size")}:
            try:
                budget_for(spec.build(), n_examples, training.model_copy(update={"batch_size": batch_size}))
            except ConfigError as exc:
                raise ConfigError(
                    f"{spec.label!r}: {exc.message}", file=path, field=f"strategies[{spec.index}].training.batch_size"
                ) from None
    return dataset.audit.notes(dataset.name)


def _space_edges(spec, name: str) -> list[int]:
    """The extreme values a search-space dimension can draw (none when ``name`` is not searched)."""
    dist = spec.space.get(name)
    return [int(v) for v in edges(dist)] if dist is not None else []


# ----------------------------------------------------------------------------------------- models


def check_model(spec: str, path: Path, where: str) -> None:
    """The model resolves to a directory whose transformer config and tokenizer load (no weights read)."""
    try:
        resolved = resolve_model(spec)
    except NegbenchError as exc:
        raise type(exc)(exc.message, file=path, field=where) from None
    module_dir = transformer_dir(resolved.path, path, where)
    from transformers import AutoConfig, AutoTokenizer

    loaded = {}
    for what, loader in (("config", AutoConfig), ("tokenizer", AutoTokenizer)):
        try:
            loaded[what] = loader.from_pretrained(str(module_dir), local_files_only=True)
        except Exception as exc:
            reason = " ".join(str(exc).split())[:200]
            raise ModelError(
                f"cannot load the {what} of {spec!r} from {module_dir}: {reason}", file=path, field=where
            ) from None
    tokenizer = loaded["tokenizer"]
    if len(tokenizer) <= len(set(tokenizer.all_special_ids)):  # transformers builds an empty one from nothing
        raise ModelError(
            f"the tokenizer of {spec!r} in {module_dir} has no vocabulary (tokenizer files missing?)",
            file=path,
            field=where,
        )


def transformer_dir(root: Path, path: Path, where: str) -> Path:
    """The directory of a sentence-transformers model's Transformer module (the root for a plain model)."""
    modules = root / "modules.json"
    if not modules.is_file():
        if not (root / "config.json").is_file():
            raise ModelError(f"{root} holds no model (neither modules.json nor config.json)", file=path, field=where)
        return root
    try:
        entries = json.loads(modules.read_text(encoding="utf-8"))
        first = next(e for e in entries if str(e.get("type", "")).endswith("Transformer"))
    except (OSError, ValueError, StopIteration, AttributeError, TypeError) as exc:
        raise ModelError(
            f"unreadable modules.json (no Transformer module?): {exc}", file=modules, field=where
        ) from None
    return root / str(first.get("path", ""))


def check_device(device: str | None, path: Path, where: str) -> None:
    """A device torch knows, and that this machine has."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r} (cpu, cuda, cuda:N, mps)", file=path, field=where) from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"device {device!r}: no CUDA GPU on this machine", file=path, field=where)
        if parsed.index is not None and parsed.index >= count:
            raise ConfigError(f"device {device!r}: this machine has {count} GPU(s)", file=path, field=where)
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {device!r}: MPS is not available here", file=path, field=where)
    elif parsed.type != "cpu":
        raise ConfigError(f"unsupported device {device!r} (cpu, cuda, cuda:N, mps)", file=path, field=where)


# ------------------------------------------------------------------------------- storage, directories


def check_storage_url(url: str | None, path: Path | str, where: str) -> None:
    """An Optuna/claims storage URL: SQLite (its directory exists), PostgreSQL or MySQL (driver installed)."""
    if url is None:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number raises here
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"not a database URL: {url!r} (sqlite:///path, postgresql://…, mysql://…)", file=path, field=where
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SQL_BACKENDS:
        raise ConfigError(
            f"unsupported storage {backend!r} in {url!r} (sqlite, postgresql, mysql)", file=path, field=where
        )
    try:
        parsed.get_dialect().import_dbapi()
    except (ImportError, NoSuchModuleError) as exc:
        raise ConfigError(f"the database driver for {url!r} is not installed: {exc}", file=path, field=where) from None
    if backend == "sqlite":
        _check_sqlite_file(parsed.database, url, path, where)


def _check_sqlite_file(database: str | None, url: str, path: Path | str, where: str) -> None:
    if not database or database == ":memory:":
        raise ConfigError(
            f"a SQLite storage needs a file: sqlite:///path/to/file.db, got {url!r}", file=path, field=where
        )
    db = Path(database)
    if db.is_dir():
        raise ConfigError(f"SQLite database {db} is a directory", file=path, field=where)
    if not db.parent.is_dir():
        raise ConfigError(f"the directory of SQLite database {db} does not exist", file=path, field=where)
    check_writable_dir(db.parent, path, where)


def check_tracking_uri(uri: str | None, path: Path) -> None:
    if uri is None:
        return
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme not in TRACKING_SCHEMES:
        raise ConfigError(
            f"unsupported tracking URI {uri!r} (http(s)://, file://, sqlite:///…)", file=path, field="tracking.uri"
        )
    if scheme == "sqlite":
        from sqlalchemy.engine import make_url

        _check_sqlite_file(make_url(uri).database, uri, path, "tracking.uri")


def check_writable_dir(directory: Path, path: Path | str, where: str) -> None:
    """``directory`` is, or can be created as, a directory this process can write (nothing is left behind)."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory} is a file, not a directory", file=path, field=where)
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"cannot create {directory}: {existing} is a file", file=path, field=where)
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".negbench-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot write in {existing}: {reason}", file=path, field=where) from None
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write in {existing}: permission denied", file=path, field=where)
