"""`negbench compare` on synthetic stores built with ResultStore.append (no training)."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from negbench.cli import app
from negbench.errors import NegbenchError
from negbench.report.compare import compare_stores
from negbench.testing.results import synthetic_store

runner = CliRunner()
EFFECTS = {"none": -0.1, "in-batch": 0.0, "bm25": 0.05}


def build(path, effects=EFFECTS, **kwargs):
    kwargs.setdefault("n_queries", 80)
    kwargs.setdefault("noise", 0.04)
    return synthetic_store(path, effects, **kwargs).directory


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build(tmp_path_factory.mktemp("base"))


def compare(*args: str):
    return runner.invoke(app, ["compare", *map(str, args)])


def test_identical_stores_exit_0(base, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(base, copy)
    result = compare(base, copy)
    assert result.exit_code == 0, result.output
    assert "no regression" in result.output
    cmp = compare_stores(base, copy)
    assert len(cmp.jobs) == 3 and not cmp.regressions
    assert all(c.p_value == 1.0 and c.delta == 0 for j in cmp.jobs for c in j.metrics)


def test_significant_drop_exit_3(base, tmp_path) -> None:
    new = build(tmp_path / "new", {**EFFECTS, "bm25": -0.02})  # bm25 loses 0.07 on every query
    result = compare(base, new, "--metric", "ndcg@10", "--summary", tmp_path / "summary.md")
    assert result.exit_code == 3, result.output
    assert "ACCURACY DROP" in result.output and "bm25" in result.output
    flagged = compare_stores(base, new).regressions
    assert [j.strategy for j in flagged] == ["bm25"]
    assert "**1 regression(s)**" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_drop_within_noise_exit_0(base, tmp_path) -> None:
    # Same systems, fresh noise: every mean moves a little; nothing is both beyond tolerance and significant.
    new = build(tmp_path / "noise", rng_seed=7)
    result = compare(base, new)
    assert result.exit_code == 0, result.output
    assert any(c.delta < 0 for j in compare_stores(base, new).jobs for c in j.metrics)


def test_drop_beyond_tolerance_but_not_significant_exit_0(tmp_path) -> None:
    # Few noisy queries: a mean drop larger than --max-drop that the paired test cannot tell from noise.
    noisy = {"n_queries": 12, "noise": 0.25, "seeds": (0, 1)}
    base = build(tmp_path / "b", rng_seed=1, **noisy)
    new = build(tmp_path / "n", {**EFFECTS, "bm25": 0.02}, rng_seed=3, **noisy)
    cmp = compare_stores(base, new, max_drop=0.005)
    drops = [c for j in cmp.jobs for c in j.metrics if -c.delta > 0.03]
    assert drops and all(c.p_holm >= 0.05 and not c.regression for c in drops)
    assert compare(base, new, "--max-drop", "0.005").exit_code == 0


def test_significant_but_within_tolerance_exit_0(base, tmp_path) -> None:
    new = build(tmp_path / "small", {**EFFECTS, "bm25": 0.045})  # a real but tiny drop of 0.005
    assert compare(base, new, "--max-drop", "0.02").exit_code == 0


def test_throughput_drop_exit_3(base, tmp_path) -> None:
    new = build(tmp_path / "slow", throughput={"in-batch": 30.0})  # was ~137 examples/s
    result = compare(base, new)
    assert result.exit_code == 3 and "THROUGHPUT DROP" in result.output
    assert compare(base, new, "--max-throughput-drop-factor", "10").exit_code == 0


def test_failed_job_in_new_exit_3_missing_job_reported(base, tmp_path) -> None:
    failed = build(tmp_path / "failed", failed=("bm25",))
    assert compare(base, failed).exit_code == 3
    fewer = build(tmp_path / "fewer", {"none": -0.1, "in-batch": 0.0})
    result = compare(base, fewer)
    assert result.exit_code == 0 and "missing" in result.output


@pytest.mark.parametrize("case", ["garbage", "absent", "no-per-query", "no-columns"])
def test_malformed_store_exit_2(base, tmp_path, case) -> None:
    bad = tmp_path / "bad"
    if case == "garbage":
        bad.mkdir()
        (bad / "results.parquet").write_bytes(b"PAR1 definitely not parquet")
    elif case == "no-per-query":
        shutil.copytree(base, bad)
        (bad / "per_query.parquet").unlink()
    elif case == "no-columns":
        import polars as pl

        bad.mkdir()
        pl.DataFrame({"x": [1]}).write_parquet(bad / "results.parquet")
    result = compare(base, bad)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.output


def test_bad_options_exit_2(base) -> None:
    assert compare(base, base, "--max-drop", "-1").exit_code == 2
    assert compare(base, base, "--max-throughput-drop-factor", "0.5").exit_code == 2
    assert compare(base, base, "--metric", "status").exit_code == 2
    result = compare(base, base, "--metric", "ndcg@999")
    assert result.exit_code == 2 and "ndcg@999" in result.output
    with pytest.raises(NegbenchError):
        compare_stores(base, base, alpha=2)


def test_device_change_is_reported(base, tmp_path) -> None:
    import polars as pl

    other = tmp_path / "gpu"
    shutil.copytree(base, other)
    rows = pl.read_parquet(other / "results.parquet").with_columns(pl.lit("cuda: H100").alias("device"))
    rows.write_parquet(other / "results.parquet")
    result = compare(base, other)
    assert result.exit_code == 0 and "devices differ" in result.output


def test_many_small_gains_and_a_few_large_losses_are_not_a_regression(tmp_path) -> None:
    """The mean drops (50 queries +0.01, 10 queries −0.20) but the rank test finds NEW *better*: the gate
    used a two-sided p with the mean's direction and flagged it as an accuracy drop."""
    import polars as pl

    base = build(tmp_path / "base", {"in-batch": 0.0}, n_queries=60, noise=0.0)
    new = tmp_path / "new"
    shutil.copytree(base, new)
    per_query = pl.read_parquet(new / "per_query.parquet")
    qids = sorted(per_query["query_id"].unique().to_list())
    shift = {q: (0.01 if i < 50 else -0.20) for i, q in enumerate(qids)}
    per_query = per_query.with_columns(pl.col("score") + pl.col("query_id").replace_strict(shift, default=0.0))
    per_query.write_parquet(new / "per_query.parquet")
    rows = pl.read_parquet(new / "results.parquet")
    rows.with_columns(pl.col("ndcg@10") - 0.025).write_parquet(new / "results.parquet")
    cmp = compare_stores(base, new, metrics=["ndcg@10"])
    (check,) = cmp.jobs[0].metrics
    assert check.delta == pytest.approx(-0.025)
    assert not cmp.regressions, check


