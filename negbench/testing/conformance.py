"""Conformance tests any strategy (built-in or third-party) can run, as ``optuna.testing`` offers.

Usage in a plugin's test suite::

    from negbench.testing import StrategyConformance

    class TestMyStrategy(StrategyConformance):
        strategy_cls = MyStrategy
        params = {"alpha": 0.5}

It checks the contracts on a toy corpus with a tiny random encoder: params round-trip through TOML and
the declared search space validates; no labelled positive is ever returned as a negative; candidates,
samples and batches are deterministic under a seed; two epochs train with a finite loss, each in the
``steps_per_epoch`` full batches of the data budget (``n // batch_size`` unless the strategy declares otherwise).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from negbench.config.suite import TrainingConfig
from negbench.context import Context
from negbench.core.mining import MiningServices
from negbench.data.dataset import load_dataset
from negbench.strategy import Strategy
from negbench.testing.fixtures import build_tiny_encoder, write_toy_beir

__all__ = ["StrategyConformance", "make_context", "to_toml", "toy_setup"]

_FIXTURE_CACHE: dict[str, tuple[Path, Path]] = {}


def toy_setup(root: Path) -> tuple[Path, Path]:
    """(toy dataset dir, tiny model dir) under ``root``, built once per process and root."""
    key = str(root)
    if key not in _FIXTURE_CACHE:
        data = write_toy_beir(root / "toy")
        model = build_tiny_encoder(root / "tiny")
        _FIXTURE_CACHE[key] = (data, model)
    return _FIXTURE_CACHE[key]


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

    def test_trains_its_budget_in_full_batches(self, toy) -> None:
        """Two epochs train with a finite loss and change the model, under the data-budget rule as trained, not as
        declared: each epoch is ``steps_per_epoch`` full batches, and a strategy that declares no departure trains
        what ``in-batch`` trains, ``n // batch_size`` full batches."""
        from negbench.config.suite import ModelConfig
        from negbench.core.budget import EQUAL, budget_for
        from negbench.core.models import load_model
        from negbench.core.training.loop import train

        strategy = self.build()
        if not strategy.trains:
            pytest.skip("zero-shot strategy does not train")
        ctx = self.context(toy)
        ctx.batch_size = 16
        cfg = TrainingConfig(epochs=2, batch_size=16, lr=1e-3, num_negatives=self.num_negatives)
        budget = budget_for(strategy, len(ctx.examples), cfg)
        model = load_model(ModelConfig(spec=str(toy[1]), max_seq_length=32), "cpu")
        before = [p.detach().clone() for p in model.parameters()]
        strategy.setup(ctx)
        outcome = train(
            model,
            ctx,
            strategy,
            cfg,
            device="cpu",
            candidates=strategy.mine(ctx),
            budget=budget,
            mini_batch_size=getattr(strategy, "mini_batch_size", None),
        )
        assert outcome.steps == cfg.epochs * budget.steps_per_epoch
        assert outcome.batch_sizes == [cfg.batch_size] * outcome.steps, "a batch was not full"
        assert outcome.examples_seen == cfg.epochs * budget.examples_per_epoch
        if budget.reason == EQUAL:
            assert budget.examples_per_epoch == len(ctx.examples) // cfg.batch_size * cfg.batch_size
        assert all(np.isfinite(outcome.losses))
        changed = any(not torch.equal(a, b.detach()) for a, b in zip(before, model.parameters(), strict=True))
        assert changed, "training left the model unchanged"

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
