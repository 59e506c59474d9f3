"""What the job fork server imports before it serves (:func:`negbench.run.isolation.job_context`): the run stage,
with Ctrl-C leaving quietly meanwhile. The server shares the terminal's process group, so a Ctrl-C in the first
seconds of a run reached it in the middle of importing torch and it printed a KeyboardInterrupt traceback of dozens
of lines under the suite's own "interrupted" line. The suite process handles that Ctrl-C (it always stops), so the
server now just exits, at once, holding no output pipe open while it would finish importing. Python's fork server
ignores SIGINT itself only once its preloads are imported, and gives each job process the handler it found then:
the default handler is back by that time, so a job process still gets Ctrl-C."""

from __future__ import annotations

from negbench.run.interrupts import ctrl_c_exits_quietly

__all__: list[str] = []  # imported for its effect

with ctrl_c_exits_quietly():
    import negbench.run.suite  # noqa: F401 - the training stack every job process needs
