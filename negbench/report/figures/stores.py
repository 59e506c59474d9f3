"""The published results stores (``results/<name>/`` with a ``results.parquet``) and what their pages need
beyond the rows: the suite's baseline and title, and a "generated" stamp taken from the store, not the clock."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from negbench.config.comparisons import Comparison, check_comparisons
from negbench.config.suite import EvaluationConfig, SuiteSection, TuningConfig, primary_metric
from negbench.errors import DataError
from negbench.run.store.base import RESULTS_FILE, SUITE_FILE

__all__ = ["RESULTS_ROOT", "SUITE_FILE", "StoreSettings", "generated_at", "published_stores", "store_settings"]


RESULTS_ROOT = "results"  # under the repository root: every directory below it with a store is published


DEFAULT_BASELINE: str = SuiteSection.model_fields["baseline"].default


@dataclass(frozen=True)
class StoreSettings:
    """What a store's pages are rendered with: the suite's baseline and name (None: taken from the rows) and its
    primary metric (None: the default rule of :func:`negbench.report.stats.significance.resolve_primary`)."""

    baseline: str = DEFAULT_BASELINE
    suite: str | None = None
    primary: str | None = None
    comparisons: tuple[tuple[str, str], ...] = ()  # the suite's [[comparisons]] as (better, worse)
    primary_declared: bool = False  # ``primary`` is ``[evaluation] primary`` (else ``[tuning] metric`` or None)
    path: Path | None = None  # the suite.toml read

    def primary_among(self, metrics: Sequence[str]) -> str | None:
        """The primary metric to render with, given the store's ``metrics``: a declared ``[evaluation] primary``
        the store does not hold is a DataError naming the suite file and field (never a silent fallback); a
        ``[tuning] metric`` it does not hold gives None (the default rule)."""
        if self.primary is None or not metrics or self.primary in metrics:
            return self.primary
        if self.primary_declared:
            raise DataError(
                f"{self.primary!r} is not a metric of this store ({', '.join(metrics)})",
                file=self.path,
                field="evaluation.primary",
            )
        return None


def store_settings(directory: str | Path) -> StoreSettings:
    """``[suite] baseline`` and ``name``, the primary metric (``[evaluation] primary``, else ``[tuning]
    metric``) and the declared ``[[comparisons]]`` of ``DIR/suite.toml`` when the store has one, else the suite
    defaults (baseline ``in-batch``, the title from the rows' ``suite`` column). Only those keys are read, so a
    suite whose data is not on this machine still gives its settings."""
    path = Path(directory) / SUITE_FILE
    if not path.is_file():
        return StoreSettings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"bad TOML: {exc}", file=path) from None
    for table in ("suite", "evaluation", "tuning"):
        if not isinstance(raw.get(table, {}), dict):
            raise DataError(f"must be a table ([{table}])", file=path, field=table)
    section = raw.get("suite", {})
    baseline, name = section.get("baseline", DEFAULT_BASELINE), section.get("name")
    if not isinstance(baseline, str) or (name is not None and not isinstance(name, str)):
        raise DataError("[suite] baseline and name must be strings", file=path)
    declared, primary = raw.get("evaluation", {}).get("primary"), _primary(raw, path)
    comparisons = _comparisons(raw, path)
    return StoreSettings(baseline, name, primary, comparisons, primary == declared, path)


def _primary(raw: dict, path: Path) -> str:
    """The primary metric by the rule of `negbench run`'s leaderboard.md (:func:`negbench.config.suite.
    primary_metric`), from the file's ``[evaluation]`` and ``[tuning]`` validated as a suite's."""
    sections = []
    for name, model in (("evaluation", EvaluationConfig), ("tuning", TuningConfig)):
        try:
            sections.append(model.model_validate(raw.get(name, {})))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join([name, *(str(part) for part in first["loc"])])
            raise DataError(first["msg"].removeprefix("Value error, "), file=path, field=field) from None
    return primary_metric(*sections)


def _comparisons(raw: dict, path: Path) -> tuple[tuple[str, str], ...]:
    """``[[comparisons]]`` as ``(better, worse)`` pairs, checked as ``negbench validate`` checks a suite (each a
    table of two different non-empty labels and nothing else, no pair twice or both ways, and every label one of
    the file's ``[[strategies]]`` labels when it lists them); anything else is a DataError naming the file and
    the field."""
    entries = raw.get("comparisons", [])
    if not isinstance(entries, list):
        raise DataError("must be an array of tables ([[comparisons]])", file=path, field="comparisons")
    comparisons = []
    for i, entry in enumerate(entries):
        try:
            comparisons.append(Comparison.model_validate(entry))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            field = f"comparisons[{i}]" + (f".{where}" if where else "")
            raise DataError(first["msg"].removeprefix("Value error, "), file=path, field=field) from None
    strategies = raw.get("strategies")
    labels = [_label(s, i, path) for i, s in enumerate(strategies)] if isinstance(strategies, list) else []
    try:
        check_comparisons(comparisons, labels or _every(comparisons))
    except ValueError as exc:
        raise DataError(str(exc), file=path, field="comparisons") from None
    return tuple((c.better, c.worse) for c in comparisons)


def _label(strategy: object, index: int, path: Path) -> str:
    """A ``[[strategies]]`` entry's label (``label``, else ``name``), a non-empty string as validate requires."""
    label = (strategy.get("label") or strategy.get("name")) if isinstance(strategy, dict) else None
    if not isinstance(label, str) or not label:
        raise DataError("needs a string 'name' (or 'label')", file=path, field=f"strategies[{index}]")
    return label


def _every(comparisons: Sequence[Comparison]) -> list[str]:
    """Every label the comparisons name (a suite file without ``[[strategies]]``: only repeats are checked)."""
    return [label for c in comparisons for label in (c.better, c.worse)]


def published_stores(root: str | Path) -> list[Path]:
    """Every directory under ``ROOT/results`` that holds a ``results.parquet``, sorted by path."""
    base = Path(root) / RESULTS_ROOT
    if not base.is_dir():
        return []
    return sorted(p.parent for p in base.rglob(RESULTS_FILE) if p.is_file())


def generated_at(rows: pl.DataFrame) -> str:
    """The page's "generated" stamp: the newest row's ``created_at``, so a re-render is byte-identical."""
    if "created_at" not in rows.columns:
        return "not recorded"
    stamps = [str(v) for v in rows["created_at"].drop_nulls().to_list()]
    return max(stamps, key=_instant) if stamps else "not recorded"


def _instant(stamp: str) -> tuple[int, float, str]:
    """Sort key of an ISO timestamp: parsed ones by instant (naive read as UTC), above any unparsable text."""
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return (0, 0.0, stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (1, moment.timestamp(), stamp)
