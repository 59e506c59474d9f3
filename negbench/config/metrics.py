"""Metric names (``ndcg@10``) and their pytrec_eval measures, computed the way BEIR and MTEB do."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytrec_eval

__all__ = ["Metric", "evaluate_run", "max_cutoff", "parse_metric"]

# negbench name -> pytrec_eval measure family. MRR@k is trec_eval's recip_rank over a run cut to k,
# which is what BEIR/MTEB's hand-written MRR@k computes.
_FAMILIES = {"ndcg": "ndcg_cut", "recall": "recall", "map": "map_cut", "precision": "P", "mrr": "recip_rank"}
_PATTERN = re.compile(r"^(ndcg|recall|map|precision|mrr)@([1-9][0-9]*)$")


@dataclass(frozen=True)
class Metric:
    name: str
    family: str
    k: int

    @property
    def measure(self) -> str:
        return "recip_rank" if self.family == "mrr" else f"{_FAMILIES[self.family]}.{self.k}"

    @property
    def key(self) -> str:
        return "recip_rank" if self.family == "mrr" else f"{_FAMILIES[self.family]}_{self.k}"


def parse_metric(name: str) -> Metric:
    match = _PATTERN.match(name.strip().lower())
    if not match:
        raise ValueError(f"unknown metric {name!r}: use ndcg@k, recall@k, map@k, precision@k or mrr@k (e.g. ndcg@10)")
    return Metric(name=match.group(0), family=match.group(1), k=int(match.group(2)))


def evaluate_run(
    qrels: dict[str, dict[str, int]],
    run: dict[str, dict[str, float]],
    metrics: list[str],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score a run with pytrec_eval; return (mean per metric, per-query scores per metric).

    Queries in ``qrels`` that the run does not cover count as zero, as in trec_eval with ``-c``.
    """
    parsed = [parse_metric(m) for m in metrics]
    per_query: dict[str, dict[str, float]] = {m.name: {} for m in parsed}
    plain = [m for m in parsed if m.family != "mrr"]
    if plain:
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {m.measure for m in plain})
        scores = evaluator.evaluate(run)
        for m in plain:
            per_query[m.name] = {qid: float(scores.get(qid, {}).get(m.key, 0.0)) for qid in qrels}
    for m in (m for m in parsed if m.family == "mrr"):
        cut = {qid: dict(sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))[: m.k]) for qid, docs in run.items()}
        scores = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
        per_query[m.name] = {qid: float(scores.get(qid, {}).get("recip_rank", 0.0)) for qid in qrels}
    means = {name: float(np.mean(list(vals.values()))) if vals else 0.0 for name, vals in per_query.items()}
    return means, per_query


def max_cutoff(metrics: list[str]) -> int:
    return max(parse_metric(m).k for m in metrics)
