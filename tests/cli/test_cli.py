"""The CLI end to end on the toy corpus with the tiny encoder: run, validate, strategies, eval."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
from typer.testing import CliRunner

from negbench.cli import app

runner = CliRunner()


def tuning_block(n_trials: int) -> str:
    """A ``[tuning]`` table (ndcg@10, ``n_trials``) searching ``training.lr`` on a log scale, for ``extra``."""
    return f"""
[tuning]
n_trials = {n_trials}
metric = "ndcg@10"

[tuning.search_space."training.lr"]
type = "float"
low = 1e-4
high = 1e-2
log = true
"""


NO_CURVES = "curve_points = 0\ndiagnostics_every = 0\n"


def suite_text(
    toy_data,
    tiny_model,
    out,
    strategies=("none", "in-batch", "bm25", "dense"),
    extra="",
    isolation="none",
    evaluation=NO_CURVES,
):
    """A toy suite; jobs run in this process unless ``isolation = "process"`` (tested in test_isolation.py;
    a spawned process per job costs seconds of start-up that the other tests need not pay). ``evaluation``
    is the body of its ``[evaluation]`` table: by default no learning curve or hardness probe (their dev
    evaluations would dominate toy runs; tests/core/test_curves.py asks for them)."""
    blocks = "".join(f'[[strategies]]\nname = "{s}"\n' for s in strategies)
    return f"""
[suite]
name = "toy"
seeds = [0]
output_dir = "{out}"
isolation = "{isolation}"

[[datasets]]
source = "{toy_data}"

[[models]]
spec = "{tiny_model}"
max_seq_length = 32

[tracking]
enabled = false

