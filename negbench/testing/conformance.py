"""Conformance tests any strategy (built-in or third-party) can run, as ``optuna.testing`` offers.

Usage in a plugin's test suite::

    from negbench.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        strategy_cls = MyStrategy
        params = {"alpha": 0.5}

It checks the contracts on a toy corpus with a tiny random encoder: params round-trip through TOML and
the declared search space validates; no labelled positive is ever returned as a negative; candidates,
samples and batches are deterministic under a seed; two epochs train with a finite loss, each in the
``steps_per_epoch`` full batches of the data budget (``n // batch_size`` unless the strategy declares otherwise);
the compute budget's estimate of a short run matches the FLOPs the run measures (:data:`ESTIMATE_TOLERANCE`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from negbench.config.suite import TrainingConfig
from negbench.context import Context
from negbench.core.budget import Budget
from negbench.core.mining import MiningServices
from negbench.core.training.outcome import TrainOutcome
from negbench.data.dataset import load_dataset
from negbench.strategy import Strategy
from negbench.testing.fixtures import build_tiny_encoder, write_toy_beir

__all__ = [
    "ESTIMATE_TOLERANCE",
    "LONG_DOC_WORDS",
    "StrategyConformance",
    "TrainedRun",
    "make_context",
    "to_toml",
    "toy_setup",
]

ESTIMATE_TOLERANCE = 0.10  # relative; why: StrategyConformance.test_estimates_the_compute_it_measures
LONG_DOC_WORDS = 60  # the estimate check's toy documents: longer than the encoder's 32 tokens, as real ones are

_FIXTURE_CACHE: dict[str, tuple[Path, Path]] = {}


def toy_setup(root: Path, words_per_doc: int | None = None) -> tuple[Path, Path]:
    """(toy dataset dir, tiny model dir) under ``root``, built once per process and root; ``words_per_doc``: a toy
    of documents that long (the same queries and vocabulary, the same model)."""
    key = str(root)
    if key not in _FIXTURE_CACHE:
        data = write_toy_beir(root / "toy")
        model = build_tiny_encoder(root / "tiny")
        _FIXTURE_CACHE[key] = (data, model)
    if words_per_doc is None:
        return _FIXTURE_CACHE[key]
    if (variant := f"{key}:{words_per_doc}") not in _FIXTURE_CACHE:
        data = write_toy_beir(root / f"toy-{words_per_doc}", words_per_doc=words_per_doc)
        _FIXTURE_CACHE[variant] = (data, _FIXTURE_CACHE[key][1])
    return _FIXTURE_CACHE[variant]


def make_context(
    data_dir: Path,
    model_dir: Path,
    cache_dir: Path,
    *,
    seed: int = 0,
    num_negatives: int = 2,
    batch_size: int = 8,
    epochs: int = 2,
    guide_dir: Path | None = None,
) -> Context:
    """A ready Context over the toy dataset with the tiny encoder as base model (and ``guide_dir``'s model as
    the teacher, when given)."""
    from negbench.config.suite import DatasetConfig

    dataset = load_dataset(DatasetConfig(source=str(data_dir)))
    return Context(
        dataset=dataset,
        examples=dataset.training_examples(),
        services=_services(dataset, model_dir, cache_dir),
        num_negatives=num_negatives,
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        guide_services=None if guide_dir is None else _services(dataset, guide_dir, cache_dir),
    )


def _services(dataset, model_dir: Path, cache_dir: Path) -> MiningServices:
    from negbench.config.suite import ModelConfig
    from negbench.core.models import load_model, model_fingerprint

    model_cfg = ModelConfig(spec=str(model_dir), max_seq_length=32, batch_size=32)
    return MiningServices(
        dataset, lambda: load_model(model_cfg, "cpu"), model_fingerprint(str(model_dir), 32), cache_dir, batch_size=32
    )


def to_toml(params: dict[str, Any]) -> str:
    """Write a flat dict of scalars/lists as a TOML table (enough for strategy params)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    return "[params]\n" + "".join(f"{k} = {value(v)}\n" for k, v in params.items())


@dataclass(frozen=True)
class TrainedRun:
    """What :meth:`StrategyConformance.trained` ran: its context, settings and budget (with the compute estimate),
    what it measured, its preparation FLOPs (setup and mining as charged, sampling, refreshes), whether it trained."""

    ctx: Context
    cfg: TrainingConfig
    budget: Budget
    outcome: TrainOutcome
    prep_flops: float
    changed: bool


