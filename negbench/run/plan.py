"""The plan of a suite: its validated strategies, its jobs (dataset × model × strategy) and their keys.

A job's key (:func:`job_key`) holds everything that changes its result, code revision included, so an edited
suite or harness never reuses a stale study or row (fairness rule 3, DESIGN.md); a row's key adds the seed.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from negbench.config.load import read_suite
from negbench.config.suite import ModelConfig, Suite, stable_hash
from negbench.core.models import model_fingerprint, resolve_model
from negbench.core.registry import Registry, registry
from negbench.core.strategy import StrategySpec
from negbench.data.dataset import RetrievalDataset
from negbench.errors import ConfigError, NegbenchError
from negbench.evaluation.pool import POOLED, dev_corpus_mode
from negbench.run.provenance import code_revision, file_digest
from negbench.run.tuning import build_space, first_error

__all__ = [
    "KNOWN_SERVICES",
    "Job",
    "Plan",
    "claims_url",
    "dev_identity",
    "job_key",
    "may_score_dev",
    "plan_suite",
    "run_id_for",
]

KNOWN_SERVICES = frozenset({"bm25", "dense", "guide"})


@dataclass
class Plan:
    suite: Suite
    path: Path
    strategies: list[StrategySpec]
    text: str = ""  # the suite file as it was read and validated (copied into the store when the run finishes)

    @property
    def output_dir(self) -> Path:
        return Path(self.suite.suite.output_dir)


def plan_suite(path: str | Path, reg: Registry = registry) -> Plan:
    """Validate the suite completely (strategies, params, services, models) before any training."""
    suite, text = read_suite(path)
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
            if "budget" in cfg.training or "training.budget" in {*cfg.search_space, *suite.tuning.search_space}:
                raise ConfigError("the budget rule is the suite's: set [training] budget", field="training.budget")
            try:
                suite.training_for(i)
            except ValidationError as exc:
                raise ConfigError(f"invalid training override: {first_error(exc)}", field=f"{where}.training") from None
            space = (
                build_space(cls, cfg, where, suite.tuning.search_space)
                if suite.tuning.n_trials > 0 and cls.trains
                else {}
            )
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=exc.file or path, field=exc.field) from None
        specs.append(StrategySpec(cls, params, cfg.display_name, dict(cfg.params), index=i, space=space))
    if suite.tuning.n_trials > 0 and suite.tuning.metric not in suite.evaluation.metrics:
        raise ConfigError(
            f"tuning metric {suite.tuning.metric!r} is not among evaluation.metrics {suite.evaluation.metrics}",
            file=path,
            field="tuning.metric",
        )
    labels = [s.label for s in specs]
    if suite.suite.baseline not in labels and "in-batch" in labels:
        raise ConfigError(
            f"baseline {suite.suite.baseline!r} is not a strategy label of this suite",
            file=path,
            field="suite.baseline",
        )
    _check_compute_baseline(suite, specs, path)
    if suite.evaluation.mteb_tasks:
        from negbench.data.mteb import check_mteb_tasks

        try:
            check_mteb_tasks(suite.evaluation.mteb_tasks)
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=path, field="evaluation.mteb_tasks") from None
    for i, model_cfg in enumerate(suite.models):
        try:
            resolve_model(model_cfg.spec)
        except NegbenchError as exc:
            raise type(exc)(exc.message, file=path, field=f"models[{i}].spec") from None
    return Plan(suite, Path(path), specs, text)


def _check_compute_baseline(suite: Suite, specs: list[StrategySpec], path: str | Path) -> None:
    """The equal-compute rule needs ``[suite] baseline`` among the strategies, and one that trains."""
    if suite.training.budget != "compute":
        return
    base = next((s for s in specs if s.label == suite.suite.baseline), None)
    if base is None or not base.cls.trains:
        what = "is not a strategy label of this suite" if base is None else "does not train"
        raise ConfigError(
            f'budget = "compute" gives every strategy the compute of [suite] baseline, and '
            f"{suite.suite.baseline!r} {what}",
            file=path,
            field="training.budget",
        )


def services_key(dataset: RetrievalDataset, model_cfg: ModelConfig) -> tuple[str, str]:
    """What a dataset × model's shared state is kept under (its mining services, its dev corpus)."""
    return dataset.fingerprint, model_cfg.model_dump_json()


DEV_POOL = frozenset({"dev_corpus", "dev_pool_depth", "dev_pool_min_docs"})


def may_score_dev(suite: Suite, dataset: RetrievalDataset, spec: StrategySpec) -> bool:
    """Whether a job scores dev: a training strategy on a dataset with dev queries, tuned or with a learning curve
    (``"auto"`` counts: it may take points)."""
    tuned = suite.tuning.n_trials > 0 and bool(spec.space)
    return bool(dataset.dev) and spec.cls.trains and (tuned or suite.evaluation.curve_points != 0)


def dev_identity(suite: Suite, dataset: RetrievalDataset, spec: StrategySpec) -> dict | None:
    """What a job's dev scoring searches, for its key: ``{"mode": "full"}``, ``{"mode": "pooled", "depth": k}``, or
    None when the job scores no dev."""
    if not may_score_dev(suite, dataset, spec):
        return None
    ev = suite.evaluation
    mode = dev_corpus_mode(ev.dev_corpus, len(dataset.eval_corpus), ev.dev_pool_min_docs)
    return {"mode": mode, **({"depth": ev.dev_pool_depth} if mode == POOLED else {})}


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
        # under the equal-compute rule the baseline's configuration sets every job's steps
        **({"compute_baseline": _baseline_identity(suite)} if training.budget == "compute" else {}),
        # the dev corpus as resolved for this job (none when it scores no dev): the pool's settings change no job
        # that does not search a pool
        "evaluation": suite.evaluation.model_dump(mode="json", exclude={"batch_size", "corpus_chunk_size", *DEV_POOL}),
        "dev_corpus": dev_identity(suite, dataset, spec),
        "tuning": suite.tuning.model_dump(mode="json", exclude={"storage", "timeout_s", "heartbeat_s", "grace_s"}),
        "tuning_seed": suite.suite.seeds[0],
        "code": code_revision(),
    }
    return stable_hash(payload)


def _baseline_identity(suite: Suite) -> dict | None:
    """The baseline's strategy entry and training settings (what its equal-data compute depends on)."""
    index = next((i for i, c in enumerate(suite.strategies) if c.display_name == suite.suite.baseline), None)
    if index is None:
        return None
    return {
        "strategy": suite.strategies[index].model_dump(mode="json"),
        "training": suite.training_for(index).model_dump(mode="json"),
    }


def run_id_for(suite: Suite, dataset: RetrievalDataset, model_cfg: ModelConfig, spec: StrategySpec, seed: int) -> str:
    """The key of one result row: the job's configuration key and the seed (not the tuned values, which the
    stored study reproduces), so a rerun finds and skips it."""
    return stable_hash({"config": job_key(suite, dataset, model_cfg, spec), "seed": seed})


@dataclass
class Job:
    dataset: RetrievalDataset
    model_cfg: ModelConfig
    spec: StrategySpec

    @property
    def name(self) -> str:
        return f"{self.dataset.name} / {self.model_cfg.display_name} / {self.spec.label}"


def claims_url(plan: Plan) -> str:
    """Where workers claim work: the tuning storage when it is a SQL database, else SQLite in the output."""
    storage = plan.suite.tuning.storage
    if storage and storage.split(":", 1)[0].split("+")[0] in {"postgresql", "sqlite", "mysql"}:
        return storage
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(plan.output_dir / 'claims.db').resolve()}"
