"""Strategy overlap: mean Jaccard of sampled negative sets, per dataset × model."""

from __future__ import annotations

import polars as pl

from negbench.report.diagnostics import overlap_matrix
from negbench.report.overlap import negative_overlap
from negbench.run.store.parquet import ResultStore


def rows(*runs: tuple[str, str], seed: int = 0, status: str = "ok") -> list[dict]:
    return [
        {
            "run_id": rid,
            "dataset": "d",
            "model": "m",
            "strategy": name,
            "seed": seed,
            "status": status,
            "created_at": "2025-01-01T00:00:00",
        }
        for rid, name in runs
    ]


def negatives(run_id: str, sets: dict[str, list[str]]) -> dict[str, list[str]]:
    pairs = [(q, doc) for q, docs in sets.items() for doc in docs]
    return {
        "query_id": [q for q, _ in pairs],
        "positive_id": [f"p-{q}" for q, _ in pairs],
        "doc_id": [doc for _, doc in pairs],
    }


def test_identical_sets_overlap_one_disjoint_zero_partial_in_between(tmp_path):
    store = ResultStore(tmp_path)
    sets = {
        "a": {"q1": ["x", "y"], "q2": ["z"]},
        "b": {"q1": ["y", "x"], "q2": ["z"]},  # same sets, other order
        "c": {"q1": ["u", "v"], "q2": ["w"]},  # disjoint from a
        "e": {"q1": ["x", "u"], "q2": ["z"]},  # q1: 1/3, q2: 1 → mean 2/3 with a
    }
    for row in rows(*((f"r{name}", name) for name in sets)):
        store.append(row, None, negatives(row["run_id"], sets[row["strategy"]]))
    store.append(rows(("rf", "in-batch"))[0])  # no sampled negatives: absent from the matrix
    overlap = negative_overlap(store.rows(), store.negatives())
    score = {(r["strategy_a"], r["strategy_b"]): r["jaccard"] for r in overlap.iter_rows(named=True)}
    assert score[("a", "b")] == score[("b", "a")] == 1.0
    assert score[("a", "c")] == 0.0
    assert abs(score[("a", "e")] - 2 / 3) < 1e-12
    assert all(score[(s, s)] == 1.0 for s in sets) and "in-batch" not in {a for a, _ in score}
    assert (overlap["examples"] == 2).all()
    matrix = overlap_matrix(overlap, "d", "m")
    labels, values = matrix
    assert labels == ["a", "b", "c", "e"] and [row[0] for row in values] == [1.0, 1.0, 0.0, 2 / 3]


def test_only_ok_rows_of_the_seed_and_examples_both_have(tmp_path):
    store = ResultStore(tmp_path)
    store.append(rows(("r1", "a"))[0], None, negatives("r1", {"q1": ["x"], "q2": ["y"]}))
    store.append(rows(("r2", "b"))[0], None, negatives("r2", {"q1": ["x"]}))  # q2 missing: not averaged
    store.append(rows(("r3", "c"), seed=1)[0], None, negatives("r3", {"q1": ["x"]}))
    store.append(rows(("r4", "f"), status="failed: crashed")[0], None, negatives("r4", {"q1": ["x"]}))
    overlap = negative_overlap(store.rows(), store.negatives())
    pairs = {(r["strategy_a"], r["strategy_b"]): (r["jaccard"], r["examples"]) for r in overlap.iter_rows(named=True)}
    assert pairs[("a", "b")] == (1.0, 1)
    assert {a for a, _ in pairs} == {"a", "b"}
    assert negative_overlap(store.rows(), store.negatives(), seed=1)["strategy_a"].to_list() == ["c"]
    assert negative_overlap(pl.DataFrame(), store.negatives()).is_empty()


def test_negatives_are_replaced_by_run_id(tmp_path):
    store = ResultStore(tmp_path)
    row = rows(("r1", "a"))[0]
    store.append(row, None, negatives("r1", {"q1": ["x", "y"]}))
    store.append(row, None, negatives("r1", {"q1": ["z"]}))
    assert store.negatives()["doc_id"].to_list() == ["z"]
    store.append(row)  # rerun without negatives: the old ones go
    assert store.negatives().is_empty() and store.rows().height == 1