[training]
epochs = 1
batch_size = 16
lr = 1e-3
num_negatives = 1
{extra}
{blocks}
[evaluation]
{evaluation}"""


@pytest.fixture
def suite(tmp_path, toy_data, tiny_model):
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out"))
    return path


def test_run_writes_results_and_leaderboard(suite, tmp_path):
    claim = '\n[[comparisons]]\nbetter = "dense"\nworse = "bm25"\n'  # report-only: no job key changes
    suite.write_text(suite.read_text() + claim)
    result = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    # the store carries the suite it ran, so `negbench report` of the run's folder tests its declared claims
    assert (tmp_path / "out" / "suite.toml").read_text() == suite.read_text()
    report = runner.invoke(app, ["report", str(tmp_path / "out")])
    assert report.exit_code == 0, report.output
    assert "Declared comparisons" in (tmp_path / "out" / "index.html").read_text()
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert sorted(rows["strategy"].to_list()) == ["bm25", "dense", "in-batch", "none"]
    assert (rows["status"] == "ok").all()
    trained = rows.filter(pl.col("strategy") != "none")
    assert (trained["train_examples_per_s"] > 0).all() and (trained["peak_rss_mb"] > 0).all()
    assert rows.filter(pl.col("strategy") == "dense")["neg_score_gap"].item() is not None
    dense = rows.filter(pl.col("strategy") == "dense")
    assert dense["planted_fn_share"].item() is None and dense["planted_fn_rate"].item() == 0.0  # nothing planted
    assert set(json.loads(rows["versions"][0])) >= {"torch", "sentence-transformers", "negbench"}
    board = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "| dense |" in board and "ndcg@10" in board and "| dense &gt; bm25 |" in board
    # a rerun skips every finished job and adds no row
    again = runner.invoke(app, ["run", str(suite), "--no-progress"])
    assert again.exit_code == 0 and "already finished" in again.output
    assert pl.read_parquet(tmp_path / "out" / "results.parquet").height == 4


def test_validate_ok_and_errors(suite, tmp_path, toy_data, tiny_model):
    ok = runner.invoke(app, ["validate", str(suite)])
    assert ok.exit_code == 0 and "4 strategies" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text(suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("dnse",)))
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert "bad.toml: strategies[0].name: unknown strategy 'dnse'; did you mean 'dense'" in result.output
    bad.write_text(
        suite_text(toy_data, tiny_model, tmp_path / "o") + '\n[[strategies]]\nname = "bm25"\n'
        'label = "b2"\nparams = { range_min = 9, range_max = 3 }\n'
    )
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2 and "strategies[4].params" in result.output
    assert "Traceback" not in result.output


def test_missing_dataset_dir_names_the_field(tmp_path, tiny_model):
    path = tmp_path / "s.toml"
    path.write_text(suite_text(tmp_path / "missing", tiny_model, tmp_path / "o"))
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 2
    assert "datasets[0].source: directory not found" in result.output
    assert not (tmp_path / "o" / "results.parquet").exists()


def test_non_finite_loss_is_recorded_and_suite_goes_on(tmp_path, toy_data, tiny_model):
    path = tmp_path / "s.toml"
    path.write_text(
        suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("in-batch", "random")).replace(
            "lr = 1e-3", "lr = 1e9\nmax_grad_norm = 1e30"
        )
    )
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "o" / "results.parquet")
    assert rows.height == 2
    assert set(rows["status"].to_list()) == {"failed: non-finite loss"}


def test_strategies_json_lists_builtins():
    result = runner.invoke(app, ["strategies", "--json"])
    names = {e["name"]: e for e in json.loads(result.output)}
    assert {"none", "in-batch", "random", "bm25", "dense", "positive-aware", "ance"} <= set(names)
    assert names["dense"]["status"] == "ok" and names["dense"]["requires"] == ["dense"]
    table = runner.invoke(app, ["strategies"])
    assert table.exit_code == 0 and "ar2" in table.output and "Zhang et al. 2022" in table.output


def test_generators_lists_the_builtin_rules():
    result = runner.invoke(app, ["generators", "--json"])
    names = {e["name"]: e for e in json.loads(result.output)}
    assert names["rules"]["status"] == "ok" and names["rules"]["distribution"] == "negbench"
    assert names["rules"]["description"].startswith("Offline edits of the positive's key sentence")
    table = runner.invoke(app, ["generators"])
    assert table.exit_code == 0 and "rules" in table.output


def test_eval_json(toy_data, tiny_model):
    result = runner.invoke(
        app, ["eval", "--dataset", str(toy_data), "--model", str(tiny_model), "--json", "--max-seq-length", "32"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output.strip().splitlines()[-1])
    assert set(payload) >= {"ndcg@10", "recall@100", "mrr@10", "map@100"} and payload["queries"] == 24


def test_eval_bad_metric_exit_2(toy_data, tiny_model):
    result = runner.invoke(
        app, ["eval", "--dataset", str(toy_data), "--model", str(tiny_model), "--metrics", "ndcg@10,f1@3"]
    )
    assert result.exit_code == 2 and "unknown metric 'f1@3'" in result.output


def test_plan_json_shows_equal_budgets_and_declared_departures(tmp_path, toy_data, tiny_model):
    path = tmp_path / "suite.toml"
    text = suite_text(
        toy_data,
        tiny_model,
        tmp_path / "o",
        strategies=("none", "in-batch", "tas-b", "ngame", "neighbourhood", "star", "dense", "rs2"),
    )
    path.write_text(
        text.replace(
            '[[strategies]]\nname = "tas-b"\n', '[[strategies]]\nname = "tas-b"\nparams = { n_clusters = 6 }\n'
        )
        + '[[strategies]]\nname = "large-batch"\ntraining = { batch_size = 32 }\n'
    )
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    jobs = {job["strategy"]: job for job in json.loads(result.stdout)}
    required = {
        "dataset",
        "model",
        "strategy",
        "steps_per_epoch",
        "examples_per_epoch",
        "min_batch_size",
        "max_batch_size",
        "training_runs",
        "budget",
    }
    assert all(required <= set(job) for job in jobs.values())
    equal = [jobs[s] for s in ("in-batch", "tas-b", "ngame", "neighbourhood", "star", "dense")]
    assert {(j["examples_per_epoch"], j["steps_per_epoch"], j["budget"]) for j in equal} == {(80, 5, "equal")}
    assert all(j["min_batch_size"] == j["max_batch_size"] == 16 for j in equal)
    assert "fraction 0.5" in jobs["rs2"]["budget"] and jobs["rs2"]["examples_per_epoch"] < 80
    assert jobs["large-batch"]["budget"] == "batch_size 32 (suite: 16)" and jobs["large-batch"]["max_batch_size"] == 32
    assert jobs["none"]["training_runs"] == 0 and jobs["in-batch"]["training_runs"] == 1


def test_plan_refuses_data_whose_batches_cannot_be_filled(tmp_path, toy_data, tiny_model):
    """One train query with 30 positives needs 30 batches; 124 examples in batches of 16 make 7. `plan` used to
    check only composing strategies and call this suite fine; training then failed on every job."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    train = (data / "qrels" / "train.tsv").read_text().splitlines()
    query = train[1].split("\t")[0]
    docs = [json.loads(line)["_id"] for line in (data / "corpus.jsonl").read_text().splitlines()][:30]
    (data / "qrels" / "train.tsv").write_text("\n".join(train + [f"{query}\t{d}\t1" for d in docs]) + "\n")
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(data, tiny_model, tmp_path / "o", strategies=("in-batch",)))
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 2
    assert "in-batch (negbench's random batches)" in result.output and "k positives needs k batches" in result.output


