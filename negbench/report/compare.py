"""``negbench compare``: a regression gate between two results stores (e.g. a nightly run vs a baseline).

Jobs are matched by (dataset, model, strategy). For each matched job and metric:

* an **accuracy regression** is flagged only when the mean over seeds dropped by more than ``max_drop``
  (absolute, in metric units) **and** the one-sided test that NEW is worse is significant at ``alpha`` after Holm
  correction over every job × metric compared (one family). The test is the leaderboard's
  :func:`~negbench.report.stats.seed_query_test` of the seeds × queries score matrices, a t test on the Δ shown.
  When **both** sides have ≥ 2 seeds it carries training-seed variance, so one unlucky seed (all of a run's
  queries moved together) is not a regression. With **one seed** on a side that variance is unmeasured and the
  test is a paired t over queries: a drop there **still fails the gate** (nightly runs may have one seed) but
  reads ``ACCURACY DROP (one seed: query noise only)``, and the summary counts such query-only comparisons;
* a **throughput regression** is flagged when the median training throughput over seeds fell by more than a factor
  ``max_throughput_drop_factor`` (base / new); jobs without throughput (no training) are not checked;
* a job that finished in the baseline but has no finished run in NEW is a regression (``failed``); a job
  missing from NEW altogether, or new in NEW, is reported (and counted in the summary line) but not flagged;
* when no job finished in both stores nothing was compared: :attr:`Comparison.nothing_compared` says why
  (no job in common, no finished row in NEW …) and ``negbench compare`` exits 2, never "no regression".

Across the two stores jobs are matched by label, because the configuration key (``config_key``) differs
between code revisions by design. Within one store configurations are never pooled: when a label has
several, only the newest configuration's rows (by ``created_at``) are compared, and a note says so
(:attr:`Comparison.notes`, also logged as a warning).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from negbench.errors import DataError, NegbenchError
from negbench.report.load import load_store
from negbench.report.stats import SHORT_KEY, SeedQueryTest, holm, newest_config, seed_query_test, with_config_key
from negbench.report.table import escape_md, metric_columns, seed_centre

__all__ = ["HEADER", "KEYS", "Comparison", "JobComparison", "MetricCheck", "compare_stores", "latest_configs"]

log = logging.getLogger(__name__)
KEYS = ("dataset", "model", "strategy")
QUERY_ONLY = "one seed: query noise only"  # the label of a verdict whose test could not measure seed variance
HEADER = (*KEYS, "metric", "base", "new", "Δ", "seeds base → new", "Holm p", "throughput base → new", "verdict")


@dataclass
class MetricCheck:
    """One job × metric: means over seeds, the seed × query test and whether it counts as a regression."""

    metric: str
    base: float
    new: float
    p_value: float = math.nan  # one-sided: NEW worse than the baseline
    p_holm: float = math.nan
    n_queries: int = 0
    regression: bool = False
    seeds_base: int = 0  # runs with per-query scores behind each side
    seeds_new: int = 0

    @property
    def delta(self) -> float:
        return self.new - self.base

    @property
    def seed_aware(self) -> bool:
        """Both sides have ≥ 2 seeds: the test carries training-seed variance; else it is query noise only."""
        return self.seeds_base >= 2 and self.seeds_new >= 2

    def cells(self) -> list[str]:
        """The table cells from ``metric`` to ``Holm p``."""
        means = [_f(self.base, 4), _f(self.new, 4), _f(self.delta, 4, signed=True)]
        return [self.metric, *means, f"{self.seeds_base} → {self.seeds_new}", _f(self.p_holm, 3, general=True)]


@dataclass
class JobComparison:
    """One (dataset, model, strategy) job in either store."""

    dataset: str
    model: str
    strategy: str
    status: str  # "ok", "failed" (in NEW), "missing" (from NEW), "added" (new in NEW), "not comparable"
    metrics: list[MetricCheck] = field(default_factory=list)
    base_throughput: float | None = None
    new_throughput: float | None = None
    throughput_regression: bool = False

    @property
    def throughput_factor(self) -> float | None:
        if not self.base_throughput or not self.new_throughput:
            return None
        return self.base_throughput / self.new_throughput

    @property
    def regression(self) -> bool:
        accuracy = any(m.regression for m in self.metrics)
        return self.status == "failed" or self.throughput_regression or accuracy


@dataclass
class Comparison:
    """The outcome of :func:`compare_stores`; ``regressions`` lists the flagged jobs."""

    jobs: list[JobComparison]
    metrics: list[str]
    max_drop: float
    max_throughput_drop_factor: float
    alpha: float
    base_devices: list[str] = field(default_factory=list)
    new_devices: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a label with several configurations in one store
    nothing_compared: str | None = None  # why no job could be compared (then neither store can be judged)

    @property
    def device_warning(self) -> str | None:
        """A note when the stores were measured on different devices (throughput is then not comparable)."""
        if self.base_devices and self.new_devices and self.base_devices != self.new_devices:
            return (
                f"devices differ (baseline: {', '.join(self.base_devices)}; new: "
                f"{', '.join(self.new_devices)}): throughput and memory are not comparable"
            )
        return None

    @property
    def regressions(self) -> list[JobComparison]:
        return [j for j in self.jobs if j.regression]

    def count(self, status: str) -> int:
        return sum(j.status == status for j in self.jobs)

    def counts_line(self) -> str:
        """How many jobs were compared, and how many were not (missing from NEW, added in NEW, failed …)."""
        parts = [f"{self.count('ok')} job(s) compared"]
        for status, words in (
            ("failed", "failed in new"),
            ("missing", "missing from new"),
            ("added", "added in new"),
            ("not comparable", "finished in neither store"),
        ):
            if self.count(status):
                parts.append(f"{self.count(status)} {words}")
        return ", ".join(parts)

    @property
    def seed_note(self) -> str | None:
        """Says how many comparisons had one seed on a side (training-seed variance unmeasured), or None."""
        checks = [c for j in self.jobs for c in j.metrics]
        k = sum(not c.seed_aware for c in checks)
        if not k:
            return None
        return (
            f"{k} of {len(checks)} comparison(s) have one seed on a side: training-seed variance unmeasured, their "
            f"test covers query noise only; a drop there still fails the gate, labelled '{QUERY_ONLY}'"
        )

    def _verdict(self, md: bool = False) -> str:
        b, esc = ("**", escape_md) if md else ("", str)
        if self.nothing_compared:
            return f"{b}nothing compared{b} ({esc(self.nothing_compared)})"
        return f"{b}{len(self.regressions)} regression(s){b}" if self.regressions else "no regression"

    def _rule(self) -> str:
        return (
            f"accuracy: drop > {self.max_drop:g} and Holm p < {self.alpha:g}, seed × query t test; "
            f"throughput: drop > ×{self.max_throughput_drop_factor:g}"
        )

    def verdict_line(self) -> str:
        """The summary: the verdict, the job counts, the thresholds and the one-seed note."""
        line = f"{self._verdict()}; {self.counts_line()} ({self._rule()})"
        return line + (f". Note: {self.seed_note}" if self.seed_note else "")

    def markdown(self) -> str:
        """A GFM table of every job and metric (for a CI step summary)."""
        lines = ["| " + " | ".join(HEADER) + " |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        lines += ["| " + " | ".join(escape_md(c) for c in row) + " |" for row in self.rows()]
        lines += ["", f"{self._verdict(md=True)} — {self.counts_line()}; {self._rule()}."]
        if self.device_warning:
            lines += ["", f"Warning: {escape_md(self.device_warning)}."]
        notes = [self.seed_note] if self.seed_note else []
        lines += [x for note in notes + self.notes for x in ("", f"Note: {escape_md(note)}")]
        return "\n".join(lines) + "\n"

    def rows(self) -> list[list[str]]:
        """Table rows (strings): one per job × metric, or one per job without metrics."""
        out = []
        for job in self.jobs:
            tp = "–"
            if job.base_throughput is not None or job.new_throughput is not None:
                tp = f"{_f(job.base_throughput, 1)} → {_f(job.new_throughput, 1)}"
                if job.throughput_factor is not None:
                    tp += f" (×{1 / job.throughput_factor:.2f})"
            checks = job.metrics or [None]
            for i, check in enumerate(checks):
                verdict = job.status
                if job.status == "ok":
                    flags = []
                    if check is not None and check.regression:
                        flags.append("ACCURACY DROP" if check.seed_aware else f"ACCURACY DROP ({QUERY_ONLY})")
                    if job.throughput_regression and i == 0:
                        flags.append("THROUGHPUT DROP")
                    verdict = ", ".join(flags) or "ok"
                elif job.status == "failed":
                    verdict = "FAILED in new"
                cells = check.cells() if check else ["–"] * 6
                out.append([job.dataset, job.model, job.strategy, *cells, tp if i == 0 else "", verdict])
        return out


def _f(value: float | None, digits: int, signed: bool = False, general: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if general:
        return f"{value:.{digits}g}"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def latest_configs(rows: pl.DataFrame, role: str = "") -> tuple[pl.DataFrame, list[str]]:
    """The rows of the newest configuration of each (dataset, model, strategy) label in one store, and a
    note for every label that has several configurations there (older ones are left out, never pooled)."""
    rows = with_config_key(rows)
    kept, notes = [], []
    for (dataset, model, strategy), group in rows.group_by(list(KEYS), maintain_order=True):
        n = group["config_key"].n_unique()
        if n > 1:
            key = newest_config(group)
            group = group.filter(pl.col("config_key") == key)
            notes.append(
                f"{role + ' store' if role else 'store'}: {dataset}/{model}/{strategy} has {n} configurations; "
                f"only the newest (config {key[:SHORT_KEY]}) is compared"
            )
        kept.append(group)
    return (pl.concat(kept, how="diagonal_relaxed") if kept else rows), notes


def _runs(rows: pl.DataFrame) -> dict[tuple[str, str, str], pl.DataFrame]:
    ok = rows.filter(pl.col("status") == "ok")
    return {tuple(str(k) for k in key): group for key, group in ok.group_by(list(KEYS), maintain_order=True)}


def _matrices(rows: pl.DataFrame, per_query: pl.DataFrame) -> dict[tuple[str, ...], pl.DataFrame]:
    """``{(dataset, model, strategy, metric): query_id × finished run_id scores}`` (a column per seed)."""
    if per_query.is_empty():
        return {}
    ok = rows.filter(pl.col("status") == "ok").select("run_id", *KEYS)
    scores = per_query.join(ok, on="run_id", how="inner")
    return {
        tuple(str(k) for k in key): part.pivot(
            on="run_id", index="query_id", values="score", aggregate_function="first"
        )
        for key, part in scores.partition_by([*KEYS, "metric"], as_dict=True).items()
    }


def _seed_test(new: pl.DataFrame | None, base: pl.DataFrame | None) -> SeedQueryTest | None:
    """:func:`seed_query_test` of NEW's seeds × queries against the baseline's, on the queries every run of both
    has (run ids may repeat across stores: the columns are renamed apart); None without scores on a side."""
    if new is None or base is None:
        return None
    sides = [
        side.rename({c: f"{role}:{c}" for c in side.columns if c != "query_id"})
        for role, side in (("new", new), ("base", base))
    ]
    both = sides[0].join(sides[1], on="query_id", how="inner").drop_nulls()
    matrices = [both.select(side.columns[1:]).to_numpy().astype(float).T for side in sides]
    return seed_query_test(*matrices)


def _mean(frame: pl.DataFrame, col: str, *, as_board: bool = False) -> float | None:
    """``col``'s mean over a job's seeds; ``as_board``: as the boards show it (``seed_centre``: throughput median)."""
    values = frame[col].cast(pl.Float64) if col in frame.columns else None
    value = None if values is None else seed_centre(values.to_list(), col) if as_board else values.mean()
    return float(value) if value is not None and math.isfinite(value) else None


def _load(directory: Path, role: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    try:
        rows, per_query = load_store(directory)
    except NegbenchError as exc:
        raise DataError(f"{role} store: {exc.message}", file=exc.file) from None
    if rows.is_empty():
        raise DataError(f"{role} store has no result rows", file=directory)
    if per_query.is_empty() and (rows["status"] == "ok").any():
        raise DataError(
            f"{role} store has no per-query scores (per_query.parquet), which the significance test needs",
            file=directory,
        )
    return rows, per_query


def compare_stores(
    baseline: str | Path,
    new: str | Path,
    *,
    metrics: Sequence[str] | None = None,
    max_drop: float = 0.01,
    max_throughput_drop_factor: float = 2.0,
    alpha: float = 0.05,
) -> Comparison:
    """Compare NEW against BASELINE job by job (see the module docstring for the rules)."""
    if not max_drop >= 0:
        raise NegbenchError("must be >= 0", field="--max-drop")
    if not max_throughput_drop_factor >= 1:
        raise NegbenchError("must be >= 1 (a factor: 2 flags throughput halving)", field="--max-throughput-drop-factor")
    if not 0 < alpha < 1:
        raise NegbenchError("must be between 0 and 1", field="--alpha")
    base_rows, base_pq = _load(Path(baseline), "baseline")
    new_rows, new_pq = _load(Path(new), "new")
    base_rows, base_notes = latest_configs(base_rows, "baseline")
    new_rows, new_notes = latest_configs(new_rows, "new")
    for note in base_notes + new_notes:
        log.warning(note)
    for role, rows, where in (("new", new_rows, new), ("baseline", base_rows, baseline)):
        if not (rows["status"] == "ok").any():
            raise DataError(
                f"nothing to compare: the {role} store has no finished row (status ok); its "
                f"{rows.height} row(s) all failed",
                file=where,
            )
    chosen = _chosen_metrics(metrics, base_rows, new_rows)
    base_runs, new_runs = _runs(base_rows), _runs(new_rows)
    base_scores, new_scores = _matrices(base_rows, base_pq), _matrices(new_rows, new_pq)
    all_base = {tuple(str(v) for v in k) for k in base_rows.select(KEYS).unique().iter_rows()}
    all_new = {tuple(str(v) for v in k) for k in new_rows.select(KEYS).unique().iter_rows()}
    jobs: list[JobComparison] = []
    checks: list[MetricCheck] = []
    for key in sorted(all_base | all_new):
        job = JobComparison(*key, status="ok")
        b, n = base_runs.get(key), new_runs.get(key)
        if b is None:
            job.status = "added" if n is not None else "not comparable"
        elif n is None:
            job.status = "failed" if key in all_new else "missing"
        if b is not None and n is not None:
            for metric in chosen:
                bm, nm = _mean(b, metric), _mean(n, metric)
                if bm is None or nm is None:
                    continue
                test = _seed_test(new_scores.get((*key, metric)), base_scores.get((*key, metric)))
                check = MetricCheck(metric, bm, nm, 1.0)
                if test is not None:  # one-sided: NEW worse
                    check.p_value, check.n_queries = test.p_less, test.n
                    check.seeds_base, check.seeds_new = test.seeds_base, test.seeds_new
                job.metrics.append(check)
                checks.append(check)
            job.base_throughput = _mean(b, "train_examples_per_s", as_board=True)
            job.new_throughput = _mean(n, "train_examples_per_s", as_board=True)
            factor = job.throughput_factor
            job.throughput_regression = factor is not None and factor > max_throughput_drop_factor
        jobs.append(job)
    for check, p_adj in zip(checks, holm([c.p_value for c in checks]), strict=True):
        check.p_holm = p_adj
        check.regression = (check.base - check.new) > max_drop and p_adj < alpha

    def devices(rows: pl.DataFrame) -> list[str]:
        return sorted({str(d) for d in rows["device"].drop_nulls().to_list()}) if "device" in rows.columns else []

    return Comparison(
        jobs,
        chosen,
        max_drop,
        max_throughput_drop_factor,
        alpha,
        devices(base_rows),
        devices(new_rows),
        base_notes + new_notes,
        _nothing_compared(jobs, all_base, all_new),
    )


def _chosen_metrics(metrics: Sequence[str] | None, base_rows: pl.DataFrame, new_rows: pl.DataFrame) -> list[str]:
    """The metrics to compare: those asked for (each in both stores), else every metric the stores share."""
    common = [m for m in metric_columns(base_rows) if m in metric_columns(new_rows)]
    if metrics:
        for m in metrics:
            for role, rows in (("baseline", base_rows), ("new", new_rows)):
                if m not in metric_columns(rows):
                    raise DataError(
                        f"metric {m!r} is not in the {role} store (has: {', '.join(metric_columns(rows)) or 'none'})",
                        field="--metric",
                    )
        return list(dict.fromkeys(metrics))
    if not common:
        raise DataError("the two stores share no metric column")
    return common


def _nothing_compared(jobs: list[JobComparison], all_base: set, all_new: set) -> str | None:
    """Why no job was compared (no job finished in both stores), or None when one was."""
    if any(j.status == "ok" for j in jobs):
        return None
    if not all_base & all_new:
        return (
            f"the stores have no job (dataset, model, strategy) in common: {len(all_base)} in the baseline, "
            f"{len(all_new)} in new"
        )
    return "no job finished (status ok) in both stores"
