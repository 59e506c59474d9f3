"""The tuning stage of a job: its Optuna study and objective (train on train, score on dev, prune on
per-epoch dev scores); the test split is never read here."""

from __future__ import annotations

from typing import Any

import optuna
from rich.markup import escape

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.budget import COMPUTE, BudgetError
from negbench.core.setup import Baseline
from negbench.core.strategy import StrategySpec
from negbench.data.dataset import RetrievalDataset
from negbench.errors import ConfigError, InvalidTrialError, NegbenchError
from negbench.run.guard import guarded
from negbench.run.plan import Job, job_key
from negbench.run.tuning import Tuner, TuningOutcome, split_params, storage_for, suggest

__all__ = ["TuningStage"]


class TuningStage:
    """The part of :class:`negbench.run.suite.SuiteRunner` that tunes a job on dev."""

    def training_for(self, spec: StrategySpec, overrides: dict[str, Any] | None = None) -> TrainingConfig:
        return self.suite.training_for(spec.index, overrides)

    def compute_baseline(
        self, dataset: RetrievalDataset, model_cfg: ModelConfig, device: str, tuned: dict[str, Any] | None = None
    ) -> Baseline | None:
        """Under ``[training] budget = "compute"``: ``[suite] baseline`` with its declared parameters and its training
        settings (with a trial's tuned ``training.*`` values), whose equal-data compute is every run's budget; else
        None."""
        if self.suite.training.budget != COMPUTE:
            return None
        spec = next(s for s in self.plan.strategies if s.label == self.suite.suite.baseline)
        guide = self.guide_services(dataset, model_cfg, spec, device)
        return Baseline(spec.label, spec.build(), self.training_for(spec, tuned), guide)

    def tuner_for(self, job: Job) -> Tuner | None:
        """The job's Optuna study, or None when the declared parameters are used as they are."""
        cfg = self.suite.tuning
        if cfg.n_trials == 0 or not job.spec.cls.trains or not job.spec.space:
            return None
        if not job.dataset.dev:
            raise ConfigError("tuning needs a dev split: the dataset has no dev queries", field="tuning")
        study_name = (
            f"{self.suite.suite.name}/{job.dataset.name}/{job.model_cfg.display_name}/"
            f"{job.spec.label}/{job_key(self.suite, job.dataset, job.model_cfg, job.spec)}"
        )
        if self._storage is None:
            self._storage = storage_for(cfg, self.plan.output_dir)
        return Tuner(cfg, self._storage, study_name, seed=self.suite.suite.seeds[0])

    def report_tuning(self, job: Job, outcome: TuningOutcome) -> None:
        if outcome.n_complete:
            self.say(
                f"  tuned {escape(job.spec.label)}: {outcome.n_complete} complete trial(s), best #{outcome.trial} "
                f"dev {self.suite.tuning.metric}={outcome.dev_value:.4f} "
                + escape(f"params={outcome.params} training={outcome.training}")
            )

    def objective_for(self, job: Job):
        """The Optuna objective of a job: train on train, score on dev (pruning on per-epoch dev scores)."""
        cfg = self.suite.tuning
        dataset, model_cfg, spec = job.dataset, job.model_cfg, job.spec
        device, services, seed = self.device_for(job), self.services_for(job), self.suite.suite.seeds[0]
        self.dev_corpus(dataset, model_cfg, services)  # a pool not built yet is built here, outside any trial

        def objective(trial: optuna.Trial) -> float:
            values = suggest(trial, spec.space)
            strategy_values, training_values = split_params(values)
            try:  # a draw the strategy rejects fails this trial only (it still counts against the budget)
                training = self.training_for(spec, training_values)
                with guarded():
                    strategy = spec.build(strategy_values)
            except (NegbenchError, ValueError) as exc:
                raise InvalidTrialError(f"trial {trial.number}: invalid parameters {values}: {exc}") from None

            def epoch_end(model, epoch: int) -> None:
                if epoch >= training.epochs:
                    return  # the last epoch is the trial's final value
                value = self.score_dev(model, dataset, [cfg.metric], model_cfg, services).metrics[cfg.metric]
                trial.report(value, epoch)
                self.tracker.log_metrics(trial_run, {f"dev_{cfg.metric}": value}, step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch}")

            with self.tracker.run(
                f"{spec.label} trial {trial.number}", params=values, tags={"kind": "trial", "trial": trial.number}
            ) as trial_run:
                try:
                    with guarded():  # strategy code (any hook) fails this trial only; see negbench.run.guard
                        fit = self.fit(
                            dataset,
                            model_cfg,
                            device,
                            services,
                            strategy,
                            training,
                            seed,
                            on_epoch_end=epoch_end if training.epochs > 1 else None,
                            guide=self.guide_services(dataset, model_cfg, spec, device),
                            tuned=training_values,
                        )
                        scored = self.score_dev(fit.model, dataset, [cfg.metric], model_cfg, services)
                        value = scored.metrics[cfg.metric]
                except (BudgetError, NegbenchError) as exc:
                    raise InvalidTrialError(f"trial {trial.number}: {exc}") from None
                except optuna.TrialPruned:
                    self.tracker.set_tags(trial_run, {"state": "PRUNED"})
                    pruned = True
                else:
                    pruned = False
                    self.tracker.log_metrics(trial_run, {f"dev_{cfg.metric}": value, "train_s": fit.outcome.train_s})
                    self.tracker.set_tags(trial_run, {"state": "COMPLETE"})
            if pruned:
                raise optuna.TrialPruned()
            self.say(f"  trial {trial.number}: dev {cfg.metric}={value:.4f} {escape(str(values))}")
            return value

        return objective
