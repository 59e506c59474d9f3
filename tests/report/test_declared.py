"""Declared comparisons (``[[comparisons]]``): one-sided claims on the primary metric, Holm-corrected as a family of
their own, on synthetic per-query scores with training-seed shifts (see tests/report/test_seed_variance.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from typer.testing import CliRunner

from negbench.cli import app
from negbench.errors import DataError, NegbenchError
from negbench.report.boards import boards
from negbench.report.claims import CLAIM_COLUMNS, claim_cells, claim_outcome, claims_sentence
from negbench.report.figures import render_block, render_pages, store_settings
from negbench.report.markdown import leaderboard_markdown
from negbench.report.stats import BETTER, declared_tests
from negbench.run.store.parquet import ResultStore
from negbench.testing.results import synthetic_rows, synthetic_store
from tests.report.test_seed_variance import ALPHA, KEY, draw, marks

LADDER = [("random", "in-batch"), ("star", "random"), ("star", "dense")]


def claims(effects: dict[str, float], seed: int, comparisons=LADDER, **kwargs) -> dict[str, object]:
    rows, per_query = draw(effects, seed, **kwargs)
    return {t.name: t for t in declared_tests(rows, per_query, comparisons, "ndcg@10", ALPHA)[KEY]}


def test_no_difference_is_never_claimed_beyond_alpha() -> None:
    """Six equal strategies, three seeds each with seed shifts, five claims declared (the STAR ladder and two
    more): the family-wise rate of supported claims stays at α (bound: α + 2.5 Monte-Carlo standard errors).
    Uncorrected, 21 of these 200 boards would support a claim."""
    null = {"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.0, "a": 0.0, "b": 0.0}
    declared = [*LADDER, ("a", "in-batch"), ("b", "dense")]
    draws = 200
    hit = sum(any(t.supported for t in claims(null, i, declared).values()) for i in range(draws))
    bound = ALPHA + 2.5 * (ALPHA * (1 - ALPHA) / draws) ** 0.5
    assert hit / draws <= bound, f"{hit} of {draws} boards supported a claim between equal strategies"


def test_a_claim_against_the_data_is_never_supported() -> None:
    """One-sided: 'star > dense' when star is clearly worse is not supported, however small its p the other way."""
    for i in range(10):
        found = claims({"in-batch": 0.0, "random": 0.0, "dense": 0.08, "star": 0.0}, i)["star > dense"]
        assert found.test.mean_diff < -0.05 and found.test.p_less < 0.01
        assert not found.supported and found.p_holm > 0.5


def test_a_declared_family_finds_what_the_baseline_family_misses() -> None:
    """A true effect tested as one of three declared one-sided claims is found more often than the same effect
    tested two-sided against the baseline among eight strategies (Holm's first threshold α/3 one-sided vs α/8
    two-sided): the reason to declare comparisons."""
    effects = {"in-batch": 0.0, "target": 0.02} | {f"other{i}": 0.0 for i in range(7)}
    declared = [("target", "in-batch"), ("other0", "in-batch"), ("other1", "in-batch")]
    draws = 60
    claimed = marked = 0
    for i in range(draws):
        rows, per_query = draw(effects, 2_000 + i)
        claimed += declared_tests(rows, per_query, declared, "ndcg@10", ALPHA)[KEY][0].supported
        marked += marks(effects, 2_000 + i)["target"].mark == BETTER
    assert claimed >= marked + 0.1 * draws, f"declared {claimed} of {draws}, against the baseline {marked}"


def test_power_figure_of_a_claim_matches_a_simulation() -> None:
    """A claim whose true effect is its detectable difference is supported in 80% of simulated boards (within
    20%: 0.64–0.96)."""
    effects = {"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.0}
    detectable = float(np.median([claims(effects, 500 + i)["star > random"].detectable for i in range(20)]))
    assert 0 < detectable < 0.2
    draws = 150
    found = [claims({**effects, "star": detectable}, 1_000 + i)["star > random"] for i in range(draws)]
    power = sum(t.supported for t in found) / draws
    assert power == pytest.approx(0.8, rel=0.2), f"power {power:.2f} at the detectable difference {detectable:.4f}"


def test_one_seed_or_a_missing_side_is_not_tested_and_stays_in_the_family() -> None:
    """A claim with one seed on a side is never supported, however large the gap; one whose strategy has no
    finished run says so; both still count in Holm's family (it was fixed before the run)."""
    rows, per_query = draw({"in-batch": 0.0, "random": 0.2, "star": 0.0}, 0, seeds=(0,))
    tests = declared_tests(rows, per_query, LADDER, "ndcg@10", ALPHA)[KEY]
    one_seed, missing = tests[0], tests[2]
    assert one_seed.test.mean_diff > 0.15 and one_seed.test.p_greater < 1e-6
    assert not one_seed.supported and math.isnan(one_seed.p_holm)
    assert missing.test is None and missing.missing == ("dense",)
    assert {t.family for t in tests} == {3}


