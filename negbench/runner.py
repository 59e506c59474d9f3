"""Run a suite: validate everything first, then train and evaluate every (dataset × model × strategy × seed).

The test split is read exactly once per (job, seed), after training; nothing before reads it.
A job that fails (a non-finite loss, an exception in a plugin, a crash of its process) is recorded with its
status and the suite goes on. Finished rows are skipped on a rerun (keyed by ``run_id``).

Fairness (DESIGN.md): every run's data budget is fixed up front (:mod:`negbench.budget`); a job's key
(:func:`job_key`) holds everything that changes its result, code revision included, so an edited suite or
harness never reuses a stale study or row; each job runs in a fresh spawned process (``[suite] isolation``)
so its peak memory is its own; costs are split the same way for every strategy (mine, sample, refresh,
train, eval).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from pydantic import ValidationError
from rich.markup import escape

from negbench import interrupts
from negbench.budget import Budget, BudgetError, budget_for, steps_run
from negbench.claims import ClaimBoard, owner_process
from negbench.config import DatasetConfig, ModelConfig, Suite, TrainingConfig, load_suite, stable_hash
from negbench.context import Context
from negbench.curves import dev_curve, time_to_target
from negbench.data import RetrievalDataset
from negbench.errors import ConfigError, InvalidTrialError, NegbenchError, NonFiniteLossError
from negbench.evaluation import evaluate
from negbench.guard import StrategyFailure, describe, guarded
from negbench.job_process import run_isolated
from negbench.measure import PeakMemory, Timer
from negbench.mining import MiningServices, charged_seconds
from negbench.models import load_model, model_fingerprint, pick_device, resolve_model
from negbench.negative_diagnostics import planted_fn_share, planting_columns, sampled_negative_ids, score_gap
from negbench.provenance import (
    code_revision,
    device_name,
    file_digest,
    git_revision,
    pin_code_revision,
    versions_json,
)
from negbench.registry import Registry, registry
from negbench.report import write_leaderboard
from negbench.results import ResultStore
from negbench.results_sql import SqlResultStore
from negbench.run_lock import RunLock, remove_stale_temporaries, remove_temporaries_of
from negbench.strategy import Negatives, Strategy, StrategySpec
from negbench.tracking import Tracker
from negbench.training import Diagnostics, train
from negbench.tuning import Tuner, TuningOutcome, build_space, first_error, split_params, storage_for, suggest
from negbench.validation import Validated, load_suite_dataset, validate_plan

log = logging.getLogger(__name__)

KNOWN_SERVICES = frozenset({"bm25", "dense", "guide"})


@dataclass
class Plan:
    suite: Suite
    path: Path
    strategies: list[StrategySpec]

    @property
    def output_dir(self) -> Path:
        return Path(self.suite.suite.output_dir)


def plan_suite(path: str | Path, reg: Registry = registry) -> Plan:
    """Validate the suite completely (strategies, params, services, models) before any training."""
    suite = load_suite(path)
    specs = []
    for i, cfg in enumerate(suite.strategies):
        where = f"strategies[{i}]"
        try:
            cls = reg.get(cfg.name, field=f"{where}.name")
            params = cls.parse_params(cfg.params, where=f"{where}.params")
            unknown = set(cls.requires) - KNOWN_SERVICES
            if unknown:
                raise ConfigError(f"strategy requires unknown service(s) {sorted(unknown)}", field=where)
            bad_training = set(cfg.training) - set(type(suite.training).model_fields)
            if bad_training:
                raise ConfigError(f"unknown training field(s) {sorted(bad_training)}", field=f"{where}.training")
            try:
                suite.training_for(i)
            except ValidationError as exc:
                raise ConfigError(f"invalid training override: {first_error(exc)}", field=f"{where}.training") \
                    from None
            space = (build_space(cls, cfg, where, suite.tuning.search_space)
                     if suite.tuning.n_trials > 0 and cls.trains else {})
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=exc.file or path, field=exc.field) from None
        specs.append(StrategySpec(cls, params, cfg.display_name, dict(cfg.params), index=i, space=space))
    if suite.tuning.n_trials > 0 and suite.tuning.metric not in suite.evaluation.metrics:
        raise ConfigError(f"tuning metric {suite.tuning.metric!r} is not among evaluation.metrics "
                          f"{suite.evaluation.metrics}", file=path, field="tuning.metric")
    labels = [s.label for s in specs]
    if suite.suite.baseline not in labels and "in-batch" in labels:
        raise ConfigError(f"baseline {suite.suite.baseline!r} is not a strategy label of this suite",
                          file=path, field="suite.baseline")
    if suite.evaluation.mteb_tasks:
        from negbench.mteb_tasks import check_mteb_tasks

        try:
            check_mteb_tasks(suite.evaluation.mteb_tasks)
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=path, field="evaluation.mteb_tasks") from None
    for i, model_cfg in enumerate(suite.models):
        try:
            resolve_model(model_cfg.spec)
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=path, field=f"models[{i}].spec") from None
    return Plan(suite, Path(path), specs)


def job_key(suite: Suite, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec) -> str:
    """The configuration key of a job: everything that changes its results except the seed.

    Dataset fingerprint, model settings and fingerprint, the strategy (class, label, params, training
    overrides, search space), the effective training config, the tuning and evaluation settings and the code
    revision. Study names and run ids derive from it, so editing any of these trains anew.
    """
    cfg = suite.strategies[spec.index]
    training = suite.training_for(spec.index)
    payload = {
        "suite": suite.suite.name,
        "dataset": dataset.fingerprint,
        "model": model_cfg.model_dump(mode="json"),
        "model_fingerprint": model_fingerprint(model_cfg.spec, model_cfg.max_seq_length),
        "strategy": cfg.model_dump(mode="json"),
        "strategy_class": f"{spec.cls.__module__}:{spec.cls.__qualname__}",
        "strategy_source": file_digest(inspect.getsourcefile(spec.cls)),  # plugins live outside negbench
        "search_space": {name: repr(dist) for name, dist in sorted(spec.space.items())},
        "training": training.model_dump(mode="json"),
        "evaluation": suite.evaluation.model_dump(mode="json", exclude={"batch_size", "corpus_chunk_size"}),
        "tuning": suite.tuning.model_dump(mode="json", exclude={"storage", "timeout_s", "heartbeat_s", "grace_s"}),
        "tuning_seed": suite.suite.seeds[0],
        "code": code_revision(),
    }
    return stable_hash(payload)


def run_id_for(suite: Suite, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec,
               seed: int) -> str:
    """The key of one result row: the job's configuration key and the seed (not the tuned values, which the
    stored study reproduces), so a rerun finds and skips it."""
    return stable_hash({"config": job_key(suite, dataset, model_cfg, spec), "seed": seed})


class SuiteRunner:
    """Runs a validated :class:`Plan`: per job, tune on dev (if asked), then train and test every seed."""

    def __init__(self, plan: Plan, *, progress: bool = False, console=None, board: ClaimBoard | None = None,
                 poll_s: float = 2.0, parent_run: str | None = None) -> None:
        self.plan = plan
        self.parent_run = parent_run  # set in a job process: the suite's MLflow run
        self.board = board
        self.poll_s = poll_s
        self._services: dict[tuple[str, str], MiningServices] = {}
        self._storage = None
        self.suite = plan.suite
        self.progress = progress
        self.console = console
        # workers keep rows in the database they share (the Parquet files, exported from it, may sit on a
        # network file system where file locks are unreliable); a single run keeps the Parquet store
        self.store = (ResultStore(plan.output_dir) if board is None
                      else SqlResultStore(plan.output_dir, board.url, store=self.suite.suite.name))
        self.config_hash = self.suite.config_hash()
        self.git_rev = git_revision()
        self.cache_dir = Path(self.suite.suite.cache_dir or plan.output_dir / "cache")
        self.tracker = Tracker(self.suite.tracking, plan.output_dir, f"negbench/{self.suite.suite.name}")
        self.tracker.worker = board.owner if board is not None else None

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def load_dataset(self, index: int, cfg: DatasetConfig | None = None) -> RetrievalDataset:
        return load_suite_dataset(self.plan, index)

    # ------------------------------------------------------------------------------------ suite
    def run(self, validated: Validated | None = None) -> ResultStore:
        """Every job of the suite in this process; with a claim board, share the work with other workers.

        The validation stage runs first (unless the caller ran it: ``validated``); nothing is created on disk
        before it passes. The output directory is then locked for the run's life (:mod:`negbench.run_lock`):
        exclusively by a run, shared by workers; whoever holds it alone first removes the temporaries a killed
        run left. Interrupts are handled by :func:`negbench.interrupts.trapped`: never swallowed, and a second
        Ctrl-C while the first is handled exits at once."""
        with interrupts.trapped():
            return self._run(validated)

    def _run(self, validated: Validated | None) -> ResultStore:
        validated = validated or validate_plan(self.plan)
        for note in validated.notes:
            self.say(f"[yellow]note: {escape(note)}[/yellow]")
        self.plan.output_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(self.plan.output_dir, shared=self.board is not None).acquire()
        try:
            if lock.exclusive:
                for path in remove_stale_temporaries(self.plan.output_dir, self.cache_dir):
                    log.info("removed %s, left by an interrupted run", path)
            lock.downgrade()
            if self.board is not None:  # only once the output directory is this worker's to share
                self.say(escape(f"worker {self.board.owner} on {self.suite.suite.name}"))
            return self._run_locked(validated.datasets)
        finally:
            lock.release()

    def _run_locked(self, datasets: list[RetrievalDataset]) -> ResultStore:
        pin_code_revision()  # every job of this run, in any process, keys its rows with the same code
        jobs = [Job(d, m, spec) for d in datasets for m in self.suite.models for spec in self.plan.strategies]
        self.tracker.start()
        name = f"suite {self.suite.suite.name}" + (f" worker {self.board.owner}" if self.board else "")
        with self.tracker.run(name, tags={"kind": "suite", "config_hash": self.config_hash,
                                          "git_rev": self.git_rev or ""}) as suite_run:
            self.tracker.log_artifact(suite_run, self.plan.path)
            if self.board is None:
                for job, indices in zip(jobs, self.job_indices(), strict=True):
                    if self.suite.suite.isolation == "process":
                        run_isolated(self, job, indices, suite_run)
                    else:
                        self.run_job(job)
                    interrupts.check()
            else:
                self.work(jobs)
            self.store.flush()
            board = write_leaderboard(self.store.rows(), self.plan.output_dir / "leaderboard.md",
                                      f"negbench · {self.suite.suite.name}", per_query=self.store.per_query(),
                                      baseline=self.suite.suite.baseline)
            self.tracker.log_artifact(suite_run, self.store.results_path)
            self.tracker.log_artifact(suite_run, board)
        return self.store

    def job_indices(self) -> list[tuple[int, int, int]]:
        """(dataset, model, strategy) positions of every job, in the order :meth:`run` makes them."""
        return [(d, m, s) for d in range(len(self.suite.datasets)) for m in range(len(self.suite.models))
                for s in range(len(self.plan.strategies))]

    def record_crash(self, job: Job, reason: str, seeds: list[tuple[int, str]] | None = None,
                     status: str = "failed: crashed") -> None:
        """A failed row, with ``reason``, for every seed of ``job`` that its crashed process left unfinished
        (``seeds``: those it wrote no row for; default: every pending seed)."""
        self.tracker.fail_open_runs(keep=set(self.tracker._stack))  # the crashed process's job/seed runs
        device = self.device_for(job)
        for seed, run_id in self.pending_seeds(job) if seeds is None else seeds:
            row = {"run_id": run_id, "config_key": job_key(self.suite, job.dataset, job.model_cfg, job.spec),
                   "suite": self.suite.suite.name, "dataset": job.dataset.name,
                   "dataset_fingerprint": job.dataset.fingerprint, "model": job.model_cfg.display_name,
                   "strategy": job.spec.label, "strategy_name": job.spec.cls.name,
                   "params": json.dumps(job.spec.raw_params, sort_keys=True, default=str), "seed": seed,
                   "status": status, "error": reason, "device": device_name(device),
                   **planting_columns(job.dataset),
                   "versions": versions_json(), "config_hash": self.config_hash, "code_revision": code_revision(),
                   "git_rev": self.git_rev, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            self.store.append(row)
            self.say(f"[red]{escape(job.name)} / seed {seed}: {escape(reason)}[/red]")

    def services_for(self, job: Job) -> MiningServices:
        key = (job.dataset.fingerprint, job.model_cfg.model_dump_json())
        if key not in self._services:
            model_cfg, device = job.model_cfg, self.device_for(job)
            self._services[key] = MiningServices(
                job.dataset,
                lambda cfg=model_cfg, dev=device: load_model(cfg, dev),
                model_fingerprint(model_cfg.spec, model_cfg.max_seq_length),
                self.cache_dir,
                batch_size=model_cfg.batch_size,
                progress=self.progress,
            )
        return self._services[key]

    def guide_services(self, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec,
                       device: str) -> MiningServices | None:
        """The teacher's services for ``spec`` on ``dataset``: the strategy's ``guide``, else the model's, loaded
        like the base model (its max_seq_length, batch size and device) and cached on disk by its own
        fingerprint; None when neither names one."""
        guide = self.suite.strategies[spec.index].guide or model_cfg.guide
        if guide is None:
            return None
        cfg = ModelConfig(spec=guide, max_seq_length=model_cfg.max_seq_length, batch_size=model_cfg.batch_size,
                          precision=model_cfg.precision, device=model_cfg.device)
        key = (dataset.fingerprint, cfg.model_dump_json())
        if key not in self._services:
            self._services[key] = MiningServices(
                dataset, lambda: load_model(cfg, device), model_fingerprint(cfg.spec, cfg.max_seq_length),
                self.cache_dir, batch_size=cfg.batch_size, progress=self.progress)
        return self._services[key]

    @staticmethod
    def device_for(job: Job) -> str:
        return pick_device(job.model_cfg.device)

    def pending_seeds(self, job: Job) -> list[tuple[int, str]]:
        finished = self.store.finished_ids()
        ids = [(seed, run_id_for(self.suite, job.dataset, job.model_cfg, job.spec, seed))
               for seed in self.suite.suite.seeds]
        return [(seed, rid) for seed, rid in ids if rid not in finished]

    def job_tags(self, job: Job) -> dict[str, str]:
        return {"kind": "job", "dataset": job.dataset.name, "dataset_fingerprint": job.dataset.fingerprint,
                "model": job.model_cfg.display_name, "model_fingerprint": self.services_for(job).model_fingerprint,
                "strategy": job.spec.cls.name, "versions": versions_json()}

    def run_job(self, job: Job) -> None:
        """Single process: tune (resuming a stored study), then every pending seed."""
        pending = self.pending_seeds(job)
        if not pending:
            self.say(f"[dim]skip {escape(job.name)}: every seed already finished[/dim]")
            return
        with self.tracker.run(job.name, tags=self.job_tags(job),
                              params={"strategy_params": json.dumps(job.spec.raw_params)}):
            tuner = self.tuner_for(job)
            tuned = tuner.run(self.objective_for(job)) if tuner else TuningOutcome({}, {}, None, None, 0)
            self.report_tuning(job, tuned)
            for seed, run_id in pending:
                self.final_seed(job, tuned, seed, run_id)

    # ------------------------------------------------------------------------------------ workers
    def work(self, jobs: list[Job]) -> None:
        """Worker loop: claim trial slots and final seeds until every unit of every job is done.

        Final seeds of a job wait until all its trial slots are done (by any worker). A unit whose holder
        stopped heart-beating is taken over; a trial left RUNNING by that holder is failed and re-queued.
        """
        while True:
            interrupts.check()
            states = [self.work_on(job) for job in jobs]
            if all(state == "done" for state in states):
                return
            if "progress" not in states:
                time.sleep(self.poll_s)

    def work_on(self, job: Job) -> str:
        """One unit of ``job`` if one can be claimed: "progress", "waiting" (others hold units) or "done"."""
        if not self.pending_seeds(job):
            return "done"
        tuner = self.tuner_for(job)
        if tuner is not None:
            slots = [(f"trial/{tuner.study_name}/{slot}",
                      lambda slot=slot: tuner.run_slot(self.objective_for(job), slot))
                     for slot in range(self.suite.tuning.n_trials)]
            state = self.claim_one(job, slots)
            if state != "done":
                return state  # final seeds wait until every trial slot is done
        tuned = tuner.best() if tuner else TuningOutcome({}, {}, None, None, 0)
        seeds = [(f"final/{run_id}", lambda seed=seed, run_id=run_id: self.final_seed(job, tuned, seed, run_id))
                 for seed, run_id in self.pending_seeds(job)]
        return self.claim_one(job, seeds)

    def claim_one(self, job: Job, units) -> str:
        """Run the first of ``units`` (key, fn) this worker can claim; release the claim if it raises."""
        assert self.board is not None
        waiting = False
        for key, fn in units:
            claim = self.board.get(key)
            if claim is not None and claim.state == "done":
                continue
            taken = self.board.claim(key)
            if taken is None:
                waiting = True
                continue
            if taken.from_owner is not None:
                self.clean_up_after(taken.from_owner)
            try:
                with self.tracker.run(job.name, tags=self.job_tags(job)):
                    fn()
            except BaseException:
                self.board.release(key)
                raise
            self.board.done(key)
            return "progress"
        return "waiting" if waiting else "done"

    def clean_up_after(self, dead: str) -> None:
        """A unit was taken over from the dead worker ``dead``: close its open MLflow runs (KILLED) and remove
        the temporary directories it left in the output directory."""
        closed = self.tracker.close_runs_of(dead)
        process = owner_process(dead)
        removed = remove_temporaries_of(self.plan.output_dir, *process) if process else []
        log.info("took over from dead worker %s: %d MLflow runs closed, %d temporaries removed",
                 dead, closed, len(removed))

    # ------------------------------------------------------------------------------------ stages
    def training_for(self, spec: StrategySpec, overrides: dict[str, Any] | None = None) -> TrainingConfig:
        return self.suite.training_for(spec.index, overrides)

    def tuner_for(self, job: Job) -> Tuner | None:
        """The job's Optuna study, or None when the declared parameters are used as they are."""
        cfg = self.suite.tuning
        if cfg.n_trials == 0 or not job.spec.cls.trains or not job.spec.space:
            return None
        if not job.dataset.dev:
            raise ConfigError("tuning needs a dev split: the dataset has no dev queries", field="tuning")
        study_name = f"{self.suite.suite.name}/{job.dataset.name}/{job.model_cfg.display_name}/" \
                     f"{job.spec.label}/{job_key(self.suite, job.dataset, job.model_cfg, job.spec)}"
        if self._storage is None:
            self._storage = storage_for(cfg, self.plan.output_dir)
        return Tuner(cfg, self._storage, study_name, seed=self.suite.suite.seeds[0])

    def report_tuning(self, job: Job, outcome: TuningOutcome) -> None:
        if outcome.n_complete:
            self.say(f"  tuned {escape(job.spec.label)}: {outcome.n_complete} complete trial(s), best #{outcome.trial} "
                     f"dev {self.suite.tuning.metric}={outcome.dev_value:.4f} "
                     + escape(f"params={outcome.params} training={outcome.training}"))

    def objective_for(self, job: Job):
        """The Optuna objective of a job: train on train, score on dev (pruning on per-epoch dev scores)."""
        cfg = self.suite.tuning
        dataset, model_cfg, spec = job.dataset, job.model_cfg, job.spec
        device, services, seed = self.device_for(job), self.services_for(job), self.suite.suite.seeds[0]

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
                value = self.score(model, dataset, dataset.dev, [cfg.metric], model_cfg).metrics[cfg.metric]
                trial.report(value, epoch)
                self.tracker.log_metrics(trial_run, {f"dev_{cfg.metric}": value}, step=epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {epoch}")

            with self.tracker.run(f"{spec.label} trial {trial.number}", params=values,
                                  tags={"kind": "trial", "trial": trial.number}) as trial_run:
                try:
                    with guarded():  # strategy code (any hook) fails this trial only; see negbench.guard
                        fit = self.fit(dataset, model_cfg, device, services, strategy, training, seed,
                                       on_epoch_end=epoch_end if training.epochs > 1 else None,
                                       guide=self.guide_services(dataset, model_cfg, spec, device))
                        value = self.score(fit.model, dataset, dataset.dev, [cfg.metric],
                                           model_cfg).metrics[cfg.metric]
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

    def final_seed(self, job: Job, tuned: TuningOutcome, seed: int, run_id: str) -> None:
        """Train one seed with the chosen parameters, test once, log to MLflow, append the row."""
        self.say(f"[bold]{escape(job.name)}[/bold] / seed {seed}")
        tags = {**self.job_tags(job), "kind": "final"}
        with self.tracker.run(f"{job.spec.label} seed {seed}", tags=tags) as rid:
            row, per_query = self.run_final(job.dataset, job.model_cfg, self.device_for(job), self.services_for(job),
                                            job.spec, tuned, seed, run_id)
            negatives = row.pop("_negatives", None)
            self.tracker.log_params(rid, {"params": row["params"], "seed": seed, "trial": row["trial"]})
            self.tracker.log_metrics(rid, {k: v for k, v in row.items() if k not in ("seed", "trial")})
            self.tracker.set_tags(rid, {"status": row["status"]})
            for step, value in enumerate(row.pop("_losses", [])):
                self.tracker.log_metrics(rid, {"train_loss": value}, step=step)
            records = row.pop("_steps", [])
            self.tracker.log_steps(rid, records)
        self.store.append_steps(run_id, records)  # before the row: a stored row's records are stored
        self.store.append(row, per_query, negatives)
        self.say(f"  → {escape(row['status'])}" + "".join(
            f"  {m}={row[m]:.4f}" for m in self.suite.evaluation.metrics if row.get(m) is not None))

    def fit(self, dataset, model_cfg, device, services, strategy: Strategy, training: TrainingConfig, seed: int,
            on_epoch_end=None, diagnostics: Diagnostics | None = None,
            guide: MiningServices | None = None) -> FitResult:
        """Mine and train one model (on the train split only), within the run's data budget; ``guide`` is the
        teacher's services (:meth:`guide_services`), whose use is charged to the run like the base model's."""
        examples = dataset.training_examples("train")
        try:
            budget = budget_for(strategy, len(examples), training, self.suite.training)
        except ConfigError as exc:  # this strategy's settings cannot make one full batch: fail this run only
            raise BudgetError(f"strategy {strategy.name!r} {strategy.params}: {exc.one_line()}") from None
        ctx = Context(dataset=dataset, examples=examples, services=services,
                      num_negatives=training.num_negatives, batch_size=training.batch_size,
                      epochs=epochs_run(training, budget), seed=seed, steps_per_epoch=budget.steps_per_epoch,
                      total_steps=steps_run(training, budget), guide_services=guide)
        model = load_model(model_cfg, device)
        used = [services] if guide is None else [services, guide]
        for service in used:
            service.begin_run()
        with Timer() as mine_timer:
            strategy.setup(ctx)
            candidates = strategy.mine(ctx)
        mine_s = charged_seconds(mine_timer.seconds, used)
        if candidates is not None and training.num_negatives == 0:
            candidates = None
        outcome = train(model, ctx, strategy, training, device=device, precision=model_cfg.precision,
                        candidates=candidates, mini_batch_size=getattr(strategy, "mini_batch_size", None),
                        progress=self.progress, work_dir=self.plan.output_dir, on_epoch_end=on_epoch_end,
                        budget=budget, diagnostics=diagnostics)
        return FitResult(model, ctx, candidates, outcome, mine_s, budget)

    def score(self, model, dataset, qrels, metrics, model_cfg, corpus_embeddings=None):
        """Metrics of ``model`` on ``qrels`` (dev or test) over the evaluation corpus: planted false negatives
        exist for training only, so neither tuning nor the final test ever searches them."""
        ev = self.suite.evaluation
        return evaluate(model, dataset.eval_corpus, dataset.queries, qrels, metrics, batch_size=model_cfg.batch_size,
                        chunk_size=ev.corpus_chunk_size, ignore_identical_ids=ev.ignore_identical_ids,
                        corpus_embeddings=corpus_embeddings, progress=self.progress)

    def diagnostics_for(self, dataset: RetrievalDataset, model_cfg: ModelConfig) -> Diagnostics:
        """A final run's per-step measurements: the hardness probe and a dev learning curve (dev only, never
        test) of the tuning metric, or of the first metric when tuning's is not evaluated."""
        ev = self.suite.evaluation
        metric = self.suite.tuning.metric if self.suite.tuning.metric in ev.metrics else ev.metrics[0]

        def evaluate_dev(model) -> dict[str, float]:
            return self.score(model, dataset, dataset.dev, [metric], model_cfg).metrics

        return Diagnostics(every=ev.diagnostics_every, curve_points=ev.curve_points if dataset.dev else 0,
                           evaluate=evaluate_dev)

    def mteb_scores(self, model, model_cfg: ModelConfig, spec: StrategySpec, seed: int, run_id: str):
        """Main score of each ``[evaluation] mteb_tasks`` task; MTEB's result JSON kept under the run's
        own directory, with a model name and revision unique to this trained model (no cache sharing)."""
        from negbench.mteb_tasks import evaluate_with_mteb, mteb_model_identity

        ev = self.suite.evaluation
        name, revision = mteb_model_identity(model_cfg.display_name, spec.label, self.config_hash, seed)
        scores = evaluate_with_mteb(model, ev.mteb_tasks, run_dir=self.plan.output_dir / "mteb" / run_id,
                                    model_name=name, revision=revision, batch_size=ev.batch_size,
                                    ignore_identical_ids=ev.ignore_identical_ids)
        return _mteb_columns(scores)

    def run_final(self, dataset: RetrievalDataset, model_cfg: ModelConfig, device: str, services: MiningServices,
                  spec: StrategySpec, tuned: TuningOutcome, seed: int, run_id: str):
        """Train with the chosen parameters and evaluate once on test. Returns (row, per-query scores)."""
        training = self.training_for(spec, tuned.training)
        params = {**spec.raw_params, **tuned.params}
        row: dict[str, Any] = {
            "run_id": run_id, "suite": self.suite.suite.name, "dataset": dataset.name,
            "dataset_fingerprint": dataset.fingerprint, "model": model_cfg.display_name,
            "model_fingerprint": services.model_fingerprint, "strategy": spec.label,
            "strategy_name": spec.cls.name, "params": json.dumps(params, sort_keys=True, default=str),
            "training": json.dumps(training.model_dump(mode="json"), sort_keys=True),
            "seed": seed, "trial": tuned.trial, "dev_metric": tuned.dev_value, "status": "ok", "error": None,
            "device": device_name(device), "versions": versions_json(), "config_hash": self.config_hash,
            "git_rev": self.git_rev, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config_key": job_key(self.suite, dataset, model_cfg, spec), "code_revision": code_revision(),
            "determinism": determinism(device),
            "mine_s": 0.0, "sample_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "refresh_s": 0.0, "total_s": None,
            "steps": 0, "examples_seen": 0, "steps_per_epoch": None, "examples_per_epoch": None,
            "mean_batch_size": None, "min_batch_size": None, "max_batch_size": None, "budget": None,
            "train_examples_per_s": None, "neg_score_gap": None, "planted_fn_share": None,
            "planted_fn_inbatch_share": None, **planting_columns(dataset),
            "time_to_own_95_s": None,
        }
        per_query = None
        train_mem, eval_mem = PeakMemory(device=device), PeakMemory(device=device)
        started = time.perf_counter()
        try:
            with guarded():  # strategy code (any hook) that raises or exits fails this row only
                row, per_query = self._final(row, dataset, model_cfg, device, services, spec, tuned, training, seed,
                                             run_id, train_mem, eval_mem)
        except NonFiniteLossError as exc:
            row.update(status="failed: non-finite loss", error=str(exc))
        except BudgetError as exc:
            row.update(status="failed: BudgetError", error=describe(exc))
        except StrategyFailure as exc:
            row.update(status=f"failed: {exc.kind}", error=exc.reason)
        row["total_s"] = time.perf_counter() - started
        row["train_peak_rss_mb"], row["eval_peak_rss_mb"] = train_mem.peak_rss_mb or None, eval_mem.peak_rss_mb or None
        row["train_peak_gpu_mb"], row["eval_peak_gpu_mb"] = train_mem.peak_gpu_mb, eval_mem.peak_gpu_mb
        row["peak_rss_mb"] = max(train_mem.peak_rss_mb, eval_mem.peak_rss_mb) or None
        gpu = [v for v in (train_mem.peak_gpu_mb, eval_mem.peak_gpu_mb) if v is not None]
        row["peak_gpu_mb"] = max(gpu) if gpu else None
        release_memory(device)
        return row, per_query

    def _final(self, row: dict[str, Any], dataset: RetrievalDataset, model_cfg: ModelConfig, device: str,
               services: MiningServices, spec: StrategySpec, tuned: TuningOutcome, training: TrainingConfig,
               seed: int, run_id: str, train_mem: PeakMemory, eval_mem: PeakMemory):
        """The body of :meth:`run_final` (run under its guard): fills ``row``; returns (row, per-query)."""
        strategy = spec.build(tuned.params)
        release_memory(device)
        if strategy.trains:
            with train_mem:
                fit = self.fit(dataset, model_cfg, device, services, strategy, training, seed,
                               diagnostics=self.diagnostics_for(dataset, model_cfg),
                               guide=self.guide_services(dataset, model_cfg, spec, device))
            model, corpus_emb, o = fit.model, None, fit.outcome
            reached = time_to_target(dev_curve(o.step_records), 0.95)
            row.update(_steps=o.step_records, time_to_own_95_s=reached and reached.wall_s)
            row.update(mine_s=fit.mine_s, train_s=o.train_s, refresh_s=o.refresh_s, sample_s=o.sample_s,
                       steps=o.steps, examples_seen=o.examples_seen, _losses=o.losses, **o.batch_stats,
                       train_examples_per_s=o.examples_seen / max(o.train_s, 1e-9),
                       steps_per_epoch=fit.budget.steps_per_epoch,
                       examples_per_epoch=fit.budget.examples_per_epoch, budget=fit.budget.reason,
                       planted_fn_inbatch_share=o.planted_fn_inbatch_share)
        else:
            fit = None
            model = services.base_model
            # the base model's cached embeddings cover the training corpus; its prefix is the evaluated one
            corpus_emb = services.corpus_embeddings()[: len(dataset.eval_corpus)].to(device)
        release_memory(device)
        with eval_mem:
            result = self.score(model, dataset, dataset.test(), self.suite.evaluation.metrics, model_cfg,
                                corpus_embeddings=corpus_emb)
        row.update(result.metrics)
        row["eval_s"] = result.seconds
        per_query = result.per_query
        if self.suite.evaluation.mteb_tasks:
            row.update(self.mteb_scores(model, model_cfg, spec, seed, run_id))
        if fit is not None and fit.candidates is not None:
            sampled = strategy.sample(fit.ctx, fit.candidates, 0)
            row.update(neg_score_gap=score_gap(fit.ctx, sampled),
                       planted_fn_share=planted_fn_share(fit.ctx, sampled))
            row["_negatives"] = sampled_negative_ids(fit.ctx, sampled)
        return row, per_query


def determinism(device: str) -> str:
    """Make this process's computations reproducible from the seed on ``device``; say what was set.

    CPU kernels are deterministic for a fixed thread count. On CUDA: deterministic algorithms (warn where an
    op has none), cuDNN deterministic and not benchmarking, and cuBLAS's fixed workspace (the variable must be
    set before CUDA starts: the job processes set it first thing).
    """
    if not device.startswith("cuda"):
        return f"cpu: deterministic kernels, {torch.get_num_threads()} threads"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return ("cuda: torch.use_deterministic_algorithms(warn_only), cudnn.deterministic, no cudnn.benchmark, "
            f"CUBLAS_WORKSPACE_CONFIG={os.environ['CUBLAS_WORKSPACE_CONFIG']}")


def epochs_run(training: TrainingConfig, budget: Budget) -> int:
    """Epochs a run trains: ``epochs``, or as many as ``max_steps`` reach (schedules that span the run —
    curricula, refresh cadences — must see the same length the trainer runs)."""
    if training.max_steps > 0:
        return -(-training.max_steps // budget.steps_per_epoch)
    return training.epochs


def release_memory(device: str) -> None:
    """Return freed memory to the system before a measured phase, so its peak is its own: Python garbage,
    glibc's free lists (``malloc_trim``; glibc keeps freed heap otherwise) and PyTorch's CUDA cache.
    Raises an interrupt received (and swallowed somewhere) since the run started."""
    interrupts.collect()  # an interrupt that landed in a gc callback stops the run here
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _mteb_columns(scores: dict[str, float]) -> dict[str, float]:
    return {f"mteb:{task}": float(score) for task, score in scores.items()}


@dataclass
class Job:
    dataset: RetrievalDataset
    model_cfg: ModelConfig
    spec: StrategySpec

    @property
    def name(self) -> str:
        return f"{self.dataset.name} / {self.model_cfg.display_name} / {self.spec.label}"


@dataclass
class FitResult:
    model: Any
    ctx: Context
    candidates: Negatives | None
    outcome: Any
    mine_s: float
    budget: Budget


def claims_url(plan: Plan) -> str:
    """Where workers claim work: the tuning storage when it is a SQL database, else SQLite in the output."""
    storage = plan.suite.tuning.storage
    if storage and storage.split(":", 1)[0].split("+")[0] in {"postgresql", "sqlite", "mysql"}:
        return storage
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(plan.output_dir / 'claims.db').resolve()}"


def job_status(plan: Plan, validated: Validated | None = None) -> list[dict[str, Any]]:
    """Per job: trials complete / pruned / running / failed, seeds done, best dev metric (for `negbench status`)."""
    from optuna.trial import TrialState

    from negbench.tuning import REQUEUED

    runner = SuiteRunner(plan)
    datasets = (validated or validate_plan(plan)).datasets
    out = []
    for dataset in datasets:
        for model_cfg in plan.suite.models:
            for spec in plan.strategies:
                job = Job(dataset, model_cfg, spec)
                seeds = plan.suite.suite.seeds
                row = {"job": job.name, "seeds_done": len(seeds) - len(runner.pending_seeds(job)),
                       "seeds": len(seeds), "complete": 0, "pruned": 0, "running": 0, "failed": 0,
                       "trials": 0, "best_dev": None}
                tuner = runner.tuner_for(job)
                if tuner is not None:
                    row["trials"] = plan.suite.tuning.n_trials
                    try:
                        study = optuna.load_study(study_name=tuner.study_name, storage=tuner.storage)
                    except KeyError:
                        study = None
                    if study is not None:
                        trials = study.get_trials(deepcopy=False)
                        for key, state in (("complete", TrialState.COMPLETE), ("pruned", TrialState.PRUNED),
                                           ("running", TrialState.RUNNING), ("failed", TrialState.FAIL)):
                            row[key] = sum(t.state == state and not t.user_attrs.get(REQUEUED) for t in trials)
                        if row["complete"]:
                            row["best_dev"] = study.best_value
                out.append(row)
    return out


def run_suite(path: str | Path, *, progress: bool = False, console=None) -> ResultStore:
    return SuiteRunner(plan_suite(path), progress=progress, console=console).run()
