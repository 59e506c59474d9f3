"""Learning curves on dev and time-to-target: curve points, storage, the test split untouched, timing."""

from __future__ import annotations

import time

import polars as pl
import pytest
import torch

from negbench.core.probes import curves
from negbench.core.probes.curves import STEPS_SCHEMA, StepRecord, auto_curve_points, curve_steps, time_to_target
from negbench.run.store.parquet import ResultStore


def records_of(steps: pl.DataFrame, run_id: str, kind: str = "dev") -> list[StepRecord]:
    """The records of one run (and kind) from a steps frame, by step."""
    sub = steps.filter((pl.col("run_id") == run_id) & (pl.col("kind") == kind)).sort("step")
    return [
        StepRecord(r["kind"], r["metric"], r["step"], r["examples"], r["wall_s"], r["value"])
        for r in sub.iter_rows(named=True)
    ]


def dev(points):
    """A dev curve from (step, value) pairs: 10 examples and 1.5 s per step."""
    return [StepRecord("dev", "dev_ndcg@10", s, 10 * s, 1.5 * s, v) for s, v in points]


def test_curve_steps_are_even_fractions_ending_at_the_last_step():
    assert curve_steps(100, 4) == [25, 50, 75, 100]
    assert curve_steps(10, 4) == [3, 5, 8, 10]
    assert curve_steps(3, 4) == [1, 2, 3]  # fewer steps than points: no duplicates
    assert curve_steps(100, 0) == [] and curve_steps(0, 4) == []


def test_auto_curve_points_spend_at_most_a_quarter_of_training_on_three_to_four_scorings():
    """A quarter of the training FLOPs buys floor(share / scoring) dev scorings, at most four; fewer than three buy
    none (the quickstart's 10-step runs scored dev four times, each a whole-corpus encoding, before)."""
    assert auto_curve_points(train_flops=1_000, scoring_flops=10) == 4  # 25 affordable: capped at 4
    assert auto_curve_points(train_flops=1_200, scoring_flops=100) == 3  # exactly 3
    assert auto_curve_points(train_flops=1_199, scoring_flops=100) == 0  # 2.99: not a curve
    assert auto_curve_points(train_flops=100, scoring_flops=90) == 0  # one scoring near a whole run's training
    assert auto_curve_points(train_flops=100, scoring_flops=0) == 4  # nothing to encode (no size known): the cap


def test_time_to_target_of_the_runs_own_best():
    curve = dev([(40, 0.50), (10, 0.20), (20, 0.58), (30, 0.60)])  # out of order on purpose
    hit = time_to_target(curve, 0.95)  # target 0.57
    assert (hit.step, hit.examples, hit.wall_s, hit.value) == (20, 200, 30.0, 0.58)
    assert time_to_target(curve, 1.0).step == 30
    assert time_to_target([], 0.95) is None


def test_time_to_target_against_a_shared_best():
    curve = dev([(10, 0.2), (20, 0.4)])
    assert time_to_target(curve, 0.95, best=0.8) is None  # never reaches 0.76
    assert time_to_target(curve, 0.5, best=0.8).step == 20
    assert time_to_target(curve, 0.95).step == 20  # its own best: 0.4