def test_the_verdict_opens_with_the_declared_claims_and_the_page_shows_their_table() -> None:
    rows, per_query = draw({"in-batch": 0.0, "random": 0.03, "dense": 0.0, "star": 0.06}, 0)
    board = boards(rows, per_query, "in-batch", primary_metric="ndcg@10", comparisons=LADDER)
    assert [t.name for t in board.tables[0].declared] == ["random > in-batch", "star > random", "star > dense"]
    page = leaderboard_markdown(rows, "t", per_query, comparisons=LADDER)
    verdict = page.split("**Verdict.** ", 1)[1].split("\n", 1)[0]
    assert verdict.startswith("Declared comparisons (one-sided on ndcg@10, Holm-corrected α = 0.05 over 3): ")
    assert verdict.index("star &gt; dense") < verdict.index("Against in-batch")
    assert "### Declared comparisons" in page and "| star &gt; dense | +0.0" in page
    assert "Declared comparisons" not in leaderboard_markdown(rows, "t", per_query)


SUITE = '[suite]\nname = "s"\n' + "".join(f'[[comparisons]]\nbetter = "{b}"\nworse = "{w}"\n' for b, w in LADDER)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """results/ladder: four strategies, three seeds, and a suite.toml declaring the STAR ladder."""
    synthetic_store(
        tmp_path / "results" / "ladder",
        {"in-batch": 0.0, "random": 0.03, "dense": 0.0, "star": 0.06},
        n_queries=60,
        metrics=("ndcg@10",),
    )
    (tmp_path / "results" / "ladder" / "suite.toml").write_text(SUITE)
    return tmp_path


def test_published_pages_and_the_claims_block_carry_the_suites_claims(published: Path) -> None:
    """The store's suite.toml declares the claims: both pages show them, and format=claims is the page's table."""
    store = published / "results" / "ladder"
    assert store_settings(store).comparisons == tuple(LADDER)
    pages = render_pages(store)
    block = render_block("results/ladder format=claims", published)
    head = "| claim | Δ | lower bound | upper bound | p one-sided | Holm p | seeds | queries | detectable Δ | outcome |"
    assert block.startswith(head)
    assert block in pages["leaderboard.md"]
    assert '<h3 class="view">Declared comparisons</h3>' in pages["index.html"]
    assert "star &gt; dense is supported" in pages["index.html"]  # the verdict, before the tables
    with pytest.raises(NegbenchError, match="declares no"):
        render_block("results/ladder format=claims", _without_claims(published))


def _without_claims(root: Path) -> Path:
    (root / "results" / "ladder" / "suite.toml").write_text('[suite]\nname = "s"\n')
    return root


def _claim(better: object, worse: object, extra: str = "") -> str:
    return f"[[comparisons]]\nbetter = {better!r}\nworse = {worse!r}\n{extra}".replace("'", '"')


