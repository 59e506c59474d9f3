"""Run a suite: validate everything first, then train and evaluate every (dataset × model × strategy × seed).

The test split is read exactly once per (job, seed), after training; nothing before reads it.
A job that fails (a non-finite loss, an exception in a plugin) is recorded with its status and the
suite goes on. Finished rows are skipped on a rerun (keyed by ``run_id``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from negbench.config import DatasetConfig, ModelConfig, Suite, load_suite, stable_hash
from negbench.context import Context
from negbench.data import RetrievalDataset, load_dataset
from negbench.errors import ConfigError, NegbenchError, NonFiniteLossError
from negbench.evaluation import evaluate
from negbench.measure import PeakMemory, Timer
from negbench.mining import MiningServices
from negbench.models import load_model, model_fingerprint, pick_device, resolve_model
from negbench.provenance import device_name, git_revision, versions_json
from negbench.registry import Registry, registry
from negbench.results import ResultStore
from negbench.strategy import Negatives, StrategySpec
from negbench.training import train

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
        except NegbenchError as exc:
            exc.file = exc.file or str(path)
            raise type(exc)(exc.message, file=exc.file, field=exc.field) from None
        specs.append(StrategySpec(cls, params, cfg.display_name, dict(cfg.params)))
    for i, model_cfg in enumerate(suite.models):
        try:
            resolve_model(model_cfg.spec)
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=path, field=f"models[{i}].spec") from None
    return Plan(suite, Path(path), specs)


def run_id_for(suite: Suite, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec,
               seed: int) -> str:
    payload = {
        "suite": suite.suite.name,
        "dataset": dataset.fingerprint,
        "model": model_cfg.model_dump(mode="json"),
        "strategy": spec.cls.name,
        "label": spec.label,
        "params": spec.raw_params,
        "training": suite.training.model_dump(mode="json"),
        "evaluation": suite.evaluation.metrics,
        "seed": seed,
    }
    return stable_hash(payload)


def negative_diagnostics(ctx: Context, negatives: Negatives | None) -> tuple[float | None, float | None]:
    """(mean base-model score gap s(q,d⁺) − s(q,d⁻), share of negatives labelled positive in any split)."""
    if negatives is None or ctx.num_negatives == 0:
        return None, None
    q = ctx.services.query_embeddings(ctx.query_ids)
    d = ctx.services.corpus_embeddings()
    neg = torch.as_tensor(np.stack(negatives.ids))  # (n, K)
    qrows = q[torch.as_tensor(ctx.example_query)]
    pos_scores = (qrows * d[torch.as_tensor(ctx.positive_docs)]).sum(-1)
    neg_scores = torch.einsum("nd,nkd->nk", qrows, d[neg])
    gap = float((pos_scores[:, None] - neg_scores).mean())
    labelled: dict[str, set[str]] = {}
    for qrels in (ctx.dataset.train, ctx.dataset.dev, ctx.dataset.test()):
        for qid, docs in qrels.items():
            labelled.setdefault(qid, set()).update(d for d, rel in docs.items() if rel > 0)
    ids = ctx.dataset.corpus.ids
    hits = sum(
        ids[int(doc)] in labelled.get(ex.query_id, ())
        for ex, row in zip(ctx.examples, negatives.ids, strict=True)
        for doc in row
    )
    return gap, hits / neg.numel()


class SuiteRunner:
    """Runs a validated :class:`Plan`, appending one result row per job and seed."""

    def __init__(self, plan: Plan, *, progress: bool = False, console=None) -> None:
        self.plan = plan
        self.suite = plan.suite
        self.progress = progress
        self.console = console
        self.store = ResultStore(plan.output_dir)
        self.config_hash = self.suite.config_hash()
        self.git_rev = git_revision()
        self.cache_dir = Path(self.suite.suite.cache_dir or plan.output_dir / "cache")

    def say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text)

    def load_dataset(self, index: int, cfg: DatasetConfig) -> RetrievalDataset:
        try:
            return load_dataset(cfg, self.suite.suite.data_dirs)
        except NegbenchError as exc:
            field = f"datasets[{index}]" + (f".{exc.field}" if exc.field else "")
            raise type(exc)(exc.message, file=exc.file or self.plan.path, field=field) from None

    def run(self) -> ResultStore:
        self.plan.output_dir.mkdir(parents=True, exist_ok=True)
        datasets = [self.load_dataset(i, cfg) for i, cfg in enumerate(self.suite.datasets)]
        finished = self.store.finished_ids()
        for dataset in datasets:
            for model_cfg in self.suite.models:
                device = pick_device(model_cfg.device)
                services = MiningServices(
                    dataset,
                    lambda cfg=model_cfg, dev=device: load_model(cfg, dev),
                    model_fingerprint(model_cfg.spec, model_cfg.max_seq_length),
                    self.cache_dir,
                    batch_size=model_cfg.batch_size,
                    progress=self.progress,
                )
                for spec in self.plan.strategies:
                    for seed in self.suite.suite.seeds:
                        run_id = run_id_for(self.suite, dataset, model_cfg, spec, seed)
                        if run_id in finished:
                            self.say(f"[dim]skip {dataset.name} / {model_cfg.display_name} / {spec.label} / "
                                     f"seed {seed}: already finished[/dim]")
                            continue
                        self.say(f"[bold]{dataset.name}[/bold] / {model_cfg.display_name} / "
                                 f"[cyan]{spec.label}[/cyan] / seed {seed}")
                        row, per_query = self.run_job(dataset, model_cfg, device, services, spec, seed, run_id)
                        self.store.append(row, per_query)
                        self.say(f"  → {row['status']}" + "".join(
                            f"  {m}={row[m]:.4f}" for m in self.suite.evaluation.metrics if row.get(m) is not None))
        return self.store

    def run_job(self, dataset: RetrievalDataset, model_cfg: ModelConfig, device: str, services: MiningServices,
                spec: StrategySpec, seed: int, run_id: str) -> tuple[dict[str, Any], dict | None]:
        training_cfg = self.suite.training.model_copy(
            update=self.suite.strategies[self.plan.strategies.index(spec)].training)
        row: dict[str, Any] = {
            "run_id": run_id, "suite": self.suite.suite.name, "dataset": dataset.name,
            "dataset_fingerprint": dataset.fingerprint, "model": model_cfg.display_name,
            "model_fingerprint": services.model_fingerprint, "strategy": spec.label,
            "strategy_name": spec.cls.name, "params": json.dumps(spec.raw_params, sort_keys=True),
            "seed": seed, "trial": None, "status": "ok", "error": None, "device": device_name(device),
            "versions": versions_json(), "config_hash": self.config_hash, "git_rev": self.git_rev,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "mine_s": 0.0, "train_s": 0.0, "eval_s": 0.0, "refresh_s": 0.0, "steps": 0, "examples_seen": 0,
            "train_examples_per_s": None, "neg_score_gap": None, "false_negative_share": None,
        }
        per_query = None
        strategy = spec.build()
        ctx = Context(
            dataset=dataset,
            examples=dataset.training_examples("train"),
            services=services,
            num_negatives=training_cfg.num_negatives,
            batch_size=training_cfg.batch_size,
            epochs=training_cfg.epochs,
            seed=seed,
        )
        monitor = PeakMemory(device=device)
        try:
            with monitor:
                if strategy.trains:
                    model = load_model(model_cfg, device)
                    with Timer() as mine_timer:
                        strategy.setup(ctx)
                        candidates = strategy.mine(ctx)
                    row["mine_s"] = mine_timer.seconds
                    if candidates is not None and training_cfg.num_negatives == 0:
                        candidates = None
                    outcome = train(model, ctx, strategy, training_cfg, device=device,
                                    precision=model_cfg.precision, candidates=candidates,
                                    mini_batch_size=getattr(strategy, "mini_batch_size", None),
                                    progress=self.progress, work_dir=self.cache_dir.parent)
                    row.update(train_s=outcome.train_s, refresh_s=outcome.refresh_s, steps=outcome.steps,
                               examples_seen=outcome.examples_seen,
                               train_examples_per_s=outcome.examples_seen / max(outcome.train_s, 1e-9))
                    corpus_emb = None
                else:
                    model = services.base_model
                    candidates = None
                    corpus_emb = services.corpus_embeddings().to(device)
                ev = self.suite.evaluation
                result = evaluate(model, dataset.corpus, dataset.queries, dataset.test(), ev.metrics,
                                  batch_size=model_cfg.batch_size, chunk_size=ev.corpus_chunk_size,
                                  ignore_identical_ids=ev.ignore_identical_ids, corpus_embeddings=corpus_emb,
                                  progress=self.progress)
            row.update(result.metrics)
            row["eval_s"] = result.seconds
            per_query = result.per_query
            if candidates is not None:
                gap, share = negative_diagnostics(ctx, strategy.sample(ctx, candidates, 0))
                row.update(neg_score_gap=gap, false_negative_share=share)
        except NonFiniteLossError as exc:
            row.update(status="failed: non-finite loss", error=str(exc))
        except NegbenchError:
            raise
        except Exception as exc:
            log.debug("job failed", exc_info=True)
            row.update(status=f"failed: {type(exc).__name__}", error="".join(
                traceback.format_exception_only(type(exc), exc)).strip()[:2000])
        row["peak_rss_mb"] = monitor.peak_rss_mb
        row["peak_gpu_mb"] = monitor.peak_gpu_mb
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        return row, per_query


def run_suite(path: str | Path, *, progress: bool = False, console=None) -> ResultStore:
    return SuiteRunner(plan_suite(path), progress=progress, console=console).run()