def test_stores_with_no_job_in_common_exit_2_nothing_compared(base, tmp_path) -> None:
    other = build(tmp_path / "other", datasets=("elsewhere",))
    result = compare(base, other, "--summary", tmp_path / "summary.md")
    assert result.exit_code == 2, result.output
    assert "no regression" not in result.output
    assert "error: nothing compared: the stores have no job (dataset, model, strategy) in common" in result.output
    assert "0 job(s) compared, 3 missing from new, 3 added in new" in result.output
    assert "**nothing compared**" in (tmp_path / "summary.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("metric_columns", [False, True])
def test_new_store_without_a_finished_row_exit_2(base, tmp_path, metric_columns) -> None:
    import polars as pl

    failed = build(tmp_path / "failed", failed=tuple(EFFECTS))
    if metric_columns:  # failed rows beside metric columns (null), as a store with other rows has
        rows = pl.read_parquet(failed / "results.parquet")
        rows.with_columns(pl.lit(None, pl.Float64).alias(m) for m in ("ndcg@10", "recall@100")).write_parquet(
            failed / "results.parquet"
        )
    result = compare(base, failed)
    assert result.exit_code == 2, result.output
    assert "no regression" not in result.output
    assert "nothing to compare: the new store has no finished row (status ok)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_summary_line_counts_missing_and_added_jobs(base, tmp_path) -> None:
    other = build(tmp_path / "other", {"in-batch": 0.0, "bm25": 0.05, "dense": 0.03})
    result = compare(base, other)
    assert result.exit_code == 0, result.output
    assert "no regression; 2 job(s) compared, 1 missing from new, 1 added in new" in " ".join(result.output.split())
    assert compare_stores(base, other).nothing_compared is None


def test_summary_into_a_missing_directory_is_one_line_exit_2(base, tmp_path) -> None:
    result = runner.invoke(app, ["compare", str(base), str(base), "--summary", str(tmp_path / "no" / "s.md")])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--summary" in errors[0] and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