STRATEGIES = "".join(f'[[strategies]]\nname = "{name}"\n' for name in ("in-batch", "random", "dense", "star"))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("comparisons = 3\n", "comparisons: must be an array"),
        ('[[comparisons]]\nbetter = "star"\n', "comparisons[0].worse"),
        (_claim(1, "x"), "comparisons[0].better"),
        (_claim("star", "star"), "comparisons[0]: better and worse are both 'star'"),  # crashed the report
        (_claim("star", "dense", 'than = "x"\n'), "comparisons[0].than"),
        (STRATEGIES + _claim("Star", "dense"), "[0].better = 'Star' is not a strategy label"),
        (_claim("star", "dense") + _claim("star", "dense"), "[1] compares 'star' and 'dense' again"),
        (_claim("star", "dense") + _claim("dense", "star"), "[1] compares 'dense' and 'star' again"),
    ],
)
def test_a_malformed_declaration_in_a_published_suite_names_file_and_field(
    published: Path, text: str, field: str
) -> None:
    """A store's suite.toml is checked as `negbench validate` checks a suite: each error one line naming the file
    and the field, from the settings, `negbench figures` and `negbench report` alike (exit 2, no traceback)."""
    path = published / "results" / "ladder" / "suite.toml"
    path.write_text(text + '[suite]\nname = "s"\n')
    with pytest.raises(DataError) as info:
        store_settings(path.parent)
    assert str(path) in info.value.one_line() and field in info.value.one_line()
    readme = published / "README.md"
    readme.write_text("# r\n")
    for args in (
        ["figures", str(readme), "--check", "--pages", "--root", str(published)],
        ["report", str(path.parent)],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2 and field in result.output and "Traceback" not in result.output, args


def test_a_seed_without_per_query_scores_leaves_the_claim_on_the_scored_seeds() -> None:
    """As the board's tests: a claim uses each side's runs that have per-query scores (2 of 3 here); a side with
    none is "not tested" for lack of scores, not called unrun."""
    rows, per_query = draw({"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.08}, 0)
    two = per_query.filter(pl.col("run_id") != "toy-star-2")
    star = claims_of(rows, two)["star > dense"]
    assert star.test is not None and (star.test.seeds_new, star.test.seeds_base) == (2, 3)
    assert star.test.mean_diff > 0.05 and star.test.seed_aware  # tested for seed variance, on two seeds
    none = claims_of(rows, per_query.filter(~pl.col("run_id").str.starts_with("toy-star")))["star > dense"]
    assert claim_outcome(none) == "not tested: star has no per-query scores of ndcg@10"
    unscored = declared_tests(rows, None, LADDER, "ndcg@10", ALPHA)[KEY]  # a store without per_query.parquet
    both = "not tested: random and in-batch have"
    assert claim_outcome(unscored[0]) == f"{both} no per-query scores of ndcg@10"


def claims_of(rows: pl.DataFrame, per_query: pl.DataFrame) -> dict[str, object]:
    return {t.name: t for t in declared_tests(rows, per_query, LADDER, "ndcg@10", ALPHA)[KEY]}


def test_the_claims_block_is_the_pages_table_when_the_newest_configuration_failed(tmp_path: Path) -> None:
    """star's newest configuration failed on every seed: the page tests its older finished one, and so does
    format=claims (it keeps every configuration, as the page)."""
    store = ResultStore(tmp_path / "results" / "s")
    for row, scores in synthetic_rows({"in-batch": 0.0, "dense": 0.0, "star": 0.08}, metrics=("ndcg@10",)):
        store.append({**row, "config_key": "key-" + row["strategy"]}, scores)
    newer = synthetic_rows({"star": 0.0}, metrics=("ndcg@10",), failed=("star",), params={"star": {"k": 2}})
    for row, scores in newer:
        store.append({**row, "run_id": row["run_id"] + "-v2", "created_at": "2099-01-01T00:00:00+00:00",
                      "config_key": "key-star-v2"}, scores)  # fmt: skip
    (store.directory / "suite.toml").write_text('[suite]\nname = "s"\n' + _claim("star", "dense"))
    page = render_pages(store.directory)["leaderboard.md"]
    block = render_block("results/s format=claims", tmp_path)
    assert "| star &gt; dense | +0.0" in block and block in page


def test_a_claim_over_fewer_than_two_queries_is_untested_and_the_verdict_calls_its_bound_uncorrected() -> None:
    """One shared query: no spread over queries, so no test (it read "not supported", with Δ as its own lower
    bound); the sentence calls the bound uncorrected and the table gives the queries a claim rests on."""
    rows, per_query = draw({"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.02}, 0, n=1)
    star = claims_of(rows, per_query)["star > dense"]
    assert star.test is None and not star.supported and math.isnan(star.lower)
    assert claim_outcome(star).endswith("fewer than two queries scored by every run of both (1)")
    rows, per_query = draw({"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.02}, 0)
    tests = list(claims_of(rows, per_query).values())
    assert "uncorrected bounds " in claims_sentence(tests, ALPHA)
    assert claim_cells(tests[2])[CLAIM_COLUMNS.index("queries")] == "60"


def test_a_claim_not_supported_says_how_large_a_step_the_data_leave_plausible() -> None:
    """A claim that is not supported used to carry only its lower bound and the detectable Δ, which a page then
    read as "the step is smaller than that" (a power argument, not a bound): each claim now carries its one-sided
    upper bound too, Δ + t(1 − α, df) · SE, in the table and in the verdict's sentence."""
    rows, per_query = draw({"in-batch": 0.0, "random": 0.0, "dense": 0.0, "star": 0.0}, 3)
    tests = list(claims_of(rows, per_query).values())
    for t in tests:
        margin = sps.t.ppf(1 - ALPHA, t.test.df) * t.test.se
        assert t.upper == pytest.approx(t.test.mean_diff + margin)
        assert t.lower == pytest.approx(t.test.mean_diff - margin)
        assert claim_cells(t)[CLAIM_COLUMNS.index("upper bound")] == f"{t.upper:+.4f}"
    sentence = claims_sentence(tests, ALPHA)
    assert all(f"uncorrected bounds {t.lower:+.4f} to {t.upper:+.4f}" in sentence for t in tests), sentence


def test_claims_without_the_baseline_do_not_read_as_no_verdict() -> None:
    rows, per_query = draw({"random": 0.0, "dense": 0.0, "star": 0.08}, 0)
    page = leaderboard_markdown(rows, "t", per_query, comparisons=[("star", "dense")])
    verdict = page.split("**Verdict.** ", 1)[1].split("\n", 1)[0]
    assert "star &gt; dense is supported" in verdict
    assert (
        "No verdict against the baseline: in-batch is not in these results, so no configuration is compared" in verdict
    )
