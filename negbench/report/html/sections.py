"""The page's cross-dataset and reference sections: ranks, planted false negatives, meanings, strategies, provenance."""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from negbench.report.diagnostics import (
    MEANINGS,
    planted_table,
)
from negbench.report.html.cells import esc, format_number, number, number_cell, strategy_citation
from negbench.report.stats import (
    rank_power_note,
    rank_summary,
    with_config_labels,
)

__all__ = [
    "diagnostics_section",
    "distinct",
    "json_dict",
    "meanings_section",
    "params_html",
    "planted_section",
    "provenance_section",
    "rank_section",
    "strategy_sections",
    "training_overrides",
]


def rank_section(rows: pl.DataFrame, metric: str, baseline: str, alpha: float) -> str:
    """Mean rank per strategy across datasets, Friedman test and Holm-corrected Wilcoxon pairs."""
    out = []
    for summary in rank_summary(rows, metric, baseline):
        out.append(f"<h3>{esc(summary.model)}: {esc(metric)} over {len(summary.datasets)} datasets</h3>")
        out.append(
            '<table class="sortable rank-summary"><thead><tr>'
            '<th scope="col" data-type="text" class="text"><button type="button">strategy</button></th>'
            '<th scope="col" data-type="num"><button type="button">mean rank</button></th>'
        )
        out += [
            f'<th scope="col" data-type="num"><button type="button">{esc(d)}</button></th>' for d in summary.datasets
        ]
        out.append("</tr></thead><tbody>")
        for s, r in summary.mean_rank.items():
            out.append(f'<tr><td class="text">{esc(s)}</td><td data-sort="{r!r}">{r:.2f}</td>')
            out += [
                f'<td data-sort="{summary.scores[s][d]!r}">{summary.scores[s][d]:.4f} '
                f'<span class="ci">({summary.ranks[s][d]:g})</span></td>'
                for d in summary.datasets
            ]
            out.append("</tr>")
        out.append("</tbody></table>")
        out.append(f'<p class="note">{esc(summary.friedman_note)}</p>')
        if summary.pairs:
            out.append(
                '<table class="rank-pairs"><thead><tr><th class="text">pair</th><th>wins/losses</th>'
                "<th>p</th><th>Holm p</th></tr></thead><tbody>"
            )
            for pair in summary.pairs:
                flag = " ✓" if pair.p_holm < alpha else ""
                out.append(
                    f'<tr><td class="text">{esc(pair.strategy)} vs {esc(pair.reference)}</td>'
                    f"<td>{pair.wins}/{pair.losses}</td><td>{pair.p_value:.3g}</td>"
                    f"<td>{pair.p_holm:.3g}{flag}</td></tr>"
                )
            out.append("</tbody></table>")
        if summary.excluded:
            out.append(f'<p class="note">Not ranked (missing on some dataset): {esc(", ".join(summary.excluded))}.</p>')
        out.append(
            f'<p class="note">Cells: mean {esc(metric)} over seeds (rank on that dataset; 1 = best, ties averaged). '
            "Pairs: two-sided Wilcoxon signed-rank test over datasets of the per-dataset means, Holm-corrected "
            f"(✓: Holm p &lt; {alpha:g}). {esc(rank_power_note(summary))}</p>"
        )
    return "".join(out)


def planted_section(rows: pl.DataFrame, metric: str) -> str:
    table = planted_table(rows, metric)
    if table is None:
        return ""
    out = ['<table class="sortable planted"><thead><tr>']
    heads = [
        ("dataset · model", "text"),
        ("strategy", "text"),
        ("planted", "text"),
        (f"{metric} without", "num"),
        (f"{metric} with", "num"),
        ("drop", "num"),
        ("n", "num"),
        ("planted FN share", "num"),
        ("planted FN in-batch share", "num"),
    ]
    for label, kind in heads:
        cls = ' class="text"' if kind == "text" else ""
        out.append(f'<th scope="col" data-type="{kind}"{cls}><button type="button">{esc(label)}</button></th>')
    out.append("</tr></thead><tbody>")
    for r in table.iter_rows(named=True):
        planted = f"{format_number(r['planted_fn_rate'], 2)}" + (
            f" {r['planted_fn_kind']}" if r["planted_fn_kind"] else ""
        )
        out.append(
            f'<tr><td class="text">{esc(r["dataset_base"])} · {esc(r["model"])}</td>'
            f'<td class="text">{esc(r["strategy"])}</td><td class="text">{esc(planted)}</td>'
        )
        out += [number_cell(r[c], 4) for c in ("without", "with", "drop")]
        out.append(number_cell(r["n"], 0))
        out += [number_cell(r[c], 4) for c in ("planted_fn_share", "planted_fn_inbatch_share")]
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append(
        '<p class="note">Seeds paired: drop is the mean over the n seeds run both ways of without − with '
        "(positive: planting hurt). "
        f"{esc(MEANINGS['planted_fn_share'])} {esc(MEANINGS['planted_fn_inbatch_share'])}</p>"
    )
    return "".join(out)


