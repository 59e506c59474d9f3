"""Run a suite: validate everything first, then train and evaluate every (dataset × model × strategy × seed).

The test split is read exactly once per (job, seed), after training; nothing before reads it.
A job that fails (a non-finite loss, an exception in a plugin, a crash of its process) is recorded with its
status and the suite goes on. Finished rows are skipped on a rerun (keyed by ``run_id``).

Fairness (DESIGN.md): every run's data budget is fixed up front (:mod:`negbench.core.budget`); a job's key
(:func:`negbench.run.plan.job_key`) holds everything that changes its result, code revision included, so an
edited suite or harness never reuses a stale study or row; each job runs in a fresh process
(``[suite] isolation``) so its peak memory is its own; costs are split the same way for every strategy (mine,
sample, refresh, train, eval).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from negbench import _phases as phases
from negbench._io import write_text_atomic
from negbench.config.suite import DatasetConfig, ModelConfig
from negbench.core.mining import MiningServices
from negbench.core.models import load_model, model_fingerprint, pick_device
from negbench.core.strategy import StrategySpec
from negbench.data.dataset import RetrievalDataset
from negbench.evaluation.pool import DevCorpus
from negbench.run import interrupts
from negbench.run.claims import ClaimBoard
from negbench.run.dev_scoring import DevScoring
from negbench.run.final import FinalStage
from negbench.run.isolation import run_isolated, start_job_server
from negbench.run.lock import RunLock, remove_stale_temporaries
from negbench.run.objective import TuningStage
from negbench.run.plan import Job, Plan, run_id_for, services_key
from negbench.run.preflight import Validated, load_suite_dataset, validate_plan
from negbench.run.provenance import git_revision, pin_code_revision, versions_json
from negbench.run.store.base import SUITE_FILE
from negbench.run.store.parquet import ResultStore
from negbench.run.store.sql import SqlResultStore
from negbench.run.tracking import Tracker
from negbench.run.tuning import TuningOutcome
from negbench.run.workers import WorkerLoop

__all__ = ["SuiteRunner"]

log = logging.getLogger(__name__)


class SuiteRunner(DevScoring, FinalStage, TuningStage, WorkerLoop):
    """Runs a validated :class:`Plan`: per job, tune on dev (if asked), then train and test every seed."""

    def __init__(
        self,
        plan: Plan,
        *,
        progress: bool = False,
        console=None,
        board: ClaimBoard | None = None,
        poll_s: float = 2.0,
        parent_run: str | None = None,
        publish: Callable[[ResultStore], list[Path]] | None = None,
    ) -> None:
        self.plan = plan
        self.publish = publish  # writes the suite's pages once every job is done (the report stage's, via the CLI)
        self.parent_run = parent_run  # set in a job process: the suite's MLflow run
        self.board = board
        self.poll_s = poll_s
        self._services: dict[tuple[str, str], MiningServices] = {}
        self._dev_corpora: dict[tuple[str, str], DevCorpus] = {}  # what dev scoring searches (DevScoring.dev_corpus)
        self._storage = None
        self.suite = plan.suite
        self.progress = progress
        self.console = console
        # workers keep rows in the database they share (the Parquet files, exported from it, may sit on a
        # network file system where file locks are unreliable); a single run keeps the Parquet store
        self.store = (
            ResultStore(plan.output_dir)
            if board is None
            else SqlResultStore(plan.output_dir, board.url, store=self.suite.suite.name)
        )
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
        before it passes. The output directory is then locked for the run's life (:mod:`negbench.run.lock`):
        exclusively by a run, shared by workers; whoever holds it alone first removes the temporaries a killed
        run left. Interrupts are handled by :func:`negbench.run.interrupts.trapped`: never swallowed, and a second
        Ctrl-C while the first is handled exits at once."""
        with interrupts.trapped():
            return self._run(validated)

    def _run(self, validated: Validated | None) -> ResultStore:
        # every job of this run, in any process, keys its rows with the same code; pinned before the job server
        # imports negbench, so an edit after that import is caught by each job's check (check_code_unchanged)
        pin_code_revision()
        if self.board is None and self.suite.suite.isolation == "process":
            start_job_server(self.suite.tracking.enabled)  # its imports overlap validation and MLflow's set-up
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
        jobs = [Job(d, m, spec) for d in datasets for m in self.suite.models for spec in self.plan.strategies]
        self.prepare_token_counts(jobs)  # the compute budget's token counts, taken once before any job
        self.prepare_dev_corpora(jobs)  # pooled dev corpora built before any job (and its measured memory)
        self.tracker.start(close_stale=self.board is None)  # a worker never closes another's live runs
        name = f"suite {self.suite.suite.name}" + (f" worker {self.board.owner}" if self.board else "")
        with self.tracker.run(
            name, tags={"kind": "suite", "config_hash": self.config_hash, "git_rev": self.git_rev or ""}
        ) as suite_run:
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
            self.copy_suite()
            self.tracker.log_artifact(suite_run, self.store.results_path)
            for path in self.publish(self.store) if self.publish is not None else []:
                self.tracker.log_artifact(suite_run, path)
        return self.store

    def copy_suite(self) -> None:
        """Once every job is done, as leaderboard.md: the store's ``suite.toml`` becomes the text this run read,
        from which `negbench report` and `negbench figures` take the baseline, primary metric and declared
        comparisons (an interrupted or failed run leaves the previous copy; a suite file kept there is left)."""
        target = self.plan.output_dir / SUITE_FILE
        if not self.plan.text or (target.exists() and target.samefile(self.plan.path)):
            return
        write_text_atomic(target, self.plan.text)

    def job_indices(self) -> list[tuple[int, int, int]]:
        """(dataset, model, strategy) positions of every job, in the order :meth:`run` makes them."""
        return [
            (d, m, s)
            for d in range(len(self.suite.datasets))
            for m in range(len(self.suite.models))
            for s in range(len(self.plan.strategies))
        ]

    def services_for(self, job: Job) -> MiningServices:
        key = services_key(job.dataset, job.model_cfg)
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

    def guide_services(
        self, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec, device: str
    ) -> MiningServices | None:
        """The teacher's services for ``spec`` on ``dataset``: the strategy's ``guide``, else the model's, loaded
        like the base model (its max_seq_length, batch size and device) and cached on disk by its own
        fingerprint; None when neither names one."""
        guide = self.suite.strategies[spec.index].guide or model_cfg.guide
        if guide is None:
            return None
        cfg = ModelConfig(
            spec=guide,
            max_seq_length=model_cfg.max_seq_length,
            batch_size=model_cfg.batch_size,
            precision=model_cfg.precision,
            device=model_cfg.device,
        )
        key = (dataset.fingerprint, cfg.model_dump_json())
        if key not in self._services:
            self._services[key] = MiningServices(
                dataset,
                lambda: load_model(cfg, device),
                model_fingerprint(cfg.spec, cfg.max_seq_length),
                self.cache_dir,
                batch_size=cfg.batch_size,
                progress=self.progress,
            )
        return self._services[key]

    @staticmethod
    def device_for(job: Job) -> str:
        return pick_device(job.model_cfg.device)

    def pending_seeds(self, job: Job) -> list[tuple[int, str]]:
        finished = self.store.finished_ids()
        ids = [
            (seed, run_id_for(self.suite, job.dataset, job.model_cfg, job.spec, seed))
            for seed in self.suite.suite.seeds
        ]
        return [(seed, rid) for seed, rid in ids if rid not in finished]

    def job_tags(self, job: Job) -> dict[str, str]:
        return {
            "kind": "job",
            "dataset": job.dataset.name,
            "dataset_fingerprint": job.dataset.fingerprint,
            "model": job.model_cfg.display_name,
            "model_fingerprint": self.services_for(job).model_fingerprint,
            "strategy": job.spec.cls.name,
            "versions": versions_json(),
        }

    def run_job(self, job: Job) -> None:
        """Single process: tune (resuming a stored study), then every pending seed."""
        pending = self.pending_seeds(job)
        if not pending:
            self.say(f"[dim]skip {escape(job.name)}: every seed already finished[/dim]")
            return
        with (
            phases.job(job.name),
            phases.phase("job"),
            self.tracker.run(
                job.name, tags=self.job_tags(job), params={"strategy_params": json.dumps(job.spec.raw_params)}
            ),
        ):
            tuner = self.tuner_for(job)
            tuned = tuner.run(self.objective_for(job)) if tuner else TuningOutcome({}, {}, None, None, 0)
            self.report_tuning(job, tuned)
            for seed, run_id in pending:
                self.final_seed(job, tuned, seed, run_id)
