"""Dev scoring: what every dev evaluation (tuning trials, pruning epochs, final runs' learning curves) searches —
the evaluation corpus or its pool (``[evaluation] dev_corpus``, :mod:`negbench.evaluation.pool`). The test split
never comes here: :meth:`negbench.run.final.FinalStage.score` searches the whole evaluation corpus for it."""

from __future__ import annotations

import time

from rich.markup import escape

from negbench.config.suite import ModelConfig
from negbench.core.budget import COMPUTE
from negbench.core.mining import MiningServices
from negbench.core.probes.curves import auto_curve_points
from negbench.core.setup import plain_loss_flops
from negbench.data.dataset import RetrievalDataset
from negbench.evaluation.pool import POOLED, DevCorpus, build_dev_pool, dev_corpus_mode, judged_indices
from negbench.evaluation.retrieval import EvalResult
from negbench.run.measure import release_memory
from negbench.run.plan import Job, may_score_dev, services_key

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

    def curve_points_for(self, dataset: RetrievalDataset, model_cfg: ModelConfig, services: MiningServices) -> int:
        """A final run's dev learning-curve points on ``dataset`` with this model: ``[evaluation] curve_points`` (none
        without dev queries), or for "auto" :func:`~negbench.core.probes.curves.auto_curve_points` of one training
        figure for every strategy of the dataset × model (:func:`~negbench.core.setup.plain_loss_flops`: the
        training pairs' tokens) and of the FLOPs of one dev scoring (the tokens of the dev corpus — the pool's
        when pooled — and of the dev queries). Only those texts are counted (:meth:`MiningServices.token_counts`,
        cached on disk), never the rest of the corpus.

        **No pool for a curve "auto" would not take.** Every pool holds the dev queries' judged documents
        (:func:`~negbench.evaluation.pool.judged_indices`), and so does the full evaluation corpus: a dev scoring
        encodes at least those and the dev queries. ``auto_curve_points`` never grows as one scoring's FLOPs grow
        (the affordable count, ``floor(share · training / scoring)``, only falls; the cap and the three-point floor
        keep that order). So when that lower bound already gives 0 points, the true dev corpus, whatever it holds,
        gives 0 too, and the dev corpus is not built (no BM25 index, no corpus encoding for a pool) nor counted:
        the result is the one counting it would give."""
        points = self.suite.evaluation.curve_points if dataset.dev else 0
        if points != "auto":
            return points
        examples, qids = dataset.training_examples("train"), sorted(dataset.dev)
        judged = judged_indices(dataset)
        with services.counting():  # the base model loaded at most once for these counts, and let go after
            pairs = services.token_counts([e.doc for e in examples], [e.query_id for e in examples])
            reference = plain_loss_flops(examples, pairs, self.suite.training)
            queries = services.token_counts((), qids).queries(qids)
            least = services.token_counts(judged, ()).docs(judged) + queries
            if auto_curve_points(reference, pairs.encode(least)) == 0:
                return 0
            docs = self.dev_corpus(dataset, model_cfg, services).indices
            return auto_curve_points(reference, pairs.encode(services.token_counts(docs, ()).docs(docs) + queries))

    def scores_dev(self, job: Job) -> bool:
        """Whether ``job`` scores dev: a training strategy on a dataset with dev queries, tuned or with a learning
        curve (for "auto", one it takes: :meth:`curve_points_for`)."""
        if not may_score_dev(self.suite, job.dataset, job.spec):
            return False
        if self.suite.tuning.n_trials > 0 and bool(job.spec.space):
            return True
        return self.curve_points_for(job.dataset, job.model_cfg, self.services_for(job)) > 0

    def dev_label(self, job: Job, services: MiningServices) -> str | None:
        """A row's ``dev_corpus``: "full" or "pooled:<documents>" when ``job`` scores dev, else None."""
        return self.dev_corpus(job.dataset, job.model_cfg, services).label if self.scores_dev(job) else None

    def prepare_token_counts(self, jobs: list[Job]) -> None:
        """Under ``[training] budget = "compute"``: count the whole corpus's tokens (the estimate prices encoding
        it) with every base model and teacher of the pending training jobs, once, before any job runs; jobs read
        them from the disk cache (:meth:`MiningServices.token_sizes`), outside their measured phases."""
        baseline = [s for s in self.plan.strategies if s.label == self.suite.suite.baseline]
        for job in jobs:
            if not job.spec.cls.trains or not self.pending_seeds(job):
                continue
            if self.suite.training.budget != COMPUTE and self.training_for(job.spec).budget != COMPUTE:
                continue
            device = self.device_for(job)
            guides = [self.guide_services(job.dataset, job.model_cfg, s, device) for s in [job.spec, *baseline]]
            for services in [self.services_for(job), *guides]:
                if services is not None:
                    services.token_sizes(keep_model=False)

    def prepare_dev_corpora(self, jobs: list[Job]) -> None:
        """Build (or load) the pool of every dataset × model whose pending jobs score dev on one, before any job
        runs, and say once what it holds; "auto" curves are decided here too, so their token counts are taken
        before any job (jobs read them from the disk cache). Its services (BM25 index, base model, corpus
        embeddings) are dropped after, so they sit in no job's measured memory: jobs read the pool from the disk
        cache."""
        ev = self.suite.evaluation
        for job in jobs:
            key = services_key(job.dataset, job.model_cfg)
            if key in self._dev_corpora or not self.pending_seeds(job):
                continue
            started = time.perf_counter()
            if job.dataset.dev and job.spec.cls.trains:  # "auto" decided (its counts taken) here, tuned or not
                self.curve_points_for(job.dataset, job.model_cfg, self.services_for(job))
            if not self.scores_dev(job):  # a pool is built only for a curve "auto" takes, or for tuning
                continue
            if dev_corpus_mode(ev.dev_corpus, len(job.dataset.eval_corpus), ev.dev_pool_min_docs) != POOLED:
                continue
            pool = self.dev_corpus(job.dataset, job.model_cfg, self.services_for(job)).pool
            self._services.pop(key, None)
            release_memory(self.device_for(job))
            self.say(
                f"dev corpus of {escape(job.dataset.name)} × {escape(job.model_cfg.display_name)}: pooled "
                f"{pool.describe()} ({time.perf_counter() - started:.1f} s; the test split searches all documents)"
            )
