"""Dev scoring on a pooled corpus against the full corpus, over the trials of a real tuning study (issue 28).

    python tests/benchmarks/dev_pool.py --data ../shared/data/scifact
    python tests/benchmarks/dev_pool.py --data ../shared/data/scifact --max-corpus 300 --max-dev-queries 15 \
        --max-train-queries 120 --trials 4 --steps 3 --depths 5,20   # a smoke test (minutes)

Method. One strategy (``--strategy``, default ``in-batch``) is tuned as ``negbench run`` tunes it: a suite with
``[tuning] n_trials = --trials``, sampler ``--sampler`` (TPE: its first max(2, n/3) trials random) seeded by
``--seed``, the suites' learning-rate dimension ``training.lr`` (``--lr-range``, log scale, as suites/retrieval.toml
and suites/tuned-cpu.toml declare it) plus the strategy's own declared search space, and no pruner (a one-epoch
trial reports nothing to prune on). The study is negbench's own: :meth:`SuiteRunner.tuner_for` (the Optuna study,
in a journal file) and :meth:`~negbench.run.objective.TuningStage.objective_for` (each trial trained with
:meth:`SuiteRunner.fit` for ``--steps`` optimiser steps, then scored on dev). Dev is scored on the full corpus
(``dev_corpus = "full"``, what ``"auto"`` does on SciFact), so the study takes the path tuning takes and its best
trial is the one tuning hands to the final runs (the *chosen* trial). Every trial's final model is also scored on
the pool of each ``--depths`` value (:mod:`negbench.evaluation.pool`: the dev queries' judged documents ∪ the top
``depth`` of BM25 and of the base model per dev query; 100 is the default ``dev_pool_depth``). The chosen trial is
then trained again with a dev learning curve of ``--curve-points`` points (evenly spaced in its steps), each scored
on the full corpus and on every pool; its last point is the trial's own model (the replay is seeded: the script
checks that its dev-query embeddings equal the trial's and then reuses the trial's scores, else scores it again).

Pooled scores reuse the document embeddings of the full scoring of the same model (captured from negbench's own
``evaluate``): a pooled document's vector is the same vector, so the metric is the one a pooled scoring gives, for
the price of a search. What a pooled scoring costs is measured for real (encoding the pool, search, metrics) on the
first ``--timed`` trials' models, where the script also checks that both ways give the same score.

Figures, per pool depth:

- pool docs (share): the pool's documents and their share of the corpus;
- s / full scoring: seconds of one dev scoring on the full corpus (mean over every full scoring of the run); s /
  pooled: of one on the pool (mean over the timed ones); both are encoding, search and metrics, as tuning pays them;
  speed-up: their ratio. Building the pools (BM25 and the base model's top-k, once per dataset) is printed apart;
- Kendall τ (p): ``scipy.stats.kendalltau`` (τ-b) between the trials' full and pooled dev scores, with its p-value
  (null hypothesis: no association): does the pool rank the study's trials as the full corpus does? With n trials τ
  moves in steps of 4/(n(n−1)) and p is coarse: read both with n;
- same best: whether the chosen trial is also the pool's best; cost of pool's choice: the chosen trial's full dev
  score minus that of the pool's best (0 when the same: what choosing on the pool would have lost among these
  trials; a study run on pooled scores would also steer TPE differently, which this does not measure);
- level bias: the mean of pooled − full over the trials, [smallest, largest]: a pooled list is shorter, so its
  scores sit higher. It does not matter for choosing trials while the ranking holds, but pooled dev scores cannot be
  compared with full ones, nor with test;
- curve max abs Δ: the largest |pooled − full| along the chosen trial's learning curve (the level bias included).

SciFact (5,183 documents) is below the default ``dev_pool_min_docs``, so ``dev_corpus = "auto"`` scores it in full;
it is measured here because a full reference is affordable: its agreement figures are what the pooled setting trades
on corpora too large to check. The defaults (all of SciFact's train and dev queries, 6 trials of 10 steps at batch
size 32, 3 curve points, depths 20 and 100, all-MiniLM-L6-v2 at max_seq_length 128) are sized for about 14 minutes
on 2 idle CPU cores: about 65 s for the pools (one base-model encoding of the corpus), about 90 s a trial (30 s of
training, 55 s for its full dev scoring), 70 s for the timed pooled scorings and 150 s for the curve. Each trial's
line and the last line print wall and CPU seconds, to size ``--trials`` on another machine.
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
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
    low, high = (float(v) for v in args.lr_range.split(","))
    return f"""
[suite]
name = "dev-pool-benchmark"
seeds = [{args.seed}]
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
epochs = 1
batch_size = {args.batch_size}
max_steps = {args.steps}

