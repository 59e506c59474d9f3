"""The report's diagnostics beyond the leaderboard: learning curves and time-to-target, hardness series,
negative-set overlap and planted false negatives; and one sentence on what each one means.

Every input is optional: a store without ``steps.parquet``, stored sampled negatives (``negatives/``) or
planted-false-negative columns simply has fewer sections.
"""

from __future__ import annotations

import math

import polars as pl

from negbench.report.stats import newest_configs, with_config_labels

__all__ = [
    "MEANINGS",
    "MIN_CURVE_POINTS",
    "STEPS_COLUMNS",
    "STEPS_FILE",
    "overlap_matrix",
    "planted_table",
    "strategy_curves",
    "time_to_target",
    "with_dataset_base",
]

STEPS_FILE = "steps.parquet"
STEPS_COLUMNS = ("run_id", "kind", "metric", "step", "examples", "wall_s", "value")
MIN_CURVE_POINTS = 3  # fewer evaluation points make a line, not a curve: no time-to-target from them

# One sentence per diagnostic the report can show (the "What the diagnostics mean" section).
MEANINGS: dict[str, str] = {
    "neg_score_gap": "The base model's cosine of the positive minus that of each sampled negative, averaged: "
    "small or negative means the sampled negatives are hard (the model already scores them near the positive).",
    "false_negative_share": "The share of sampled negatives that are labelled relevant to the query in some "
    "split: a lower bound on the false negatives a strategy feeds the loss.",
    "planted_fn_share": "The share of sampled negatives that are planted false negatives (known duplicates of "
    "the positive): how often a strategy's own sampling picks documents it should not push away.",
    "planted_fn_inbatch_share": "The share of every negative column the loss saw during training (other rows' "
    "positives and all mined negatives in the batch) that is a planted copy of the row's own positive: the "
    "false negatives the model was actually pushed away from.",
    "hardness": "Hardness series, per training step from the loss's own logits: pos_score and neg_score are the "
    "mean cosines of positives and negatives, hardest_share the softmax share of the hardest negative, "
    "active_negatives the negatives carrying at least 1% of the softmax mass (those with a real gradient).",
    "time_to_target": "The training wall time at which a strategy's dev curve (mean over seeds) first reaches the "
    'baseline\'s final dev value on that dataset × model ("never" if it does not), from curves of three points or '
    "more.",
    "time_to_own_95_s": "A row's training wall time to its first dev point at 95% of its own best dev value: "
    "how early a run settles, not how fast it gets good (a run that never improves settles at once).",
    "overlap": "The mean Jaccard overlap of two strategies' sampled negative sets for the same queries: near 1 "
    "they sample the same negatives (expect similar results), near 0 they train on different evidence.",
    "mean_rank": "A strategy's rank (1 = best mean of the primary metric) averaged over datasets; the Friedman "
    "test asks whether the ranks differ more than chance, the Holm-corrected Wilcoxon tests which pairs do.",
}


Curves = dict[str, tuple[list[float], list[float]]]  # configuration label -> (xs, ys)


def strategy_curves(
    steps: pl.DataFrame, rows: pl.DataFrame, kind: str, x: str = "wall_s"
) -> dict[tuple[str, str, str], Curves]:
    """Per (dataset, model, metric): each configuration's curve of ``kind`` records, the mean over its seeds at
    each step (``x`` is also averaged: ``wall_s``, ``examples`` or ``step``), keyed by its display label
    (:func:`negbench.report.stats.with_config_labels`: two configurations of one strategy are two curves, never
    averaged). Only finished runs count."""
    ok = rows.filter(pl.col("status") == "ok") if "status" in rows.columns else rows
    if "label" not in ok.columns:
        ok = with_config_labels(ok)
    keys = ok.select("run_id", "dataset", "model", pl.col("label").alias("strategy"))
    part = steps.filter(pl.col("kind") == kind).join(keys, on="run_id", how="inner")
    part = part.with_columns(pl.col("value").cast(pl.Float64), pl.col(x).cast(pl.Float64))
    part = part.filter(pl.col("value").is_finite() & pl.col(x).is_finite())  # null/NaN points are not drawn
    if part.is_empty():
        return {}
    mean = (
        part.group_by("dataset", "model", "metric", "strategy", "step", maintain_order=True)
        .agg(pl.col(x).cast(pl.Float64).mean().alias("x"), pl.col("value").cast(pl.Float64).mean().alias("y"))
        .sort("dataset", "model", "metric", "strategy", "step")
    )
    order = {s: i for i, s in enumerate(dict.fromkeys(ok["label"].to_list()))}
    out: dict[tuple[str, str, str], Curves] = {}
    for (dataset, model, metric), group in mean.group_by("dataset", "model", "metric", maintain_order=True):
        curves: Curves = {}
        for strategy in sorted(set(group["strategy"].to_list()), key=lambda s: order.get(s, len(order))):
            sub = group.filter(pl.col("strategy") == strategy)
            curves[strategy] = (sub["x"].to_list(), sub["y"].to_list())
        out[(dataset, model, metric)] = curves
    return out


