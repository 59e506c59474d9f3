"""The ``negbench`` command line (typer + rich). User errors print one line and exit 2."""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from negbench.errors import NegbenchError
from negbench.quiet import quiet_libraries

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Benchmark negative-sampling strategies.")
console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 200)


def user_errors(fn):
    """Turn :class:`NegbenchError`, and any file-system or decoding error on a user path that got this far,
    into one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NegbenchError as exc:
            message = exc.one_line()
        except UnicodeDecodeError as exc:
            message = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        except OSError as exc:
            where = ": ".join(str(p) for p in (exc.filename, exc.filename2) if p)
            message = f"{where}: {exc.strerror or exc}" if where else str(exc)
        typer.echo(f"error: {' '.join(message.split())}", err=True)
        raise typer.Exit(2) from None

    return wrapper


def require(ok: bool, flag: str, message: str) -> None:
    """A command-line value check: one line naming the option, exit 2."""
    if not ok:
        raise NegbenchError(message, field=flag)


@app.command()
@user_errors
def run(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    progress: Annotated[bool, typer.Option(help="Progress bars for encoding and training.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fine-tune and evaluate every dataset × model × strategy × seed of SUITE."""
    quiet_libraries(verbose)
    from negbench.report import rich_table
    from negbench.runner import SuiteRunner, plan_suite
    from negbench.tracking import Terminated

    plan = plan_suite(suite)
    try:
        store = SuiteRunner(plan, progress=progress and sys.stderr.isatty(), console=console).run()
    except (KeyboardInterrupt, Terminated):
        typer.echo("interrupted: finished rows are saved; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    rows = store.rows()
    out.print(rich_table(rows, title=f"negbench · {plan.suite.suite.name}"))
    out.print(f"results: {store.results_path}\nleaderboard: {plan.output_dir / 'leaderboard.md'}", markup=False)
    if not rows.is_empty() and (rows["status"] != "ok").any():
        console.print("[yellow]some jobs failed; see the status column[/yellow]")


@app.command()
@user_errors
def worker(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    storage: Annotated[str | None, typer.Option(help="Shared Optuna/claims storage URL (postgresql://…); "
                                                     "overrides [tuning] storage.")] = None,
    gpus: Annotated[str | None, typer.Option(help="Comma-separated GPU ids: one worker process per GPU.")] = None,
    heartbeat: Annotated[float | None, typer.Option(help="Seconds between claim heartbeats.")] = None,
    grace: Annotated[float | None, typer.Option(help="Seconds after which a silent worker's claim is taken.")] = None,
    progress: Annotated[bool, typer.Option(help="Progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Work on SUITE together with any number of other workers sharing one storage (jobs, trials, seeds)."""
    for flag, value in (("--heartbeat", heartbeat), ("--grace", grace)):
        require(value is None or 0 < value < float("inf"), flag, f"must be a positive number of seconds, got {value}")
    if gpus:
        _spawn_gpu_workers(suite, storage, gpus, heartbeat, grace)
        return
    quiet_libraries(verbose)
    from negbench.claims import ClaimBoard
    from negbench.runner import SuiteRunner, claims_url
    from negbench.tracking import Terminated

    plan = _plan_with_storage(suite, storage)
    validated = validate_plan(plan)
    tuning = plan.suite.tuning
    board = ClaimBoard(claims_url(plan), heartbeat_s=heartbeat or tuning.heartbeat_s,
                       grace_s=grace or tuning.grace_s).start()
    try:
        SuiteRunner(plan, progress=progress and sys.stderr.isatty(), console=console, board=board,
                    poll_s=min(2.0, board.heartbeat_s)).run(validated)
    except (KeyboardInterrupt, Terminated):
        typer.echo("worker interrupted: its claims were released", err=True)
        raise typer.Exit(130) from None
    finally:
        board.stop()
    console.print(f"worker {board.owner}: no work left", markup=False)


def _plan_with_storage(suite: Path, storage: str | None):
    """The validated plan of SUITE, with ``--storage`` (checked like ``[tuning] storage``) in place."""
    from negbench.runner import plan_suite
    from negbench.validation import check_storage_url

    plan = plan_suite(suite)
    if storage is not None:
        check_storage_url(storage, suite, "--storage")
        plan.suite = plan.suite.model_copy(update={"tuning": plan.suite.tuning.model_copy(update={"storage": storage})})
    return plan


def validate_plan(plan):
    from negbench.validation import validate_plan as validate

    return validate(plan)


def _spawn_gpu_workers(suite: Path, storage: str | None, gpus: str, heartbeat, grace) -> None:
    """One ``negbench worker`` process per GPU id, each seeing only its GPU (CUDA_VISIBLE_DEVICES)."""
    import subprocess

    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise NegbenchError(f"--gpus must be comma-separated GPU ids, got {gpus!r}", field="--gpus")
    args = [sys.executable, "-m", "negbench", "worker", str(suite)]
    for flag, value in (("--storage", storage), ("--heartbeat", heartbeat), ("--grace", grace)):
        if value is not None:
            args += [flag, str(value)]
    procs = [subprocess.Popen(args, env={**os.environ, "CUDA_VISIBLE_DEVICES": g}) for g in ids]
    codes = [p.wait() for p in procs]
    if any(codes):
        raise typer.Exit(max(codes))


@app.command()
@user_errors
def status(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    storage: Annotated[str | None, typer.Option(help="Storage URL (overrides [tuning] storage).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per job of SUITE: trials done / running / failed, seeds done, best dev metric."""
    quiet_libraries(False)
    from rich.table import Table

    from negbench.runner import job_status

    plan = _plan_with_storage(suite, storage)
    rows = job_status(plan, validate_plan(plan))
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=Text(f"negbench status · {plan.suite.suite.name}"))
    for col in ("job", "trials done", "running", "failed", "seeds done", f"best dev {plan.suite.tuning.metric}"):
        table.add_column(col, justify="left" if col == "job" else "right")
    for r in rows:
        trials = f"{r['complete'] + r['pruned']}/{r['trials']}" if r["trials"] else "–"
        best = f"{r['best_dev']:.4f}" if r["best_dev"] is not None else "–"
        table.add_row(Text(r["job"]), trials, str(r["running"]), str(r["failed"]), f"{r['seeds_done']}/{r['seeds']}",
                      best)
    out.print(table)


@app.command()
@user_errors
def validate(suite: Annotated[Path, typer.Argument(help="Suite TOML file.")]) -> None:
    """Check SUITE without training or writing anything: the TOML and its fields, strategies and parameters,
    metrics, every dataset (all splits), every model (config, tokenizer, device), storage and directories."""
    from negbench.runner import plan_suite

    plan = plan_suite(suite)
    validated = validate_plan(plan)
    s = plan.suite
    for note in validated.notes:
        typer.echo(f"note: {note}", err=True)
    sizes = ", ".join(f"{d.name}: {len(d.eval_corpus)} docs" + (f" (+{len(d.planted)} planted for training)"
                                                                 if d.planted else "")
                      + f", {len(d.train)} train / {len(d.dev)} dev queries" for d in validated.datasets)
    out.print(f"ok: {suite}: {len(s.datasets)} dataset(s) × {len(s.models)} model(s) × "
              f"{len(plan.strategies)} strateg{'y' if len(plan.strategies) == 1 else 'ies'} × "
              f"{len(s.suite.seeds)} seed(s) ({sizes})", markup=False)


@app.command("plan")
@user_errors
def plan_command(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output: a list of jobs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Dry run: per job the steps and examples per epoch, batch sizes, budget and training runs SUITE makes."""
    quiet_libraries(verbose)
    from rich.markup import escape
    from rich.table import Table

    from negbench.dry_run import dry_run
    from negbench.runner import SuiteRunner, plan_suite

    plan = plan_suite(suite)
    jobs = dry_run(SuiteRunner(plan))
    if as_json:
        typer.echo(json.dumps(jobs, indent=2))
    else:
        table = Table(title=f"negbench plan · {escape(plan.suite.suite.name)}")
        columns = ["dataset", "model", "strategy", "steps/epoch", "examples/epoch", "batch min–max", "epochs",
                   "steps", "runs", "budget"]
        for col in columns:
            table.add_column(col, justify="left" if col in {"dataset", "model", "strategy", "budget"} else "right")
        for job in jobs:
            batch = "–" if job.get("min_batch_size") is None else f"{job['min_batch_size']}–{job['max_batch_size']}"
            table.add_row(*(escape(str(job[k])) for k in ("dataset", "model", "strategy")),
                          str(job.get("steps_per_epoch", "–")), str(job.get("examples_per_epoch", "–")), batch,
                          str(job.get("epochs", "–")), str(job.get("total_steps", "–")), str(job["training_runs"]),
                          escape(job["error"] or job["budget"]))
        out.print(table)
        runs = sum(job["training_runs"] for job in jobs)
        out.print(f"{len(jobs)} job(s), {runs} training run(s)")
    if any(job["error"] for job in jobs):
        for job in jobs:
            if job["error"]:
                typer.echo(f"error: {suite}: strategy {job['strategy']!r}: {job['error']}", err=True)
        raise typer.Exit(2)


@app.command()
def strategies(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List registered strategies (built-in and plugins); broken plugins are shown with their error."""
    from negbench.registry import registry

    _list_plugins(registry, "negbench strategies", as_json, {"requires": lambda cls: sorted(cls.requires),
                                                             "citation": lambda cls: cls.citation})


@app.command()
def generators(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List registered text-negative generators (for the ``generated`` strategy's ``generator`` parameter)."""
    from negbench.registry import generators as registry

    _list_plugins(registry, "negbench generators", as_json,
                  {"description": lambda cls: (cls.__doc__ or "").strip().split("\n")[0]})


def _list_plugins(reg, title: str, as_json: bool, described: dict) -> None:
    """A table (or JSON list) of a registry's entries: name, status, distribution, then ``described``'s columns
    (``{column: fn(cls)}``); a broken plugin shows its error in the last column."""
    from rich.table import Table

    entries = reg.entries()
    if as_json:
        payload = [{"name": e.name, "target": e.target, "distribution": e.distribution,
                    "status": "ok" if e.cls else "broken", "error": e.error,
                    **{column: fn(e.cls) if e.cls else None for column, fn in described.items()}} for e in entries]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=title)  # names, citations and errors are plain text (Text), never markup
    for col in ("name", "status", "from", *described):
        table.add_column(col)
    for e in entries:
        if e.cls:
            values = [fn(e.cls) for fn in described.values()]
            cells = [Text(", ".join(v) or "–" if isinstance(v, list) else str(v)) for v in values]
        else:
            cells = ["–"] * (len(described) - 1) + [Text(e.error or "")]
        table.add_row(Text(e.name), "ok" if e.cls else "[red]broken[/red]", Text(e.distribution or "?"), *cells)
    out.print(table)


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
    from negbench.config import DatasetConfig, ModelConfig
    from negbench.data import load_dataset
    from negbench.evaluation import evaluate
    from negbench.metrics import parse_metric
    from negbench.models import load_model

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
    result = evaluate(st, ds.eval_corpus, ds.queries, ds.test(), metric_list, batch_size=batch_size,
                      progress=not as_json and sys.stderr.isatty())
    if as_json:
        typer.echo(json.dumps({**{k: round(v, 6) for k, v in result.metrics.items()},
                               "queries": len(ds.test()), "seconds": round(result.seconds, 2)}))
    else:
        for k, v in result.metrics.items():
            out.print(f"{k:>12}  {v:.4f}", markup=False)
        out.print(f"{len(ds.test())} queries, {result.seconds:.1f} s")


@app.command()
@user_errors
def report(
    results_dir: Annotated[Path, typer.Argument(help="Output directory of a run (holds results.parquet).")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output folder; default RESULTS_DIR.")] = None,
    baseline: Annotated[str, typer.Option(help="Strategy the significance marks compare with.")] = "in-batch",
    title: Annotated[str | None, typer.Option(help="Page title (default: from the suite names).")] = None,
    alpha: Annotated[float, typer.Option(help="Significance level (after Holm correction).")] = 0.05,
) -> None:
    """Write leaderboard.md and a self-contained index.html (tables, plots, provenance) for RESULTS_DIR."""
    from negbench.html_report import write_report

    if not 0 < alpha < 1:
        raise NegbenchError("must be between 0 and 1", field="--alpha")
    md_path, html_path = write_report(results_dir, out_dir, baseline=baseline, title=title, alpha=alpha)
    out.print(f"leaderboard: {md_path}\nhtml: {html_path}", markup=False)


@app.command()
@user_errors
def compare(
    baseline: Annotated[Path, typer.Argument(help="Results directory of the reference run.")],
    new: Annotated[Path, typer.Argument(help="Results directory of the run to check.")],
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", help="Metric to check (repeatable; default: every metric both stores have).")] = None,
    max_drop: Annotated[float, typer.Option(
        help="Tolerated absolute drop of a metric's mean (a bigger drop must also be significant).")] = 0.01,
    max_throughput_drop_factor: Annotated[float, typer.Option(
        help="Flag training throughput that fell by more than this factor (base / new).")] = 2.0,
    alpha: Annotated[float, typer.Option(help="Significance level after Holm correction.")] = 0.05,
    summary: Annotated[Path | None, typer.Option(help="Also append a markdown table to this file.")] = None,
) -> None:
    """Compare NEW with BASELINE job by job; exit 3 on a regression, 0 when clean, 2 on bad input or when no
    job finished in both stores (nothing compared)."""
    from rich.table import Table

    from negbench.compare import HEADER, compare_stores

    result = compare_stores(baseline, new, metrics=metric, max_drop=max_drop,
                            max_throughput_drop_factor=max_throughput_drop_factor, alpha=alpha)
    table = Table(title=Text(f"negbench compare: {new} vs {baseline}"))
    for col in HEADER:
        table.add_column(col, justify="left" if col in {"dataset", "model", "strategy", "metric", "verdict"}
                         else "right")
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
            raise NegbenchError(f"cannot write the summary: {exc.strerror or exc}", file=summary,
                                field="--summary") from None
    if result.nothing_compared:
        raise NegbenchError(f"nothing compared: {result.nothing_compared}; {result.counts_line()}")
    flagged = result.regressions
    if flagged:
        names = ", ".join(f"{j.dataset}/{j.model}/{j.strategy}" for j in flagged)
        typer.echo(f"regression: {len(flagged)} job(s): {names}", err=True)
        out.print(result.verdict_line())
        raise typer.Exit(3)
    out.print(result.verdict_line())


def main() -> None:  # pragma: no cover
    app()


@app.command()
@user_errors
def figures(
    files: Annotated[list[Path] | None, typer.Argument(
        help="Markdown files with <!-- figures: … --> blocks (default: README.md and results/README.md).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a block differs from the "
                                                        "results.")] = False,
    root: Annotated[Path, typer.Option(help="Repository root that the blocks' results paths are relative to.")]
    = Path("."),
) -> None:
    """Regenerate the figures in FILES from the results stores their blocks name (or --check them)."""
    from negbench.figures import DEFAULT_FILES, update_file

    paths = list(files) if files else [root / name for name in DEFAULT_FILES]
    stale = [entry for path in paths for entry in update_file(path, root, check=True)]  # every block is valid
    if check and stale:
        for entry in stale:
            typer.echo(f"stale: {entry}", err=True)
        typer.echo(f"{len(stale)} figure block(s) differ from the results; run `negbench figures`", err=True)
        raise typer.Exit(1)
    if not check:
        for path in paths:
            update_file(path, root)
        for entry in stale:
            typer.echo(f"updated {entry}")
    if not stale:
        typer.echo(f"figures up to date in {len(paths)} file(s)")
