"""Figures in markdown files rendered from published results, so no number is typed by hand.

A block is an HTML comment pair; everything between the two markers is generated::

    <!-- figures: results/quickstart-cpu metric=ndcg@10 format=inline -->nDCG@10: none 0.7562, …<!-- /figures -->

The first word after ``figures:`` is a results directory (relative to the repository root) holding
``results.parquet``; the rest are ``key=value`` options:

- ``format``: ``inline`` (default; ``nDCG@10: none 0.7562, in-batch 0.7758``), ``table`` (a markdown
  table of the metric and costs), ``value`` (the number alone; the store, after filters, must hold one
  strategy) or ``wall`` (total compute time of the rows, ``68 min 19 s``).
- ``metric``: a metric column of the store (default ``ndcg@10``); ``dev_metric`` is the tuned dev score.
- ``digits``: decimals of the metric (default 4).
- ``strategy``: comma-separated labels to keep (in that order); ``dataset`` / ``model``: required when the
  store holds several.
- ``order``: ``store`` (default: the order in which strategies first appear in the store, i.e. the suite's)
  or ``metric`` (best first).

Means are over seeds (rows with ``status == "ok"``); with two or more seeds the half-width of the 95%
Student-t confidence interval follows as ``± h``. A strategy whose rows all failed shows as failed. If the
store has a ``config_key`` column, only the newest config (latest ``created_at``) of each strategy counts.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from negbench.errors import NegbenchError
from negbench.metrics import parse_metric
from negbench.report import escape_md, write_text_atomic
from negbench.results import RESULTS_FILE, read_parquet
from negbench.stats import t_half_width

OPEN = re.compile(r"<!--\s*figures:(.*?)-->", re.DOTALL)
CLOSE = re.compile(r"<!--\s*/figures\s*-->")
FORMATS = ("inline", "table", "value", "wall")
OPTIONS = ("metric", "format", "digits", "strategy", "dataset", "model", "order")
DEFAULT_FILES = ("README.md", "results/README.md")
_FAMILY_NAMES = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}
DASH = "–"


@dataclass(frozen=True)
class Spec:
    directory: str
    metric: str = "ndcg@10"
    format: str = "inline"
    digits: int = 4
    strategies: tuple[str, ...] = ()
    dataset: str | None = None
    model: str | None = None
    order: str = "store"


@dataclass(frozen=True)
class Block:
    """One block of a markdown file: the spec text, its 1-based line, and the body's character span."""

    spec: str
    line: int
    body_start: int
    body_end: int
    indent: str

    def directory(self) -> str:
        return self.spec.split()[0] if self.spec.split() else ""


def metric_label(name: str) -> str:
    """``ndcg@10`` → ``nDCG@10``, ``recall@100`` → ``Recall@100``; other names unchanged."""
    if name == "dev_metric":
        return "dev metric"
    try:
        m = parse_metric(name)
    except ValueError:
        return name
    return f"{_FAMILY_NAMES.get(m.family, m.family)}@{m.k}"


def parse_spec(text: str) -> Spec:
    words = text.split()
    if not words:
        raise NegbenchError("figures block names no results directory")
    kwargs: dict[str, object] = {"directory": words[0]}
    for word in words[1:]:
        key, sep, value = word.partition("=")
        if not sep or key not in OPTIONS or not value:
            raise NegbenchError(f"bad option {word!r} in figures block: use key=value with key one of "
                                f"{', '.join(OPTIONS)}")
        if key == "format" and value not in FORMATS:
            raise NegbenchError(f"unknown format {value!r}: use one of {', '.join(FORMATS)}")
        if key == "order" and value not in ("store", "metric"):
            raise NegbenchError(f"unknown order {value!r}: use store or metric")
        if key == "digits":
            if not value.isdigit() or int(value) > 10:
                raise NegbenchError(f"digits must be an integer 0–10, not {value!r}")
            kwargs["digits"] = int(value)
        elif key == "strategy":
            kwargs["strategies"] = tuple(s for s in value.split(",") if s)
        else:
            kwargs[key] = value
    return Spec(**kwargs)  # type: ignore[arg-type]


