"""The captions of a board's tables (:mod:`negbench.report.leaderboard`), written from what the rows hold: a
caption speaks of intervals over seeds only when there are several seeds, of marks only when a test could draw
one, and names the comparisons a Holm family has."""

from __future__ import annotations

from collections.abc import Sequence

from negbench.report.stats import BETTER, POWER, WORSE, Significance

__all__ = ["COMPUTE_CAPTION", "method_text", "primary_caption", "view_captions"]


def view_captions(
    *,
    primary: str | None,
    baseline: str,
    alpha: float,
    seeds: Sequence[int],
    tests: Sequence[Significance],
    legacy_memory: bool = False,
    untrained: Sequence[str] = (),
    compute: bool = False,
) -> dict[str, str]:
    """``{view name: caption}`` for one board (``tests``: the primary metric's tests against the baseline;
    ``compute``: its rows have measured TFLOPs)."""
    tested = bool(tests)
    secondary = "Exploratory: means over seeds"
    if tested:
        secondary += f"; Δ and its 95% CI computed as for {primary}"
    secondary += f". No marks and no correction across metrics: the verdict rests on {primary} alone."
    idle = f" {', '.join(untrained)} does not train: no training cost, no training memory." if untrained else ""
    costs = (
        "steps / examples: optimiser steps and training examples seen per run; batch: mean/min batch size; "
        "train ex/s: training throughput; times in seconds (mine s: mining, charged at what computing its cached "
        "artefacts cost, whichever run computed them; refresh s: re-mining during training; train s: training "
        "steps only; total s: the job's measured wall time, diagnostics included, in which a cached artefact costs "
        "its look-up and the first run to need a shared one pays for it — so it can be less than the parts); "
        "throughput and times are medians over seeds (from three seeds on, one run slowed by other load does not "
        "move them), measured on the device named above; the other columns are means over seeds (batch min: the "
        "smallest)." + idle
    )
    if compute:
        costs = COMPUTE_CAPTION + costs.replace("the device named above", "the device of the last column")

    memory = "Peak MB during training and during evaluation, means over seeds." + idle
    if legacy_memory:
        memory += (
            " Runs recorded before training and evaluation memory were measured apart show the peak of the whole "
            "run as their training peak."
        )
    return {
        "primary": primary_caption(primary, baseline, alpha, seeds, tests),
        "secondary": secondary,
        "costs": costs,
        "memory": memory,
    }


COMPUTE_CAPTION = (
    "train / prep / eval TFLOP: 10¹² FLOPs counted from the non-padding tokens each encoder processed, the same on any "
    "machine — 2·N per token for a forward pass, 6·N for a forward and backward pass, N the encoder's parameters "
    "outside its embedding tables (Kaplan et al. 2020); train: the training steps (with a strategy's extra columns "
    "and own models), prep: mining, sampling and refreshes (cached embeddings at what encoding them costs), eval: the "
    "test evaluation. "
)


def primary_caption(
    primary: str | None, baseline: str, alpha: float, seeds: Sequence[int], tests: Sequence[Significance]
) -> str:
    """What the primary table's columns mean, for the seed counts and tests it has."""
    if primary is None:
        return ""
    parts = [f"{primary}: the primary metric on the test split, mean over a configuration's seeds."]
    if seeds and max(seeds) > 1:
        parts.append("seed SD: its standard deviation between seeds (training variance).")
        if min(seeds) == 1:
            parts.append("A configuration with one seed has none: its training variance is unmeasured.")
    elif seeds:
        parts.append(
            "Every configuration ran with one seed: training variance is unmeasured, so no interval over seeds "
            "is given."
        )
    if not tests:
        return " ".join(parts)
    aware = [t for t in tests if t.seed_aware]
    alone = [t for t in tests if not t.seed_aware]
    aware_m, alone_m = (next((t.family for t in side if t.family), 0) for side in (aware, alone))
    uncorrected = "not corrected for the number of comparisons"
    parts.append(f"Δ vs baseline: mean per-query difference from {baseline} with its 95% CI")
    if aware:
        parts[-1] += (
            " over queries and seeds (t interval from a seed × query variance-components model, "
            f"{uncorrected}; see Method)."
        )
        if aware_m:
            parts[-1] += (
                f" {BETTER} / {WORSE}: better / worse than {baseline} at α = {alpha:g} after Holm's correction over "
                f"the {_count(aware_m)} with several seeds on both sides; Holm p: the adjusted p-value."
            )
    else:
        parts[-1] += f" ({uncorrected})."
    if alone:
        held = (
            f" and the Holm p (in parentheses, over {_those(alone_m)}) speaks for these trained models, not for the "
            "strategies"
            if alone_m
            else ""
        )
        lead = "Where either side has one seed" if aware else "With one seed"
        parts.append(f"{lead} the CI covers query sampling only{held}: no mark is drawn.")
    if any(not t.family for t in tests):
        parts.append(
            "A repeat of another row's configuration (tagged) is no further hypothesis: it joins no Holm family, "
            "so it has no Holm p, mark or detectable Δ."
        )
    parts.append(
        f"detectable Δ: the smallest true difference the comparison finds with {POWER:.0%} power at α / m "
        "(m: its family's comparisons)"
        + ("; ≥: from query sampling alone — training variance would raise it." if alone else ".")
    )
    return " ".join(parts)


def _count(family: int) -> str:
    return f"{family} comparison{'s' if family != 1 else ''}"


def _those(family: int) -> str:
    """``the one comparison`` / ``those 3 comparisons``."""
    return "the one comparison" if family == 1 else f"those {family} comparisons"


def method_text(alpha: float) -> str:
    """How the board's statistics are computed (the markdown legend and the page's Method section)."""
    return (
        "Each row aggregates the finished runs (seeds) of one configuration: dataset × model × strategy × config "
        "key (a hash of everything but the seed that changes the result); configurations are never pooled. "
        "Δ vs baseline is the mean over test queries of the difference of seed-averaged per-query scores. Its "
        "standard error has a query part (the variance over queries of those differences, net of per-query "
        "training noise, over the number of queries) and a seed part (the variance of each configuration's "
        "per-seed means over its number of seeds): a seed × query variance-components model, the analytic "
        "counterpart of a two-level bootstrap over queries and seeds. Degrees of freedom are Welch–Satterthwaite's, "
        "each seed part taken at its 85% upper confidence bound (few seeds give a noisy seed variance); the 95% CI "
        "and the p-value are t-based. A mark (▲ / ▼) needs several "
        "seeds on both sides and a Holm-adjusted p below "
        f"α = {alpha:g}, Holm's family being those comparisons on the primary metric of one dataset × model (a "
        "label repeating another's configuration joins none); the "
        "other metrics are exploratory (no marks, no correction). With one seed the test covers query sampling "
        "only and is never marked. Detectable Δ: the true difference the test finds with 80% power at α / m "
        "(m: the family's comparisons; noncentral t). Wall times and throughput are medians over seeds, compute "
        "and memory means."
    )
