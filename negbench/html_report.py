"""A self-contained static HTML leaderboard (``index.html``) and ``negbench report``.

The page needs nothing from the network: styles and the sorting script are inline, figures are matplotlib
SVG embedded as ``data:`` images (:mod:`negbench.plots`: style-free SVG, so it needs no CSS allowance), so
it works from ``file://`` and any static host. It carries a strict Content-Security-Policy
(``default-src 'none'``) whose ``script-src`` / ``style-src`` allow exactly the page's one script and one
style block by their SHA-256 hashes, and ``img-src data:`` for the figures; there are no inline event
handlers or ``style`` attributes. Every string that comes from a results store goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from negbench.diagnostics import (
    MEANINGS,
    TARGET_FRACTION,
    load_overlap,
    load_steps,
    overlap_matrix,
    planted_table,
    strategy_curves,
    time_to_target,
)
from negbench.errors import DataError
from negbench.plots import (
    Point,
    figure_svg,
    heatmap_figure,
    lines_figure,
    pareto_front,
    scatter_svg,
    small_multiples_figure,
    svg_img,
)
from negbench.report import (
    aggregate,
    cost_columns,
    fmt_batch,
    fmt_delta,
    has_budget_changes,
    leaderboard_markdown,
    memory_fallback_used,
    metric_columns,
    write_text_atomic,
)
from negbench.results import ResultStore
from negbench.stats import (
    BETTER,
    WORSE,
    BaselineConfig,
    Significance,
    baseline_config,
    config_notes,
    rank_power_note,
    rank_summary,
    significance,
    with_config_labels,
)

STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--alt:#f6f8fa;--acc:#0969da;--good:#1a7f37;
--bad:#cf222e}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);
margin:0 auto;padding:1.5rem;max-width:1280px}
h1{font-size:1.6rem;margin:.2rem 0 .4rem}
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid var(--line);padding-bottom:.3rem}
h3{font-size:1.05rem;margin:1.2rem 0 .4rem}
.muted,.note{color:var(--muted)}.note{font-size:.9em}
nav ul{padding-left:1.2rem;margin:.3rem 0}
table{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:.3rem .55rem;text-align:right;vertical-align:top}
th:first-child,td:first-child,td.text,th.text{text-align:left}
thead th{background:var(--alt);white-space:nowrap}
tbody tr:nth-child(even){background:var(--alt)}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th button::after{content:" \\2195";color:var(--muted);font-weight:400}
th[aria-sort=ascending] button::after{content:" \\25B2";color:var(--acc)}
th[aria-sort=descending] button::after{content:" \\25BC";color:var(--acc)}
.ci{color:var(--muted);font-size:.9em}
.sig{font-weight:700}.sig.better{color:var(--good)}.sig.worse{color:var(--bad)}
.tag{font-size:.8em;color:var(--muted);border:1px solid var(--line);border-radius:3px;padding:0 .25rem}
.failed{color:var(--bad)}
.plots{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}
figure{margin:0}figcaption{color:var(--muted);font-size:.85em;max-width:480px}
img.plot{max-width:100%;height:auto;display:block;background:var(--bg)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:1rem}
.card table{width:100%;font-size:.92em}.card thead th{white-space:normal}
.card{border:1px solid var(--line);border-radius:6px;padding:.2rem .9rem .6rem}.card h3{margin-top:.6rem}
pre{background:var(--alt);padding:.5rem;overflow:auto;white-space:pre-wrap;max-width:100%}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}dd{margin:0}
code{font-size:.92em}
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell, numeric) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent; }
    if (numeric) {
      var v = parseFloat(raw);
      return isNaN(v) ? null : v;
    }
    return raw.trim().toLowerCase();
  }
  function sortBy(table, th, col) {
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    var dir = current === "descending" ? "ascending" :
      (current === "ascending" ? "descending" : (numeric ? "descending" : "ascending"));
    table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col], numeric), y = key(b.cells[col], numeric);
      if (x === null || y === null) { return x === y ? 0 : (x === null ? 1 : -1); }
      var c = x < y ? -1 : (x > y ? 1 : 0);
      return dir === "ascending" ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (th, col) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, th, col); }); }
    });
  });
})();
"""