def test_steps_store_replaces_a_runs_records_atomically(tmp_path):
    store = ResultStore(tmp_path)
    assert store.steps().is_empty() and store.steps().schema == pl.Schema(STEPS_SCHEMA)
    store.append_steps("r1", dev([(1, 0.1), (2, 0.2)]))
    store.append_steps("r2", dev([(1, 0.3)]))
    store.append_steps("r1", dev([(5, 0.5)]))
    frame = store.steps().sort("run_id")
    assert frame.schema == pl.Schema(STEPS_SCHEMA)
    assert frame.select("run_id", "step").rows() == [("r1", 5), ("r2", 1)]
    store.append_steps("r2", [])
    assert store.steps()["run_id"].to_list() == ["r1"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _train(ctx, tiny_model, diagnostics=None, steps=4):
    from negbench.config.suite import ModelConfig, TrainingConfig
    from negbench.core.models import load_model
    from negbench.core.training.loop import train
    from negbench.strategies.random_negatives import RandomNegatives

    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(max_steps=steps, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    strategy = RandomNegatives()
    return model, train(model, ctx, strategy, cfg, device="cpu", candidates=strategy.mine(ctx), diagnostics=diagnostics)


def test_curve_evaluation_time_is_out_of_train_s_and_of_wall_s(ctx, tiny_model):
    from negbench.core.training.loop import Diagnostics

    pause, calls = 1.0, []

    def slow_dev(model):
        assert not model.training
        calls.append(time.perf_counter())
        time.sleep(pause)
        return {"ndcg@10": 0.1 * len(calls)}

    before = time.perf_counter()
    _, outcome = _train(ctx, tiny_model, Diagnostics(curve_points=4, evaluate=slow_dev))
    total = time.perf_counter() - before
    curve = [r for r in outcome.step_records if r.kind == "dev"]
    assert [(r.step, r.metric, r.examples) for r in curve] == [
        (1, "dev_ndcg@10", 8),
        (2, "dev_ndcg@10", 16),
        (3, "dev_ndcg@10", 24),
        (4, "dev_ndcg@10", 32),
    ]
    assert outcome.diagnostics_s >= 4 * pause
    assert outcome.train_s <= total - 4 * pause
    for k, (record, called) in enumerate(zip(curve, calls, strict=True)):
        assert record.wall_s <= called - before - k * pause  # earlier evaluations are not training time


def test_diagnostics_do_not_change_what_is_trained(ctx, tiny_model):
    from negbench.core.training.loop import Diagnostics

    plain, _ = _train(ctx, tiny_model)
    probed, outcome = _train(
        ctx, tiny_model, Diagnostics(every=1, curve_points=2, evaluate=lambda model: {"ndcg@10": 0.0})
    )
    assert {r.kind for r in outcome.step_records} == {"hardness", "dev"}
    for x, y in zip(plain.parameters(), probed.parameters(), strict=True):
        assert torch.equal(x, y)


@pytest.fixture
def no_test_split_while_training(monkeypatch):
    """Fail any read of the test split while a model trains; record the qrels each training-time score used."""
    from negbench.data.dataset import RetrievalDataset
    from negbench.run import final as runner
    from negbench.run.suite import SuiteRunner

    training, scored = [False], []
    real_train, real_test, real_score = runner.train, RetrievalDataset.test, SuiteRunner.score

    def guarded_train(*args, **kwargs):
        training[0] = True
        try:
            return real_train(*args, **kwargs)
        finally:
            training[0] = False

    def guarded_test(self):
        assert not training[0], "the test split was read during training"
        return real_test(self)

    def watched_score(self, model, dataset, qrels, *args, **kwargs):
        if training[0]:
            assert dataset._test_qrels is None or qrels is not dataset._test_qrels
            scored.append(qrels is dataset.dev)
        return real_score(self, model, dataset, qrels, *args, **kwargs)

    monkeypatch.setattr(runner, "train", guarded_train)
    monkeypatch.setattr(RetrievalDataset, "test", guarded_test)
    monkeypatch.setattr(SuiteRunner, "score", watched_score)
    return scored


def test_final_runs_write_dev_curves_and_hardness_to_steps_parquet(
    tmp_path, toy_data, tiny_model, no_test_split_while_training
):
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner
    from tests.cli.test_cli import suite_text

    out = tmp_path / "out"
    text = suite_text(
        toy_data,
        tiny_model,
        out,
        strategies=("none", "in-batch", "bm25"),
        evaluation='metrics = ["ndcg@10", "recall@100"]\ndiagnostics_every = 2\ncurve_points = 4\n',
    )
    path = tmp_path / "suite.toml"
    path.write_text(text.replace("enabled = false", "enabled = true"))
    store = SuiteRunner(plan_suite(path)).run()
    rows = store.rows()
    steps = store.steps()
    assert steps.columns == ["run_id", "kind", "metric", "step", "examples", "wall_s", "value"]
    assert steps.schema == pl.Schema(STEPS_SCHEMA)
    assert no_test_split_while_training and all(no_test_split_while_training)  # every curve point on dev
    trained = rows.filter(pl.col("strategy") != "none")
    assert set(steps["run_id"]) == set(trained["run_id"])  # "none" trains nothing: no records
    for row in trained.iter_rows(named=True):
        total = row["steps"]
        curve = records_of(steps, row["run_id"], "dev")
        assert [r.step for r in curve] == curve_steps(total, 4) and len(curve) == 4
        assert row["curve_points"] == 4 and row["curve_s"] > 0  # the curve's cost has its own column
        assert {r.metric for r in curve} == {"dev_ndcg@10"}
        assert [r.examples for r in curve] == [r.step * row["mean_batch_size"] for r in curve]
        hit = time_to_target(curve, 0.95)
        assert row["time_to_own_95_s"] == pytest.approx(hit.wall_s)
        assert row["time_to_own_95_s"] <= row["train_s"] + row["sample_s"] + row["refresh_s"] + 1e-6
        hardness = records_of(steps, row["run_id"], "hardness")
        assert sorted({r.step for r in hardness}) == list(range(2, total + 1, 2))
    # and as MLflow step metrics of each final run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{(out / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("negbench/toy")
    finals = client.search_runs([experiment.experiment_id], "tags.kind = 'final' and tags.strategy = 'bm25'")
    history = client.get_metric_history(finals[0].info.run_id, "dev_ndcg_at_10")
    assert sorted(m.step for m in history) == curve_steps(trained["steps"][0], 4)
    assert client.get_metric_history(finals[0].info.run_id, "hardness_hardest_share")


@pytest.mark.parametrize(("share", "points"), [(1e9, 4), (1e-9, 0)])
def test_auto_curve_points_are_decided_from_the_runs_compute_and_timed_in_curve_s(
    tmp_path, toy_data, tiny_model, monkeypatch, share, points
):
    """``curve_points = "auto"`` (the default) decides from the dataset's reference training FLOPs and one dev
    scoring's FLOPs; the row says how many it took and what they cost (``curve_s``, out of ``train_s``)."""
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner
    from tests.cli.test_cli import suite_text

    monkeypatch.setattr(curves, "AUTO_CURVE_SHARE", share)
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",), evaluation=""))
    store = SuiteRunner(plan_suite(path)).run()
    row = store.rows().row(0, named=True)
    dev_records = [r for r in records_of(store.steps(), row["run_id"]) if r.metric == "dev_ndcg@10"]
    assert row["curve_points"] == points == len(dev_records)
    assert row["dev_corpus"] == ("full" if points else None)  # None: this run scored no dev (nothing tuned either)
    assert (row["curve_s"] > 0) == (points > 0)
    assert row["total_s"] >= row["train_s"] + row["eval_s"] + row["curve_s"]


def test_auto_curve_points_load_no_base_model_into_a_runs_measured_memory(tmp_path, toy_data, tiny_model, monkeypatch):
    """``curve_points = "auto"`` reads the base model's token counts (the compute estimate). In-batch never uses the
    base model otherwise: loading it inside the training phase put a second model in its train peaks (RSS and GPU),
    a cost the strategies that mine with it pay anyway, so the comparison of memory was skewed. The counts are taken
    before the measured phase and the model is let go."""
    from negbench.run import final
    from negbench.run import suite as suite_module
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner
    from tests.cli.test_cli import suite_text

    measuring, loads = [False], []

    class Watched(final.PeakMemory):
        def __enter__(self):
            measuring[0] = True
            return super().__enter__()

        def __exit__(self, *exc):
            measuring[0] = False
            return super().__exit__(*exc)

    real_load = suite_module.load_model

    def load(cfg, device=None):  # the base model of the run's MiningServices
        loads.append(measuring[0])
        return real_load(cfg, device)

    monkeypatch.setattr(final, "PeakMemory", Watched)
    monkeypatch.setattr(suite_module, "load_model", load)
    path = tmp_path / "suite.toml"
    path.write_text(suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",), evaluation=""))
    runner = SuiteRunner(plan_suite(path))
    row = runner.run().rows().row(0, named=True)
    assert row["status"] == "ok"
    assert loads == [False]  # once, to count tokens, outside the measured phases
    assert all(services._base_model is None for services in runner._services.values())  # and not kept


def test_auto_curve_points_are_the_same_for_every_strategy_of_a_dataset(tmp_path, toy_data, tiny_model, monkeypatch):
    """Decided per run from each strategy's own estimated training FLOPs, "auto" gave bm25 (its mined columns) four
    points and in-batch none in this suite (four epochs): no common curve, no time-to-target to compare. One
    reference figure per dataset × model (the suite's plain loss) gives every strategy the same points."""
    from negbench.run import dev_scoring
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner
    from tests.cli.test_cli import suite_text

    asked = []

    def spy(train_flops: float, scoring_flops: float) -> int:
        asked.append((train_flops, scoring_flops))
        return auto_curve_points(train_flops, scoring_flops)

    monkeypatch.setattr(dev_scoring, "auto_curve_points", spy)
    path = tmp_path / "suite.toml"
    text = suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch", "bm25"), evaluation="")
    path.write_text(text.replace("epochs = 1", "epochs = 4"))
    rows = SuiteRunner(plan_suite(path)).run().rows()
    assert asked and len(set(asked)) <= 2  # one reference (and a lower bound, one scoring cost) for both strategies
    assert len({reference for reference, _ in asked}) == 1
    points = dict(zip(rows["strategy"].to_list(), rows["curve_points"].to_list(), strict=True))
    assert points["in-batch"] == points["bm25"], points
