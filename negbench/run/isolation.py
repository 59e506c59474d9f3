"""One job in a fresh process of its own: its memory is its own, and a crash fails that job only.

The suite process starts a child per job (dataset × model × strategy), forked by :func:`job_context`'s server
and killed when the suite process ends however it ends; the child re-loads the dataset, tunes and trains every
pending seed, and appends its rows to the store itself (atomic, locked writes).
A user error in the child (a bad config found late) comes back through a pipe and is raised in the parent
as the same one-line error; an interrupt ends the child with 130 (its running trial re-queued) and is raised
as ``KeyboardInterrupt``. Strategy code that raises or calls ``sys.exit`` fails its trial or row in the child
(:mod:`negbench.run.guard`), as in one process. Any other death (segfault, out-of-memory kill, an uncaught
exception) becomes a failed row for every seed the job left unfinished, with the reason, and the suite goes on.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import socket
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

from rich.markup import escape

from negbench import _phases as phases
from negbench import errors
from negbench._io import ProcessIdentity, pid_namespace, start_ticks
from negbench.run.lock import remove_temporaries_of
from negbench.run.provenance import check_code_unchanged

if TYPE_CHECKING:
    from negbench.run.plan import Job, Plan

__all__ = [
    "INTERRUPTED",
    "PR_SET_PDEATHSIG",
    "JobRunner",
    "crash_status",
    "describe_exit",
    "run_isolated",
    "signal_name",
    "start_job_server",
]
INTERRUPTED = 130
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: the kernel kills this process when its parent dies (a SIGKILLed suite leaves no orphan job)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _die_with_suite(lifeline) -> None:
    """Kill this job process as soon as the suite process is gone, however it ended (SIGKILL included).

    A job process is forked by the fork server, so the kernel's parent-death signal follows the server, which
    outlives a killed suite while any job process holds its pipe. The suite instead holds the only write end of
    ``lifeline``; its read end here sees EOF exactly when the suite process ends (or closes it, after this job
    has ended), and this process then kills itself."""

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline.recv_bytes()
        os.kill(os.getpid(), signal.SIGKILL)

    if lifeline.poll():  # the suite ended before this process got here (it never writes: readable means EOF)
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="negbench-lifeline", daemon=True).start()


class JobRunner(Protocol):
    """What isolation needs of the suite runner (:class:`negbench.run.suite.SuiteRunner`): it is handed the
    runner, and the child builds one of the same class, so this module never imports the suite loop."""

    plan: Plan
    progress: bool
    store: Any

    def pending_seeds(self, job: Job) -> list[tuple[int, str]]: ...
    def say(self, text: str) -> None: ...
    def record_crash(
        self, job: Job, reason: str, seeds: list[tuple[int, str]] | None = None, status: str = "failed: crashed"
    ) -> None: ...


def job_context(track: bool = False):
    """Where job processes come from: a fork server that has imported the training stack once (torch,
    sentence-transformers, negbench's run stage, and MLflow's client when the suite tracks runs; imports
    only, so never CUDA), so a job process starts in a fraction of a second instead of importing it all again;
    each job is still a process of its own (its own memory, peaks and crashes). The server is started, with its
    preloads, by :func:`start_job_server` or else by the first job of this process."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["negbench.run.job_preload", *(["negbench.run.tracking_imports"] if track else [])])
    return ctx


def start_job_server(track: bool = False) -> None:
    """Start the fork server of :func:`job_context` now, without waiting for it: its imports (seconds) then run
    while the suite process validates the suite and sets up tracking, instead of delaying the first job."""
    from multiprocessing import forkserver

    job_context(track)
    forkserver.ensure_running()


def _child(
    runner_class: type,
    plan: Plan,
    indices: tuple[int, int, int],
    parent_run: str | None,
    progress: bool,
    conn,
    environ: dict[str, str],
    cwd: str,
    lifeline,
) -> None:
    _die_with_parent()
    _die_with_suite(lifeline)
    # as a spawned child would: the suite process's environment and directory now, not the fork server's
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    phases.mark("child")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts (determinism)
    with phases.phase("imports"):
        from rich.console import Console

        from negbench.quiet import quiet_libraries

        quiet_libraries()  # as the suite process chose (NEGBENCH_VERBOSE)

        from negbench.errors import Terminated
        from negbench.run.interrupts import trapped
        from negbench.run.plan import Job

    d, m, s = indices
    with phases.phase("setup"):
        runner = runner_class(plan, progress=progress, console=Console(stderr=True), parent_run=parent_run)
    try:
        with trapped():  # as in the suite process: interrupts never swallowed; a trial interrupted is re-queued
            with phases.phase("setup"):
                check_code_unchanged()
            runner.tracker.attach(parent_run)
            with phases.phase("dataset"):
                dataset = runner.load_dataset(d, plan.suite.datasets[d])
            runner.run_job(Job(dataset, plan.suite.models[m], plan.strategies[s]))
    except errors.NegbenchError as exc:
        conn.send((type(exc).__name__, exc.message, exc.file, exc.field))
        sys.exit(2)
    except (KeyboardInterrupt, Terminated):
        sys.exit(INTERRUPTED)
    finally:
        phases.mark("exit")


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal 34`` for a number with no name (real-time signals)."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(code: int | None) -> str:
    """Why a job process ended, in words (negative codes are signals)."""
    if code is None:
        return "job process did not exit"
    if code < 0:
        hint = " (killed: out of memory?)" if -code == signal.SIGKILL else ""
        return f"job process died from signal {signal_name(-code)} ({-code}){hint}"
    return f"job process exited with code {code}"


