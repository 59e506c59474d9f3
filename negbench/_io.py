"""File writes every stage shares: atomic replacement, and temporary directories marked with their owner
(:class:`ProcessIdentity`: host, pid, the process's start time and its pid namespace, so that a survivor can tell
a dead owner from a live one, or from another process that reuses the pid).

Atomic writes go through a temporary file beside the target (``.<name>.XXXXXXXX<suffix>``) and ``os.replace``:
a reader sees the old file or the new one, never half of one, and a crash leaves only the temporary file, which
:func:`negbench.run.lock.remove_stale_temporaries` recognises by that name.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "OWNER_FILE",
    "TRAIN_TMP_PREFIX",
    "ProcessIdentity",
    "atomic_write",
    "default_file_mode",
    "is_alive",
    "owned_temporary_dir",
    "pid_namespace",
    "start_ticks",
    "this_process",
    "write_text_atomic",
]

TRAIN_TMP_PREFIX = ".negbench-train-"  # the trainer's temporary output directories
OWNER_FILE = "negbench-owner.json"  # in a temporary directory: the ProcessIdentity of the process that made it


def default_file_mode() -> int:
    """The mode ``open()`` gives a new file under this process's umask (``mkstemp`` alone gives 0600, which
    others on a shared cluster, or a static web server, could not read)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[str], object], *, suffix: str = "") -> Path:
    """Replace ``path`` with what ``write(temporary_path)`` writes, atomically, readable as the umask allows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        _fsync(tmp)  # on disk before it takes the name: a crash leaves the old file or the new, never an empty one
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """:func:`atomic_write` of UTF-8 text."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


@contextmanager
def owned_temporary_dir(parent: str | Path | None) -> Iterator[str]:
    """A temporary directory (``.negbench-train-XXXXXXXX``) marked with this process's host and pid, so that
    whoever outlives this process can remove it at once (:func:`negbench.run.lock.remove_temporaries_of`);
    removed on exit."""
    with tempfile.TemporaryDirectory(dir=parent, prefix=TRAIN_TMP_PREFIX) as path:
        write_text_atomic(Path(path) / OWNER_FILE, json.dumps(this_process().as_dict()))  # never half a file
        yield path


@dataclass(frozen=True)
class ProcessIdentity:
    """Who a process is, well enough to tell later whether it is still running: ``started`` (clock ticks since
    boot, from ``/proc/<pid>/stat``) tells a reused pid apart, ``pidns`` (the inode of its pid namespace) tells
    containers sharing a host name apart. Either is None where it could not be read."""

    host: str
    pid: int
    started: int | None = None
    pidns: int | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def same_as(self, other: ProcessIdentity) -> bool:
        """The same process: host and pid equal, and start time and namespace equal where both are known."""
        if (self.host, self.pid) != (other.host, other.pid):
            return False
        pairs = ((self.started, other.started), (self.pidns, other.pidns))
        return all(a is None or b is None or a == b for a, b in pairs)


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first), or None without such a process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; field 22 of ``/proc/<pid>/stat``), or None."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def pid_namespace() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None


def this_process() -> ProcessIdentity:
    return ProcessIdentity(socket.gethostname(), os.getpid(), start_ticks(os.getpid()), pid_namespace())


def is_alive(identity: ProcessIdentity) -> bool | None:
    """True if the process is still running, False if it is verifiably gone, None if this machine cannot tell
    (another host, another pid namespace, or no start time to tell a reused pid from it)."""
    if identity.host != socket.gethostname() or identity.pidns is None or identity.pidns != pid_namespace():
        return None
    fields = _stat(identity.pid)
    if fields is None or fields[0] in ("Z", "X"):  # gone, or exited and not yet reaped (a zombie)
        return False
    if identity.started is None:
        return None
    return int(fields[19]) == identity.started
