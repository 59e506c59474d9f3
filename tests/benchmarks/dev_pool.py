"""Dev scoring on a pooled corpus against the full corpus: time, pool size and agreement, on a real dataset.

    python tests/benchmarks/dev_pool.py --data ../shared/data/scifact
    python tests/benchmarks/dev_pool.py --data ../shared/data/scifact --max-corpus 500 --max-dev-queries 20 \
        --steps 4 --curve-points 2   # a smoke test

It trains ``in-batch`` (negbench's own training, :meth:`SuiteRunner.fit`) once per learning rate of ``--lrs``, for
``--steps`` steps each, with a dev learning curve of ``--curve-points`` points; at every curve point, and for the
base (untrained) model, it scores dev on the full evaluation corpus and on the pool of each ``--depths``
(:mod:`negbench.evaluation.pool`: judged ∪ BM25's and the base model's top ``depth`` per dev query). It prints:

- per depth, the pool's size and what built it, the mean seconds of one dev scoring on the full corpus and on
  the pool (encoding, search and metrics, as tuning pays them) and the speed-up;
- (a) Kendall's τ (``scipy.stats.kendalltau``) between the full and the pooled dev scores of every scored model
  (the base model and each run's curve points: differently trained models, as a study's trials are), with its
  p-value: whether pooled scores rank models as full ones do;
- (b) the largest absolute difference between full and pooled dev scores along each run's learning curve (and the
  largest of all), in metric points.

SciFact (5,183 documents) is below the default ``dev_pool_min_docs``, so ``dev_corpus = "auto"`` scores it in full;
the script measures the pool there because a full reference is affordable: its agreement figures are what the
pooled setting trades on corpora too large to check. Defaults are sized to run in a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODEL = "sentence-transformers/all-MiniLM-L6-v2"  # as suites/quickstart.toml names it (resolved offline)


def suite_toml(args: argparse.Namespace, out: Path) -> str:
    limits = "".join(
        f"{name} = {value}\n"
        for name, value in (
            ("max_corpus", args.max_corpus),
            ("max_train_queries", args.max_train_queries),
            ("max_dev_queries", args.max_dev_queries),
        )
        if value is not None
    )
    return f"""
[suite]
name = "dev-pool-benchmark"
seeds = [0]
output_dir = "{out}"
isolation = "none"

[[datasets]]
source = "{Path(args.data).resolve()}"
{limits}
[[models]]
spec = "{args.model}"
max_seq_length = {args.max_seq_length}
batch_size = 64

[training]
batch_size = {args.batch_size}
max_steps = {args.steps}

[evaluation]
metrics = ["{args.metric}"]
dev_corpus = "pooled"

[tracking]
enabled = false

