"""The Parquet results store: atomic appends, replace-by-run_id, per-query scores, no half rows."""

from __future__ import annotations

import polars as pl
import pytest

from negbench.run.store import base as results_mod
from negbench.run.store.parquet import ResultStore


def row(run_id: str, ndcg: float, status: str = "ok") -> dict:
    return {
        "run_id": run_id,
        "strategy": "x",
        "dataset": "d",
        "model": "m",
        "seed": 0,
        "status": status,
        "ndcg@10": ndcg,
    }


def test_append_and_replace(tmp_path):
    store = ResultStore(tmp_path)
    store.append(row("a", 0.1), {"ndcg@10": {"q1": 0.1, "q2": 0.2}})
    store.append(row("b", 0.2))
    store.append(row("a", 0.3), {"ndcg@10": {"q1": 0.3}})
    rows = store.rows().sort("run_id")
    assert rows["run_id"].to_list() == ["a", "b"]
    assert rows["ndcg@10"].to_list() == [0.3, 0.2]
    pq = store.per_query()
    assert pq.filter(pl.col("run_id") == "a")["score"].to_list() == [0.3]
    assert store.finished_ids() == {"a", "b"}


def test_failed_rows_are_not_finished(tmp_path):
    store = ResultStore(tmp_path)
    store.append(row("a", 0.0, status="failed: non-finite loss"))
    assert store.finished_ids() == set()


def test_crash_during_write_keeps_previous_file_intact(tmp_path, monkeypatch):
    store = ResultStore(tmp_path)
    store.append(row("a", 0.1))
    before = store.results_path.read_bytes()

    def exploding_write(self, path, *args, **kwargs):
        with open(path, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", exploding_write)
    with pytest.raises(OSError):
        store.append(row("b", 0.2))
    monkeypatch.undo()
    assert store.results_path.read_bytes() == before
    assert store.rows()["run_id"].to_list() == ["a"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_malformed_store_is_a_data_error(tmp_path):
    (tmp_path / results_mod.RESULTS_FILE).write_text("not parquet")
    with pytest.raises(results_mod.DataError, match="not a readable Parquet"):
        ResultStore(tmp_path).rows()


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_store_files_are_readable_as_the_umask_allows(tmp_path, umask):
    """results.parquet / per_query.parquet get the mode a plain open() would give (not mkstemp's 0600)."""
    import os
    import stat

    old = os.umask(umask)
    try:
        ResultStore(tmp_path).append(row("a", 0.5), {"ndcg@10": {"q1": 0.5}})
    finally:
        os.umask(old)
    for name in ("results.parquet", "per_query.parquet"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask


def test_reading_while_another_process_replaces_the_store(tmp_path):
    """Workers read results.parquet while another exports it; polars reopening the path between footer and
    pages read two different files ("page header reported the wrong page size")."""
    import threading

    import polars as pl

    from negbench.run.store.base import read_parquet, write_parquet_atomic

    path = tmp_path / "results.parquet"
    frames = [
        pl.DataFrame({"run_id": [f"r{i}"] * (50 + 97 * k), "x": list(range(50 + 97 * k))})
        for k, i in enumerate(range(6))
    ]
    write_parquet_atomic(frames[0], path)
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            write_parquet_atomic(frames[k % len(frames)], path)
            k += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            assert read_parquet(path).height in {f.height for f in frames}
    finally:
        stop.set()
        thread.join()
