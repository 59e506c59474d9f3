"""Fair tuning with Optuna: one study per (dataset, model, strategy), same budget for every strategy.

Search spaces are data: a strategy declares defaults (``Strategy.search_space``); a suite may narrow or
replace dimensions by name, add training dimensions as ``training.<field>`` (e.g. ``training.lr``), and
pin parameters through ``params`` (pinned parameters are never searched). Every dimension is validated
against the strategy's ``Params`` before anything trains. The objective is a metric on the dev split
(carved from train); the test split is never read here.

Studies live in a storage under the output directory by default (an Optuna journal file); any storage URL
(``sqlite:///…``, ``postgresql://…``) can be configured. A rerun resumes: finished trials are kept,
trials left RUNNING by a killed process, and trials interrupted by Ctrl-C or SIGTERM, are marked FAIL (not
counted against the budget) and their parameters re-queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from pydantic import ValidationError

from negbench.config.suite import SearchDim, StrategyConfig, TrainingConfig, TuningConfig
from negbench.core.budget import BudgetError
from negbench.core.strategy import Strategy
from negbench.errors import ConfigError, InvalidTrialError, NonFiniteLossError
from negbench.run import interrupts
from negbench.run.guard import StrategyFailure, describe
from negbench.run.interrupts import INTERRUPTS

__all__ = [
    "FAILURE",
    "REQUEUED_FROM",
    "TRAINING_PREFIX",
    "TRIAL_FAILURES",
    "TUNABLE_TRAINING",
    "Tuner",
    "TuningOutcome",
    "build_space",
    "edges",
    "first_error",
    "requeued",
    "split_params",
    "storage_for",
    "suggest",
    "to_distribution",
]

log = logging.getLogger(__name__)
TRAINING_PREFIX = "training."
TUNABLE_TRAINING = {"lr", "warmup_ratio", "weight_decay", "num_negatives", "batch_size", "epochs", "max_steps"}
REQUEUED_FROM = "requeued_from"  # user attr of a re-queued trial: the number of the trial it replaces
FAILURE = "negbench_failure"
TRIAL_FAILURES = (StrategyFailure, InvalidTrialError, BudgetError, NonFiniteLossError)


def to_distribution(dim: SearchDim) -> BaseDistribution:
    if dim.type == "categorical":
        return CategoricalDistribution(list(dim.choices or []))
    if dim.type == "int":
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log, step=int(dim.step or 1))
    return FloatDistribution(float(dim.low), float(dim.high), log=dim.log, step=dim.step)


def edges(dist: BaseDistribution) -> list[Any]:
    """The values at the ends of a distribution (every choice of a categorical one)."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


def build_space(
    cls: type[Strategy], cfg: StrategyConfig, where: str, suite_dims: dict[str, SearchDim] | None = None
) -> dict[str, BaseDistribution]:
    """Merge the strategy's default space, the suite-wide training dimensions and the strategy's own
    dimensions (in that order, later wins by name); validate every edge value."""
    space = {k: v for k, v in cls.search_space().items() if k not in cfg.params}
    for name, dim in {**(suite_dims or {}), **cfg.search_space}.items():
        field = f"{where}.search_space.{name}"
        if name.startswith(TRAINING_PREFIX):
            if name.removeprefix(TRAINING_PREFIX) not in TUNABLE_TRAINING:
                raise ConfigError(
                    f"training field not tunable (tunable: {', '.join(sorted(TUNABLE_TRAINING))})", field=field
                )
        elif name in cfg.params:
            raise ConfigError("parameter is pinned in 'params'; remove it there to search it", field=field)
        try:
            space[name] = to_distribution(dim)
        except ValueError as exc:  # what Optuna refuses that the SearchDim checks did not foresee
            raise ConfigError(str(exc), field=field) from None
    for name, dist in space.items():
        field = f"{where}.search_space.{name}"
        if (
            name == f"{TRAINING_PREFIX}max_steps"
            and not isinstance(dist, CategoricalDistribution)
            and dist.low <= 0 <= dist.high
            and dist.high > -1
        ):
            raise ConfigError("a max_steps range must stay >= 1 (0 and values below -1 are not valid)", field=field)
        for value in edges(dist):
            if name.startswith(TRAINING_PREFIX):
                key = name.removeprefix(TRAINING_PREFIX)
                try:
                    TrainingConfig.model_validate({key: value})
                except ValidationError as exc:
                    raise ConfigError(
                        f"value {_short(value)} is invalid for training.{key}: {first_error(exc)}", field=field
                    ) from None
            else:
                cls.parse_params({**cfg.params, name: value}, where=field)
    return space


def first_error(exc: ValidationError) -> str:
    """pydantic's first message, without its documentation link."""
    return exc.errors()[0]["msg"].removeprefix("Value error, ")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{value:.3g}" if isinstance(value, int | float) else text[:21] + "..."


