"""The result row: every column of ``results.parquet``, declared once.

A final run, a crashed job and both stores use :class:`ResultRow`; metric columns (``ndcg@10``, ``mteb:…``)
are the only ones not declared here, since the suite chooses them. A row's extra outputs (its sampled
negatives, per-step records and losses) travel beside it in :class:`RunArtifacts`, never inside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLUMNS", "NUMERIC_COLUMNS", "ResultRow", "RunArtifacts"]


@dataclass
class ResultRow:
    """One (dataset, model, strategy, seed, params) result."""

    # identity: what was run
    run_id: str
    config_key: str
    suite: str
    dataset: str
    dataset_fingerprint: str
    model: str
    strategy: str
    strategy_name: str
    params: str
    seed: int
    model_fingerprint: str | None = None
    training: str | None = None
    trial: int | None = None
    dev_metric: float | None = None
    dev_corpus: str | None = None  # what dev scoring searched: "full" or "pooled:<documents>"; None: no dev scoring
    status: str = "ok"
    error: str | None = None
    # budget: the same examples per epoch in full batches, unless `budget` names a reason by design
    steps: int = 0
    examples_seen: int = 0
    steps_per_epoch: int | None = None
    examples_per_epoch: int | None = None
    mean_batch_size: float | None = None
    min_batch_size: int | None = None
    max_batch_size: int | None = None
    budget: str | None = None
    budget_rule: str | None = None  # [training] budget: "data" (equal examples) or "compute" (equal FLOPs)
    coverage: float | None = None  # the smallest share of the epochs in which a training example was trained
    # costs, split the same way for every strategy; throughput from train_s alone
    mine_s: float = 0.0
    sample_s: float = 0.0
    refresh_s: float = 0.0
    train_s: float = 0.0
    eval_s: float = 0.0
    # the final run's dev learning curve ([evaluation] curve_points): its dev scorings' wall seconds and how many
    # (out of train_s, inside total_s)
    curve_s: float = 0.0
    curve_points: int = 0
    total_s: float | None = None
    train_examples_per_s: float | None = None
    train_peak_rss_mb: float | None = None
    eval_peak_rss_mb: float | None = None
    train_peak_gpu_mb: float | None = None
    eval_peak_gpu_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_gpu_mb: float | None = None
    # compute that does not depend on the machine, in TFLOPs (10^12 FLOPs) counted from the non-padding tokens through
    # each encoder (negbench.core.compute: 2·N per token forward, 6·N forward + backward, N its non-embedding
    # parameters): training steps (with a strategy's extra columns and own models), preparation (mining, sampling,
    # refreshes), the test evaluation; the estimate made before training (negbench.core.setup); the trained N
    train_tflop: float | None = None
    prep_tflop: float | None = None
    eval_tflop: float | None = None
    est_train_tflop: float | None = None
    est_prep_tflop: float | None = None
    encoder_params: int | None = None
    # negative diagnostics; planted false negatives (a controlled experiment, see negbench.data.false_negatives)
    neg_score_gap: float | None = None
    planted_fn_share: float | None = None
    planted_fn_inbatch_share: float | None = None
    planted_fn_rate: float = 0.0
    planted_fn_kind: str | None = None
    planted_docs: int = 0
    base_dataset_fingerprint: str | None = None
    # the data (negbench.data.subset): train/dev queries dropped as test twins; what a subset kept (None: the full
    # dataset) and its share of documents relevant only to test queries, against the full dataset's
    test_twins_dropped: int = 0
    subset: str | None = None
    test_only_share: float | None = None
    test_only_share_full: float | None = None
    # training wall seconds (measurements excluded) to the first dev-curve point at 95 % of the run's *own*
    # best (not comparable across strategies: the report's time to target uses the best of all of them)
    time_to_own_95_s: float | None = None
    # provenance
    device: str | None = None
    determinism: str | None = None
    versions: str | None = None
    config_hash: str | None = None
    code_revision: str | None = None
    git_rev: str | None = None
    created_at: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # the suite's metric columns

    def update(self, **values: Any) -> ResultRow:
        """Set declared columns; a name that is not one (a typo) raises instead of adding a stray column."""
        for name, value in values.items():
            if name not in _FIELDS:
                raise AttributeError(f"ResultRow has no column {name!r}")
            setattr(self, name, value)
        return self

    def record(self) -> dict[str, Any]:
        """The row as a store writes it: declared columns in order, then the metric columns."""
        out = {name: getattr(self, name) for name in COLUMNS}
        out.update(self.metrics)
        return out

    def __getitem__(self, name: str) -> Any:
        return self.metrics[name] if name in self.metrics else getattr(self, name)


@dataclass
class RunArtifacts:
    """What a final run produces beside its row: epoch-0 sampled negatives, per-step records, losses."""

    negatives: dict[str, list[str]] | None = None
    steps: list = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


COLUMNS: list[str] = [f.name for f in dataclasses.fields(ResultRow) if f.name != "metrics"]
# the declared columns that hold numbers (a store whose copy of one holds text is malformed)
NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(ResultRow)
    if f.name != "metrics" and str(f.type).split(" |")[0] in ("int", "float")
)
_FIELDS = frozenset(COLUMNS)
