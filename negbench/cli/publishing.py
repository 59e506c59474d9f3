"""Commands that evaluate and publish: ``eval``, ``report``, ``compare``, ``figures``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from negbench.cli.common import app, out, require, user_errors
from negbench.errors import NegbenchError
from negbench.quiet import quiet_libraries

__all__ = ["compare", "eval_cmd", "figures", "report"]


@app.command("eval")
@user_errors
def eval_cmd(
    dataset: Annotated[str, typer.Option(help="BEIR directory or beir:<name>.")],
    model: Annotated[str, typer.Option(help="Model path or hub id.")],
    split: Annotated[str, typer.Option(help="Qrels split to evaluate.")] = "test",
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics.")] = "ndcg@10,recall@100,mrr@10,map@100",
    max_seq_length: Annotated[int, typer.Option(help="Model max sequence length.")] = 256,
    batch_size: Annotated[int, typer.Option(help="Encoding batch size.")] = 64,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 … (default: CUDA if present).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object of metrics.")] = False,
) -> None:
    """Evaluate a model zero-shot on a BEIR-layout dataset (exact search, pytrec_eval)."""
    quiet_libraries(False)
    from negbench.config.metrics import parse_metric
    from negbench.config.suite import DatasetConfig, ModelConfig
    from negbench.core.models import load_model
    from negbench.data.dataset import load_dataset
    from negbench.evaluation.retrieval import evaluate

    require(batch_size > 0, "--batch-size", f"must be a positive integer, got {batch_size}")
    require(max_seq_length > 0, "--max-seq-length", f"must be a positive integer, got {max_seq_length}")
    metric_list = [m.strip() for m in metrics.split(",") if m.strip()]
    require(bool(metric_list), "--metrics", f"names no metric: {metrics!r}")
    for m in metric_list:
        try:
            parse_metric(m)
        except ValueError as exc:
            raise NegbenchError(str(exc), field="--metrics") from None
    cfg = DatasetConfig(source=dataset, test_split=split)
    ds = load_dataset(cfg, require_train=False)
    st = load_model(ModelConfig(spec=model, max_seq_length=max_seq_length, batch_size=batch_size), device)
    result = evaluate(
        st,
        ds.eval_corpus,
        ds.queries,
        ds.test(),
        metric_list,
        batch_size=batch_size,
        progress=not as_json and sys.stderr.isatty(),
    )
    if as_json:
        typer.echo(
            json.dumps(
                {
                    **{k: round(v, 6) for k, v in result.metrics.items()},
                    "queries": len(ds.test()),
                    "seconds": round(result.seconds, 2),
                }
            )
        )
    else:
        for k, v in result.metrics.items():
            out.print(f"{k:>12}  {v:.4f}", markup=False)
        out.print(f"{len(ds.test())} queries, {result.seconds:.1f} s")


@app.command()
@user_errors
def report(
    results_dir: Annotated[Path, typer.Argument(help="Output directory of a run (holds results.parquet).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder; default RESULTS_DIR.")] = None,
    baseline: Annotated[
        str | None,
        typer.Option(help="Strategy the marks compare with (default: the store's suite.toml, else in-batch)."),
    ] = None,
    title: Annotated[str | None, typer.Option(help="Page title (default: from the suite names).")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level (after Holm correction).")] = 0.05,
    primary: Annotated[
        str | None,
        typer.Option(help="Metric the verdict and marks rest on (default: the store's suite.toml, else ndcg@10)."),
    ] = None,
) -> None:
    """Write leaderboard.md and a self-contained index.html (tables, plots, provenance) for RESULTS_DIR."""
    from negbench.report.pages import write_report

    if not 0 < alpha < 1:
        raise NegbenchError("must be between 0 and 1", field="--alpha")
    md_path, html_path = write_report(
        results_dir, out_dir, baseline=baseline, title=title, alpha=alpha, primary=primary
    )
    out.print(f"leaderboard: {md_path}\nhtml: {html_path}", markup=False)


@app.command()
@user_errors
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results directory of the reference run.")],
    new: Annotated[Path, typer.Argument(help="Results directory of the run to check.")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", help="Metric to check (repeatable; default: every metric both stores have)."),
    ] = None,
    max_drop: Annotated[
        float, typer.Option(help="Tolerated absolute drop of a metric's mean (a bigger drop must also be significant).")
    ] = 0.01,
    max_throughput_drop_factor: Annotated[
        float, typer.Option(help="Flag training throughput that fell by more than this factor (base / new).")
    ] = 2.0,
    alpha: Annotated[
        float, typer.Option(help="Significance level after Holm correction over every job × metric compared.")
    ] = 0.05,
    summary: Annotated[Path | None, typer.Option(help="Also append a markdown table to this file.")] = None,
) -> None:
    """Compare NEW with BASELINE job by job. Exit 0 when clean; 3 on a regression (an accuracy drop, a
    throughput drop, or a job that failed in NEW); 2 on bad input or when no job finished in both stores. An
    accuracy drop must exceed --max-drop and be significant in a seed × query t test (training seeds and
    queries both vary). With one seed on either side training variance is unmeasured: the test covers query
    noise only, and such a drop still exits 3, labelled "ACCURACY DROP (one seed: query noise only)"."""
    from rich.table import Table

    from negbench.report.compare import HEADER, compare_stores

    result = compare_stores(
        baseline,
        new,
        metrics=metric,
        max_drop=max_drop,
        max_throughput_drop_factor=max_throughput_drop_factor,
        alpha=alpha,
    )
    table = Table(title=Text(f"negbench compare: {new} vs {baseline}"))
    for col in HEADER:
        table.add_column(
            col, justify="left" if col in {"dataset", "model", "strategy", "metric", "verdict"} else "right"
        )
    for row in result.rows():
        style = "bold red" if row[-1] not in {"ok", "missing", "added", "not comparable"} else None
        table.add_row(*(Text(str(cell)) for cell in row), style=style)
    out.print(table)
    if result.device_warning:
        typer.echo(f"warning: {result.device_warning}", err=True)
    if summary is not None:
        try:
            with summary.open("a", encoding="utf-8") as fh:
                fh.write(result.markdown())
        except OSError as exc:
            raise NegbenchError(
                f"cannot write the summary: {exc.strerror or exc}", file=summary, field="--summary"
            ) from None
    if result.nothing_compared:
        raise NegbenchError(f"nothing compared: {result.nothing_compared}; {result.counts_line()}")
    flagged = result.regressions
    if flagged:
        names = ", ".join(f"{j.dataset}/{j.model}/{j.strategy}" for j in flagged)
        typer.echo(f"regression: {len(flagged)} job(s): {names}", err=True)
        out.print(result.verdict_line())
        raise typer.Exit(3)
    out.print(result.verdict_line())


@app.command()
@user_errors
def figures(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Markdown files with <!-- figures: … --> blocks (default: README.md and results/README.md)."
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if a block or a store's page differs from the results, a figure is typed "
            "outside a block or a page has no store.",
        ),
    ] = False,
    root: Annotated[Path, typer.Option(help="Repository root that the blocks' results paths are relative to.")] = Path(
        "."
    ),
    pages: Annotated[
        bool | None,
        typer.Option(
            "--pages/--no-pages",
            help="Also re-render leaderboard.md and index.html of every store under ROOT/results "
            "(default: when no FILES are given).",
        ),
    ] = None,
) -> None:
    """Regenerate the figures in FILES and the pages of the published stores from the results (or --check
    them). A figure typed outside a block (a decimal, a percentage, a duration, a multiple, a compute or memory
    quantity, a table row of numbers) fails both: generate it with a block or remove it. With the pages, so does
    a folder under ROOT/results with a leaderboard.md or index.html but no results.parquet (an orphaned page)."""
    from negbench.report.figures import DEFAULT_FILES, plan_pages, typed_in_file, update_file, write_pages
    from negbench.report.figures.pages import orphaned_pages

    paths = list(files) if files else [root / name for name in DEFAULT_FILES]
    stale = [entry for path in paths for entry in update_file(path, root, check=True)]  # every block is valid
    typed = [entry for path in paths for entry in typed_in_file(path, root)]
    with_pages = not files if pages is None else pages
    planned = plan_pages(root) if with_pages else []  # rendered before any write
    orphans = orphaned_pages(root) if with_pages else []
    stale_pages = [page.where for page in planned if page.stale]
    if check:
        for entry in stale:
            typer.echo(f"stale: {entry}", err=True)
        for where in stale_pages:
            typer.echo(f"stale page: {where}", err=True)
        _report_typed(typed, orphans)
        if stale or stale_pages:
            typer.echo(
                f"{len(stale)} figure block(s) and {len(stale_pages)} page(s) differ from the results; "
                "run `negbench figures`",
                err=True,
            )
        if stale or stale_pages or typed or orphans:
            raise typer.Exit(1)
    else:
        for path in paths:
            update_file(path, root)
        write_pages(planned)
        for entry in [*stale, *stale_pages]:
            typer.echo(f"updated {entry}")
        _report_typed(typed, orphans)
        if typed or orphans:
            raise typer.Exit(1)
    if not stale and not stale_pages:
        typer.echo(f"figures up to date in {len(paths)} file(s)" + (f" and {len(planned)} page(s)" if planned else ""))


def _report_typed(typed: list[str], orphans: list[str]) -> None:
    """What regenerating cannot fix: figures typed outside a block and pages whose store is gone."""
    for entry in orphans:
        typer.echo(f"orphaned page: {entry}", err=True)
    for entry in typed:
        typer.echo(f"typed figure: {entry}", err=True)
    if typed:
        typer.echo(
            f"{len(typed)} figure(s) typed outside a figures block: generate each with a block or remove it",
            err=True,
        )
