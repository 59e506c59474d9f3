"""Suite configuration: pydantic models of the TOML file, with errors naming file and dotted path.

Relative paths in a suite (dataset directories, ``data_dirs``, ``output_dir``) resolve against the
current working directory, so suites are run from the project root.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from negbench.config.comparisons import Comparison, check_comparisons
from negbench.config.metrics import parse_metric

__all__ = [
    "MAX_BATCH",
    "MAX_CURVE_POINTS",
    "MAX_EPOCHS",
    "MAX_NEGATIVES",
    "MAX_SEED",
    "MAX_SEQ_LENGTH",
    "MAX_STEPS",
    "MAX_TRIALS",
    "DatasetConfig",
    "EvaluationConfig",
    "FalseNegatives",
    "ModelConfig",
    "SearchDim",
    "StrategyConfig",
    "Suite",
    "SuiteSection",
    "TrackingConfig",
    "TrainingConfig",
    "TuningConfig",
    "primary_metric",
    "stable_hash",
]


class _Strict(BaseModel):
    """Strict types (no bool for an int, no float for an int, no string for a number), finite floats."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """No NUL character in any text (paths and names reach the file system and the terminal)."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value


# Bounds that keep a suite finite: a typo (``epochs = 1e20``) is refused, not trained for ever.
MAX_SEED = 2**32 - 1  # numpy's and torch's seed range
MAX_EPOCHS = 10_000
MAX_STEPS = 100_000_000
MAX_BATCH = 65_536
MAX_NEGATIVES = 4_096
MAX_TRIALS = 100_000
MAX_SEQ_LENGTH = 65_536
MAX_CURVE_POINTS = 1_000


class SuiteSection(_Strict):
    name: str = Field(min_length=1, pattern=r"\S")
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field(default_factory=lambda: [0], min_length=1)
    output_dir: str = Field(default="runs/default", pattern=r"\S")
    baseline: str = "in-batch"
    data_dirs: list[str] = Field(default_factory=list)
    cache_dir: str | None = None
    # "process": each job (its trials and seeds) runs in a fresh process of its own, so its peak memory does not
    # depend on the jobs before it and a crash fails that job only; "none": all in this process (debugging)
    isolation: Literal["process", "none"] = "process"

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be unique")
        return seeds


class FalseNegatives(_Strict):
    """Planted false negatives: unlabelled copies of training positives added to the *training* corpus. A controlled
    version of the false-negative problem of hard-negative mining ("Hard Negatives or False Negatives", Cai et al.,
    2022; NV-Retriever, Moreira et al., 2024): for a seeded ``rate`` share of the training queries, a copy of one of
    the query's positives (``duplicate``: exact; ``near-duplicate``: sentences dropped or reordered, a few words
    removed) joins the corpus under a fresh id, labelled for no query. Evaluation (dev and test) never sees the
    planted documents (:mod:`negbench.data.false_negatives`)."""

    rate: Annotated[float, Field(gt=0.0, le=1.0)]
    kind: Literal["duplicate", "near-duplicate"] = "duplicate"
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 0

    @property
    def tag(self) -> str:
        """Short label for display names: ``fn0.3dup`` / ``fn0.3near`` (``s<seed>`` added when not 0)."""
        kind = "dup" if self.kind == "duplicate" else "near"
        return f"fn{self.rate:g}{kind}" + (f"s{self.seed}" if self.seed else "")


class DatasetConfig(_Strict):
    source: str = Field(min_length=1)
    name: str | None = None
    checksum: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    dev_split: str | None = None
    dev_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1
    max_corpus: Annotated[int, Field(gt=0)] | None = None
    max_train_queries: Annotated[int, Field(gt=0)] | None = None
    max_dev_queries: Annotated[int, Field(gt=0)] | None = None
    max_test_queries: Annotated[int, Field(gt=0)] | None = None

    @field_validator("train_split", "test_split", "dev_split")
    @classmethod
    def _split_name(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or "/" in value or "\\" in value or value.startswith(".")):
            raise ValueError(f"a split is a file name under qrels/ (e.g. 'test'), got {value!r}")
        return value

    @model_validator(mode="after")
    def _test_kept_apart(self) -> DatasetConfig:
        if self.test_split in (self.train_split, self.dev_split):
            raise ValueError(f"the test split {self.test_split!r} cannot also be the train or dev split")
        return self

    false_negatives: FalseNegatives | None = None

    @property
    def display_name(self) -> str:
        """``name``, else the source's last part, ``+<tag>`` when false negatives are planted."""
        if self.name:
            return self.name
        src = self.source.split(":", 1)[-1].rstrip("/")
        base = src.replace("/", "-") if self.source.startswith("mteb:") else (Path(src).name or src)
        return base + (f"+{self.false_negatives.tag}" if self.false_negatives else "")