class StrategyConformance:
    """Subclass and set ``strategy_cls`` (and ``params``) to run the contract checks."""

    strategy_cls: ClassVar[type[Strategy]]
    params: ClassVar[dict[str, Any]] = {}
    num_negatives: ClassVar[int] = 2

    @pytest.fixture(scope="class")
    def toy(self, tmp_path_factory) -> tuple[Path, Path, Path]:
        """The toy corpus and tiny encoder, built once per test process and shared by every strategy's class
        (read-only); each class gets its own embedding cache."""
        data, model = toy_setup(tmp_path_factory.getbasetemp() / "conformance-toy")
        return data, model, tmp_path_factory.mktemp("conformance") / "cache"

    @pytest.fixture(scope="class")
    def trained(self, tmp_path_factory, toy) -> TrainedRun:
        """Two epochs of the strategy (batches of 16) on the toy whose documents have :data:`LONG_DOC_WORDS` words
        (the same queries, encoder and cache), set up, mined and trained as a final run is: its context from
        :func:`~negbench.core.setup.run_context` (with the run's length and compute estimate), its preparation
        charged as a final run's. Built once per class, for the checks of training and of the estimate."""
        from negbench.config.suite import ModelConfig
        from negbench.core.compute import FlopMeter
        from negbench.core.mining import charged_flops
        from negbench.core.models import load_model
        from negbench.core.setup import run_context
        from negbench.core.training.loop import train

        strategy = self.build()
        if not strategy.trains:
            pytest.skip("zero-shot strategy does not train")
        data, model_dir = toy_setup(tmp_path_factory.getbasetemp() / "conformance-toy", LONG_DOC_WORDS)
        toy_ctx = make_context(data, model_dir, toy[2], num_negatives=self.num_negatives)
        cfg = TrainingConfig(epochs=2, batch_size=16, lr=1e-3, num_negatives=self.num_negatives)
        services = toy_ctx.services
        budget, ctx = run_context(strategy, toy_ctx.dataset, toy_ctx.examples, services, cfg, cfg, 0, estimate=True)
        services.begin_run()
        with FlopMeter() as meter:  # cached artefacts charged at their recorded cost, as a final run's
            strategy.setup(ctx)
            candidates = strategy.mine(ctx)
        mined = charged_flops(meter.flops, [services])
        model = load_model(ModelConfig(spec=str(model_dir), max_seq_length=32), "cpu")
        before = [p.detach().clone() for p in model.parameters()]
        mini_batch = getattr(strategy, "mini_batch_size", None)
        outcome = train(
            model, ctx, strategy, cfg, device="cpu", candidates=candidates, budget=budget, mini_batch_size=mini_batch
        )
        changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
        prep = mined + outcome.sample_flops + outcome.refresh_flops
        return TrainedRun(ctx, cfg, budget, outcome, prep, changed)

    def context(self, toy, seed: int = 0) -> Context:
        data, model, cache = toy
        return make_context(data, model, cache, seed=seed, num_negatives=self.num_negatives)

    def build(self) -> Strategy:
        return self.strategy_cls.from_params(self.params)

    def run_hooks(self, ctx: Context, strategy: Strategy, epochs: int = 2) -> dict[str, Any]:
        strategy.setup(ctx)
        candidates = strategy.mine(ctx)
        out: dict[str, Any] = {"candidates": candidates, "samples": [], "batches": []}
        for epoch in range(epochs):
            if candidates is not None:
                out["samples"].append(strategy.sample(ctx, candidates, epoch))
            out["batches"].append(strategy.batches(ctx, epoch))
        return out

    # ------------------------------------------------------------------------------------ checks
    def test_has_name_and_citation(self) -> None:
        assert self.strategy_cls.name
        assert self.strategy_cls.citation or self.strategy_cls.__doc__ or self.strategy_cls.__module__

    def test_a_long_run_exercises_its_whole_method(self) -> None:
        """``unexercised`` names what a short run leaves out; a run of many epochs and steps leaves out nothing."""
        strategy = self.strategy_cls.from_params(self.params)
        assert strategy.unexercised(1_000, 1_000_000) is None
        note = strategy.unexercised(1, 1)
        assert note is None or (isinstance(note, str) and note.strip())

    def test_params_round_trip_through_toml(self) -> None:
        parsed = tomllib.loads(to_toml(self.params))["params"]
        params = self.strategy_cls.parse_params(parsed)
        assert params == self.strategy_cls.parse_params(self.params)
        hash(params)  # frozen dataclass

    def test_search_space_validates(self) -> None:
        from optuna.distributions import BaseDistribution, CategoricalDistribution

        space = self.strategy_cls.search_space()
        for name, dist in space.items():
            assert isinstance(dist, BaseDistribution), name
            values = dist.choices if isinstance(dist, CategoricalDistribution) else [dist.low, dist.high]
            for v in values:
                try:
                    self.strategy_cls.parse_params({**self.params, name: v})
                except Exception as exc:
                    if "must be greater" not in str(exc) and "must be <" not in str(exc):
                        raise

    def test_never_returns_a_labelled_positive(self, toy) -> None:
        ctx = self.context(toy)
        out = self.run_hooks(ctx, self.build())
        for negatives in out["samples"]:
            assert len(negatives) == len(ctx.examples)
            for i, ids in enumerate(negatives.ids):
                assert len(ids) == ctx.num_negatives
                assert not ctx.forbidden(i) & {int(d) for d in ids}, f"example {i} got a positive"
        for batches in out["batches"]:
            if batches is not None:
                flat = [i for b in batches for i in b]
                assert len(flat) == len(set(flat)), "an example appears twice in one epoch"
                assert all(0 <= i < len(ctx.examples) for i in flat)

    def test_deterministic_under_seed(self, toy) -> None:
        first = self.run_hooks(self.context(toy, seed=3), self.build())
        second = self.run_hooks(self.context(toy, seed=3), self.build())
        for a, b in zip(first["samples"], second["samples"], strict=True):
            for x, y in zip(a.ids, b.ids, strict=True):
                np.testing.assert_array_equal(x, y)
        assert first["batches"] == second["batches"]

    def test_trains_its_budget_in_full_batches(self, trained: TrainedRun) -> None:
        """Two epochs train with a finite loss and change the model, under the data-budget rule as trained, not as
        declared: each epoch is ``steps_per_epoch`` full batches, and a strategy that declares no departure trains
        what ``in-batch`` trains, ``n // batch_size`` full batches."""
        from negbench.core.budget import EQUAL

        outcome, cfg, budget = trained.outcome, trained.cfg, trained.budget
        assert outcome.steps == cfg.epochs * budget.steps_per_epoch
        assert outcome.batch_sizes == [cfg.batch_size] * outcome.steps, "a batch was not full"
        assert outcome.examples_seen == cfg.epochs * budget.examples_per_epoch
        if budget.reason == EQUAL:
            assert budget.examples_per_epoch == len(trained.ctx.examples) // cfg.batch_size * cfg.batch_size
        assert all(np.isfinite(outcome.losses))
        assert trained.changed, "training left the model unchanged"

    def test_declares_a_workload_that_grows_with_the_run(self, toy) -> None:
        """The compute budget's estimate (:meth:`Strategy.workload`): finite, non-negative FLOPs, never fewer for a
        longer run (the equal-compute rule searches the steps that fit)."""
        from negbench.core.budget import budget_for
        from negbench.core.setup import estimator, sizes_of

        strategy = self.build()
        if not strategy.trains:
            pytest.skip("zero-shot strategy does not train")
        ctx = self.context(toy)
        ctx.batch_size = 16
        cfg = TrainingConfig(epochs=2, batch_size=16, num_negatives=self.num_negatives)
        budget = budget_for(strategy, len(ctx.examples), cfg)
        ctx.steps_per_epoch = budget.steps_per_epoch
        at = estimator(strategy, ctx, budget, cfg, sizes_of(ctx.services))
        totals = [at(steps).total_flops for steps in (1, budget.steps_per_epoch, 3 * budget.steps_per_epoch)]
        assert all(np.isfinite(totals)) and 0 < totals[0] <= totals[1] <= totals[2]

    def test_estimates_the_compute_it_measures(self, trained: TrainedRun) -> None:
        """The compute budget's estimate of the run (:func:`negbench.core.setup.estimator`: the loss's columns and
        what :meth:`Strategy.workload` declares) is within :data:`ESTIMATE_TOLERANCE` of what it measured
        (``prep_tflop`` + ``train_tflop``, as a final run's row records them). The toy's documents are longer than
        the encoder's ``max_seq_length``, so a rule that truncates a text otherwise than its model does shows.

        10%: the estimate is exact in its rules (who encodes which text, truncated how, how often) but prices texts
        by mean token counts (a training example's query and positive over all examples; each mined, extra or
        strategy-encoded column as the corpus's mean document; each distinct text once per batch), whereas a run
        encodes particular texts: its full batches' examples, the documents its negatives happen to be, a document
        two rows of a batch share once. On this toy those differ from the means by a few percent; a mispriced rule
        (a pair's truncation, a refresh no step uses, one model priced as another) is off by more."""
        estimate, outcome = trained.budget.estimate, trained.outcome
        assert estimate is not None and estimate.steps == outcome.steps
        measured = trained.prep_flops + outcome.train_flops
        detail = (
            f"estimated {estimate.prep_flops:.4g} prep + {estimate.train_flops:.4g} train FLOPs, "
            f"measured {trained.prep_flops:.4g} + {outcome.train_flops:.4g}"
        )
        assert estimate.total_flops == pytest.approx(measured, rel=ESTIMATE_TOLERANCE), detail
