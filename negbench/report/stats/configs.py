"""Configurations in a store: their keys, display labels, the newest one of each label, the baseline, and
per-query means by configuration. One rule picks the newest configuration everywhere (:func:`newest_config`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl

__all__ = [
    "CONFIG_KEYS",
    "IDENTITY",
    "SHORT_KEY",
    "BaselineConfig",
    "baseline_config",
    "config_notes",
    "fallback_config_key",
    "newest_config",
    "newest_configs",
    "per_query_means",
    "query_means",
    "repeated_configs",
    "resolve_baseline",
    "with_config_key",
    "with_config_labels",
]

CONFIG_KEYS = ("dataset", "model", "strategy", "config_key")
SHORT_KEY = 6


def per_query_means(per_query: pl.DataFrame, run_ids: Iterable[str], metric: str) -> dict[str, float]:
    """Per-query score of ``metric`` averaged over the given runs (seeds): ``{query_id: mean score}``."""
    ids = list(run_ids)
    if per_query.is_empty() or not ids:
        return {}
    frame = (
        per_query.filter(pl.col("run_id").is_in(ids) & (pl.col("metric") == metric))
        .group_by("query_id")
        .agg(pl.col("score").mean())
    )
    return dict(zip(frame["query_id"].to_list(), frame["score"].to_list(), strict=True))


# --- configurations -------------------------------------------------------------------------------------


def fallback_config_key(config_hash: object, params: object, training: object) -> str:
    """The configuration key of a row from a store that predates ``config_key`` (a hash of what it has)."""
    text = json.dumps([str(config_hash), str(params), str(training)])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def with_config_key(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with a non-null string ``config_key``: the stored one, else :func:`fallback_config_key` of the
    row's ``config_hash`` / ``params`` / ``training`` (whichever exist; old stores have no ``config_key``)."""
    has = "config_key" in rows.columns
    key = pl.col("config_key").cast(pl.String) if has else pl.lit(None, dtype=pl.String)
    if has and rows.select(key.is_null().any() | (key == "").any()).item() is not True:
        return rows.with_columns(key.alias("config_key"))
    parts = [
        rows[c].cast(pl.String).to_list() if c in rows.columns else [None] * rows.height
        for c in ("config_hash", "params", "training")
    ]
    fallback = pl.Series([fallback_config_key(*p) for p in zip(*parts, strict=True)], dtype=pl.String)
    return rows.with_columns(
        pl.when(key.is_null() | (key == "")).then(pl.lit(fallback)).otherwise(key).alias("config_key")
    )