def csp_hash(text: str) -> str:
    """The CSP source expression (``'sha256-…'``) that allows an inline block with exactly ``text``."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy(script: str = SCRIPT, style: str = STYLE) -> str:
    """No network at all; only the page's own script and style block (by hash); images only as data URIs."""
    return (
        f"default-src 'none'; script-src {csp_hash(script)}; style-src {csp_hash(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


def e(value: object) -> str:
    """HTML-escape any value (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(value: Any, digits: int) -> str:
    f = _num(value)
    return "–" if f is None else f"{f:,.{digits}f}"


def _cell_num(value: Any, digits: int) -> str:
    f = _num(value)
    return f'<td data-sort="{"" if f is None else repr(f)}">{_fmt(f, digits)}</td>'


def strategy_citation(name: str, reg: Any = None) -> tuple[str | None, str | None]:
    """``(citation, problem)`` for a registered strategy name; unknown or broken strategies give a problem."""
    try:
        if reg is None:
            from negbench.registry import registry as reg
        if name not in reg.names():
            return None, "not registered in this environment (a plugin that is not installed?)"
        entry = reg.load(name)
        if entry.cls is None:
            return None, f"plugin failed to load: {entry.error}"
        doc = (entry.cls.__doc__ or "").strip().splitlines()
        return (entry.cls.citation or (doc[0] if doc else None)), None
    except Exception as exc:  # a report must render even when the registry misbehaves
        return None, f"registry lookup failed: {type(exc).__name__}: {exc}"


def _memory_column(group: pl.DataFrame) -> tuple[str, str]:
    """The memory the plot shows: training peak GPU memory when any row has it, else training peak RSS
    (both already fall back to the old whole-run peaks in :func:`negbench.report.aggregate`)."""
    gpu = "train_peak_gpu_mb"
    if gpu in group.columns and any((_num(v) or 0) > 0 for v in group[gpu].to_list()):
        return gpu, "training peak GPU memory (MB)"
    return "train_peak_rss_mb", "training peak RSS (MB)"


def _metric_cell(rec: dict[str, Any], metric: str, sig: Significance | None) -> str:
    mean = _num(rec.get(metric))
    if mean is None:
        return '<td data-sort="">–</td>'
    half = _num(rec.get(f"{metric}_ci"))
    text = f"{mean:.4f}" + (f' <span class="ci">± {half:.4f}</span>' if half is not None else "")
    if sig is not None and sig.mark:
        cls = "better" if sig.mark == BETTER else "worse"
        word = "better" if sig.mark == BETTER else "worse"
        tip = (
            f"significantly {word} than the baseline: Holm p = {sig.p_holm:.3g} (raw p = {sig.p_value:.3g}; "
            f"one-sided p better {sig.p_greater:.3g}, worse {sig.p_less:.3g}), mean per-query difference "
            f"{fmt_delta(sig)} (95% bootstrap CI), Hodges–Lehmann {sig.hodges_lehmann:+.4f}, over {sig.n} queries"
        )
        text += f' <span class="sig {cls}" title="{e(tip)}">{e(sig.mark)}</span>'
    elif sig is not None:
        tip = (
            f"not significantly different from the baseline: Holm p = {sig.p_holm:.3g}; mean per-query "
            f"difference {fmt_delta(sig)} (95% bootstrap CI) over {sig.n} queries"
        )
        return f'<td data-sort="{mean!r}" title="{e(tip)}">{text}</td>'
    return f'<td data-sort="{mean!r}">{text}</td>'


def _table(
    group: pl.DataFrame,
    metrics: Sequence[str],
    sig: dict,
    base: BaselineConfig | None,
    dataset: str,
    model: str,
    costs: Sequence[tuple[str, str, int]],
    show_budget: bool,
    delta_metric: str | None,
) -> str:
    """One sortable table: a row per configuration with metrics, Δ vs baseline, data budget and costs."""
    heads = [
        ("strategy", "text"),
        ("seeds", "num"),
        *[(m, "num") for m in metrics],
        *([("Δ vs baseline", "num")] if delta_metric else []),
        ("steps", "num"),
        ("examples", "num"),
        ("batch mean/min", "num"),
        *([("budget", "text")] if show_budget else []),
        *[(h, "num") for h, _, _ in costs],
        ("status", "text"),
    ]
    out = ['<table class="sortable"><thead><tr>']
    for label, kind in heads:
        cls = ' class="text"' if kind == "text" else ""
        out.append(f'<th scope="col" data-type="{kind}"{cls}><button type="button">{e(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    for rec in group.iter_rows(named=True):
        label = rec["label"]
        is_base = base is not None and label == base.label
        tag = ' <span class="tag">baseline</span>' if is_base else ""
        out.append(f'<tr><td class="text" data-sort="{e(label)}">{e(label)}{tag}</td>')
        out.append(f'<td data-sort="{rec.get("seeds") or 0}">{rec.get("seeds") or 0}</td>')
        out += [_metric_cell(rec, m, sig.get((dataset, model, label, m))) for m in metrics]
        if delta_metric:
            d = None if is_base else sig.get((dataset, model, label, delta_metric))
            key = "" if d is None or _num(d.mean_diff) is None else repr(d.mean_diff)
            out.append(f'<td data-sort="{key}">{e(fmt_delta(d))}</td>')
        out += [_cell_num(rec.get("steps"), 0), _cell_num(rec.get("examples_seen"), 0)]
        batch = _num(rec.get("mean_batch_size"))
        out.append(f'<td data-sort="{"" if batch is None else repr(batch)}">{e(fmt_batch(rec))}</td>')
        if show_budget:
            budget = str(rec.get("budget") or "–")
            out.append(f'<td class="text" data-sort="{e(budget)}">{e(budget)}</td>')
        out += [_cell_num(rec.get(col), digits) for _, col, digits in costs]
        status = rec.get("failed") or "ok"
        cls = "text failed" if status != "ok" else "text"
        out.append(f'<td class="{cls}" data-sort="{e(status)}">{e(status)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _plots(group: pl.DataFrame, metric: str, legacy_memory: bool = False) -> str:
    """Accuracy vs training throughput and vs training peak memory, one point per configuration."""
    ok = [r for r in group.iter_rows(named=True) if _num(r.get(metric)) is not None]
    mem_col, mem_label = _memory_column(group)
    tp = [
        Point(r["label"], _num(r.get("train_examples_per_s")), r[metric], _num(r.get(f"{metric}_ci")))
        for r in ok
    ]
    mem = [Point(r["label"], _num(r.get(mem_col)), r[metric], _num(r.get(f"{metric}_ci"))) for r in ok]
    skipped_tp = [p.label for p in tp if p.x is None]
    skipped_mem = [p.label for p in mem if p.x is None]
    tp = [p for p in tp if p.x is not None]
    mem = [p for p in mem if p.x is not None]
    figs = []
    for points, x_label, higher, caption, skipped in (
        (
            tp,
            "training throughput (examples/s)",
            True,
            "Pareto front (blue points, dashed line): no other strategy is both faster and more accurate.",
            skipped_tp,
        ),
        (
            mem,
            mem_label,
            False,
            "Pareto front (blue points, dashed line): no other strategy uses less memory and is more accurate.",
            skipped_mem,
        ),
    ):
        svg = scatter_svg(
            points, x_label=x_label, y_label=metric, title=f"{metric} vs {x_label}", x_higher_better=higher
        )
        front = [
            points[i].label
            for i in pareto_front([p.x for p in points], [p.y for p in points], x_higher_better=higher)
        ]
        text = caption + (f" On the front: {', '.join(front)}." if front else "")
        text += f" Not plotted (no value): {', '.join(skipped)}." if skipped else ""
        text += " Bars: 95% CI over seeds."
        if legacy_memory and points is mem:
            text += " Runs recorded before training memory was measured apart show their whole-run peak."
        alt = f"Scatter of {metric} vs {x_label}, one point per strategy. {text}"
        figs.append(f"<figure>{svg_img(svg, alt)}<figcaption>{e(text)}</figcaption></figure>")
    return '<div class="plots">' + "".join(figs) + "</div>"


def _fmt_s(value: float | None) -> str:
    return "never" if value is None else f"{value:,.1f} s"


def _learning_curves(curves: dict, dataset: str, model: str) -> str:
    """Dev metric vs training wall seconds (a line per strategy, mean over seeds) and time-to-target."""
    out = []
    for (d, m, metric), series in curves.items():
        if (d, m) != (dataset, model) or not series:
            continue
        target, reached = time_to_target(series)
        fig = lines_figure(series, x_label="training wall time (s)", y_label=f"dev {metric}",
                           title=f"Dev {metric} during training", target=target)
        caption = (f"Mean over seeds at each evaluation point; dotted line: the target, "
                   f"{TARGET_FRACTION:.0%} of the best dev {metric} of any strategy ({target:.4f}).")
        rows = "".join(
            f'<tr><td class="text">{e(s)}</td><td data-sort="{"" if t is None else repr(t)}">{e(_fmt_s(t))}</td>'
            f"<td>{_fmt(series[s][1][-1] if series[s][1] else None, 4)}</td></tr>"
            for s, t in reached.items()
        )
        out.append(
            '<div class="diag learning-curves"><h3>Learning curves</h3><div class="plots"><figure>'
            + svg_img(figure_svg(fig), f"Dev {metric} against training wall seconds, one line per strategy.")
            + f"<figcaption>{e(caption)}</figcaption></figure>"
            '<table class="sortable"><thead><tr><th scope="col" data-type="text" class="text"><button '
            'type="button">strategy</button></th><th scope="col" data-type="num"><button type="button">'
            f"time to {TARGET_FRACTION:.0%} of best</button></th><th scope=\"col\" data-type=\"num\"><button "
            f'type="button">final dev {e(metric)}</button></th></tr></thead><tbody>{rows}</tbody></table>'
            "</div></div>"
        )
    return "".join(out)


def _hardness(curves: dict, dataset: str, model: str) -> str:
    """Small multiples of the hardness metrics vs step (a line per strategy, mean over seeds)."""
    panels = {metric: series for (d, m, metric), series in curves.items() if (d, m) == (dataset, model) and series}
    if not panels:
        return ""
    fig = small_multiples_figure(panels, x_label="step")  # the section heading is its title
    alt = "Hardness metrics (" + ", ".join(panels) + ") against training step, one line per strategy."
    return (
        '<div class="diag hardness"><h3>Hardness during training</h3><figure>'
        + svg_img(figure_svg(fig), alt)
        + f"<figcaption>{e(MEANINGS['hardness'])} Means over seeds.</figcaption></figure></div>"
    )


def _overlap(frame: pl.DataFrame | None, dataset: str, model: str) -> str:
    """The heat map of mean Jaccard overlap between strategies' sampled negatives (or "")."""
    if frame is None or frame.is_empty():
        return ""
    labels, matrix = overlap_matrix(frame, dataset, model)
    if len(labels) < 2:
        return ""
    fig = heatmap_figure(labels, matrix, title="Overlap of sampled negatives (mean Jaccard)")
    alt = "Heat map of the mean Jaccard overlap of sampled negative sets between " + ", ".join(labels) + "."
    return (
        '<div class="diag overlap"><h3>Overlap of sampled negatives</h3><figure>'
        + svg_img(figure_svg(fig), alt)
        + f"<figcaption>{e(MEANINGS['overlap'])}</figcaption></figure></div>"
    )


def _rank_section(rows: pl.DataFrame, metric: str, baseline: str, alpha: float) -> str:
    """Mean rank per strategy across datasets, Friedman test and Holm-corrected Wilcoxon pairs."""
    out = []
    for summary in rank_summary(rows, metric, baseline):
        out.append(f"<h3>{e(summary.model)}: {e(metric)} over {len(summary.datasets)} datasets</h3>")
        out.append('<table class="sortable rank-summary"><thead><tr>'
                   '<th scope="col" data-type="text" class="text"><button type="button">strategy</button></th>'
                   '<th scope="col" data-type="num"><button type="button">mean rank</button></th>')
        out += [f'<th scope="col" data-type="num"><button type="button">{e(d)}</button></th>'
                for d in summary.datasets]
        out.append("</tr></thead><tbody>")
        for s, r in summary.mean_rank.items():
            out.append(f'<tr><td class="text">{e(s)}</td><td data-sort="{r!r}">{r:.2f}</td>')
            out += [f'<td data-sort="{summary.scores[s][d]!r}">{summary.scores[s][d]:.4f} '
                    f'<span class="ci">({summary.ranks[s][d]:g})</span></td>' for d in summary.datasets]
            out.append("</tr>")
        out.append("</tbody></table>")
        out.append(f'<p class="note">{e(summary.friedman_note)}</p>')
        if summary.pairs:
            out.append('<table class="rank-pairs"><thead><tr><th class="text">pair</th><th>wins/losses</th>'
                       "<th>p</th><th>Holm p</th></tr></thead><tbody>")
            for pair in summary.pairs:
                flag = " ✓" if pair.p_holm < alpha else ""
                out.append(f'<tr><td class="text">{e(pair.strategy)} vs {e(pair.reference)}</td>'
                           f"<td>{pair.wins}/{pair.losses}</td><td>{pair.p_value:.3g}</td>"
                           f"<td>{pair.p_holm:.3g}{flag}</td></tr>")
            out.append("</tbody></table>")
        if summary.excluded:
            out.append(f'<p class="note">Not ranked (missing on some dataset): {e(", ".join(summary.excluded))}.</p>')
        out.append(
            f'<p class="note">Cells: mean {e(metric)} over seeds (rank on that dataset; 1 = best, ties averaged). '
            "Pairs: two-sided Wilcoxon signed-rank test over datasets of the per-dataset means, Holm-corrected "
            f"(✓: Holm p &lt; {alpha:g}). {e(rank_power_note(summary))}</p>"
        )
    return "".join(out)


def _planted_section(rows: pl.DataFrame, metric: str) -> str:
    table = planted_table(rows, metric)
    if table is None:
        return ""
    out = ['<table class="sortable planted"><thead><tr>']
    heads = [("dataset · model", "text"), ("strategy", "text"), ("planted", "text"),
             (f"{metric} without", "num"), (f"{metric} with", "num"), ("drop", "num"), ("n", "num"),
             ("planted FN share", "num"), ("planted FN in-batch share", "num")]
    for label, kind in heads:
        cls = ' class="text"' if kind == "text" else ""
        out.append(f'<th scope="col" data-type="{kind}"{cls}><button type="button">{e(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    for r in table.iter_rows(named=True):
        planted = f"{_fmt(r['planted_fn_rate'], 2)}" + (f" {r['planted_fn_kind']}" if r["planted_fn_kind"] else "")
        out.append(f'<tr><td class="text">{e(r["dataset_base"])} · {e(r["model"])}</td>'
                   f'<td class="text">{e(r["strategy"])}</td><td class="text">{e(planted)}</td>')
        out += [_cell_num(r[c], 4) for c in ("without", "with", "drop")]
        out.append(_cell_num(r["n"], 0))
        out += [_cell_num(r[c], 4) for c in ("planted_fn_share", "planted_fn_inbatch_share")]
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append('<p class="note">Seeds paired: drop is the mean over the n seeds run both ways of without − with '
               "(positive: planting hurt). "
               f"{e(MEANINGS['planted_fn_share'])} {e(MEANINGS['planted_fn_inbatch_share'])}</p>")
    return "".join(out)


def _meanings_section() -> str:
    names = {"neg_score_gap": "score gap (neg_score_gap)", "false_negative_share": "labelled-positive share",
             "planted_fn_share": "planted FN share", "planted_fn_inbatch_share": "planted FN in-batch share",
             "hardness": "hardness series", "time_to_target": "time to target", "overlap": "overlap",
             "time_to_own_95_s": "time to own 95% (time_to_own_95_s)",
             "mean_rank": "mean rank"}
    return "<dl>" + "".join(f"<dt>{e(names[k])}</dt><dd>{e(v)}</dd>" for k, v in MEANINGS.items()) + "</dl>"


def _params_html(values: list[str]) -> str:
    """Parameters as ``key = value`` code spans (one line per distinct params JSON); raw text if not JSON."""
    out = []
    for raw in values:
        try:
            params = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            params = None
        if isinstance(params, dict) and params:
            pairs = sorted(params.items())
            out.append(", ".join(f"<code>{e(k)} = {e(json.dumps(v))}</code>" for k, v in pairs))
        elif isinstance(params, dict):
            out.append('<span class="muted">defaults (none set)</span>')
        else:
            out.append(f"<code>{e(raw)}</code>")
    return "<br>".join(out) or '<span class="muted">not recorded</span>'


def _strategy_sections(rows: pl.DataFrame, reg: Any = None) -> str:
    out = [
        '<p class="note">Negative diagnostics (means over seeds): <em>score gap</em> is the base model\'s '
        "cosine of the positive minus that of each sampled negative (small or negative ⇒ hard negatives); "
        "<em>labelled-positive share</em> is the share of sampled negatives labelled relevant in some split "
        '(an estimate of false negatives).</p><div class="cards">'
    ]
    rows = with_config_labels(rows)
    for index, label in enumerate(dict.fromkeys(rows["label"].to_list())):  # one card per configuration label
        sub = rows.filter(pl.col("label") == label)
        names = _distinct(sub, "strategy_name")
        out.append(f'<section class="card" id="strategy-{index}"><h3>{e(label)}</h3><dl>')
        out.append(f"<dt>registered as</dt><dd>{e(', '.join(names) or 'unknown')}</dd>")
        for name in names or _distinct(sub, "strategy"):
            citation, problem = strategy_citation(name, reg)
            if citation:
                out.append(f"<dt>reference</dt><dd>{e(citation)}</dd>")
            if problem:
                out.append(f'<dt>note</dt><dd class="muted">{e(name)}: {e(problem)}</dd>')
        params = (
            list(dict.fromkeys(sub["params"].cast(pl.String).fill_null("").to_list()))
            if "params" in sub.columns
            else []
        )
        out.append(f"<dt>parameters</dt><dd>{_params_html(params)}</dd>")
        overrides = _training_overrides(rows, sub)
        if overrides:
            out.append(f"<dt>training</dt><dd>{overrides}</dd>")
        trials = (
            sorted({str(t) for t in sub["trial"].drop_nulls().to_list()}) if "trial" in sub.columns else []
        )
        if trials:
            out.append(f"<dt>tuned</dt><dd>best trial {e(', '.join(trials))} on the dev split</dd>")
        out.append("</dl>")
        out.append(_diagnostics(sub))
        for rec in sub.filter(pl.col("status") != "ok").iter_rows(named=True):
            where = f"{rec.get('dataset')} · {rec.get('model')} · seed {rec.get('seed')}: {rec.get('status')}"
            out.append(f'<p class="failed">{e(where)}</p>')
            if rec.get("error"):
                out.append(f"<pre>{e(rec['error'])}</pre>")
        out.append("</section>")
    out.append("</div>")
    return "".join(out)


def _json_dict(raw: object) -> dict[str, Any] | None:
    try:
        value = json.loads(str(raw))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _training_overrides(rows: pl.DataFrame, sub: pl.DataFrame) -> str:
    """The training settings in which this strategy's runs differ from the most common ones (or "")."""
    if "training" not in rows.columns:
        return ""
    configs = [c for c in (_json_dict(v) for v in rows["training"].drop_nulls().to_list()) if c is not None]
    if not configs:
        return ""
    counts: dict[str, int] = {}
    for c in configs:
        key = json.dumps(c, sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    common = json.loads(max(counts, key=lambda k: counts[k]))
    diffs: dict[str, set[str]] = {}
    for c in (_json_dict(v) for v in sub["training"].drop_nulls().to_list()):
        for k, v in (c or {}).items():
            if common.get(k) != v:
                diffs.setdefault(k, set()).add(json.dumps(v))
    return ", ".join(f"<code>{e(k)} = {e(' / '.join(sorted(v)))}</code>" for k, v in sorted(diffs.items()))


def _diagnostics(sub: pl.DataFrame) -> str:
    """A per dataset × model table of the negative diagnostics (or a line saying they do not apply)."""
    cols = [c for c in ("neg_score_gap", "planted_fn_share", "planted_fn_inbatch_share", "mine_s")
            if c in sub.columns]
    ok = sub.filter(pl.col("status") == "ok")
    if ok.is_empty() or not cols:
        return ""
    table = ok.group_by(["dataset", "model"], maintain_order=True).agg(
        [pl.len().alias("runs")] + [pl.col(c).cast(pl.Float64).mean().alias(c) for c in cols]
    )
    mined = [c for c in ("neg_score_gap", "planted_fn_share") if c in cols]
    if all(_num(v) is None for c in mined for v in table[c].to_list()):
        return '<p class="muted">No mined negatives: diagnostics do not apply.</p>'
    heads = {
        "neg_score_gap": "score gap",
        "planted_fn_share": "planted-FN share",
        "planted_fn_inbatch_share": "planted-FN share in batch",
        "mine_s": "mining s",
    }
    out = ['<table><thead><tr><th class="text">dataset · model</th><th>runs</th>']
    out += [f"<th>{e(heads[c])}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for rec in table.iter_rows(named=True):
        out.append(f'<tr><td class="text">{e(rec["dataset"])} · {e(rec["model"])}</td><td>{rec["runs"]}</td>')
        out += [f"<td>{_fmt(rec[c], 1 if c == 'mine_s' else 4)}</td>" for c in cols]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _distinct(rows: pl.DataFrame, col: str) -> list[str]:
    if col not in rows.columns:
        return []
    return sorted({str(v) for v in rows[col].drop_nulls().to_list()})


def _provenance(rows: pl.DataFrame, generated: str) -> str:
    out = ["<dl>"]
    created = _distinct(rows, "created_at")
    items = [
        ("devices", ", ".join(_distinct(rows, "device")) or "unknown"),
        ("runs", f"{rows.height} ({rows.filter(pl.col('status') == 'ok').height} ok)"),
        ("run dates", f"{created[0]} … {created[-1]}" if created else "unknown"),
        ("report generated", generated),
        ("suites", ", ".join(_distinct(rows, "suite")) or "unknown"),
        ("git revisions", ", ".join(_distinct(rows, "git_rev")) or "not recorded"),
        ("config hashes", ", ".join(_distinct(rows, "config_hash")) or "not recorded"),
    ]
    out += [f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items]
    out.append("</dl>")
    for key, fp, title in (
        ("dataset", "dataset_fingerprint", "Datasets"),
        ("model", "model_fingerprint", "Models"),
    ):
        if key not in rows.columns:
            continue
        out.append(
            f'<h3>{title}</h3><table><thead><tr><th class="text">{key}</th><th class="text">fingerprint'
            "</th></tr></thead><tbody>"
        )
        for name in _distinct(rows, key):
            fps = _distinct(rows.filter(pl.col(key) == name), fp) or ["not recorded"]
            out.append(
                f'<tr><td class="text">{e(name)}</td><td class="text"><code>{e(", ".join(fps))}</code>'
                "</td></tr>"
            )
        out.append("</tbody></table>")
    versions: dict[str, set[str]] = {}
    unparsed: set[str] = set()
    for raw in _distinct(rows, "versions"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            for pkg, ver in parsed.items():
                versions.setdefault(str(pkg), set()).add(str(ver))
        else:
            unparsed.add(raw)
    if versions or unparsed:
        out.append(
            '<h3>Library versions</h3><table><thead><tr><th class="text">package</th>'
            '<th class="text">version(s)</th></tr></thead><tbody>'
        )
        for pkg in sorted(versions):
            vs = sorted(versions[pkg])
            flag = ' <span class="tag">differs between runs</span>' if len(vs) > 1 else ""
            out.append(
                f'<tr><td class="text">{e(pkg)}</td><td class="text">{e(", ".join(vs))}{flag}</td></tr>'
            )
        out.append("</tbody></table>")
        out += [f"<pre>{e(raw)}</pre>" for raw in sorted(unparsed)]
    return "".join(out)


def render_html(
    rows: pl.DataFrame,
    per_query: pl.DataFrame | None = None,
    *,
    baseline: str = "in-batch",
    title: str | None = None,
    alpha: float = 0.05,
    primary_metric: str | None = None,
    generated: str | None = None,
    reg: Any = None,
    steps: pl.DataFrame | None = None,
    overlap: pl.DataFrame | None = None,
) -> str:
    """The whole ``index.html`` as a string (see the module docstring for what it guarantees).

    ``steps`` (``steps.parquet``) adds learning curves, time-to-target and hardness series per dataset ×
    model; ``overlap`` (:func:`negbench.diagnostics.load_overlap`) adds the overlap heat map."""
    generated = generated or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if title is None:
        suites = _distinct(rows, "suite")
        title = "negbench · " + ", ".join(suites) if suites else "negbench leaderboard"
    body: list[str] = [f"<h1>{e(title)}</h1>"]
    if rows.is_empty():
        body.append("<p>No results yet.</p>")
    else:
        metrics = metric_columns(rows)
        primary = primary_metric if primary_metric in metrics else (metrics[0] if metrics else None)
        rows = with_config_labels(rows)
        sig = significance(rows, per_query, baseline, metrics, alpha) if per_query is not None else {}
        table = aggregate(rows)
        costs = cost_columns(rows)
        show_budget = has_budget_changes(rows)
        legacy_memory = memory_fallback_used(rows)
        delta_metric = primary if sig else None
        groups = list(table.group_by(["dataset", "model"], maintain_order=True))
        has_steps = steps is not None and not steps.is_empty() and "run_id" in rows.columns
        dev_curves = strategy_curves(steps, rows, "dev") if has_steps else {}
        hard_curves = strategy_curves(steps, rows, "hardness", x="step") if has_steps else {}
        ranks = _rank_section(rows, primary, baseline, alpha) if primary else ""
        planted = _planted_section(rows, primary) if primary else ""
        devices = _distinct(rows, "device")
        body.append(
            f'<p class="muted">{rows.height} runs · device: {e(", ".join(devices) or "unknown")} · '
            f"baseline: {e(baseline)} · generated {e(generated)}</p>"
        )
        nav = ["<nav><strong>Contents</strong><ul>"]
        nav += [f'<li><a href="#dm-{i}">{e(d)} · {e(m)}</a></li>' for i, ((d, m), _) in enumerate(groups)]
        nav += ['<li><a href="#ranks">Across datasets</a></li>'] if ranks else []
        nav += ['<li><a href="#planted">Planted false negatives</a></li>'] if planted else []
        nav.append(
            '<li><a href="#strategies">Strategies</a></li><li><a href="#diagnostics">What the diagnostics '
            'mean</a></li><li><a href="#provenance">Provenance</a></li><li><a href="#method">Method</a></li>'
            "</ul></nav>"
        )
        body.append("".join(nav))
        for i, ((dataset, model), group) in enumerate(groups):
            here = rows.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
            base = baseline_config(here, baseline)
            body.append(f'<section id="dm-{i}"><h2>{e(dataset)} · {e(model)}</h2>')
            if base is None:
                body.append(
                    f'<p class="note">Baseline {e(baseline)} not in these results: no significance marks.</p>'
                )
            body.append(_table(group, metrics, sig, base, dataset, model, costs, show_budget, delta_metric))
            body.append(
                '<p class="note">Click a column header to sort. Metrics: mean ± 95% CI over seeds. '
                f'<span class="sig better">{e(BETTER)}</span> / <span class="sig worse">{e(WORSE)}</span>: '
                "significantly better / worse than the baseline (hover for p-values)."
                + (f" Δ vs baseline: mean per-query difference in {e(delta_metric)} with its 95% bootstrap CI."
                   if delta_metric else "")
                + "</p>"
            )
            notes = config_notes(here) + ([base.note()] if base is not None and base.note() else [])
            body += [f'<p class="note">{e(note)}</p>' for note in notes]
            if primary:
                body.append(_plots(group, primary, legacy_memory))
            body.append(_learning_curves(dev_curves, dataset, model))
            body.append(_hardness(hard_curves, dataset, model))
            body.append(_overlap(overlap, dataset, model))
            body.append("</section>")
        if ranks:
            body.append('<section id="ranks"><h2>Across datasets</h2>' + ranks + "</section>")
        if planted:
            body.append('<section id="planted"><h2>Planted false negatives</h2>' + planted + "</section>")
        body.append(
            '<section id="strategies"><h2>Strategies</h2>' + _strategy_sections(rows, reg) + "</section>"
        )
        body.append(
            '<section id="diagnostics"><h2>What the diagnostics mean</h2>' + _meanings_section() + "</section>"
        )
        body.append(
            '<section id="provenance"><h2>Provenance</h2>' + _provenance(rows, generated) + "</section>"
        )
        body.append(
            '<section id="method"><h2>Method</h2><p>Each row aggregates the finished runs (seeds) of one '
            "configuration: dataset × model × strategy × config key (a hash of everything but the seed that "
            "changes the result); configurations are never pooled, and a label with several is shown once "
            "per configuration with a short key. Metrics are computed on the test split after training; the "
            "interval is the 95% Student-t confidence interval of the mean over seeds. Significance: "
            "per-query scores are averaged over seeds, each configuration is compared with the baseline "
            "(the newest configuration of the baseline label) by a Wilcoxon signed-rank test (Pratt's "
            "treatment of ties); the two-sided p is twice the smaller one-sided p, the mark points to that "
            "side, and the p-values of one dataset × model × metric are Holm-corrected; marks at "
            f"α = {alpha:g}. Δ vs baseline is the mean per-query difference with a seeded percentile-bootstrap "
            "95% CI. Costs (throughput, time, memory) are means over seeds; steps, examples and batch sizes "
            "show each configuration's data budget.</p></section>"
        )
    csp = html.escape(content_security_policy(), quote=False)  # no '"' inside; keep the quotes readable
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>\n<body>"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script></body></html>\n"
    )


# columns a report computes with: a store where they hold text is not one negbench wrote
NUMERIC_COLUMNS = ("seed", "steps", "examples_seen", "train_s", "eval_s", "total_s", "train_examples_per_s",
                   "peak_rss_mb", "peak_gpu_mb", "dev_metric")


def load_store(results_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows, per-query scores) of a results directory; a missing or malformed store is a DataError."""
    directory = Path(results_dir)
    store = ResultStore(directory)
    if not directory.is_dir():
        raise DataError("results directory not found", file=directory)
    if not store.results_path.is_file():
        raise DataError("no results.parquet in this directory", file=directory)
    rows = store.rows()
    missing = [c for c in ("dataset", "model", "strategy", "status") if c not in rows.columns]
    if missing:
        raise DataError(
            f"not a negbench results store: missing column(s) {', '.join(missing)}", file=store.results_path
        )
    numeric = [*metric_columns(rows), *(c for c in NUMERIC_COLUMNS if c in rows.columns)]
    for col in numeric:
        dtype = rows.schema[col]
        if not (dtype.is_numeric() or dtype == pl.Null):
            raise DataError(f"column {col!r} holds {dtype}, not numbers", file=store.results_path)
    per_query = store.per_query()
    if not per_query.is_empty() and "score" in per_query.columns and not per_query.schema["score"].is_numeric():
        raise DataError(f"column 'score' holds {per_query.schema['score']}, not numbers", file=store.per_query_path)
    if not per_query.is_empty():
        lacking = [c for c in ("run_id", "metric", "query_id", "score") if c not in per_query.columns]
        if lacking:
            raise DataError(
                f"malformed per-query scores: missing column(s) {', '.join(lacking)}",
                file=store.per_query_path,
            )
    return rows, per_query


def load_diagnostics(
    results_dir: str | Path, rows: pl.DataFrame
) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
    """(steps, overlap) of a results directory, each None when absent (see :mod:`negbench.diagnostics`)."""
    return load_steps(results_dir), load_overlap(results_dir, rows)


def write_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    baseline: str = "in-batch",
    title: str | None = None,
    alpha: float = 0.05,
) -> tuple[Path, Path]:
    """Write ``leaderboard.md`` and ``index.html`` for a results directory; return their paths."""
    rows, per_query = load_store(results_dir)
    out = Path(out_dir) if out_dir is not None else Path(results_dir)
    if out.exists() and not out.is_dir():
        raise DataError("is a file; --out names the folder for leaderboard.md and index.html", file=out,
                        field="--out")
    if title is None:
        suites = _distinct(rows, "suite")
        title = "negbench · " + ", ".join(suites) if suites else "negbench leaderboard"
    pq = per_query if not per_query.is_empty() else None
    steps, overlap = load_diagnostics(results_dir, rows)
    md_path, html_path = out / "leaderboard.md", out / "index.html"
    write_text_atomic(md_path, leaderboard_markdown(rows, title, pq, baseline, alpha, steps=steps))
    write_text_atomic(html_path, render_html(rows, pq, baseline=baseline, title=title, alpha=alpha, steps=steps,
                                             overlap=overlap))
    return md_path, html_path