def meanings_section() -> str:
    names = {
        "neg_score_gap": "score gap (neg_score_gap)",
        "false_negative_share": "labelled-positive share",
        "planted_fn_share": "planted FN share",
        "planted_fn_inbatch_share": "planted FN in-batch share",
        "hardness": "hardness series",
        "time_to_target": "time to target",
        "overlap": "overlap",
        "time_to_own_95_s": "time to own 95% (time_to_own_95_s)",
        "mean_rank": "mean rank",
    }
    return "<dl>" + "".join(f"<dt>{esc(names[k])}</dt><dd>{esc(v)}</dd>" for k, v in MEANINGS.items()) + "</dl>"


def params_html(values: list[str]) -> str:
    """Parameters as ``key = value`` code spans (one line per distinct params JSON); raw text if not JSON."""
    out = []
    for raw in values:
        try:
            params = json.loads(raw) if raw else {}
        except (TypeError, ValueError):
            params = None
        if isinstance(params, dict) and params:
            pairs = sorted(params.items())
            out.append(", ".join(f"<code>{esc(k)} = {esc(json.dumps(v))}</code>" for k, v in pairs))
        elif isinstance(params, dict):
            out.append('<span class="muted">defaults (none set)</span>')
        else:
            out.append(f"<code>{esc(raw)}</code>")
    return "<br>".join(out) or '<span class="muted">not recorded</span>'


def strategy_sections(rows: pl.DataFrame, reg: Any = None) -> str:
    labelled = "false_negative_share" in rows.columns and rows["false_negative_share"].drop_nulls().len() > 0
    out = [
        '<p class="note">Negative diagnostics (means over seeds): <em>score gap</em> is the base model\'s '
        "cosine of the positive minus that of each sampled negative (small or negative ⇒ hard negatives)"
        + (
            "; <em>labelled-positive share</em> is the share of sampled negatives labelled relevant in some split "
            "(an estimate of false negatives)"
            if labelled
            else ""
        )
        + '.</p><div class="cards">'
    ]
    rows = with_config_labels(rows)
    for index, label in enumerate(dict.fromkeys(rows["label"].to_list())):  # one card per configuration label
        sub = rows.filter(pl.col("label") == label)
        names = distinct(sub, "strategy_name")
        out.append(f'<section class="card" id="strategy-{index}"><h3>{esc(label)}</h3><dl>')
        out.append(f"<dt>registered as</dt><dd>{esc(', '.join(names) or 'unknown')}</dd>")
        for name in names or distinct(sub, "strategy"):
            citation, problem = strategy_citation(name, reg)
            if citation:
                out.append(f"<dt>reference</dt><dd>{esc(citation)}</dd>")
            if problem:
                out.append(f'<dt>note</dt><dd class="muted">{esc(name)}: {esc(problem)}</dd>')
        params = (
            list(dict.fromkeys(sub["params"].cast(pl.String).fill_null("").to_list()))
            if "params" in sub.columns
            else []
        )
        out.append(f"<dt>parameters</dt><dd>{params_html(params)}</dd>")
        overrides = training_overrides(rows, sub)
        if overrides:
            out.append(f"<dt>training</dt><dd>{overrides}</dd>")
        trials = sorted({str(t) for t in sub["trial"].drop_nulls().to_list()}) if "trial" in sub.columns else []
        if trials:
            out.append(f"<dt>tuned</dt><dd>best trial {esc(', '.join(trials))} on the dev split</dd>")
        out.append("</dl>")
        out.append(diagnostics_section(sub))
        for rec in sub.filter(pl.col("status") != "ok").iter_rows(named=True):
            where = f"{rec.get('dataset')} · {rec.get('model')} · seed {rec.get('seed')}: {rec.get('status')}"
            out.append(f'<p class="failed">{esc(where)}</p>')
            if rec.get("error"):
                out.append(f"<pre>{esc(rec['error'])}</pre>")
        out.append("</section>")
    out.append("</div>")
    return "".join(out)


