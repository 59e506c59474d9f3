"""The verdict a board opens with: one generated paragraph per dataset × model that says first how the suite's
declared comparisons came out (``[[comparisons]]``, :mod:`negbench.report.claims`), then which strategies beat or
trail the baseline on the primary metric (Δ with its CI), which cannot be told apart from it and the smallest
difference the board could have detected, how many seeds and queries stand behind it, and the caveats that apply
(one seed, a subset corpus, timings from several or a busy machine, changed data budgets, repeated
configurations). Every number in it comes from the table model (:mod:`negbench.report.leaderboard`) and the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from negbench.report.caveats import board_caveats, not_compared, untrained_labels
from negbench.report.claims import claims_sentence
from negbench.report.leaderboard import LeaderboardTable
from negbench.report.stats import POWER, Significance
from negbench.report.table import escape_md, fmt_delta, join_words, number

__all__ = ["Verdict", "board_verdict", "verdicts"]


@dataclass(frozen=True)
class Verdict:
    """The verdict of one dataset × model: its findings and caveats, as sentences of plain text."""

    dataset: str
    model: str
    findings: list[str]
    caveats: list[str] = field(default_factory=list)

    def markdown(self) -> list[str]:
        """Its paragraphs in markdown: **Verdict.** findings, then **Caveats.** where there are any."""
        paragraphs = [f"**Verdict.** {escape_md(' '.join(self.findings))}"]
        return paragraphs + ([f"**Caveats.** {escape_md(' '.join(self.caveats))}"] if self.caveats else [])

    @property
    def text(self) -> str:
        caveats = (" Caveats: " + " ".join(self.caveats)) if self.caveats else ""
        return " ".join(self.findings) + caveats


def verdicts(
    tables: Sequence[LeaderboardTable], rows: pl.DataFrame, alpha: float = 0.05, baseline: str = "in-batch"
) -> list[Verdict]:
    """One :class:`Verdict` per board; with several boards each names its dataset and model."""
    return [board_verdict(t, rows, alpha, named=len(tables) > 1, baseline=baseline) for t in tables]


def board_verdict(
    table: LeaderboardTable,
    rows: pl.DataFrame,
    alpha: float = 0.05,
    *,
    named: bool = False,
    baseline: str = "in-batch",
) -> Verdict:
    """The verdict of one board (``rows``: the store's rows, for the device and the caveats; ``baseline``: the
    label asked for, named when the board has none): the suite's declared comparisons first, then every
    configuration against the baseline."""
    claims = claims_sentence(table.declared, alpha)
    where = f"On {table.dataset} · {table.model}, " if named else ""
    here = rows.filter((pl.col("dataset") == table.dataset) & (pl.col("model") == table.model))
    findings = _baseline_findings(table, where, alpha, baseline, after_claims=bool(claims)) + not_compared(here)
    if claims:
        findings = [where + claims[0].lower() + claims[1:] if where else claims, *findings]
    return Verdict(table.dataset, table.model, findings, board_caveats(table, rows))


def _baseline_findings(
    table: LeaderboardTable, where: str, alpha: float, baseline: str, *, after_claims: bool = False
) -> list[str]:
    """The sentences on every configuration against the baseline on the primary metric (``after_claims``: the
    declared comparisons came first, so a missing baseline leaves only that part without a verdict)."""
    primary, base = table.primary, table.baseline
    if base is None:
        nothing = "no configuration is compared with it" if after_claims else "nothing is compared"
        text = f"{where}no verdict against the baseline: {baseline} is not in these results, so {nothing}."
        return [text[0].upper() + text[1:]]
    # a repeat of another label's configuration is no hypothesis (no Holm p): the caveats say what it showed
    tests = {
        r.label: r.sig[primary] for r in table.rows if primary is not None and primary in r.sig and not r.repeat_of
    }
    if not tests:
        others = [r for r in table.rows if not r.is_baseline]
        if not others:
            reason = f"the board holds only the baseline {base.label}"
        elif table.delta_metric is None:
            reason = "the store has no per-query scores"
        elif repeats := [r.label for r in others if r.repeat_of]:
            verb = "repeats" if len(repeats) == 1 else "repeat"
            reason = f"{join_words(repeats)} only {verb} another row's configuration (see the caveats)"
        else:
            reason = "no configuration was tested"
        text = f"{where}no verdict on {primary}: {reason}, so nothing is compared."
        return [text[0].upper() + text[1:]]
    queries = sorted({t.n for t in tests.values()})
    n_text = f"{queries[0]:,}" if len(queries) == 1 else f"{queries[0]:,}–{queries[-1]:,}"
    seeds = table.seed_counts()
    s_text = "one seed" if max(seeds) == 1 else f"{_range_text(seeds)} seeds"
    aware = {k: t for k, t in tests.items() if t.seed_aware}
    alone = {k: t for k, t in tests.items() if not t.seed_aware}
    lead = f"{where}against {base.label} on {primary} (the primary metric), over {n_text} test queries with {s_text}"
    lead += " per configuration"
    if aware:
        findings = [lead + ": " + _seed_aware(aware, base.label, alpha)]
        if alone:
            findings.append(
                f"{_names(alone)} ran with one seed or against a one-seed baseline: training variance is unmeasured, "
                f"so {'it is not' if len(alone) == 1 else 'none of them is'} called better or worse."
            )
    else:
        findings = [
            lead + ", no strategy can be called better or worse: training variance is unmeasured, and a one-seed "
            "difference can be one training run's luck."
        ]
    findings[0] = findings[0][0].upper() + findings[0][1:]
    if alone:
        findings += _query_only(alone, base.label, alpha, untrained_labels(table))
    return findings


def _seed_aware(tests: dict[str, Significance], base: str, alpha: float) -> str:
    """The clauses on the comparisons that carry seed variance: better, worse, indistinguishable."""
    clauses = []
    better = {k: t for k, t in tests.items() if t.mark and t.mean_diff > 0}
    worse = {k: t for k, t in tests.items() if t.mark and t.mean_diff < 0}
    for found, word in ((better, "better"), (worse, "worse")):
        if found:
            clauses.append(f"{_listing(found)} {'is' if len(found) == 1 else 'are'} {word}")
    if not better and not worse:
        clauses.append(f"no strategy is better or worse than {base}")
    level = f" (Holm-corrected α = {alpha:g} over {_comparisons(len(tests))})"
    rest = {k: t for k, t in tests.items() if not t.mark}
    if rest:
        who = f"the other {len(rest)}" if (better or worse) and len(rest) > 1 else _names(rest)
        clauses.append(
            f"{who} cannot be told apart from {base} (Δ {_span({k: t.mean_diff for k, t in rest.items()})}); the "
            f"smallest difference the board could have detected with {POWER:.0%} power is "
            f"{_span({k: t.detectable for k, t in rest.items()}, signed=False)}"
        )
    return "; ".join(clauses[:1]) + level + ("; " + "; ".join(clauses[1:]) if clauses[1:] else "") + "."


def _query_only(tests: dict[str, Significance], base: str, alpha: float, untrained: set[str]) -> list[str]:
    """Sentences on one-seed comparisons: what the queries alone show, and what they could have shown."""
    out = []
    apart = {k: t for k, t in tests.items() if t.p_holm < alpha}
    within = {k: t for k, t in tests.items() if not t.p_holm < alpha}
    family = f"Holm-corrected α = {alpha:g} over {_comparisons(len(tests))}"
    if apart:
        verb = "differs" if len(apart) == 1 else "differ"
        listed = _listing(apart, untrained)
        out.append(f"On these queries alone, {listed} {verb} from {base} beyond query noise ({family}).")
    if len(within) == 1:
        (k, t) = next(iter(within.items()))
        named = f"The other, {k}," if apart else f"On these queries alone, {k}"
        out.append(f"{named} is within query noise (Δ {fmt_delta(t)}).")
    elif within:
        lead = f"The other {len(within)} are" if apart else f"On these queries alone, all {len(within)} are"
        out.append(
            f"{lead} within query noise "
            f"(Δ {_span({k: t.mean_diff for k, t in within.items()})}{'' if apart else '; ' + family})."
        )
    detectable = {k: t.detectable for k, t in tests.items() if k not in untrained}
    if any(number(v) is not None for v in detectable.values()):
        out.append(
            f"Even ignoring training variance, the queries could detect with {POWER:.0%} power only differences "
            f"of {_span(detectable, signed=False)} or more; training variance would raise that."
        )
    return out


def _comparisons(count: int) -> str:
    return f"{count} comparison{'s' if count != 1 else ''}"


def _range_text(values: list[int]) -> str:
    return f"{min(values)}" if min(values) == max(values) else f"{min(values)}–{max(values)}"


def _listing(tests: dict[str, Significance], untrained: set[str] | frozenset[str] = frozenset()) -> str:
    """``a (Δ +0.0123 [+0.0050, +0.0196]), b (…)``; an untrained configuration says so."""
    return join_words([f"{k} ({'untrained; ' if k in untrained else ''}Δ {fmt_delta(t)})" for k, t in tests.items()])


def _names(items: dict) -> str:
    return join_words(list(items))


def _span(values: dict[str, float], *, signed: bool = True) -> str:
    """``+0.0010 (b) to +0.0063 (a)``: the smallest and largest value with their labels, or the one value."""
    finite = {k: v for k, v in values.items() if number(v) is not None}
    if not finite:
        return "–"
    fmt = "{:+.4f}" if signed else "{:.4f}"
    low, high = min(finite, key=finite.__getitem__), max(finite, key=finite.__getitem__)
    if low == high or fmt.format(finite[low]) == fmt.format(finite[high]):
        return fmt.format(finite[low]) + (f" ({low})" if len(finite) > 1 else "")
    return f"{fmt.format(finite[low])} ({low}) to {fmt.format(finite[high])} ({high})"
