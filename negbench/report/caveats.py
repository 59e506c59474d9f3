"""The caveats a board's verdict states after its findings: what limits the comparison (a subset corpus, timings
from several or a busy machine, seeds that failed, changed budgets, uneven coverage, tests over fewer queries than
the means, unbalanced seeds, a configuration whose scores equal the baseline's, repeated configurations, the
zero-shot row)."""

from __future__ import annotations

import polars as pl

from negbench.report.leaderboard import LeaderboardTable
from negbench.report.table import join_words, number

__all__ = ["THROUGHPUT_SPREAD", "board_caveats", "not_compared", "untrained_labels"]

# Two runs of one configuration whose training throughput differs by more than this factor ran on a machine
# whose load changed between them: timings are then indicative only.
THROUGHPUT_SPREAD = 1.25


def board_caveats(table: LeaderboardTable, rows: pl.DataFrame) -> list[str]:
    """The caveats that apply to a board: subset, devices and timing spread, failed seeds, budgets, coverage,
    tests over fewer queries, runs identical to the baseline, repeats, the zero-shot row."""
    out = list(table.subset_notes())
    here = rows.filter((pl.col("dataset") == table.dataset) & (pl.col("model") == table.model))
    devices = sorted(set(here["device"].drop_nulls().cast(pl.String).to_list())) if "device" in here.columns else []
    if len(devices) > 1:
        out.append(f"Timings come from {len(devices)} devices ({'; '.join(devices)}): compare costs within one only.")
    elif devices:
        out.append(f"Timings come from one device ({devices[0]}).")
    out += [note for note in (_timing_spread(table), _seed_timing_spread(here)) if note]
    out += _failed_seeds(here)
    rule = _budget_rule(here)
    if rule:
        out.append(rule)
    budgets = {
        r.label: reason
        for r in table.rows
        if r.trains and (reason := _declared(r.record.get("budget"))) not in (None, "", "equal")
    }
    if budgets:
        listed = "; ".join(v if v.startswith(f"{k}:") else f"{k}: {v}" for k, v in budgets.items())
        out.append(
            f"{join_words(list(budgets))} changed the data budget or training settings ({listed}): "
            f"{'its' if len(budgets) == 1 else 'their'} Δ mixes the strategy with those changes."
        )
    out += _coverage_note(table)
    out += _fewer_queries(table) + _unbalanced_seeds(table) + _identical_to_baseline(table)
    out += table.repeat_notes()
    untrained = untrained_labels(table)
    if untrained:
        out.append(f"{join_words(sorted(untrained))} does not train (0 steps): the zero-shot floor.")
    return out


def _coverage_note(table: LeaderboardTable) -> list[str]:
    """Strategies whose runs trained some example in fewer epochs than another configuration's runs did (the row's
    ``coverage``: the smallest share of epochs in which any training example was trained)."""
    covered = {r.label: c for r in table.rows if r.trains and (c := number(r.record.get("coverage"))) is not None}
    if len(covered) < 2:
        return []
    best = max(covered.values())
    low = {k: c for k, c in covered.items() if c < best - 1e-9}
    if not low:
        return []
    listed = ", ".join(f"{k} {c:.2f}" for k, c in low.items())
    return [
        f"Coverage (the smallest share of epochs in which any training example was trained) is below the best "
        f"row's {best:.2f} for {listed}: {'it' if len(low) == 1 else 'they'} trained some examples less often."
    ]


def _declared(budget: object) -> str | None:
    """A row's ``budget`` less the equal-compute rule's ``compute: …`` part: the departures a strategy declares."""
    if budget is None:
        return None
    parts = [p for p in str(budget).split("; ") if not p.startswith("compute: ")]
    return "; ".join(parts) or None


def _budget_rule(rows: pl.DataFrame) -> str | None:
    """Which budget rule the board's runs used (``[training] budget``), for stores that record it."""
    if "budget_rule" not in rows.columns:
        return None
    rules = set(rows["budget_rule"].drop_nulls().cast(pl.String).to_list())
    if rules == {"compute"}:
        return (
            'Budget rule: equal compute ([training] budget = "compute"): each strategy trained the steps that give it '
            "the baseline's preparation + training compute under the equal-data rule (estimated before training; "
            "the budget column names the steps, the costs table the TFLOPs measured), in the same full batches."
        )
    if rules == {"data"}:
        return (
            'Budget rule: equal data ([training] budget = "data"): the same training examples per epoch for every '
            "strategy, whatever its compute (train and prep TFLOP under Costs)."
        )
    return (
        f"Budget rules differ between runs ({', '.join(sorted(rules))}): compare rows of one rule only."
        if rules
        else None
    )


def _timing_spread(table: LeaderboardTable) -> str | None:
    """A sentence when two runs of one configuration trained at clearly different speeds (a busy machine)."""
    by_label = {r.label: r for r in table.rows}
    for row in table.rows:
        original = by_label.get(row.repeat_of or "")
        if original is None:
            continue
        fast, slow = (number(r.record.get("train_examples_per_s")) for r in (row, original))
        if fast is None or slow is None or min(fast, slow) <= 0:
            continue
        if max(fast, slow) / min(fast, slow) > THROUGHPUT_SPREAD:
            return (
                f"{original.label} and {row.label} ran one configuration yet trained at {slow:,.1f} and {fast:,.1f} "
                "examples/s: the machine's load changed between runs, so timings are indicative only."
            )
    return None


def untrained_labels(table: LeaderboardTable) -> set[str]:
    """Labels of finished configurations that take no training step (the zero-shot floor)."""
    return {r.label for r in table.rows if not r.trains and r.record.get("steps") is not None and r.seeds > 0}