def json_dict(raw: object) -> dict[str, Any] | None:
    try:
        value = json.loads(str(raw))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def training_overrides(rows: pl.DataFrame, sub: pl.DataFrame) -> str:
    """The training settings in which this strategy's runs differ from the most common ones (or "")."""
    if "training" not in rows.columns:
        return ""
    configs = [c for c in (json_dict(v) for v in rows["training"].drop_nulls().to_list()) if c is not None]
    if not configs:
        return ""
    counts: dict[str, int] = {}
    for c in configs:
        key = json.dumps(c, sort_keys=True)
        counts[key] = counts.get(key, 0) + 1
    common = json.loads(max(counts, key=lambda k: counts[k]))
    diffs: dict[str, set[str]] = {}
    for c in (json_dict(v) for v in sub["training"].drop_nulls().to_list()):
        for k, v in (c or {}).items():
            if common.get(k) != v:
                diffs.setdefault(k, set()).add(json.dumps(v))
    return ", ".join(f"<code>{esc(k)} = {esc(' / '.join(sorted(v)))}</code>" for k, v in sorted(diffs.items()))


def diagnostics_section(sub: pl.DataFrame) -> str:
    """A per dataset × model table of the negative diagnostics (or a line saying they do not apply)."""
    cols = [c for c in ("neg_score_gap", "planted_fn_share", "planted_fn_inbatch_share", "mine_s") if c in sub.columns]
    ok = sub.filter(pl.col("status") == "ok")
    if ok.is_empty() or not cols:
        return ""
    table = ok.group_by(["dataset", "model"], maintain_order=True).agg(
        [pl.len().alias("runs")] + [pl.col(c).cast(pl.Float64).mean().alias(c) for c in cols]
    )
    mined = [c for c in ("neg_score_gap", "planted_fn_share") if c in cols]
    if all(number(v) is None for c in mined for v in table[c].to_list()):
        return '<p class="muted">No mined negatives: diagnostics do not apply.</p>'
    heads = {
        "neg_score_gap": "score gap",
        "planted_fn_share": "planted-FN share",
        "planted_fn_inbatch_share": "planted-FN share in batch",
        "mine_s": "mining s",
    }
    out = ['<table><thead><tr><th class="text">dataset · model</th><th>runs</th>']
    out += [f"<th>{esc(heads[c])}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    for rec in table.iter_rows(named=True):
        out.append(f'<tr><td class="text">{esc(rec["dataset"])} · {esc(rec["model"])}</td><td>{rec["runs"]}</td>')
        out += [f"<td>{format_number(rec[c], 1 if c == 'mine_s' else 4)}</td>" for c in cols]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def distinct(rows: pl.DataFrame, col: str) -> list[str]:
    if col not in rows.columns:
        return []
    return sorted({str(v) for v in rows[col].drop_nulls().to_list()})


def provenance_section(rows: pl.DataFrame, generated: str) -> str:
    out = ["<dl>"]
    created = distinct(rows, "created_at")
    items = [
        ("devices", ", ".join(distinct(rows, "device")) or "unknown"),
        ("runs", f"{rows.height} ({rows.filter(pl.col('status') == 'ok').height} ok)"),
        ("run dates", f"{created[0]} … {created[-1]}" if created else "unknown"),
        ("report generated", generated),
        ("suites", ", ".join(distinct(rows, "suite")) or "unknown"),
        ("git revisions", ", ".join(distinct(rows, "git_rev")) or "not recorded"),
        ("config hashes", ", ".join(distinct(rows, "config_hash")) or "not recorded"),
    ]
    out += [f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items]
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
        for name in distinct(rows, key):
            fps = distinct(rows.filter(pl.col(key) == name), fp) or ["not recorded"]
            out.append(
                f'<tr><td class="text">{esc(name)}</td><td class="text"><code>{esc(", ".join(fps))}</code></td></tr>'
            )
        out.append("</tbody></table>")
    versions: dict[str, set[str]] = {}
    unparsed: set[str] = set()
    for raw in distinct(rows, "versions"):
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
            out.append(f'<tr><td class="text">{esc(pkg)}</td><td class="text">{esc(", ".join(vs))}{flag}</td></tr>')
        out.append("</tbody></table>")
        out += [f"<pre>{esc(raw)}</pre>" for raw in sorted(unparsed)]
    return "".join(out)