def load_rows(spec: Spec, root: Path) -> pl.DataFrame:
    """The store's rows that a block describes: one dataset × model, newest config per strategy."""
    path = Path(root) / spec.directory / RESULTS_FILE
    if not path.is_file():
        raise NegbenchError(f"results directory {spec.directory} not found (no {path})")
    rows = read_parquet(path)
    for col in ("strategy", "status"):
        if col not in rows.columns:
            raise NegbenchError(f"{path} has no {col!r} column")
    for key in ("dataset", "model"):
        wanted = getattr(spec, key)
        if key not in rows.columns:
            continue
        if wanted is not None:
            rows = rows.filter(pl.col(key) == wanted)
            if rows.is_empty():
                raise NegbenchError(f"{spec.directory} has no rows of {key} {wanted!r}")
        else:
            values = rows[key].unique(maintain_order=True).to_list()
            if len(values) > 1:
                raise NegbenchError(f"{spec.directory} holds several {key}s ({', '.join(map(str, values))}): "
                                    f"add {key}=NAME to the block")
    if "config_key" in rows.columns and not rows.is_empty():
        rows = _newest_config(rows)
    if spec.strategies:
        have = set(rows["strategy"].to_list())
        missing = [s for s in spec.strategies if s not in have]
        if missing:
            raise NegbenchError(f"{spec.directory} has no strategy {', '.join(missing)}")
        rows = rows.filter(pl.col("strategy").is_in(list(spec.strategies)))
    if rows.is_empty():
        raise NegbenchError(f"{spec.directory} has no rows")
    return rows


def _newest_config(rows: pl.DataFrame) -> pl.DataFrame:
    created = "created_at" if "created_at" in rows.columns else None
    if created is None:
        return rows
    latest = (rows.group_by(["strategy", "config_key"], maintain_order=True)
              .agg(pl.col(created).cast(pl.String).max().alias("_latest"))
              .sort("_latest", descending=True, nulls_last=True)
              .unique("strategy", keep="first", maintain_order=True)
              .select(["strategy", "config_key"]))
    keep = set(latest.iter_rows())
    mask = [(s, k) in keep for s, k in zip(rows["strategy"], rows["config_key"], strict=True)]
    return rows.filter(pl.Series(mask, dtype=pl.Boolean))


@dataclass
class Summary:
    strategy: str
    seeds: int
    failed: int
    failed_status: str | None
    mean: float | None
    half: float | None
    costs: dict[str, float | None]
    budget: str | None = None


COSTS = ("steps", "examples_seen", "train_examples_per_s", "mine_s", "train_s", "total_s", "peak_gpu_mb",
         "peak_rss_mb", "train_peak_rss_mb", "eval_peak_rss_mb", "train_peak_gpu_mb", "eval_peak_gpu_mb")


def summarise(rows: pl.DataFrame, metric: str) -> list[Summary]:
    """One summary per strategy, in the store's order: metric mean ± CI half-width and mean costs."""
    if metric not in rows.columns:
        raise NegbenchError(f"unknown metric {metric!r}: the store has "
                            f"{', '.join(c for c in rows.columns if _is_metric(c)) or 'no metric columns'}")
    out = []
    for label in rows["strategy"].unique(maintain_order=True).to_list():
        sub = rows.filter(pl.col("strategy") == label)
        ok = sub.filter(pl.col("status") == "ok")
        bad = sub.filter(pl.col("status") != "ok")
        values = [float(v) for v in ok[metric].to_list() if v is not None and math.isfinite(float(v))]
        mean = sum(values) / len(values) if values else None
        half = None
        if len(values) >= 2:
            std = float(pl.Series(values).std())
            half = t_half_width(std, len(values))
        costs = {}
        for col in COSTS:
            vals = [float(v) for v in ok[col].to_list() if v is not None] if col in ok.columns else []
            costs[col] = sum(vals) / len(vals) if vals else None
        budget = ok["budget"].drop_nulls().first() if "budget" in ok.columns and ok.height else None
        out.append(Summary(str(label), ok.height, bad.height, bad["status"][0] if bad.height else None,
                           mean, half, costs, budget))
    return out


