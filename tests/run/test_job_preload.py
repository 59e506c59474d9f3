"""The job fork server leaves at once and silently on a Ctrl-C while it imports the training stack (the suite
process handles the Ctrl-C), and job processes it forks still get Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import os, signal, time
from multiprocessing import forkserver
from negbench.run.isolation import job_context, start_job_server
from tests.run.test_job_preload import exit_with_the_sigint_handler
start_job_server()
server = forkserver._forkserver._forkserver_pid
time.sleep(0.5)  # the server is importing torch and sentence-transformers (seconds)
os.kill(server, signal.SIGINT)  # what a Ctrl-C in the terminal sends it too
exited = os.waitid(os.P_PID, server, os.WEXITED | os.WNOWAIT)  # not reaped: multiprocessing starts a new one
print("server exit", exited.si_status, flush=True)
job = job_context().Process(target=exit_with_the_sigint_handler)  # a new server, then a job
job.start()
job.join()
print("job exit", job.exitcode)
"""


def exit_with_the_sigint_handler() -> None:
    """In a job process: exit 0 when Ctrl-C raises KeyboardInterrupt there, 3 when it is ignored."""
    sys.exit(0 if signal.getsignal(signal.SIGINT) is signal.default_int_handler else 3)


@pytest.mark.slow  # two fork servers import the training stack
def test_ctrl_c_while_the_job_server_imports_ends_it_silently_and_jobs_still_get_it() -> None:
    """The server used to die with a KeyboardInterrupt traceback of dozens of lines mid-import; ignoring the
    Ctrl-C instead kept it importing (and holding the suite's output pipes) after the suite had stopped."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=root)
    assert "KeyboardInterrupt" not in done.stderr and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "server exit 130" in done.stdout, done.stdout + done.stderr[-2000:]
    assert done.returncode == 0 and "job exit 0" in done.stdout, done.stderr[-2000:]
