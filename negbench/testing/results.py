"""Synthetic results stores for report, compare and benchmark tests (no training; seconds to build).

Per-query scores are ``clip(difficulty_q + effect_strategy + noise, 0, 1)``; the row's metric is the mean of
its per-query scores, as for a real run, so significance tests and leaderboards see consistent numbers.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from negbench.run.store.parquet import ResultStore

__all__ = [
    "DEFAULT_STRATEGIES",
    "synthetic_frames",
    "synthetic_overlap",
    "synthetic_rows",
    "synthetic_steps",
    "synthetic_store",
]

DEFAULT_STRATEGIES: dict[str, float] = {"none": -0.10, "in-batch": 0.0, "bm25": 0.05, "dense": 0.03}


def synthetic_rows(
    strategies: Mapping[str, float] | None = None,
    *,
    datasets: Sequence[str] = ("toy",),
    model: str = "tiny",
    seeds: Sequence[int] = (0, 1, 2),
    n_queries: int = 60,
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
    noise: float = 0.05,
    throughput: Mapping[str, float | None] | None = None,
    rng_seed: int = 0,
    strategy_names: Mapping[str, str] | None = None,
    params: Mapping[str, dict[str, Any]] | None = None,
    failed: Sequence[str] = (),
) -> list[tuple[dict[str, Any], dict[str, dict[str, float]] | None]]:
    """``(row, per_query)`` pairs for every dataset × strategy × seed.

    ``strategies`` maps a label to its effect on every per-query score; ``strategy_names`` maps a label to
    its registered name (default: the label); labels in ``failed`` get a failed row without metrics.
    """
    strategies = dict(strategies if strategies is not None else DEFAULT_STRATEGIES)
    rng = np.random.default_rng(rng_seed)
    out: list[tuple[dict[str, Any], dict[str, dict[str, float]] | None]] = []
    for d_index, dataset in enumerate(datasets):
        difficulty = {m: np.random.default_rng(1000 + d_index).uniform(0.1, 0.8, n_queries) for m in metrics}
        for s_index, (label, effect) in enumerate(strategies.items()):
            name = (strategy_names or {}).get(label, label)
            tp = (throughput or {}).get(label, None if name == "none" else 100.0 + 37.0 * s_index)
            for seed in seeds:
                run_id = f"{dataset}-{label}-{seed}"
                row: dict[str, Any] = {
                    "run_id": run_id,
                    "suite": "synthetic",
                    "dataset": dataset,
                    "dataset_fingerprint": f"fp-{dataset}",
                    "model": model,
                    "model_fingerprint": f"fp-{model}",
                    "strategy": label,
                    "strategy_name": name,
                    "params": json.dumps((params or {}).get(label, {}), sort_keys=True),
                    "seed": seed,
                    "status": "ok",
                    "error": None,
                    "train_examples_per_s": None if tp is None else tp * (1 + 0.02 * rng.standard_normal()),
                    "train_s": 10.0,
                    "mine_s": 1.0,
                    "eval_s": 1.0,
                    "steps": 10,
                    "examples_seen": 1000,
                    "peak_rss_mb": 600.0 + 25.0 * s_index,
                    "peak_gpu_mb": None,
                    "neg_score_gap": None if name in {"none", "in-batch"} else 0.05 * s_index,
                    "planted_fn_share": None,
                    "device": "cpu: synthetic",
                    "versions": json.dumps({"negbench": "0.1.0", "torch": "2.x"}),
                    "config_hash": "c0ffee",
                    "git_rev": "deadbeef",
                    "created_at": dt.datetime(2025, 1, 1, 12, seed, tzinfo=dt.UTC).isoformat(),
                }
                if label in failed:
                    row.update(status="failed: RuntimeError", error="RuntimeError: boom <b>bold</b>")
                    out.append((row, None))
                    continue
                per_query: dict[str, dict[str, float]] = {}
                for metric in metrics:
                    jitter = noise * rng.standard_normal(n_queries)
                    scores = np.clip(difficulty[metric] + effect + jitter, 0, 1)
                    per_query[metric] = {f"q{i}": float(s) for i, s in enumerate(scores)}
                    row[metric] = float(scores.mean())
                out.append((row, per_query))
    return out


def synthetic_frames(pairs) -> tuple[Any, Any]:
    """(rows, per-query scores) polars frames from :func:`synthetic_rows` pairs, without writing a store."""
    import polars as pl

    rows = pl.DataFrame([r for r, _ in pairs])
    per_query = pl.DataFrame(
        [
            {"run_id": r["run_id"], "metric": m, "query_id": q, "score": s}
            for r, pq in pairs
            for m, scores in (pq or {}).items()
            for q, s in scores.items()
        ]
    )
    return rows, per_query


def synthetic_store(directory: str | Path, strategies: Mapping[str, float] | None = None, **kwargs: Any) -> ResultStore:
    """Write :func:`synthetic_rows` to a :class:`ResultStore` at ``directory`` (see its arguments)."""
    store = ResultStore(directory)
    for row, per_query in synthetic_rows(strategies, **kwargs):
        store.append(row, per_query)
    return store


def synthetic_steps(
    rows: Any,
    effects: Mapping[str, float] | None = None,
    *,
    points: int = 5,
    metric: str = "ndcg@10",
    hardness: Sequence[str] = ("pos_score", "neg_score", "hardest_share", "active_negatives"),
) -> Any:
    """A ``steps.parquet`` frame for the finished runs of ``rows``: a rising dev curve per run (a strategy's
    effect raises it and makes it faster) and linear hardness series."""
    import polars as pl

    effects = dict(effects if effects is not None else DEFAULT_STRATEGIES)
    records = []
    for row in rows.filter(pl.col("status") == "ok").iter_rows(named=True):
        eff = effects.get(row["strategy"], 0.0)
        for k in range(1, points + 1):
            common = {"run_id": row["run_id"], "step": 10 * k, "examples": 320 * k}
            records.append(
                {
                    **common,
                    "kind": "dev",
                    "metric": metric,
                    "wall_s": 2.0 * k * (1 - eff),
                    "value": 0.3 + eff + 0.05 * float(np.log(k)) + 0.001 * row["seed"],
                }
            )
            records += [
                {**common, "kind": "hardness", "metric": name, "wall_s": 2.0 * k, "value": 0.5 + (i + 1) * eff * k}
                for i, name in enumerate(hardness)
            ]
    return pl.DataFrame(
        records,
        schema={
            "run_id": pl.String,
            "step": pl.Int64,
            "examples": pl.Int64,
            "kind": pl.String,
            "metric": pl.String,
            "wall_s": pl.Float64,
            "value": pl.Float64,
        },
    ).select("run_id", "kind", "metric", "step", "examples", "wall_s", "value")


def synthetic_overlap(rows: Any, jaccard: float = 0.3) -> Any:
    """An overlap frame (dataset, model, strategy_a, strategy_b, jaccard) over the strategies of ``rows``: every
    pair ``jaccard``, except pairs whose names share a first letter (0.8)."""
    import polars as pl

    out = []
    for (dataset, model), group in rows.group_by("dataset", "model", maintain_order=True):
        names = list(dict.fromkeys(group["strategy"].to_list()))
        out += [
            {
                "dataset": dataset,
                "model": model,
                "strategy_a": a,
                "strategy_b": b,
                "jaccard": 0.8 if a[0] == b[0] else jaccard,
            }
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        ]
    return pl.DataFrame(out)
