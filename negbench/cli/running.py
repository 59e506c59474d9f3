"""Commands that run a suite: ``run``, ``worker`` (with ``--gpus``) and ``status``."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from negbench.cli.common import app, console, out, require, user_errors
from negbench.errors import NegbenchError
from negbench.quiet import quiet_libraries

__all__ = ["leaderboard_for", "run", "status", "validate_plan", "worker"]


@app.command()
@user_errors
def run(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    progress: Annotated[bool, typer.Option(help="Progress bars for encoding and training.")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Fine-tune and evaluate every dataset × model × strategy × seed of SUITE."""
    quiet_libraries(verbose)
    from negbench.errors import Terminated
    from negbench.report.terminal import rich_tables
    from negbench.run.plan import plan_suite
    from negbench.run.suite import SuiteRunner

    plan = plan_suite(suite)
    try:
        store = SuiteRunner(
            plan, progress=progress and sys.stderr.isatty(), console=console, publish=leaderboard_for(plan)
        ).run()
    except (KeyboardInterrupt, Terminated):
        typer.echo("interrupted: finished rows are saved; rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
    rows = store.rows()
    out.print(
        rich_tables(
            rows,
            title=f"negbench · {plan.suite.suite.name}",
            baseline=plan.suite.suite.baseline,
            primary=plan.suite.primary_metric,
        )
    )
    out.print(f"results: {store.results_path}\nleaderboard: {plan.output_dir / 'leaderboard.md'}", markup=False)
    if not rows.is_empty() and (rows["status"] != "ok").any():
        console.print("[yellow]some jobs failed; see the status column[/yellow]")


@app.command()
@user_errors
def worker(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file.")],
    storage: Annotated[
        str | None, typer.Option(help="Shared Optuna/claims storage URL (postgresql://…); overrides [tuning] storage.")
    ] = None,
    gpus: Annotated[str | None, typer.Option(help="Comma-separated GPU ids: one worker process per GPU.")] = None,
    heartbeat: Annotated[float | None, typer.Option(help="Seconds between claim heartbeats.")] = None,
    grace: Annotated[float | None, typer.Option(help="Seconds after which a silent worker's claim is taken.")] = None,
    progress: Annotated[bool, typer.Option(help="Progress bars.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Work on SUITE together with any number of other workers sharing one storage (jobs, trials, seeds)."""
    for flag, value in (("--heartbeat", heartbeat), ("--grace", grace)):
        require(value is None or 0 < value < float("inf"), flag, f"must be a positive number of seconds, got {value}")
    quiet_libraries(verbose)
    plan = _plan_with_storage(suite, storage)
    heartbeat_s, grace_s = heartbeat or plan.suite.tuning.heartbeat_s, grace or plan.suite.tuning.grace_s
    source = {
        "grace": "--grace" if grace else "[tuning] grace_s",
        "beat": "--heartbeat" if heartbeat else "[tuning] heartbeat_s",
    }
    require(
        grace_s >= 2 * heartbeat_s,
        "--grace" if grace else "--heartbeat",
        f"the grace ({source['grace']} = {grace_s:g} s) must be at least twice the heartbeat ({source['beat']} = "
        f"{heartbeat_s:g} s): a live worker's claims would be taken over between two of its heartbeats",
    )
    if gpus:
        _spawn_gpu_workers(plan, suite, storage, gpus, heartbeat, grace)
        return
    from negbench.errors import Terminated
    from negbench.run.claims import ClaimBoard
    from negbench.run.plan import claims_url
    from negbench.run.suite import SuiteRunner

    validated = validate_plan(plan)
    board = ClaimBoard(claims_url(plan), heartbeat_s=heartbeat_s, grace_s=grace_s).start()
    try:
        SuiteRunner(
            plan,
            progress=progress and sys.stderr.isatty(),
            console=console,
            board=board,
            publish=leaderboard_for(plan),
            poll_s=min(2.0, board.heartbeat_s),
        ).run(validated)
    except (KeyboardInterrupt, Terminated):
        typer.echo("worker interrupted: its claims were released", err=True)
        raise typer.Exit(130) from None
    finally:
        board.stop()
    console.print(f"worker {board.owner}: no work left", markup=False)


def _plan_with_storage(suite: Path, storage: str | None):
    """The validated plan of SUITE, with ``--storage`` (checked like ``[tuning] storage``) in place."""
    from negbench.run.plan import plan_suite
    from negbench.run.preflight import check_storage_url

    plan = plan_suite(suite)
    if storage is not None:
        check_storage_url(storage, suite, "--storage")
        plan.suite = plan.suite.model_copy(update={"tuning": plan.suite.tuning.model_copy(update={"storage": storage})})
    return plan


def leaderboard_for(plan):
    """What a finished suite publishes: its leaderboard.md (the HTML page is ``negbench report``'s)."""
    from negbench.report.markdown import write_leaderboard

    def publish(store):
        title = f"negbench · {plan.suite.suite.name}"
        return [
            write_leaderboard(
                store.rows(),
                plan.output_dir / "leaderboard.md",
                title,
                per_query=store.per_query(),
                baseline=plan.suite.suite.baseline,
                primary=plan.suite.primary_metric,
                comparisons=[(c.better, c.worse) for c in plan.suite.comparisons],
            )
        ]

    return publish


def validate_plan(plan):
    from negbench.run.preflight import validate_plan as validate

    return validate(plan)


def _spawn_gpu_workers(plan, suite: Path, storage: str | None, gpus: str, heartbeat, grace) -> None:
    """One ``negbench worker`` process per GPU id, each seeing only its GPU (CUDA_VISIBLE_DEVICES). An output
    directory another run holds is refused here, in one line, rather than once by every worker."""
    import subprocess

    from negbench.run.lock import RunLock

    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids):
        raise NegbenchError(f"--gpus must be comma-separated GPU ids, got {gpus!r}", field="--gpus")
    RunLock(plan.output_dir, shared=True).acquire().release()
    args = [sys.executable, "-m", "negbench", "worker", str(suite)]
    for flag, value in (("--storage", storage), ("--heartbeat", heartbeat), ("--grace", grace)):
        if value is not None:
            args += [flag, str(value)]
    procs = [subprocess.Popen(args, env={**os.environ, "CUDA_VISIBLE_DEVICES": g}) for g in ids]
    codes: dict[int, int] = {}
    while len(codes) < len(procs):  # reap each worker as it ends: a dead one must not linger as a zombie, which
        for proc in procs:  # the others would take for a live worker (negbench._io.is_alive)
            if proc.pid not in codes and proc.poll() is not None:
                codes[proc.pid] = proc.returncode
        time.sleep(0.2)
    if any(codes.values()):
        raise typer.Exit(max(codes.values()))


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

    from negbench.run.status import job_status

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
        table.add_row(
            Text(r["job"]), trials, str(r["running"]), str(r["failed"]), f"{r['seeds_done']}/{r['seeds']}", best
        )
    out.print(table)