def with_config_labels(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ``config_key`` (see :func:`with_config_key`) and ``label``, the name to display: the
    strategy label, or ``"label [cfg 3fa2c1]"`` (a short key, longer if needed to be unique) when the label
    has several configurations in the same dataset × model."""
    if "strategy" not in rows.columns:
        return rows
    rows = with_config_key(rows)
    configs: dict[tuple, list[str]] = {}
    for d, m, s, k in rows.select(CONFIG_KEYS).unique(maintain_order=True).iter_rows():
        configs.setdefault((d, m, s), []).append(k)
    names: dict[tuple, str] = {}
    for (d, m, s), ks in configs.items():
        longest = max(len(k) for k in ks)
        width = next((w for w in range(SHORT_KEY, longest) if len({k[:w] for k in ks}) == len(ks)), longest)
        for k in ks:
            names[(d, m, s, k)] = str(s) if len(ks) == 1 else f"{s} [cfg {k[:width]}]"
    labels = [names[k] for k in rows.select(CONFIG_KEYS).iter_rows()]
    return rows.with_columns(pl.Series("label", labels, dtype=pl.String))


def newest_config(rows: pl.DataFrame) -> str:
    """The ``config_key`` among ``rows`` with the latest ``created_at`` (ties and missing dates: the one
    appended last)."""
    rows = with_config_key(rows).with_row_index("_index")
    created = pl.col("created_at").cast(pl.String) if "created_at" in rows.columns else pl.lit(None, pl.String)
    order = rows.group_by("config_key").agg(created.max().alias("_created"), pl.col("_index").max())
    return order.sort(["_created", "_index"], nulls_last=False)["config_key"][-1]


def resolve_baseline(rows: pl.DataFrame, baseline: str) -> str | None:
    """The strategy label that is the baseline: a label equal to ``baseline``, else the single label whose
    registered ``strategy_name`` is ``baseline``; None when there is none."""
    labels = rows["strategy"].unique().to_list() if "strategy" in rows.columns else []
    if baseline in labels:
        return baseline
    if "strategy_name" in rows.columns:
        named = rows.filter(pl.col("strategy_name") == baseline)["strategy"].unique().to_list()
        if len(named) == 1:
            return named[0]
    return None


@dataclass(frozen=True)
class BaselineConfig:
    """The baseline of one dataset × model: its strategy label, the configuration used and how many the
    label has (only the newest is the baseline when there are several)."""

    strategy: str
    config_key: str
    label: str
    n_configs: int

    def note(self) -> str | None:
        """A sentence saying which configuration is the baseline when the label has several (else None)."""
        if self.n_configs < 2:
            return None
        return (
            f"The baseline is {self.label}, the newest (by run date) of the {self.n_configs} "
            f"configurations of {self.strategy} in this store."
        )


def baseline_config(rows: pl.DataFrame, baseline: str) -> BaselineConfig | None:
    """The baseline configuration among ``rows`` (one dataset × model): see :func:`resolve_baseline` for the
    label; of its configurations, the newest with a finished run (else the newest)."""
    strategy = resolve_baseline(rows, baseline)
    if strategy is None:
        return None
    rows = with_config_labels(rows)
    mine = rows.filter(pl.col("strategy") == strategy)
    ok = mine.filter(pl.col("status") == "ok") if "status" in mine.columns else mine
    key = newest_config(ok if not ok.is_empty() else mine)
    label = mine.filter(pl.col("config_key") == key)["label"][0]
    return BaselineConfig(strategy, key, label, mine["config_key"].n_unique())


def config_notes(rows: pl.DataFrame) -> list[str]:
    """One sentence per strategy label with several configurations among ``rows`` (one dataset × model)."""
    rows = with_config_labels(rows)
    counts = rows.group_by("strategy", maintain_order=True).agg(pl.col("config_key").n_unique().alias("n"))
    return [
        f"This store holds {n} configurations of {s} (settings, parameters, data or code differ): they are "
        "separate rows, labelled by a short config key, and never pooled."
        for s, n in counts.filter(pl.col("n") > 1).iter_rows()
    ]


def query_means(rows: pl.DataFrame, per_query: pl.DataFrame, keys: Sequence[str] = CONFIG_KEYS) -> pl.DataFrame:
    """Per-query scores averaged over the finished runs (seeds) of each ``keys`` group, in one pass.

    The default groups by configuration (dataset × model × strategy × config_key), so runs of different
    configurations are never averaged together. Columns: ``*keys, metric, query_id, score``.
    """
    if any(k not in rows.columns for k in keys):
        rows = with_config_labels(rows)
    ok = rows.filter(pl.col("status") == "ok").select(["run_id", *keys])
    return (
        per_query.join(ok, on="run_id", how="inner").group_by([*keys, "metric", "query_id"]).agg(pl.col("score").mean())
    )


def newest_configs(rows: pl.DataFrame) -> pl.DataFrame:
    """The rows of the newest configuration (:func:`newest_config`) of each label on each dataset × model,
    in their original order: what a comparison across datasets or variants uses instead of pooling. The one
    rule for "newest" that the leaderboards, ``compare`` and ``figures`` share (a store without ``dataset``
    or ``model`` columns is one dataset or model)."""
    rows = with_config_key(rows)
    if rows.is_empty():
        return rows
    groups = [col for col in CONFIG_KEYS[:-1] if col in rows.columns]
    newest = {group: newest_config(part) for group, part in rows.group_by(groups, maintain_order=True)}
    keep = [newest[tuple(key[:-1])] == key[-1] for key in rows.select([*groups, "config_key"]).iter_rows()]
    return rows.filter(pl.Series(keep, dtype=pl.Boolean))


# --- repeated configurations ----------------------------------------------------------------------

# What makes two labels one configuration: the strategy, its parameters, training settings and budget, on the same
# data, base model and code (columns an old store lacks are left out).
IDENTITY = (
    "strategy_name",
    "params",
    "training",
    "budget",
    "dataset_fingerprint",
    "model_fingerprint",
    "code_revision",
)


def repeated_configs(rows: pl.DataFrame, baseline: str | None = None) -> dict[str, str]:
    """``{label: original label}`` for labels of one dataset × model whose configuration another label also ran
    (same :data:`IDENTITY`; only finished runs count). Of the labels sharing one configuration the original is the
    ``baseline`` label, else one named as its registered strategy, else the one run first; the versions of one
    strategy label (several ``config_key``) are never repeats of each other."""
    present = [c for c in IDENTITY if c in rows.columns]
    if "strategy_name" not in present or "label" not in rows.columns:
        return {}
    if "status" in rows.columns:
        rows = rows.filter(pl.col("status") == "ok")
    order = "created_at" if "created_at" in rows.columns else None
    groups: dict[str, list[tuple[tuple, str, str]]] = {}
    for index, rec in enumerate(rows.unique(subset=["label"], keep="first", maintain_order=True).iter_rows(named=True)):
        identity = json.dumps([_canonical(rec.get(c)) for c in present], sort_keys=True, default=str)
        strategy = str(rec.get("strategy", rec["label"]))
        first = rows.filter(pl.col("label") == rec["label"])[order].cast(pl.String).min() if order else None
        rank = (rec["label"] != baseline, strategy != rec.get("strategy_name"), str(first or ""), index)
        groups.setdefault(identity, []).append((rank, rec["label"], strategy))
    out: dict[str, str] = {}
    for members in groups.values():
        (_, original, strategy), *others = sorted(members)
        out |= {label: original for _, label, other in others if other != strategy}
    return out


def _canonical(value: object) -> object:
    """A JSON text as its parsed value (key order does not matter); anything else as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