def crash_status(code: int | None) -> str:
    """The status column of a crashed job's rows: the signal that ended it, where one did."""
    return f"failed: crashed ({signal_name(-code)})" if code is not None and code < 0 else "failed: crashed"


def _stop(proc, wait_s: float) -> None:
    """Give ``proc`` ``wait_s`` seconds to end by itself, then SIGTERM (60 s to close up), then SIGKILL.
    A second Ctrl-C meanwhile ends the suite at once (:mod:`negbench.run.interrupts`; the child dies with it)."""
    proc.join(timeout=wait_s)
    if proc.is_alive():
        proc.terminate()
        proc.join(timeout=60)
    if proc.is_alive():
        proc.kill()
        proc.join()


def run_isolated(runner: JobRunner, job: Job, indices: tuple[int, int, int], parent_run: str | None) -> None:
    """Run ``job`` in a child process of its own; record a crash as failed rows."""
    pending = runner.pending_seeds(job)
    if not pending:
        runner.say(f"[dim]skip {escape(job.name)}: every seed already finished[/dim]")
        return
    before = _rows(runner, pending)
    ctx = job_context(runner.plan.suite.tracking.enabled)
    receive, send = ctx.Pipe(duplex=False)
    lifeline, alive = ctx.Pipe(duplex=False)  # the suite holds the only write end (see _die_with_suite)
    proc = ctx.Process(
        target=_child,
        args=(
            type(runner),
            runner.plan,
            indices,
            parent_run,
            runner.progress,
            send,
            dict(os.environ),
            os.getcwd(),
            lifeline,
        ),
        name=f"negbench job {job.name}",
    )
    spawned = time.perf_counter()
    proc.start()
    phases.mark("spawn", spawned, job=job.name, child=proc.pid)
    child = ProcessIdentity(socket.gethostname(), proc.pid, start_ticks(proc.pid), pid_namespace())
    send.close()
    lifeline.close()
    try:
        proc.join()
    except KeyboardInterrupt:  # the child got the Ctrl-C too: let it re-queue its trial and close its runs
        _stop(proc, wait_s=20)
        raise
    except BaseException:  # SIGTERM (the child did not get it) or anything else: stop the child, then go
        _stop(proc, wait_s=0)
        raise
    finally:
        alive.close()  # the child has ended (joined or stopped): its lifeline may go
        phases.mark("joined", job=job.name, child=proc.pid)
    try:  # a message only if the child raised a user error; EOF (the child closed its end) otherwise
        message = receive.recv() if receive.poll() else None
    except EOFError:
        message = None
    if message is not None:
        kind, text, file, field = message
        raise getattr(errors, kind, errors.NegbenchError)(text, file=file, field=field)
    if proc.exitcode == INTERRUPTED:
        raise KeyboardInterrupt
    remove_temporaries_of(runner.plan.output_dir, child)  # it is dead: none of its directories is in use
    after = _rows(runner, pending)
    unwritten = [(seed, rid) for seed, rid in pending if rid not in after or after[rid] == before.get(rid)]
    if proc.exitcode != 0:
        runner.record_crash(job, describe_exit(proc.exitcode), unwritten, status=crash_status(proc.exitcode))
    elif unwritten:  # no row, yet "success" (strategy code is guarded: something else ended the process)
        runner.record_crash(job, "job process exited (code 0) without finishing its seeds", unwritten)


def _rows(runner: JobRunner, seeds: list[tuple[int, str]]) -> dict[str, dict]:
    """The stored rows of ``seeds`` by run id: the child wrote a seed's row when it is new or changed (a row
    failed earlier is retried and replaced, never overwritten by a "crashed" one)."""
    rows = runner.store.rows()
    if rows.is_empty():
        return {}
    ids = {run_id for _, run_id in seeds}
    return {r["run_id"]: r for r in rows.iter_rows(named=True) if r["run_id"] in ids}