[evaluation]
metrics = ["{args.metric}"]
dev_corpus = "full"
curve_points = 0
diagnostics_every = 0

[tuning]
n_trials = {args.trials}
metric = "{args.metric}"
sampler = "{args.sampler}"
pruner = "none"

[tuning.search_space."training.lr"]
type = "float"
low = {low!r}
high = {high!r}
log = true

[tracking]
enabled = false

[[strategies]]
name = "{args.strategy}"
"""


# ------------------------------------------------------------------------------------------------- figures
@dataclass
class Agreement:
    """Full against pooled dev scores of one study's trials, at one pool depth."""

    tau: float
    p: float
    best_full: int
    best_pooled: int
    choice_cost: float  # full score of the full-best trial minus the full score of the pooled-best trial
    bias: float  # mean of pooled - full
    bias_min: float
    bias_max: float

    @property
    def same_best(self) -> bool:
        return self.best_full == self.best_pooled


def agreement(full: dict[int, float], pooled: dict[int, float]) -> Agreement:
    """Kendall's τ-b (and p) of the trials' full and pooled scores, their best trials and the level bias."""
    from scipy.stats import kendalltau

    trials = sorted(full)
    a, b = [full[t] for t in trials], [pooled[t] for t in trials]
    if len(trials) >= 2 and len(set(a)) > 1 and len(set(b)) > 1:
        result = kendalltau(a, b)
        tau, p = float(result.statistic), float(result.pvalue)
    else:
        tau = p = math.nan
    best_full = max(trials, key=lambda t: (full[t], -t))  # ties: the earlier trial, as Optuna's best_trial
    best_pooled = max(trials, key=lambda t: (pooled[t], -t))
    diffs = [pooled[t] - full[t] for t in trials]
    return Agreement(
        tau,
        p,
        best_full,
        best_pooled,
        full[best_full] - full[best_pooled],
        statistics.mean(diffs),
        min(diffs),
        max(diffs),
    )


def curve_gap(curve: list[dict], depth: int) -> float:
    """The largest |pooled - full| over a curve's points (``{"full": v, depth: v, ...}`` each)."""
    return max((abs(point[depth] - point["full"]) for point in curve), default=math.nan)


def render(
    depths: list[int],
    pools: dict[int, tuple[int, int]],
    seconds: dict,
    full: dict[int, float],
    pooled: dict[int, dict[int, float]],
    curve: list[dict],
) -> str:
    """The summary table: per depth, the pool, the time of one dev scoring, and the agreement figures.
    ``pools[depth] = (documents, corpus documents)``, ``seconds["full" | depth]``: seconds of each scoring."""
    n = len(full)
    head = (
        "| depth | pool docs (share) | s / full scoring | s / pooled | speed-up "
        f"| Kendall τ (p), {n} trials | same best | cost of pool's choice | level bias pooled − full [range] "
        f"| curve max abs Δ ({len(curve)} points) |"
    )
    lines = [head, "|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|"]
    t_full = statistics.mean(seconds["full"]) if seconds["full"] else math.nan
    for depth in depths:
        docs, total = pools[depth]
        t_pool = statistics.mean(seconds[depth]) if seconds[depth] else math.nan
        fig = agreement(full, pooled[depth])
        same = "yes" if fig.same_best else f"no (#{fig.best_full} vs #{fig.best_pooled})"
        lines.append(
            f"| {depth} | {docs:,} ({docs / max(total, 1):.1%}) | {t_full:.2f} | {t_pool:.2f} "
            f"| {t_full / t_pool:.1f}× | {fig.tau:.3f} ({fig.p:.2g}) | {same} | {fig.choice_cost:.4f} "
            f"| {fig.bias:+.4f} [{fig.bias_min:+.4f}, {fig.bias_max:+.4f}] | {curve_gap(curve, depth):.4f} |"
        )
    return "\n".join(lines)