def time_to_target(curves: Curves, baseline: str | None) -> tuple[float | None, dict[str, float | None]]:
    """(target, {strategy: first x at which its curve reaches the target, or None}): the target is the final value
    of the ``baseline``'s curve (higher is better), so the question is how soon a strategy gets as good as the
    baseline gets at all. Curves with fewer than :data:`MIN_CURVE_POINTS` points are left out (two points say when
    the first evaluation happened, not how fast a run learns); ``(None, {})`` when the baseline's curve is one."""
    kept = {s: (xs, ys) for s, (xs, ys) in curves.items() if len(_finite(ys)) >= MIN_CURVE_POINTS}
    if baseline not in kept:
        return None, {}
    target = _finite(kept[baseline][1])[-1]
    reached: dict[str, float | None] = {}
    for strategy, (xs, ys) in kept.items():
        reached[strategy] = next((x for x, y in zip(xs, ys, strict=True) if y is not None and y >= target), None)
    return target, reached


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def planted_table(rows: pl.DataFrame, metric: str) -> pl.DataFrame | None:
    """Planted false negatives: per planted dataset × model × strategy, ``metric`` without and with planting,
    paired by seed, the mean paired drop, ``n`` pairs, and the mean planted shares. Each side is the label's
    newest configuration on its dataset (:func:`negbench.report.stats.newest_configs`; configurations are never
    pooled); a seed run on one side only is left out. None when the store has no planting columns or no
    pairs."""
    rows = with_dataset_base(rows)
    if any(c not in rows.columns for c in ("planted_fn_rate", "dataset_base", "seed")) or metric not in rows.columns:
        return None
    ok = rows.filter(pl.col(metric).is_not_null())
    ok = newest_configs(ok.filter(pl.col("status") == "ok") if "status" in ok.columns else ok)
    if ok.is_empty():
        return None
    rate = pl.col("planted_fn_rate").cast(pl.Float64)
    pair_key = ["dataset_base", "model", "strategy", "seed"]
    clean = ok.filter(rate.fill_null(0) == 0).select(*pair_key, pl.col(metric).cast(pl.Float64).alias("without"))
    shares = ("planted_fn_share", "planted_fn_inbatch_share")
    planted = ok.filter(rate > 0).select(
        *pair_key,
        "dataset",
        rate.alias("planted_fn_rate"),
        (pl.col("planted_fn_kind") if "planted_fn_kind" in ok.columns else pl.lit(None, pl.String))
        .cast(pl.String)
        .alias("planted_fn_kind"),
        pl.col(metric).cast(pl.Float64).alias("with"),
        *[(pl.col(c) if c in ok.columns else pl.lit(None)).cast(pl.Float64).alias(c) for c in shares],
    )
    pairs = planted.join(clean, on=pair_key, how="inner")
    if pairs.is_empty():
        return None
    return (
        pairs.group_by("dataset_base", "model", "strategy", "dataset", maintain_order=True)
        .agg(
            pl.col("planted_fn_rate").first(),
            pl.col("planted_fn_kind").first(),
            pl.col("without").mean(),
            pl.col("with").mean(),
            (pl.col("without") - pl.col("with")).mean().alias("drop"),
            pl.len().alias("n"),
            *[pl.col(c).mean() for c in shares],
        )
        .select(
            "dataset_base",
            "model",
            "strategy",
            "planted_fn_rate",
            "planted_fn_kind",
            "without",
            "with",
            "drop",
            "n",
            *shares,
        )
    )


def with_dataset_base(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``dataset_base``: the name of the dataset without planting. A planted row's
    ``base_dataset_fingerprint`` is the ``dataset_fingerprint`` of the plain dataset it was planted in."""
    if "dataset_base" in rows.columns or "base_dataset_fingerprint" not in rows.columns:
        return rows
    plain = rows.filter(pl.col("planted_fn_rate").fill_null(0) == 0) if "planted_fn_rate" in rows.columns else rows
    names = dict(zip(plain["dataset_fingerprint"].to_list(), plain["dataset"].to_list(), strict=True))
    base = rows["base_dataset_fingerprint"].fill_null(rows["dataset_fingerprint"]).to_list()
    return rows.with_columns(
        pl.Series(
            "dataset_base", [names.get(fp, name) for fp, name in zip(base, rows["dataset"].to_list(), strict=True)]
        )
    )


def overlap_matrix(frame: pl.DataFrame, dataset: str, model: str) -> tuple[list[str], list[list[float | None]]]:
    """(strategies, symmetric matrix of Jaccard values) of one dataset × model; the diagonal is 1 and pairs
    missing in both orders are None."""
    here = frame.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
    values: dict[tuple[str, str], float] = {}
    for a, b, j in here.select("strategy_a", "strategy_b", "jaccard").iter_rows():
        if j is not None:
            values[(a, b)] = float(j)
            values.setdefault((b, a), float(j))
    labels = list(dict.fromkeys([*here["strategy_a"].to_list(), *here["strategy_b"].to_list()]))
    matrix = [[1.0 if a == b else values.get((a, b)) for b in labels] for a in labels]
    return labels, matrix