class ModelConfig(_Strict):
    spec: str = Field(min_length=1)
    name: str | None = None
    # a stronger teacher for the strategies that score or mine with one (gist, positive-aware, tas-b; pooling-bias
    # mines its candidates with it):
    # a model spec like ``spec``; None = the base model itself. A strategy's own ``guide`` wins.
    guide: str | None = Field(default=None, min_length=1)
    max_seq_length: Annotated[int, Field(gt=0, le=MAX_SEQ_LENGTH)] = 256
    batch_size: Annotated[int, Field(gt=0, le=MAX_BATCH)] = 64
    precision: Literal["fp32", "fp16", "bf16"] = "fp32"
    trust_remote_code: bool = False
    device: str | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.spec.rstrip("/").split("/")[-1]


class TrainingConfig(_Strict):
    epochs: Annotated[int, Field(gt=0, le=MAX_EPOCHS)] = 1
    lr: Annotated[float, Field(gt=0.0)] = 2e-5
    warmup_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    weight_decay: Annotated[float, Field(ge=0.0)] = 0.01
    batch_size: Annotated[int, Field(gt=1, le=MAX_BATCH)] = 32
    max_steps: Annotated[int, Field(le=MAX_STEPS)] = -1
    num_negatives: Annotated[int, Field(ge=0, le=MAX_NEGATIVES)] = 1
    scale: Annotated[float, Field(gt=0.0, le=10_000.0)] = 20.0
    max_grad_norm: Annotated[float, Field(gt=0.0)] = 1.0
    # "data": equal examples per epoch; "compute": the steps giving the baseline's FLOPs (negbench.core.setup)
    budget: Literal["data", "compute"] = "data"

    @field_validator("max_steps")
    @classmethod
    def _steps(cls, value: int) -> int:
        if value == 0 or value < -1:
            raise ValueError("max_steps must be -1 (use epochs) or a positive number")
        return value


class EvaluationConfig(_Strict):
    metrics: list[str] = Field(default_factory=lambda: ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    # the report's verdict and marks rest on it (Suite.primary_metric); report-only: excluded from dumps and keys
    primary: str | None = Field(default=None, min_length=1, exclude=True)
    batch_size: Annotated[int, Field(gt=0, le=MAX_BATCH)] = 128
    corpus_chunk_size: Annotated[int, Field(gt=0)] = 50_000
    ignore_identical_ids: bool = True
    mteb_tasks: list[str] = Field(default_factory=list)
    # final runs only (tuning trials are unchanged): the hardness probe of negbench.core.probes.hardness every this many
    # optimiser steps and at every refresh (0: off), read off the loss's own logits (no extra forward pass)
    diagnostics_every: Annotated[int, Field(ge=0, le=MAX_STEPS)] = 50
    # final runs only: dev evaluations (never test) at this many evenly spaced fractions of the run's steps
    # (4: after each quarter), for learning curves and time-to-target; 0: off; "auto": up to 4, as many as cost at
    # most a quarter of the run's estimated training compute, none when that is fewer than 3
    # (negbench.core.probes.curves.auto_curve_points)
    curve_points: Annotated[int, Field(ge=0, le=MAX_CURVE_POINTS)] | Literal["auto"] = "auto"
    # what dev scoring (trials, pruning, curves; never test) searches: "full" corpus, "pooled": judged ∪ top
    # dev_pool_depth of BM25 and of the base model per dev query; "auto": pooled from dev_pool_min_docs documents up
    # (100,000: why in negbench.evaluation.pool). In the job key: it changes tuning's choices and dev curves.
    dev_corpus: Literal["auto", "full", "pooled"] = "auto"
    dev_pool_depth: Annotated[int, Field(gt=0)] = 100
    dev_pool_min_docs: Annotated[int, Field(gt=0)] = 100_000

    @field_validator("curve_points", mode="before")
    @classmethod
    def _curve_points(cls, value: Any) -> Any:
        """One message for both forms: the union's own errors name a branch (``curve_points.constrained-int``) and
        say only "a valid integer" of ``"Auto"``."""
        if value == "auto" or (type(value) is int and 0 <= value <= MAX_CURVE_POINTS):
            return value
        raise ValueError(f'must be "auto" or a whole number from 0 to {MAX_CURVE_POINTS}, got {value!r}')

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, metrics: list[str]) -> list[str]:
        if not metrics:
            raise ValueError("at least one metric is required")
        for metric in metrics:
            parse_metric(metric)
        return metrics

    @field_validator("primary")
    @classmethod
    def _primary(cls, primary: str | None, info: ValidationInfo) -> str | None:
        metrics = info.data.get("metrics")  # absent when the metrics themselves are invalid
        if primary and metrics and primary not in metrics:
            raise ValueError(f"{primary!r} is not one of the evaluation metrics ({', '.join(metrics)})")
        return primary


