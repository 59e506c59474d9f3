"""Workers' results in the SQL database they share; the Parquet store exported from it."""

from __future__ import annotations

import polars as pl

from negbench.run.store.parquet import ResultStore
from negbench.run.store.sql import SqlResultStore


def row(run_id: str, ndcg: float, status: str = "ok", **extra) -> dict:
    return {
        "run_id": run_id,
        "suite": "toy",
        "strategy": "x",
        "dataset": "d",
        "model": "m",
        "seed": 0,
        "status": status,
        "ndcg@10": ndcg,
        **extra,
    }


def test_two_workers_on_one_database_see_each_others_rows(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    out = tmp_path / "out"
    a, b = SqlResultStore(out, url, store="toy"), SqlResultStore(out, url, store="toy")
    a.append(row("r1", 0.1), {"ndcg@10": {"q1": 0.1, "q2": 0.2}})
    b.append(row("r2", 0.2, train_s=1.5), {"ndcg@10": {"q1": 0.3}})
    b.append(row("r3", 0.0, status="failed: crashed"))
    a.append(row("r1", 0.4), {"ndcg@10": {"q1": 0.4}})  # a rerun replaces by run_id
    for store in (a, b):
        assert store.finished_ids() == {"r1", "r2"}
        assert sorted(store.rows()["run_id"].to_list()) == ["r1", "r2", "r3"]
    exported = ResultStore(out)  # what reports and compare read
    rows = exported.rows().sort("run_id")
    assert rows["run_id"].to_list() == ["r1", "r2", "r3"]
    assert rows["ndcg@10"].to_list() == [0.4, 0.2, 0.0]
    assert rows["train_s"].to_list() == [None, 1.5, None]
    pq = exported.per_query().sort("run_id", "query_id")
    assert pq.select("run_id", "query_id", "score").rows() == [("r1", "q1", 0.4), ("r2", "q1", 0.3)]
    other = SqlResultStore(tmp_path / "elsewhere", url, store="other-suite")
    assert other.finished_ids() == set() and other.rows().is_empty()


def test_export_keeps_an_earlier_single_machine_runs_rows(tmp_path):
    out = tmp_path / "out"
    ResultStore(out).append(row("old", 0.3), {"ndcg@10": {"q1": 0.3}})
    store = SqlResultStore(out, f"sqlite:///{tmp_path / 'db.sqlite'}", store="toy")
    assert store.finished_ids() == {"old"}
    store.append(row("new", 0.5), {"ndcg@10": {"q1": 0.5}})
    rows = pl.read_parquet(out / "results.parquet")
    assert sorted(rows["run_id"].to_list()) == ["new", "old"]
    assert sorted(pl.read_parquet(out / "per_query.parquet")["run_id"].to_list()) == ["new", "old"]
