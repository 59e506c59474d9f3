"""Commands that check and describe before anything trains: ``validate``, ``plan``, ``strategies``,
``generators``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from negbench.cli.common import app, out, user_errors
from negbench.cli.running import validate_plan
from negbench.quiet import quiet_libraries

__all__ = ["generators", "plan_command", "strategies", "validate"]


@app.command()
@user_errors
def validate(suite: Annotated[Path, typer.Argument(help="Suite TOML file.")]) -> None:
    """Check SUITE without training or writing anything: the TOML and its fields, strategies and parameters,
    metrics, every dataset (all splits), every model (config, tokenizer, device), storage and directories."""
    from negbench.run.plan import plan_suite

    plan = plan_suite(suite)
    validated = validate_plan(plan)
    s = plan.suite
    for note in validated.notes:
        typer.echo(f"note: {note}", err=True)
    sizes = ", ".join(
        f"{d.name}: {len(d.eval_corpus)} docs"
        + (f" (+{len(d.planted)} planted for training)" if d.planted else "")
        + f", {len(d.train)} train / {len(d.dev)} dev queries"
        for d in validated.datasets
    )
    out.print(
        f"ok: {suite}: {len(s.datasets)} dataset(s) × {len(s.models)} model(s) × "
        f"{len(plan.strategies)} strateg{'y' if len(plan.strategies) == 1 else 'ies'} × "
        f"{len(s.suite.seeds)} seed(s) ({sizes})",
        markup=False,
    )


@app.command("plan")
@user_errors
def plan_command(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output: a list of jobs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Dry run: per job the steps and examples per epoch, batch sizes, coverage (the smallest share of epochs in
    which a training example is trained), estimated compute (preparation + training TFLOPs), budget and training
    runs SUITE makes."""
    quiet_libraries(verbose)
    from rich.markup import escape
    from rich.table import Table

    from negbench.run.dry_run import dry_run
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner

    plan = plan_suite(suite)
    jobs = dry_run(SuiteRunner(plan))
    if as_json:
        typer.echo(json.dumps(jobs, indent=2))
    else:
        table = Table(title=f"negbench plan · {escape(plan.suite.suite.name)}")
        columns = [
            "dataset",
            "model",
            "strategy",
            "steps/epoch",
            "examples/epoch",
            "batch min–max",
            "epochs",
            "steps",
            "runs",
            "coverage",
            "TFLOP prep + train",
            "budget",
        ]
        for col in columns:
            table.add_column(col, justify="left" if col in {"dataset", "model", "strategy", "budget"} else "right")
        for job in jobs:
            batch = "–" if job.get("min_batch_size") is None else f"{job['min_batch_size']}–{job['max_batch_size']}"
            table.add_row(
                *(escape(str(job[k])) for k in ("dataset", "model", "strategy")),
                str(job.get("steps_per_epoch", "–")),
                str(job.get("examples_per_epoch", "–")),
                batch,
                str(job.get("epochs", "–")),
                str(job.get("total_steps", "–")),
                str(job["training_runs"]),
                _coverage_cell(job),
                _compute_cell(job),
                escape(job["error"] or job["budget"]),
            )
        out.print(table)
        runs = sum(job["training_runs"] for job in jobs)
        rule = "equal compute" if plan.suite.training.budget == "compute" else "equal data"
        out.print(f"{len(jobs)} job(s), {runs} training run(s); budget rule: {rule} (training.budget)")
        for job in jobs:
            if job.get("coverage_note"):
                out.print(f"coverage of {job['strategy']} on {job['dataset']}: {job['coverage_note']}", markup=False)
            if job.get("unexercised"):
                note = f"note: {job['strategy']} on {job['dataset']} · {job['model']} {job['unexercised']}"
                out.print(note, markup=False, soft_wrap=True)
    if any(job["error"] for job in jobs):
        for job in jobs:
            if job["error"]:
                who = f"strategy {job['strategy']!r}"
                message = job["error"] if job["error"].startswith(who) else f"{who}: {job['error']}"
                typer.echo(f"error: {suite}: {message}", err=True)
        raise typer.Exit(2)


def _coverage_cell(job: dict) -> str:
    """The smallest share of epochs an example is trained in, with the examples left out of each epoch."""
    if job.get("coverage") is None:
        return "–"
    left = job.get("left_out_per_epoch") or 0
    return f"{job['coverage']:.2f}" + (f" ({left} out/epoch)" if left else "")


def _compute_cell(job: dict) -> str:
    """The estimated preparation + training TFLOPs of a job's run (``–`` without training or an estimate)."""
    prep, trained = job.get("est_prep_tflop"), job.get("est_train_tflop")
    return "–" if prep is None or trained is None else f"{prep:.3g} + {trained:.3g}"


@app.command()
def strategies(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List registered strategies (built-in and plugins); broken plugins are shown with their error."""
    from negbench.core.registry import registry

    _list_plugins(
        registry,
        "negbench strategies",
        as_json,
        {"requires": lambda cls: sorted(cls.requires), "citation": lambda cls: cls.citation},
    )


@app.command()
def generators(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List registered text-negative generators (for the ``generated`` strategy's ``generator`` parameter)."""
    from negbench.core.registry import generators as registry

    _list_plugins(
        registry,
        "negbench generators",
        as_json,
        {"description": lambda cls: (cls.__doc__ or "").strip().split("\n")[0]},
    )


def _list_plugins(reg, title: str, as_json: bool, described: dict) -> None:
    """A table (or JSON list) of a registry's entries: name, status, distribution, then ``described``'s columns
    (``{column: fn(cls)}``); a broken plugin shows its error in the last column."""
    from rich.table import Table

    entries = reg.entries()
    if as_json:
        payload = [
            {
                "name": e.name,
                "target": e.target,
                "distribution": e.distribution,
                "status": "ok" if e.cls else "broken",
                "error": e.error,
                **{column: fn(e.cls) if e.cls else None for column, fn in described.items()},
            }
            for e in entries
        ]
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