class SearchDim(_Strict):
    """One dimension of a declared search space (`float` with `log`, `int`, `categorical`)."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchDim:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("categorical needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"{self.type} needs 'low' and 'high'")
        if self.step is not None:
            if not self.step > 0:
                raise ValueError(f"step must be > 0, got {self.step}")
            if self.log:
                raise ValueError("step cannot be combined with log = true (Optuna samples one or the other)")
            if self.type == "int" and self.step != int(self.step):
                raise ValueError(f"int step must be a whole number, got {self.step}")
        if self.low > self.high:
            raise ValueError(f"inverted range: low {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("int range needs integer bounds")
        return self


class StrategyConfig(_Strict):
    name: str = Field(min_length=1)
    label: str | None = None
    guide: str | None = Field(default=None, min_length=1)  # this strategy's teacher (see ModelConfig.guide)
    params: dict[str, Any] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    search_space: dict[str, SearchDim] = Field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.label or self.name


class TuningConfig(_Strict):
    n_trials: Annotated[int, Field(ge=0, le=MAX_TRIALS)] = 0
    metric: str = "ndcg@10"
    direction: Literal["maximize", "minimize"] = "maximize"
    sampler: Literal["tpe", "random"] = "tpe"
    pruner: Literal["median", "none"] = "median"
    storage: str | None = None
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    heartbeat_s: Annotated[float, Field(gt=0)] = 10.0  # workers renew their claims this often
    grace_s: Annotated[float, Field(gt=0)] = 60.0  # a claim this old belongs to a dead worker
    # dimensions searched for every strategy (``training.<field>`` only); a strategy's own wins by name
    search_space: dict[str, SearchDim] = Field(default_factory=dict)

    @field_validator("search_space")
    @classmethod
    def _training_only(cls, space: dict[str, SearchDim]) -> dict[str, SearchDim]:
        for name in space:
            if not name.startswith("training."):
                raise ValueError(f"suite-wide search dimension {name!r} must be a training.<field>")
        return space

    @field_validator("metric")
    @classmethod
    def _metric(cls, metric: str) -> str:
        parse_metric(metric)
        return metric

    @model_validator(mode="after")
    def _grace_covers_heartbeats(self) -> TuningConfig:
        if self.grace_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"grace_s must be at least twice heartbeat_s ({self.grace_s:g} < 2 × {self.heartbeat_s:g}): a live "
                "worker's claims would be taken over between two of its heartbeats"
            )
        return self


class TrackingConfig(_Strict):
    enabled: bool = True
    uri: str | None = None
    experiment: str | None = None


class Suite(_Strict):
    suite: SuiteSection
    datasets: list[DatasetConfig] = Field(min_length=1)
    models: list[ModelConfig] = Field(min_length=1)
    strategies: list[StrategyConfig] = Field(min_length=1)
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    tuning: TuningConfig = TuningConfig()
    tracking: TrackingConfig = TrackingConfig()
    # report-only (excluded from dumps, hashes and keys): one-sided claims tested as their own family
    comparisons: list[Comparison] = Field(default_factory=list, exclude=True)

    @field_validator("comparisons")
    @classmethod
    def _comparisons(cls, comparisons: list[Comparison], info: ValidationInfo) -> list[Comparison]:
        strategies = info.data.get("strategies")  # absent when the strategies themselves are invalid
        if comparisons and strategies:
            check_comparisons(comparisons, [s.display_name for s in strategies])
        return comparisons

    @model_validator(mode="after")
    def _unique_labels(self) -> Suite:
        seen: set[str] = set()
        for strategy in self.strategies:
            if strategy.display_name in seen:
                raise ValueError(f"duplicate strategy label {strategy.display_name!r}: give one a 'label'")
            seen.add(strategy.display_name)
        return self

    @model_validator(mode="after")
    def _unique_dataset_and_model_names(self) -> Suite:
        # Reports key curves, ranks and planted pairs by display name: two entries sharing one would be
        # averaged as if they were seeds of one.
        for section, items in (("dataset", self.datasets), ("model", self.models)):
            seen: set[str] = set()
            for item in items:
                if item.display_name in seen:
                    raise ValueError(f"duplicate {section} name {item.display_name!r}: give one a 'name'")
                seen.add(item.display_name)
        return self

    def training_for(self, index: int, overrides: dict[str, Any] | None = None) -> TrainingConfig:
        """The training settings of strategy ``index``: ``[training]``, its own ``training`` table, then
        ``overrides`` (a tuning trial's values), validated."""
        update = {**self.strategies[index].training, **(overrides or {})}
        return self.training.model_validate({**self.training.model_dump(), **update})

    @property
    def primary_metric(self) -> str:
        return primary_metric(self.evaluation, self.tuning)

    def config_hash(self) -> str:
        """A stable hash of the whole validated suite (what a result row was produced under)."""
        return stable_hash(self.model_dump(mode="json"))


def primary_metric(evaluation: EvaluationConfig, tuning: TuningConfig) -> str:
    """The metric the report's verdict and marks rest on: ``[evaluation] primary``, else ``[tuning] metric`` when
    evaluated, else the first evaluation metric."""
    return evaluation.primary or (tuning.metric if tuning.metric in evaluation.metrics else evaluation.metrics[0])


def stable_hash(obj: Any, length: int = 16) -> str:
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:length]