class Clock:
    """Wall and CPU (user + system, this process) seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), self._cpu()

    @staticmethod
    def _cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def seconds(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, self._cpu() - self.cpu

    def __str__(self) -> str:
        wall, cpu = self.seconds()
        return f"{wall:.0f} s wall, {cpu:.0f} s CPU"


# ---------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a BEIR-layout dataset directory (e.g. ../shared/data/scifact)")
    parser.add_argument("--model", default=MODEL)
    parser.add_argument("--strategy", default="in-batch", help="the strategy tuned (its declared space is searched)")
    parser.add_argument("--metric", default="ndcg@10", help="the tuning metric")
    parser.add_argument("--depths", default="20,100", help="pool depths, comma-separated (100: the default)")
    parser.add_argument("--trials", type=int, default=6, help="trials of the study (each trained and scored)")
    parser.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    parser.add_argument("--lr-range", default="1e-5,1e-4", help="low,high of training.lr (log scale; the suites')")
    parser.add_argument("--seed", type=int, default=0, help="the suite's seed: the sampler's and training's")
    parser.add_argument("--steps", type=int, default=10, help="optimiser steps of each trial")
    parser.add_argument("--curve-points", type=int, default=3, help="dev scorings along the chosen trial (0: none)")
    parser.add_argument("--timed", type=int, default=1, help="trials whose pooled scorings encode the pool (timed)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-corpus", type=int, default=None, help="a subset (judged documents kept)")
    parser.add_argument("--max-train-queries", type=int, default=None)
    parser.add_argument("--max-dev-queries", type=int, default=None)
    args = parser.parse_args(argv)
    if args.trials < 2 or args.timed < 1:
        parser.error("--trials must be at least 2 and --timed at least 1")

    import negbench.evaluation.retrieval as retrieval

    work, real_encode = Path(tempfile.mkdtemp(prefix="negbench-dev-pool-")), retrieval.encode
    try:
        return run(args, work)
    finally:
        retrieval.encode = real_encode  # run() spies on it
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> int:
    """The study, the curve and the tables (in ``work``, a fresh directory)."""
    import negbench.evaluation.retrieval as retrieval
    from negbench.core.probes.curves import curve_steps
    from negbench.core.training.callbacks import Diagnostics
    from negbench.evaluation.pool import DevCorpus, build_dev_pool
    from negbench.quiet import quiet_libraries
    from negbench.run.plan import Job, plan_suite
    from negbench.run.suite import SuiteRunner
    from negbench.run.tuning import split_params

    quiet_libraries()
    everything = Clock()
    depths = [int(d) for d in args.depths.split(",")]
    path = work / "suite.toml"
    path.write_text(suite_toml(args, work / "out"))
    plan = plan_suite(path)
    runner = SuiteRunner(plan)
    dataset = runner.load_dataset(0)
    model_cfg, spec = plan.suite.models[0], plan.strategies[0]
    job = Job(dataset, model_cfg, spec)
    services, device = runner.services_for(job), runner.device_for(job)
    metric, corpus_docs = args.metric, len(dataset.eval_corpus)
    print(
        f"{dataset.name}: {corpus_docs:,} documents, {len(dataset.dev):,} dev queries, {len(dataset.train):,} train "
        f"queries; {model_cfg.spec} (max_seq_length {model_cfg.max_seq_length}) on {device}; {spec.label} tuned over "
        f"{dict(spec.space)}",
        flush=True,
    )

    setup = Clock()
    pools: dict[int, DevCorpus] = {}
    for depth in depths:
        pools[depth] = DevCorpus.pooled(build_dev_pool(dataset, services, depth), dataset.eval_corpus)
        print(f"pool depth {depth}: {pools[depth].pool.describe()}", flush=True)
    print(f"pools built ({setup})", flush=True)

    # the embeddings of the latest full scoring (negbench's evaluate encodes through retrieval.encode): its documents'
    # for the pooled scores, its dev queries' to check that the chosen trial's replay trains the same model
    captured: dict = {}
    real_encode = retrieval.encode
    dev_texts = [dataset.queries[q] for q in sorted(dataset.dev)]  # in evaluate's order

    def spying_encode(model, texts, kind, **kwargs):
        out = real_encode(model, texts, kind=kind, **kwargs)
        if kind == "document" and len(texts) == corpus_docs:
            captured["documents"] = out
        elif kind == "query" and "queries" not in captured:
            captured["queries"] = out
        return out

    retrieval.encode = spying_encode
    seconds: dict = {"full": [], **{d: [] for d in depths}}
    mismatch = 0.0  # the largest |sliced - encoded| pooled score of the timed models
    real_score_dev = runner.score_dev

    def score_both(model, timed: bool):
        """({"full": score, depth: pooled score, ...}, the full scoring's result) of ``model``; the full scoring
        through negbench's own dev scoring."""
        nonlocal mismatch
        captured.clear()
        full = real_score_dev(model, dataset, [metric], model_cfg, services)
        seconds["full"].append(full.seconds)
        scores = {"full": full.metrics[metric], "queries": captured["queries"]}
        embeddings = captured["documents"]
        for depth, dev in pools.items():
            index = dev.pool.indices
            sliced = runner.score(
                model, dataset, dataset.dev, [metric], model_cfg, corpus=dev.corpus, corpus_embeddings=embeddings[index]
            )
            scores[depth] = sliced.metrics[metric]
            if timed:
                encoded = runner.score(model, dataset, dataset.dev, [metric], model_cfg, corpus=dev.corpus)
                seconds[depth].append(encoded.seconds)
                mismatch = max(mismatch, abs(encoded.metrics[metric] - scores[depth]))
        return scores, full

    trial_scores: dict[int, dict] = {}
    current: dict = {}

    def score_dev(model, dataset_, metrics, model_cfg_, services_):
        """The objective's dev scoring: the full score (what the study optimises), the pooled ones recorded."""
        clock = Clock()
        trial_scores[current["trial"]], full = score_both(model, timed=len(trial_scores) < args.timed)
        current["scoring"] = clock.seconds()
        return full

    runner.score_dev = score_dev
    tuner = runner.tuner_for(job)
    objective = runner.objective_for(job)

    def timed_objective(trial) -> float:
        current["trial"] = trial.number
        clock = Clock()
        value = objective(trial)
        (wall, cpu), (score_wall, score_cpu) = clock.seconds(), current["scoring"]
        scores = trial_scores[trial.number]
        pooled = "  ".join(f"d{d}={scores[d]:.4f}" for d in depths)
        print(
            f"  trial {trial.number} {trial.params}: full={scores['full']:.4f}  {pooled}  (training "
            f"{wall - score_wall:.0f} s wall / {cpu - score_cpu:.0f} s CPU, dev scorings {score_wall:.0f} s / "
            f"{score_cpu:.0f} s)",
            flush=True,
        )
        return value

    study_clock = Clock()
    outcome = tuner.run(timed_objective)
    print(f"study: {len(trial_scores)} trials ({study_clock})", flush=True)
    if len(trial_scores) < 2:
        print("fewer than 2 trials completed: nothing to rank", file=sys.stderr)
        return 1

    curve: list[dict] = []
    trials = {t.number: t for t in tuner.study().trials}
    chosen = trials[outcome.trial]
    if args.curve_points > 0:
        replay = Clock()
        strategy_values, training_values = split_params(chosen.params)

        expected = len(curve_steps(args.steps, args.curve_points))
        drift: list[float] = []

        def evaluate(model) -> dict[str, float]:
            """A curve point's scores; the last point (the end of training) is the chosen trial's own model when the
            replay's dev-query embeddings match the trial's, so its scores are reused rather than paid again."""
            if len(curve) + 1 == expected:
                again = real_encode(model, dev_texts, kind="query", batch_size=model_cfg.batch_size)
                drift.append(float((again - trial_scores[chosen.number]["queries"]).abs().max()))
                if drift[-1] <= 1e-5:
                    curve.append(trial_scores[chosen.number])
                    return {metric: curve[-1]["full"]}
            curve.append(score_both(model, timed=False)[0])
            return {metric: curve[-1]["full"]}

        runner.fit(
            dataset,
            model_cfg,
            device,
            services,
            spec.build(strategy_values),
            runner.training_for(spec, training_values),
            plan.suite.suite.seeds[0],
            diagnostics=Diagnostics(every=0, curve_points=args.curve_points, evaluate=evaluate),
            guide=runner.guide_services(dataset, model_cfg, spec, device),
            tuned=training_values,
        )
        print(f"curve of trial {chosen.number} ({replay}):", flush=True)
        for k, point in enumerate(curve, 1):
            pooled = "  ".join(f"d{d}={point[d]:.4f} (Δ {point[d] - point['full']:+.4f})" for d in depths)
            print(f"  point {k}/{len(curve)}: full={point['full']:.4f}  {pooled}", flush=True)
        if drift:
            reused = "its scores reused" if drift[-1] <= 1e-5 else "scored again: the replay differs"
            print(f"  last point: the trial's own model (dev-query embeddings within {drift[-1]:.1g}), {reused}")
    retrieval.encode = real_encode

    full = {t: s["full"] for t, s in trial_scores.items()}
    pooled = {d: {t: s[d] for t, s in trial_scores.items()} for d in depths}
    print()
    print(f"{metric} on dev, {len(full)} trials of {spec.label} ({args.sampler}, seed {args.seed}, {args.steps} steps)")
    print("| trial | params | full | " + " | ".join(f"pooled d{d}" for d in depths) + " |")
    print("|---:|---|---:|" + "---:|" * len(depths))
    for t in sorted(full):
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trials[t].params.items())
        mark = " (chosen)" if t == chosen.number else ""
        print(f"| {t}{mark} | {params} | {full[t]:.4f} | " + " | ".join(f"{pooled[d][t]:.4f}" for d in depths) + " |")
    print()
    print(render(depths, {d: (len(pools[d].pool), corpus_docs) for d in depths}, seconds, full, pooled, curve))
    print(
        f"\nfull scorings timed: {len(seconds['full'])}; pooled: {len(seconds[depths[0]])} per depth (the first "
        f"trials'), whose encoded and reused-embedding scores differ by at most {mismatch:.2g}"
    )
    print(f"whole benchmark: {everything} (CPU: this process's user + system seconds)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