def _seed_timing_spread(rows: pl.DataFrame) -> str | None:
    """A sentence when the seeds of one configuration trained at clearly different speeds (a busy machine)."""
    if "train_examples_per_s" not in rows.columns or "label" not in rows.columns:
        return None
    speeds = (
        rows.filter((pl.col("status") == "ok") & (pl.col("train_examples_per_s") > 0))
        .group_by("label")
        .agg(pl.col("train_examples_per_s").max().alias("fast"), pl.col("train_examples_per_s").min().alias("slow"))
        .with_columns((pl.col("fast") / pl.col("slow")).alias("ratio"))
        .filter(pl.col("ratio") > THROUGHPUT_SPREAD)
        .sort("ratio", descending=True)
    )
    if speeds.is_empty():
        return None
    top = speeds.head(3).iter_rows(named=True)
    listed = ", ".join(f"{r['label']} {r['ratio']:.1f}×" for r in top)
    return (
        f"The seeds of {speeds.height} configuration{'s' if speeds.height > 1 else ''} trained at clearly different "
        f"speeds (fastest over slowest: {listed}): the machine's load changed during the run, so wall times and "
        "throughput are indicative only; the TFLOP columns do not depend on it."
    )


def _failed_seeds(rows: pl.DataFrame) -> list[str]:
    """One sentence per configuration with both finished and failed seeds: its figures are the finished ones'."""
    if "label" not in rows.columns or "status" not in rows.columns:
        return []
    out = []
    for (label,), runs in rows.group_by(["label"], maintain_order=True):
        failed = runs.filter(pl.col("status") != "ok")
        if failed.is_empty() or failed.height == runs.height:
            continue
        reasons = ", ".join(sorted(set(failed["status"].cast(pl.String).to_list())))
        out.append(
            f"{label}: {failed.height} of {runs.height} seeds failed ({reasons}); its figures and tests come from "
            f"the {runs.height - failed.height} that finished."
        )
    return out


def _fewer_queries(table: LeaderboardTable) -> list[str]:
    """Comparisons on the primary metric that left out queries some run scored (missing or non-finite scores)."""
    primary = table.primary
    dropped = {r.label: (s.n, s.dropped) for r in table.rows if primary in r.sig and (s := r.sig[primary]).dropped > 0}
    if not dropped:
        return []
    listed = ", ".join(f"{k} over {n:,} ({d:,} left out)" for k, (n, d) in dropped.items())
    return [
        f"Some runs lack scores (missing or non-finite) for queries others scored, so these tests use only the "
        f"queries both sides scored: {listed}; the table's means use every query of each run."
    ]


def _unbalanced_seeds(table: LeaderboardTable) -> list[str]:
    """Tests (against the baseline, or declared) over two or more queries whose sides have two or more seeds but
    one at least 2.5 times the other's: the degrees of freedom then follow the noisy few-seed variance. When the
    seeds carry most of the variance and the side with fewer seeds is the noisier, the test runs well above its
    nominal α (``tests/benchmarks/twolevel_calibration.py``, 300 queries, 2 vs 6 seeds, a seed-variance ratio of
    ten: about 1.8 times at α = 0.05 / 3 and 6 times at 0.05 / 24); the other way round it stays below it."""
    primary = table.primary
    pairs = [
        (r.label, s.seeds, s.baseline_seeds) for r in table.rows if primary in r.sig and (s := r.sig[primary]).n >= 2
    ]
    pairs += [(t.name, t.test.seeds_new, t.test.seeds_base) for t in table.declared if t.test and t.test.n >= 2]
    uneven = [f"{name} ({a} vs {b})" for name, a, b in pairs if min(a, b) >= 2 and max(a, b) >= 2.5 * min(a, b)]
    if not uneven:
        return []
    return [
        f"Seeds are unbalanced in {', '.join(uneven)}: with one side's seed variance estimated from few seeds, the "
        f"seed × query test can run well above its nominal α there (when the side with fewer seeds is the noisier), "
        f"so read those marks and claims as indicative."
    ]


def _identical_to_baseline(table: LeaderboardTable) -> list[str]:
    """Configurations whose primary-metric scores equal the baseline's on every query and seed."""
    primary = table.primary
    # a repeated configuration is said to be one by repeat_notes
    same = [r.label for r in table.rows if primary in r.sig and r.sig[primary].identical and not r.repeat_of]
    if not same:
        return []
    verb = "has" if len(same) == 1 else "have"
    return [
        f"{join_words(same)} {verb} the baseline's {primary} on every query and seed: check that "
        f"{'it changes' if len(same) == 1 else 'they change'} training at all."
    ]


def not_compared(rows: pl.DataFrame) -> list[str]:
    """A sentence naming the configurations whose every seed failed, with the reason (the first failure's error,
    without its exception's module path): they have no score and sit in no test. Under the equal-compute rule these
    are the strategies whose preparation alone exceeds the budget."""
    if not {"label", "status", "error"} <= set(rows.columns):
        return []
    failed = (
        rows.group_by("label", maintain_order=True)
        .agg((pl.col("status") != "ok").all().alias("all_failed"), pl.col("status").first(), pl.col("error").first())
        .filter(pl.col("all_failed"))
    )
    if failed.is_empty():
        return []
    labels, first = failed["label"].to_list(), failed.row(0, named=True)
    reason = str(first["error"] or first["status"]).rsplit("Error: ", 1)[-1].strip()
    return [
        f"Not compared: {join_words(labels)} failed on every seed ({first['status']}; e.g. {reason}), so "
        f"{'it has' if len(labels) == 1 else 'they have'} no score on this board."
    ]