[[strategies]]
name = "in-batch"
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a BEIR-layout dataset directory (e.g. ../shared/data/scifact)")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--metric", default="ndcg@10")
    parser.add_argument("--depths", default="20,100", help="pool depths, comma-separated (100: the default)")
    parser.add_argument("--lrs", default="2e-5,1e-4", help="learning rates, one training run each")
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps of each run")
    parser.add_argument("--curve-points", type=int, default=3, help="dev scorings along each run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-corpus", type=int, default=None, help="a subset (judged documents kept)")
    parser.add_argument("--max-train-queries", type=int, default=300)
    parser.add_argument("--max-dev-queries", type=int, default=50)
    args = parser.parse_args(argv)

    from scipy.stats import kendalltau

    from negbench.core.training.callbacks import Diagnostics
    from negbench.evaluation.pool import DevCorpus, build_dev_pool
    from negbench.quiet import quiet_libraries
    from negbench.run.plan import Job, plan_suite
    from negbench.run.suite import SuiteRunner

    quiet_libraries()
    depths = [int(d) for d in args.depths.split(",")]
    lrs = [float(lr) for lr in args.lrs.split(",")]
    work = Path(tempfile.mkdtemp(prefix="negbench-dev-pool-"))
    path = work / "suite.toml"
    path.write_text(suite_toml(args, work / "out"))
    plan = plan_suite(path)
    runner = SuiteRunner(plan)
    dataset = runner.load_dataset(0)
    model_cfg, spec = plan.suite.models[0], plan.strategies[0]
    job = Job(dataset, model_cfg, spec)
    services, device = runner.services_for(job), runner.device_for(job)
    metric = args.metric
    print(
        f"{dataset.name}: {len(dataset.eval_corpus):,} documents, {len(dataset.dev):,} dev queries, "
        f"{len(dataset.train):,} train queries; {model_cfg.spec} on {device}",
        flush=True,
    )

    pools: dict[int, DevCorpus] = {}
    for depth in depths:
        started = time.perf_counter()
        pools[depth] = DevCorpus.pooled(build_dev_pool(dataset, services, depth), dataset.eval_corpus)
        print(f"pool depth {depth}: {pools[depth].pool.describe()} ({time.perf_counter() - started:.1f} s)", flush=True)

    # scores[name] = {"full": value, depth: value}; seconds["full" | depth] = one dev scoring's seconds each time
    scores: dict[str, dict] = {}
    seconds: dict = {"full": [], **{d: [] for d in depths}}

    def score_all(name: str, model) -> float:
        full = runner.score(model, dataset, dataset.dev, [metric], model_cfg)
        seconds["full"].append(full.seconds)
        scores[name] = {"full": full.metrics[metric]}
        for depth, dev in pools.items():
            pooled = runner.score(model, dataset, dataset.dev, [metric], model_cfg, corpus=dev.corpus)
            seconds[depth].append(pooled.seconds)
            scores[name][depth] = pooled.metrics[metric]
        values = "  ".join(f"d{d}={scores[name][d]:.4f}" for d in depths)
        print(f"  {name:<16} full={scores[name]['full']:.4f}  {values}", flush=True)
        return scores[name]["full"]

    score_all("base", services.base_model)
    curves: dict[float, list[str]] = {}
    for lr in lrs:
        names = curves.setdefault(lr, [])

        def evaluate(model, lr=lr, names=names) -> dict[str, float]:
            name = f"lr={lr:g} #{len(names) + 1}"
            names.append(name)
            return {metric: score_all(name, model)}

        training = plan.suite.training_for(spec.index, {"lr": lr})
        diagnostics = Diagnostics(every=0, curve_points=args.curve_points, evaluate=evaluate)
        started = time.perf_counter()
        runner.fit(dataset, model_cfg, device, services, spec.build(), training, 0, diagnostics=diagnostics)
        print(f"trained lr={lr:g}: {args.steps} steps ({time.perf_counter() - started:.0f} s with its scorings)")

    names = list(scores)
    full = [scores[n]["full"] for n in names]
    print()
    print(
        f"| depth | pool documents | share of corpus | s / full dev scoring | s / pooled | speed-up "
        f"| Kendall τ (p), {len(names)} models | max abs diff along a curve |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for depth in depths:
        pooled = [scores[n][depth] for n in names]
        tau, p = kendalltau(full, pooled)
        diffs = [max(abs(scores[n]["full"] - scores[n][depth]) for n in curve) for curve in curves.values() if curve]
        t_full, t_pool = statistics.mean(seconds["full"]), statistics.mean(seconds[depth])
        pool = pools[depth].pool
        print(
            f"| {depth} | {len(pool):,} | {len(pool) / len(dataset.eval_corpus):.1%} | {t_full:.2f} | {t_pool:.2f} "
            f"| {t_full / max(t_pool, 1e-9):.1f}× | {tau:.3f} ({p:.2g}) | {max(diffs, default=float('nan')):.4f} |"
        )
    print(f"\n{metric} on dev of {len(names)} models: the base model and {len(lrs)} runs × {args.curve_points} points")
    for lr, curve in ((lr, curve) for lr, curve in curves.items() if curve):
        diffs = ", ".join(f"depth {d}: {max(abs(scores[n]['full'] - scores[n][d]) for n in curve):.4f}" for d in depths)
        print(f"  lr={lr:g} curve, max abs diff full vs pooled: {diffs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