def _is_metric(col: str) -> bool:
    if col == "dev_metric" or col.startswith("mteb:"):
        return True
    try:
        parse_metric(col)
    except ValueError:
        return False
    return True


def _number(s: Summary, digits: int) -> str:
    if s.mean is None:
        return "failed" if s.failed else DASH
    text = f"{s.mean:.{digits}f}"
    if s.half is not None and math.isfinite(s.half):
        text += f" ± {s.half:.{digits}f}"
    if s.failed:
        text += f" ({s.failed} of {s.failed + s.seeds} seeds failed)"
    return text


def _ordered(summaries: list[Summary], spec: Spec) -> list[Summary]:
    if spec.strategies:
        index = {name: i for i, name in enumerate(spec.strategies)}
        summaries = sorted(summaries, key=lambda s: index[s.strategy])
    if spec.order == "metric":
        summaries = sorted(summaries, key=lambda s: (s.mean is None, -(s.mean or 0.0)))
    return summaries


def format_duration(seconds: float) -> str:
    """``4099`` → ``68 min 19 s``, ``42`` → ``42 s``; from two hours on ``2 h 5 min 0 s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 2:
        return f"{hours} h {minutes} min {secs} s"
    minutes += 60 * hours
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def wall_seconds(rows: pl.DataFrame) -> float:
    """Total of ``total_s`` per row, or of ``train_s + eval_s + mine_s`` where ``total_s`` is missing."""
    parts = [c for c in ("train_s", "eval_s", "mine_s") if c in rows.columns]
    if "total_s" not in rows.columns and not parts:
        raise NegbenchError("the store has no timing columns (total_s or train_s, eval_s, mine_s)")
    summed = pl.sum_horizontal([pl.col(c).cast(pl.Float64).fill_null(0.0) for c in parts]) if parts else pl.lit(0.0)
    per_row = pl.coalesce(pl.col("total_s").cast(pl.Float64), summed) if "total_s" in rows.columns else summed
    return float(rows.select(per_row.sum()).item() or 0.0)


def _cost(value: float | None, digits: int) -> str:
    return DASH if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def render_table(summaries: list[Summary], spec: Spec, rows: pl.DataFrame) -> str:
    gpu = "peak_gpu_mb" in rows.columns and rows["peak_gpu_mb"].drop_nulls().len() > 0
    unit = "gpu" if gpu else "rss"
    split = f"train_peak_{unit}_mb" in rows.columns  # stores since the fair protocol: train / eval peaks
    name = unit.upper()
    memory = ([(f"train_peak_{unit}_mb", f"train {name} MB"), (f"eval_peak_{unit}_mb", f"eval {name} MB")]
              if split else [(f"peak_{unit}_mb", f"peak {name} MB")])
    timing = [(c, h) for c, h in (("mine_s", "mine s"), ("train_s", "train s"), ("total_s", "total s"))
              if c in rows.columns]
    budgets = any(s.budget not in (None, "equal") for s in summaries)
    header = ["strategy", "seeds", metric_label(spec.metric), "steps", "examples seen", "train ex/s",
              *[h for _, h in timing], *[h for _, h in memory], *(["budget"] if budgets else [])]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1 - budgets) + "---|" * budgets]
    for s in summaries:
        all_failed = s.mean is None and s.failed
        metric = escape_md(s.failed_status or "failed") if all_failed else _number(s, spec.digits)
        cells = [escape_md(s.strategy), str(s.seeds), metric, _cost(s.costs["steps"], 0),
                 _cost(s.costs["examples_seen"], 0), _cost(s.costs["train_examples_per_s"], 1),
                 *[_cost(s.costs[c], 1) for c, _ in timing], *[_cost(s.costs[c], 0) for c, _ in memory]]
        if budgets:
            cells.append(escape_md(s.budget or DASH))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_block(spec: str, root: Path) -> str:
    """The generated text of one block (without the markers) from the results under ``root``."""
    parsed = parse_spec(spec)
    rows = load_rows(parsed, Path(root))
    if parsed.format == "wall":
        return format_duration(wall_seconds(rows))
    summaries = _ordered(summarise(rows, parsed.metric), parsed)
    if parsed.format == "value":
        if len(summaries) != 1:
            raise NegbenchError(f"format=value needs one strategy, {parsed.directory} has {len(summaries)}: "
                                "add strategy=NAME to the block")
        return _number(summaries[0], parsed.digits)
    if parsed.format == "table":
        return render_table(summaries, parsed, rows)
    return f"{metric_label(parsed.metric)}: " + ", ".join(f"{s.strategy} {_number(s, parsed.digits)}"
                                                          for s in summaries)


def find_blocks(text: str, where: str = "") -> list[Block]:
    """Every block of a markdown text; an unclosed or nested block is an error naming ``where:line``."""
    blocks = []
    pos = 0
    while True:
        m = OPEN.search(text, pos)
        if m is None:
            stray = CLOSE.search(text, pos)
            if stray is not None:
                line = text.count("\n", 0, stray.start()) + 1
                raise NegbenchError("<!-- /figures --> without an opening <!-- figures: … -->", file=f"{where}:{line}")
            return blocks
        line = text.count("\n", 0, m.start()) + 1
        close = CLOSE.search(text, m.end())
        nested = OPEN.search(text, m.end())
        stray = CLOSE.search(text, pos, m.start())
        if stray is not None:
            stray_line = text.count("\n", 0, stray.start()) + 1
            raise NegbenchError("<!-- /figures --> without an opening <!-- figures: … -->",
                                file=f"{where}:{stray_line}")
        if close is None or (nested is not None and nested.start() < close.start()):
            raise NegbenchError("figures block is not closed by <!-- /figures -->", file=f"{where}:{line}")
        line_start = text.rfind("\n", 0, m.start()) + 1
        before = text[line_start:m.start()]
        indent = before if before.strip() == "" else ""
        blocks.append(Block(" ".join(m.group(1).split()), line, m.end(), close.start(), indent))
        pos = close.end()


def _body(rendered: str, block: Block, old: str) -> str:
    """Where the rendered text goes: multi-line text (a table) sits between blank lines, indented like the
    opening marker; one-line text replaces the body in place, keeping any surrounding line breaks."""
    if "\n" in rendered:
        indented = "\n".join(block.indent + line if line else line for line in rendered.split("\n"))
        return f"\n\n{indented}\n\n{block.indent}"
    if old.startswith("\n"):
        return f"\n{block.indent}{rendered}\n{block.indent}"
    return rendered


def _display(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def update_file(path: str | Path, root: str | Path, check: bool = False) -> list[str]:
    """Regenerate every block of ``path`` from the results under ``root``.

    Returns ``"FILE:LINE: SPEC"`` for each block whose text differs from the results (rewritten, or only
    reported with ``check=True``, which writes nothing). A bad block is a :class:`NegbenchError` naming the
    file and line.
    """
    path, root = Path(path), Path(root)
    where = _display(path, root)
    if not path.is_file():
        raise NegbenchError("no such markdown file", file=where)
    text = path.read_text(encoding="utf-8")
    pieces: list[str] = []
    stale: list[str] = []
    pos = 0
    for block in find_blocks(text, where):
        try:
            rendered = render_block(block.spec, root)
        except NegbenchError as exc:
            raise NegbenchError(f"figures: {block.spec}: {exc.one_line()}", file=f"{where}:{block.line}") from None
        old = text[block.body_start:block.body_end]
        new = _body(rendered, block, old)
        if new != old:
            stale.append(f"{where}:{block.line}: {block.spec}")
        pieces += [text[pos:block.body_start], new]
        pos = block.body_end
    pieces.append(text[pos:])
    updated = "".join(pieces)
    if not check and updated != text:
        write_text_atomic(path, updated)
    return stale


def referenced_dirs(path: str | Path, root: str | Path) -> list[Path]:
    """The results directories the blocks of ``path`` name (for callers that wait on unpublished results)."""
    text = Path(path).read_text(encoding="utf-8")
    return [Path(root) / b.directory() for b in find_blocks(text, str(path))]