def split_params(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(strategy params, training overrides) from one trial's values."""
    strategy = {k: v for k, v in values.items() if not k.startswith(TRAINING_PREFIX)}
    training = {k.removeprefix(TRAINING_PREFIX): v for k, v in values.items() if k.startswith(TRAINING_PREFIX)}
    return strategy, training


def suggest(trial: optuna.Trial, space: dict[str, BaseDistribution]) -> dict[str, Any]:
    values = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            values[name] = trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            values[name] = trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return values


def storage_for(cfg: TuningConfig, output_dir: Path) -> optuna.storages.BaseStorage | str:
    if cfg.storage:
        if "://" in cfg.storage and not cfg.storage.startswith(("redis", "file")):
            from negbench.run.claims import retry_schema_race

            return retry_schema_race(lambda: optuna.storages.RDBStorage(cfg.storage))
        return cfg.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    output_dir.mkdir(parents=True, exist_ok=True)
    path = str(output_dir / "optuna.journal")
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


@dataclass
class TuningOutcome:
    params: dict[str, Any]
    training: dict[str, Any]
    trial: int | None
    dev_value: float | None
    n_complete: int


class Tuner:
    """Runs (or resumes) one study and returns the best parameters."""

    def __init__(self, cfg: TuningConfig, storage, study_name: str, seed: int) -> None:
        self.cfg = cfg
        self.storage = storage
        self.study_name = study_name
        self.seed = seed

    @property
    def label(self) -> str:
        """The study's name without its configuration key (suite/dataset/model/strategy)."""
        return self.study_name.rsplit("/", 1)[0]

    def study(self, slot: int = 0) -> optuna.Study:
        """The stored study, with a sampler seeded by (seed, slot): trial slot ``k`` draws the same random
        start-up parameters in one process or across many workers."""
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        seed = self.seed * 1_000_003 + slot
        sampler = (
            optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, self.cfg.n_trials // 3))
            if self.cfg.sampler == "tpe"
            else optuna.samplers.RandomSampler(seed=seed)
        )
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=2)
            if self.cfg.pruner == "median"
            else optuna.pruners.NopPruner()
        )
        return optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            sampler=sampler,
            pruner=pruner,
            direction=self.cfg.direction,
            load_if_exists=True,
        )

    @staticmethod
    def requeue(study: optuna.Study, trials) -> int:
        """Mark trials left RUNNING (by a dead process, or interrupted) as FAIL, not counted against the budget,
        and enqueue their parameters again. The replacement carries ``requeued_from``: that is what marks the
        failed trial as re-queued (:func:`requeued`; set in the one call that enqueues it, so it is never lost)."""
        for trial in trials:
            study.enqueue_trial(trial.params, user_attrs={REQUEUED_FROM: trial.number})
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        return len(trials)

    @staticmethod
    def counted(study: optuna.Study) -> int:
        """Trials that used budget: complete, pruned, or failed for a reason other than a kill."""
        trials = study.get_trials(deepcopy=False)
        again = requeued(trials)
        return sum(
            t.state in (TrialState.COMPLETE, TrialState.PRUNED)
            or (t.state == TrialState.FAIL and t.number not in again)
            for t in trials
        )

    def run_slot(self, objective: Callable[[optuna.Trial], float], slot: int) -> None:
        """Run trial slot ``slot`` (one trial, through Optuna's ask-and-tell interface). A trial of this slot left
        RUNNING by a dead holder is failed and its parameters re-queued, so the replacement trial evaluates them.

        A trial that fails (:data:`TRIAL_FAILURES`) is FAIL with its reason in the ``negbench_failure`` user
        attr, logged in one line, and counts against the budget. A trial interrupted (Ctrl-C, SIGTERM) is
        re-queued like a killed one — not counted, its parameters evaluated again by the next run of this
        slot — and the interrupt propagates. Any other exception fails the trial and propagates. Garbage is
        collected after the trial under :func:`negbench.run.interrupts.collect`, so an interrupt raised in a gc
        callback is not lost.
        """
        study = self.study(slot)
        stale = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if t.user_attrs.get("slot") == slot
        ]
        if self.requeue(study, stale):
            log.warning("%s: re-queued trial slot %d left RUNNING by a dead worker", self.study_name, slot)
        trial = study.ask()
        trial.set_user_attr("slot", slot)
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except INTERRUPTS:
            self.requeue(study, [study.get_trials(deepcopy=False)[trial.number]])
            raise
        except TRIAL_FAILURES as exc:
            reason = describe(exc)
            trial.set_user_attr(FAILURE, reason)
            study.tell(trial, state=TrialState.FAIL)
            log.warning("%s: trial %d failed: %s", self.label, trial.number, reason)
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)
        interrupts.collect()

    def run(self, objective: Callable[[optuna.Trial], float]) -> TuningOutcome:
        """Single process: re-queue trials a killed run left RUNNING, then fill the remaining slots."""
        study = self.study()
        if self.requeue(study, study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))):
            log.warning("%s: re-queued trials left RUNNING by a killed process", self.study_name)
        start = time.monotonic()
        for slot in range(self.counted(study), self.cfg.n_trials):
            if self.cfg.timeout_s is not None and time.monotonic() - start > self.cfg.timeout_s:
                break
            self.run_slot(objective, slot)
        return self.best()

    def best(self) -> TuningOutcome:
        study = self.study()
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return TuningOutcome({}, {}, None, None, 0)
        best = study.best_trial
        params, training = split_params(best.params)
        return TuningOutcome(params, training, best.number, best.value, len(complete))


def requeued(trials) -> set[int]:
    """Numbers of the trials that were re-queued (killed or interrupted: they do not count against the budget)."""
    return {t.user_attrs[REQUEUED_FROM] for t in trials if REQUEUED_FROM in t.user_attrs}