def test_plan_and_rows_show_the_coverage(tmp_path, toy_data, tiny_model):
    """The smallest share of epochs in which a training example is trained: ``plan`` composes every epoch, a
    run records what it trained. Over 6 epochs the examples in-batch leaves out (n mod 16 per epoch) rotate, so
    none misses more epochs than that requires; tas-b's topic batches are its method (trained as composed: its
    coverage is measured, never above the best); rs2 trains half an epoch's examples by design."""
    path = tmp_path / "suite.toml"
    text = suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("in-batch", "tas-b", "rs2"))
    text = text.replace("epochs = 1\n", "epochs = 6\n").replace(
        '[[strategies]]\nname = "tas-b"\n', '[[strategies]]\nname = "tas-b"\nparams = { n_clusters = 6 }\n'
    )
    path.write_text(text)
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    jobs = {job["strategy"]: job for job in json.loads(result.stdout)}
    n = jobs["in-batch"]["training_examples"]
    left = n - jobs["in-batch"]["examples_per_epoch"]
    assert 0 < left < 16
    best = 1 - math.ceil(6 * left / n) / 6
    assert jobs["tas-b"]["coverage"] <= best + 1e-9
    assert jobs["in-batch"]["coverage"] == pytest.approx(best)
    for name in ("in-batch", "tas-b"):
        assert jobs[name]["left_out_per_epoch"] == left
        assert (
            f"{left} of {n} examples left out per epoch ({n} is not a multiple of batch_size 16)"
            in (jobs[name]["coverage_note"])
        )
    assert jobs["rs2"]["coverage"] < best and "by design" in jobs["rs2"]["coverage_note"]
    table = runner.invoke(app, ["plan", str(path)])
    assert table.exit_code == 0 and "coverage" in table.output and f"{left} out/epoch" in table.output
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "o" / "results.parquet")
    coverage = dict(zip(rows["strategy"].to_list(), rows["coverage"].to_list(), strict=True))
    assert coverage == pytest.approx({name: job["coverage"] for name, job in jobs.items()})


def test_markup_in_a_label_is_printed_as_text(tmp_path, toy_data, tiny_model):
    path = tmp_path / "suite.toml"
    path.write_text(
        suite_text(toy_data, tiny_model, tmp_path / "o", strategies=())
        + '[[strategies]]\nname = "in-batch"\nlabel = "in-batch [/ablation] [bold]x"\n'
    )
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output


def test_a_ranker_and_generated_texts_run_end_to_end(tmp_path, toy_data, tiny_model):
    """ar2 (a strategy-owned ranker) and generated (training-only texts) through the whole run: rows, the
    negatives store (generated texts named by content) and the score gap over generated texts."""
    path = tmp_path / "s.toml"
    body = suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("ar2", "generated"))
    path.write_text(body.replace('name = "ar2"\n', 'name = "ar2"\nparams = { ranker_warmup = 1, ranker_lr = 1e-3 }\n'))
    result = runner.invoke(app, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "o" / "results.parquet")
    assert sorted(rows["strategy"]) == ["ar2", "generated"] and (rows["status"] == "ok").all()
    assert rows["neg_score_gap"].null_count() == 0
    run_id = rows.filter(pl.col("strategy") == "generated")["run_id"].item()
    generated = pl.read_parquet(tmp_path / "o" / "negatives" / f"{run_id}.parquet")
    assert generated["doc_id"].str.starts_with("generated:").sum() == generated.height > 0


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], "error: negbench run: Missing argument 'suite'."),
        (["worker", "s.toml", "--heartbeat", "abc"], "error: negbench worker: Invalid value for '--heartbeat'"),
        (["strategies", "--bogus"], "error: negbench strategies: No such option: --bogus"),
        (["nosuch"], "error: negbench: No such command 'nosuch'."),
    ],
)
def test_the_command_lines_own_errors_are_one_line(argv, expected, capsys):
    """A missing argument or an option that does not parse used to print typer's boxed usage panel."""
    from negbench.cli import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), captured.err
    assert captured.out == ""


def test_plan_says_what_a_short_run_never_exercises(tmp_path, toy_data, tiny_model):
    """scifact-cpu's dbpm row (one epoch) equalled in-batch on every query and seed: DBPM judges a pair from its
    second epoch on. ``plan`` now says so per job, in the table's notes and in ``--json``."""
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("in-batch", "dbpm")))
    jobs = {job["strategy"]: job for job in json.loads(runner.invoke(app, ["plan", str(path), "--json"]).stdout)}
    assert jobs["in-batch"]["unexercised"] is None and "never re-weights a pair" in jobs["dbpm"]["unexercised"]
    table = runner.invoke(app, ["plan", str(path)])
    line = next(x for x in table.output.splitlines() if x.startswith("note: dbpm on "))
    assert table.exit_code == 0 and "judges a pair once it has 1 past loss(es) (min_history)" in line and " · " in line


def test_plan_says_a_tuned_jobs_note_is_about_the_declared_params(tmp_path, toy_data, tiny_model):
    """A tuned job may be given other parameters than those the note judges: its note says so; an untuned one's
    does not."""
    path = tmp_path / "suite.toml"
    for trials, expected in ((2, True), (0, False)):
        text = suite_text(toy_data, tiny_model, tmp_path / "o", strategies=("dbpm",), extra=tuning_block(trials))
        path.write_text(text)
        (job,) = json.loads(runner.invoke(app, ["plan", str(path), "--json"]).stdout)
        assert "never re-weights a pair" in job["unexercised"], job
        assert job["unexercised"].endswith("(with the declared params; tuning may change them)") is expected
