"""The final stage of a job: train each seed with the chosen parameters and test it once.

The test split is read exactly once per (job, seed), after training; nothing before reads it. A run whose loss
turns non-finite, whose budget cannot be met or whose strategy code fails is a failed row, and the suite goes
on. Costs are split the same way for every strategy (mine, sample, refresh, train, eval), in seconds of this
machine and in FLOPs of none (:mod:`negbench.core.compute`), and peak memory is measured per phase (fairness rule 4,
DESIGN.md).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.budget import COMPUTE, Budget, BudgetError
from negbench.core.compute import FlopMeter, watch
from negbench.core.context import Context
from negbench.core.mining import MiningServices, charged_flops, charged_seconds
from negbench.core.models import load_model
from negbench.core.probes.curves import dev_curve, time_to_target
from negbench.core.probes.negatives import planted_fn_share, planting_columns, sampled_negative_ids, score_gap
from negbench.core.setup import epochs_run, run_context
from negbench.core.strategy import Negatives, Strategy, StrategySpec
from negbench.core.training.loop import Diagnostics, train
from negbench.data.dataset import RetrievalDataset
from negbench.errors import ConfigError, NonFiniteLossError
from negbench.evaluation.retrieval import evaluate
from negbench.run.guard import StrategyFailure, describe, guarded
from negbench.run.measure import PeakMemory, Timer, release_memory
from negbench.run.plan import Job, job_key
from negbench.run.provenance import code_revision, determinism, device_name, versions_json
from negbench.run.store.row import ResultRow, RunArtifacts
from negbench.run.tuning import TuningOutcome

__all__ = ["FinalStage", "FitResult", "compute_columns", "determinism", "epochs_run", "release_memory"]


class FinalStage:
    """The part of :class:`negbench.run.suite.SuiteRunner` that trains, tests and records final runs."""

    def final_seed(self, job: Job, tuned: TuningOutcome, seed: int, run_id: str) -> None:
        """Train one seed with the chosen parameters, test once, log to MLflow, append the row."""
        self.say(f"[bold]{escape(job.name)}[/bold] / seed {seed}")
        tags = {**self.job_tags(job), "kind": "final"}
        with self.tracker.run(f"{job.spec.label} seed {seed}", tags=tags) as rid:
            row, per_query, artifacts = self.run_final(
                job, self.device_for(job), self.services_for(job), tuned, seed, run_id
            )
            record = row.record()
            self.tracker.log_params(rid, {"params": row.params, "seed": seed, "trial": row.trial})
            self.tracker.log_metrics(rid, {k: v for k, v in record.items() if k not in ("seed", "trial")})
            self.tracker.set_tags(rid, {"status": row.status})
            for step, value in enumerate(artifacts.losses):
                self.tracker.log_metrics(rid, {"train_loss": value}, step=step)
            self.tracker.log_steps(rid, artifacts.steps)
        self.store.append_steps(run_id, artifacts.steps)  # before the row: a stored row's records are stored
        self.store.append(row, per_query, artifacts.negatives)
        self.say(
            f"  → {escape(row.status)}"
            + "".join(
                f"  {m}={row.metrics[m]:.4f}" for m in self.suite.evaluation.metrics if row.metrics.get(m) is not None
            )
        )

    def row_for(self, job: Job, seed: int, run_id: str, device: str) -> ResultRow:
        """A row's identity and provenance columns: the same for a final run and for a crashed job's row."""
        return ResultRow(
            run_id=run_id,
            config_key=job_key(self.suite, job.dataset, job.model_cfg, job.spec),
            suite=self.suite.suite.name,
            dataset=job.dataset.name,
            dataset_fingerprint=job.dataset.fingerprint,
            model=job.model_cfg.display_name,
            strategy=job.spec.label,
            strategy_name=job.spec.cls.name,
            params=json.dumps(job.spec.raw_params, sort_keys=True, default=str),
            seed=seed,
            device=device_name(device),
            versions=versions_json(),
            config_hash=self.config_hash,
            code_revision=code_revision(),
            git_rev=self.git_rev,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **planting_columns(job.dataset),
            **job.dataset.audit.columns(),
        )

    def record_crash(
        self, job: Job, reason: str, seeds: list[tuple[int, str]] | None = None, status: str = "failed: crashed"
    ) -> None:
        """A failed row, with ``reason``, for every seed of ``job`` that its crashed process left unfinished
        (``seeds``: those it wrote no row for; default: every pending seed)."""
        self.tracker.fail_open_runs(keep=set(self.tracker._stack))  # the crashed process's job/seed runs
        device = self.device_for(job)
        for seed, run_id in self.pending_seeds(job) if seeds is None else seeds:
            self.store.append(self.row_for(job, seed, run_id, device).update(status=status, error=reason))
            self.say(f"[red]{escape(job.name)} / seed {seed}: {escape(reason)}[/red]")

    def fit(
        self,
        dataset,
        model_cfg,
        device,
        services,
        strategy: Strategy,
        training: TrainingConfig,
        seed: int,
        on_epoch_end=None,
        diagnostics: Diagnostics | None = None,
        guide: MiningServices | None = None,
        tuned: dict | None = None,
    ) -> FitResult:
        """Mine and train one model (on the train split only), within the run's data budget; ``guide`` is the
        teacher's services (:meth:`guide_services`), whose use is charged to the run like the base model's;
        ``tuned``: the training values a tuning trial chose (named in the budget, marked tuned)."""
        examples = dataset.training_examples("train")
        baseline = self.compute_baseline(dataset, model_cfg, device, tuned)
        try:  # under the compute rule, a BudgetError when the strategy's preparation alone exceeds the budget
            budget, ctx = run_context(
                strategy,
                dataset,
                examples,
                services,
                training,
                self.suite.training,
                seed,
                guide,
                baseline=baseline,
                tuned=tuple(tuned or {}),
            )
        except ConfigError as exc:  # this strategy's settings cannot make one full batch: fail this run only
            raise BudgetError(f"strategy {strategy.name!r} {strategy.params}: {exc.one_line()}") from None
        model = load_model(model_cfg, device)
        used = [services] if guide is None else [services, guide]
        for service in used:
            service.begin_run()
        with Timer() as mine_timer, FlopMeter() as mine_meter:
            strategy.setup(ctx)
            candidates = strategy.mine(ctx)
        mine_s, mine_flops = charged_seconds(mine_timer.seconds, used), charged_flops(mine_meter.flops, used)
        if candidates is not None and training.num_negatives == 0:
            candidates = None
        outcome = train(
            model,
            ctx,
            strategy,
            training,
            device=device,
            precision=model_cfg.precision,
            candidates=candidates,
            mini_batch_size=getattr(strategy, "mini_batch_size", None),
            progress=self.progress,
            work_dir=self.plan.output_dir,
            on_epoch_end=on_epoch_end,
            budget=budget,
            diagnostics=diagnostics,
        )
        return FitResult(model, ctx, candidates, outcome, mine_s, budget, mine_flops)

    def score(self, model, dataset, qrels, metrics, model_cfg, corpus_embeddings=None, corpus=None):
        """Metrics of ``model`` on ``qrels`` over ``corpus``, default the evaluation corpus (test's always; dev's: see
        score_dev): planted false negatives exist for training only, so neither tuning nor test ever searches them."""
        ev = self.suite.evaluation
        return evaluate(
            model,
            dataset.eval_corpus if corpus is None else corpus,
            dataset.queries,
            qrels,
            metrics,
            batch_size=model_cfg.batch_size,
            chunk_size=ev.corpus_chunk_size,
            ignore_identical_ids=ev.ignore_identical_ids,
            corpus_embeddings=corpus_embeddings,
            progress=self.progress,
        )

    def diagnostics_for(
        self, dataset: RetrievalDataset, model_cfg: ModelConfig, services: MiningServices
    ) -> Diagnostics:
        """A final run's per-step measurements: the hardness probe and a dev learning curve (dev only, never
        test) of the tuning metric, or of the first metric when tuning's is not evaluated, at
        :meth:`~negbench.run.dev_scoring.DevScoring.curve_points_for` points (the same for every strategy of the
        dataset × model; "auto" is decided from token counts taken before any job)."""
        ev = self.suite.evaluation
        metric = self.suite.tuning.metric if self.suite.tuning.metric in ev.metrics else ev.metrics[0]

        def evaluate_dev(model) -> dict[str, float]:
            return self.score_dev(model, dataset, [metric], model_cfg, services).metrics

        points = self.curve_points_for(dataset, model_cfg, services)
        return Diagnostics(every=ev.diagnostics_every, curve_points=points, evaluate=evaluate_dev)

    def mteb_scores(self, model, model_cfg: ModelConfig, spec: StrategySpec, seed: int, run_id: str):
        """Main score of each ``[evaluation] mteb_tasks`` task; MTEB's result JSON kept under the run's
        own directory, with a model name and revision unique to this trained model (no cache sharing)."""
        from negbench.evaluation.mteb import evaluate_with_mteb, mteb_model_identity

        ev = self.suite.evaluation
        name, revision = mteb_model_identity(model_cfg.display_name, spec.label, self.config_hash, seed)
        scores = evaluate_with_mteb(
            model,
            ev.mteb_tasks,
            run_dir=self.plan.output_dir / "mteb" / run_id,
            model_name=name,
            revision=revision,
            batch_size=ev.batch_size,
            ignore_identical_ids=ev.ignore_identical_ids,
        )
        return _mteb_columns(scores)

    def run_final(
        self, job: Job, device: str, services: MiningServices, tuned: TuningOutcome, seed: int, run_id: str
    ) -> tuple[ResultRow, dict | None, RunArtifacts]:
        """Train with the chosen parameters and evaluate once on test: (row, per-query scores, artifacts)."""
        spec = job.spec
        training = self.training_for(spec, tuned.training)
        row = self.row_for(job, seed, run_id, device).update(
            params=json.dumps({**spec.raw_params, **tuned.params}, sort_keys=True, default=str),
            model_fingerprint=services.model_fingerprint,
            training=json.dumps(training.model_dump(mode="json"), sort_keys=True),
            trial=tuned.trial,
            dev_metric=tuned.dev_value,
            dev_corpus=self.dev_label(job, services),  # before any measured phase: a pool is built outside them
            determinism=determinism(device),
        )
        per_query, artifacts = None, RunArtifacts()
        train_mem, eval_mem = PeakMemory(device=device), PeakMemory(device=device)
        started = time.perf_counter()
        try:
            with guarded():  # strategy code (any hook) that raises or exits fails this row only
                per_query = self._final(
                    row, artifacts, job, device, services, tuned, training, seed, run_id, train_mem, eval_mem
                )
        except NonFiniteLossError as exc:
            row.update(status="failed: non-finite loss", error=str(exc))
        except BudgetError as exc:
            row.update(status="failed: BudgetError", error=describe(exc))
        except StrategyFailure as exc:
            row.update(status=f"failed: {exc.kind}", error=exc.reason)
        gpu = [v for v in (train_mem.peak_gpu_mb, eval_mem.peak_gpu_mb) if v is not None]
        row.update(
            total_s=time.perf_counter() - started,
            train_peak_rss_mb=train_mem.peak_rss_mb or None,
            eval_peak_rss_mb=eval_mem.peak_rss_mb or None,
            train_peak_gpu_mb=train_mem.peak_gpu_mb,
            eval_peak_gpu_mb=eval_mem.peak_gpu_mb,
            peak_rss_mb=max(train_mem.peak_rss_mb, eval_mem.peak_rss_mb) or None,
            peak_gpu_mb=max(gpu) if gpu else None,
        )
        release_memory(device)
        return row, per_query, artifacts

    def _final(
        self,
        row: ResultRow,
        artifacts: RunArtifacts,
        job: Job,
        device: str,
        services: MiningServices,
        tuned: TuningOutcome,
        training: TrainingConfig,
        seed: int,
        run_id: str,
        train_mem: PeakMemory,
        eval_mem: PeakMemory,
    ) -> dict | None:
        """The body of :meth:`run_final` (run under its guard): fills ``row`` and ``artifacts``; returns the
        per-query scores."""
        dataset, model_cfg, spec = job.dataset, job.model_cfg, job.spec
        strategy = spec.build(tuned.params)
        if strategy.trains and training.budget == COMPUTE:
            # the compute estimate's token counts (fit reads them; counted before any job, read from the disk cache),
            # taken outside the measured phase, the base model not kept for them: in-batch never uses it, and a
            # second model in its train peaks skewed the comparison
            services.token_sizes(keep_model=False)
        # its "auto" curve points too (their counts read from the disk cache), outside the measured phase
        diagnostics = self.diagnostics_for(dataset, model_cfg, services) if strategy.trains else None
        release_memory(device)
        if strategy.trains:
            with train_mem:
                fit = self.fit(
                    dataset,
                    model_cfg,
                    device,
                    services,
                    strategy,
                    training,
                    seed,
                    diagnostics=diagnostics,
                    guide=self.guide_services(dataset, model_cfg, spec, device),
                    tuned=tuned.training,
                )
            model, corpus_emb, o = fit.model, None, fit.outcome
            if not o.curve_points and not (self.suite.tuning.n_trials > 0 and spec.space):
                row.update(dev_corpus=None)  # "auto" took no curve point and nothing was tuned: dev was not scored
            reached = time_to_target(dev_curve(o.step_records), 0.95)
            artifacts.steps, artifacts.losses = o.step_records, o.losses
            row.update(
                time_to_own_95_s=reached and reached.wall_s,
                mine_s=fit.mine_s,
                train_s=o.train_s,
                refresh_s=o.refresh_s,
                sample_s=o.sample_s,
                curve_s=o.curve_s,
                curve_points=o.curve_points,
                steps=o.steps,
                examples_seen=o.examples_seen,
                **o.batch_stats,
                train_examples_per_s=o.examples_seen / max(o.train_s, 1e-9),
                steps_per_epoch=fit.budget.steps_per_epoch,
                examples_per_epoch=fit.budget.examples_per_epoch,
                budget=fit.budget.reason,
                **compute_columns(fit),
                coverage=o.coverage,
                planted_fn_inbatch_share=o.planted_fn_inbatch_share,
            )
        else:
            fit = None
            model = services.base_model
            # the base model's cached embeddings cover the training corpus; its prefix is the evaluated one
            corpus_emb = services.corpus_embeddings()[: len(dataset.eval_corpus)].to(device)
        release_memory(device)
        with eval_mem:
            result = self.score(
                model, dataset, dataset.test(), self.suite.evaluation.metrics, model_cfg, corpus_embeddings=corpus_emb
            )
        row.metrics.update(result.metrics)
        row.update(eval_s=result.seconds, eval_tflop=result.flops / 1e12)
        if self.suite.evaluation.mteb_tasks:
            row.metrics.update(self.mteb_scores(model, model_cfg, spec, seed, run_id))
        if fit is not None and fit.candidates is not None:
            sampled = strategy.sample(fit.ctx, fit.candidates, 0)
            row.update(neg_score_gap=score_gap(fit.ctx, sampled), planted_fn_share=planted_fn_share(fit.ctx, sampled))
            artifacts.negatives = sampled_negative_ids(fit.ctx, sampled)
        return result.per_query


def compute_columns(fit: FitResult) -> dict[str, Any]:
    """A training run's compute columns (TFLOPs): measured — training steps, preparation (mining as ``mine_s`` is
    charged, sampling, refreshes) — and as estimated before training; its budget rule and the trained ``N``."""
    o, estimate = fit.outcome, fit.budget.estimate
    return {
        "budget_rule": fit.budget.rule,
        "train_tflop": o.train_flops / 1e12,
        "prep_tflop": (fit.mine_flops + o.sample_flops + o.refresh_flops) / 1e12,
        "est_train_tflop": None if estimate is None else estimate.train_flops / 1e12,
        "est_prep_tflop": None if estimate is None else estimate.prep_flops / 1e12,
        "encoder_params": watch(fit.model),
    }


def _mteb_columns(scores: dict[str, float]) -> dict[str, float]:
    return {f"mteb:{task}": float(score) for task, score in scores.items()}


@dataclass
class FitResult:
    model: Any
    ctx: Context
    candidates: Negatives | None
    outcome: Any
    mine_s: float
    budget: Budget
    mine_flops: float = 0.0  # charged like mine_s (cached artefacts at their recorded FLOPs)
