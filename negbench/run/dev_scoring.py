"""Dev scoring: what every dev evaluation (tuning trials, pruning epochs, final runs' learning curves) searches —
the evaluation corpus or its pool (``[evaluation] dev_corpus``, :mod:`negbench.evaluation.pool`). The test split
never comes here: :meth:`negbench.run.final.FinalStage.score` searches the whole evaluation corpus for it."""

from __future__ import annotations

import time

from rich.markup import escape

from negbench.config.suite import ModelConfig
from negbench.core.mining import MiningServices
from negbench.data.dataset import RetrievalDataset
from negbench.evaluation.pool import POOLED, DevCorpus, build_dev_pool, dev_corpus_mode
from negbench.evaluation.retrieval import EvalResult
from negbench.run.measure import release_memory
from negbench.run.plan import Job, services_key

__all__ = ["DevScoring"]


class DevScoring:
    """The part of :class:`negbench.run.suite.SuiteRunner` that scores dev."""

    def score_dev(
        self, model, dataset: RetrievalDataset, metrics: list[str], model_cfg: ModelConfig, services: MiningServices
    ) -> EvalResult:
        """Metrics of ``model`` on the dev split over :meth:`dev_corpus`: every dev scoring goes through here."""
        dev = self.dev_corpus(dataset, model_cfg, services)
        return self.score(model, dataset, dataset.dev, metrics, model_cfg, corpus=dev.corpus)

    def dev_corpus(self, dataset: RetrievalDataset, model_cfg: ModelConfig, services: MiningServices) -> DevCorpus:
        """What dev scoring searches on ``dataset`` with this model: the evaluation corpus, or its pool (built from
        ``services``' base model and cached on disk by them); memoised per dataset × model."""
        key = services_key(dataset, model_cfg)
        if key not in self._dev_corpora:
            ev = self.suite.evaluation
            if dev_corpus_mode(ev.dev_corpus, len(dataset.eval_corpus), ev.dev_pool_min_docs) == POOLED:
                pool = build_dev_pool(dataset, services, ev.dev_pool_depth)
                self._dev_corpora[key] = DevCorpus.pooled(pool, dataset.eval_corpus)
            else:
                self._dev_corpora[key] = DevCorpus.full(dataset.eval_corpus)
        return self._dev_corpora[key]

    def scores_dev(self, job: Job) -> bool:
        """Whether ``job`` scores dev: a training strategy on a dataset with dev queries, tuned or with a learning
        curve."""
        tuned = self.suite.tuning.n_trials > 0 and bool(job.spec.space)
        return bool(job.dataset.dev) and job.spec.cls.trains and (tuned or self.suite.evaluation.curve_points != 0)

    def dev_label(self, job: Job, services: MiningServices) -> str | None:
        """A row's ``dev_corpus``: "full" or "pooled:<documents>" when ``job`` scores dev, else None."""
        return self.dev_corpus(job.dataset, job.model_cfg, services).label if self.scores_dev(job) else None

    def prepare_dev_corpora(self, jobs: list[Job]) -> None:
        """Build (or load) the pool of every dataset × model whose pending jobs score dev on one, before any job
        runs, and say once what it holds. Its services (BM25 index, base model, corpus embeddings) are dropped
        after, so they sit in no job's measured memory: jobs read the pool from the disk cache."""
        ev = self.suite.evaluation
        for job in jobs:
            key = services_key(job.dataset, job.model_cfg)
            if key in self._dev_corpora or not self.scores_dev(job) or not self.pending_seeds(job):
                continue
            if dev_corpus_mode(ev.dev_corpus, len(job.dataset.eval_corpus), ev.dev_pool_min_docs) != POOLED:
                continue
            started = time.perf_counter()
            pool = self.dev_corpus(job.dataset, job.model_cfg, self.services_for(job)).pool
            self._services.pop(key, None)
            release_memory(self.device_for(job))
            self.say(
                f"dev corpus of {escape(job.dataset.name)} × {escape(job.model_cfg.display_name)}: pooled "
                f"{pool.describe()} ({time.perf_counter() - started:.1f} s; the test split searches all documents)"
            )
