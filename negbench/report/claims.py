"""The suite's declared comparisons on a board, in words and as a table (:mod:`negbench.report.stats.declared`):
the verdict's first sentence and the rows every renderer (markdown, HTML, a figures block) shows the same way."""

from __future__ import annotations

from collections.abc import Sequence

from negbench.report.stats import POWER, DeclaredTest
from negbench.report.table import number

__all__ = ["CLAIM_COLUMNS", "claim_cells", "claim_outcome", "claims_caption", "claims_sentence"]

CLAIM_COLUMNS = (
    "claim",
    "Δ",
    "lower bound",
    "upper bound",
    "p one-sided",
    "Holm p",
    "seeds",
    "queries",
    "detectable Δ",
    "outcome",
)


def claim_outcome(test: DeclaredTest) -> str:
    """``supported``, ``not supported``, ``one seed: not tested`` or ``not tested: <labels> <has what it lacks>``."""
    if test.test is None:
        return f"not tested: {' and '.join(test.missing)} {'has' if len(test.missing) == 1 else 'have'} {test.why}"
    if not test.seed_aware:
        return "one seed: not tested"
    return "supported" if test.supported else "not supported"


def _signed(value: float) -> str:
    return "–" if number(value) is None else f"{value:+.4f}"


def _p(value: float) -> str:
    if number(value) is None:
        return "–"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def claim_cells(test: DeclaredTest) -> list[str]:
    """One table row per claim, in :data:`CLAIM_COLUMNS` order."""
    s = test.test
    if s is None:
        return [test.name, *["–"] * (len(CLAIM_COLUMNS) - 2), claim_outcome(test)]
    detectable = "–" if number(test.detectable) is None else f"{test.detectable:.4f}"
    return [
        test.name,
        _signed(s.mean_diff),
        _signed(test.lower),
        _signed(test.upper),
        _p(s.p_greater),
        _p(test.p_holm),
        f"{s.seeds_new} vs {s.seeds_base}",
        str(s.n),
        detectable if test.seed_aware else (f"≥ {detectable}" if detectable != "–" else "–"),
        claim_outcome(test),
    ]


def claims_caption(tests: Sequence[DeclaredTest], alpha: float) -> str:
    """What the claims table shows and how it was tested."""
    metric = tests[0].metric if tests else "the primary metric"
    family = max((t.family for t in tests), default=0)
    return (
        f"Declared comparisons (the suite's [[comparisons]], fixed before the run): one-sided tests that the first "
        f"strategy beats the second on {metric}, with test queries and training seeds as sources of variance, "
        f"Holm-corrected over the {family} declared (one that could not be tested counts with p = 1); only claims "
        f"with several seeds on both sides can be supported. Δ is better − worse over the queries scored by every "
        f"run of both sides (queries); the lower and upper bounds are its one-sided {1 - alpha:.0%} confidence "
        f"bounds (uncorrected; together a {1 - 2 * alpha:.0%} interval): the upper one is the largest Δ the data "
        f"leave plausible; supported: Holm p < {alpha:g}; detectable Δ: the smallest true Δ found with {POWER:.0%} "
        f"power (≥: queries only, one seed)."
    )


def claims_sentence(tests: Sequence[DeclaredTest], alpha: float) -> str | None:
    """The verdict's first sentence: each declared claim with its Δ, bound and p, and what it could have found."""
    if not tests:
        return None
    family = max((t.family for t in tests), default=0)
    clauses = []
    for t in tests:
        if t.test is None:
            clauses.append(f"{t.name} is {claim_outcome(t)}")
            continue
        figures = f"Δ {_signed(t.test.mean_diff)}, uncorrected bounds {_signed(t.lower)} to {_signed(t.upper)}"
        if not t.seed_aware:
            clauses.append(
                f"{t.name} is not tested, one seed on a side ({figures}, p over queries {_p(t.p_one_sided)})"
            )
            continue
        figures += f", Holm p {_p(t.p_holm)}"
        if not t.supported and number(t.detectable) is not None:
            figures += f"; detectable Δ {t.detectable:.4f}"
        clauses.append(f"{t.name} is {claim_outcome(t)} ({figures})")
    level = f"one-sided on {tests[0].metric}, Holm-corrected α = {alpha:g} over {family}"
    return f"Declared comparisons ({level}): " + "; ".join(clauses) + "."
