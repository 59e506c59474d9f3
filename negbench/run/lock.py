"""One run per output directory at a time: a lock file in the directory, held for the run's life.

``negbench run`` takes the lock exclusively; ``negbench worker`` processes take it shared (they share an
output directory with each other by design, see :mod:`negbench.run.claims`), so a worker is refused while a run
holds it and a run is refused while workers hold it. The lock is ``fcntl.flock`` on a file kept open for the
run's life: the kernel releases it when the holder exits in any way, SIGKILL included, so a dead holder
never blocks the next run. The file also holds the holder's host, pid and start time (one JSON line per
holder), which only serve the refusal message.

Once the lock is held exclusively, :func:`remove_stale_temporaries` deletes what a killed run left behind
(temporary files of atomic writes, the trainer's temporary output directories): nobody else can be using
them then. A worker that finds other workers holding the lock leaves them alone.

Written by hand on ``fcntl``: the one thing needed is a lock that dies with its process (a pid file alone
goes stale on SIGKILL; ``filelock``'s ``FileLock`` is exclusive only).
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import time
from pathlib import Path

from negbench._io import OWNER_FILE, TRAIN_TMP_PREFIX, ProcessIdentity
from negbench.errors import OutputDirInUse

__all__ = [
    "LOCK_FILE",
    "STALE_CACHE_FILES",
    "STALE_DIRS",
    "STALE_FILES",
    "RunLock",
    "read_holder",
    "remove_stale_temporaries",
    "remove_temporaries_of",
]

LOCK_FILE = ".negbench-run.lock"

# Temporaries of atomic writes (tempfile's 8-character names) and temporary directories under the output
# directory: results.py (``.results.parquet.XXXXXXXX.tmp``), report.py (``.leaderboard.md.XXXXXXXX``),
# training.py (``.negbench-train-XXXXXXXX/``, earlier ``tmpXXXXXXXX/``); under a cache directory inside the
# output directory, mining.py's cache files (``.name-code.pt.XXXXXXXX``).
_TMP = r"[a-z0-9_]{8}"
STALE_FILES = re.compile(
    rf"^\.(results\.parquet|per_query\.parquet)\.{_TMP}\.tmp$|^\.(leaderboard\.md|suite\.toml)\.{_TMP}$"
    rf"|^\.mlflow-init-{_TMP}\.db(-journal|-wal|-shm)?$"
)
STALE_CACHE_FILES = re.compile(rf"^\..+\.pt\.{_TMP}$")
STALE_DIRS = re.compile(rf"^tmp{_TMP}$|^{re.escape(TRAIN_TMP_PREFIX)}{_TMP}$")


class RunLock:
    """The lock of one output directory; ``shared`` for workers, exclusive for a run."""

    def __init__(self, directory: str | Path, *, shared: bool = False, wait_s: float = 30.0) -> None:
        self.directory = Path(directory)
        self.shared = shared
        self.wait_s = wait_s  # how long a worker waits for another worker's clean-up (it holds the lock alone)
        self.path = self.directory / LOCK_FILE
        self.exclusive = False  # held exclusively (then stale temporaries may be removed)
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            if _try_flock(fd, fcntl.LOCK_EX):
                self.exclusive = True
                os.ftruncate(fd, 0)  # the lines of earlier holders, all gone
            elif not self.shared or not self._share(fd):
                raise OutputDirInUse(self._in_use_message(), file=self.directory)
            os.lseek(fd, 0, os.SEEK_END)
            os.write(fd, (json.dumps(_holder("worker" if self.shared else "run")) + "\n").encode())
        except BaseException:
            os.close(fd)  # closing releases any lock taken above
            raise
        self._fd = fd
        return self

    def _share(self, fd: int) -> bool:
        """Take the lock shared; while its exclusive holder is a worker cleaning up before it shares (or one
        whose line is not written yet), wait for it rather than refuse (workers often start together)."""
        deadline = time.monotonic() + self.wait_s
        while not _try_flock(fd, fcntl.LOCK_SH):
            holder = read_holder(self.path)
            if (holder is not None and holder.get("role") != "worker") or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def downgrade(self) -> None:
        """A worker that held the lock exclusively (to clean up) now shares it with other workers. flock's
        conversion is not atomic: a run may take the lock in between, and then this worker is refused."""
        if self._fd is not None and self.shared and self.exclusive:
            self.exclusive = False
            if not _try_flock(self._fd, fcntl.LOCK_SH):
                message = self._in_use_message()
                self.release()
                raise OutputDirInUse(message, file=self.directory)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
            self.exclusive = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _in_use_message(self) -> str:
        holder = read_holder(self.path)
        if holder is None:
            who = "another negbench process"
        else:
            who = (
                f"negbench {holder.get('role', 'run')} pid {holder.get('pid', '?')} on host "
                f"{holder.get('host', '?')} since {holder.get('since', '?')}"
            )
        return (
            f"output directory is in use by {who}; to run several processes on one suite use "
            f"`negbench worker` with a shared storage"
        )


def _try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _holder(role: str) -> dict[str, object]:
    return {
        "role": role,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "since": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def read_holder(path: Path) -> dict | None:
    """The newest holder line of a lock file (for messages), or None when it has none readable."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def remove_stale_temporaries(output_dir: str | Path, cache_dir: str | Path | None = None) -> list[Path]:
    """Delete the temporaries a killed run left in ``output_dir`` (and in ``cache_dir`` when it lies inside
    it; a cache elsewhere may be shared with other output directories). Call only with the lock held
    exclusively. Returns what was removed."""
    output_dir = Path(output_dir)
    removed: list[Path] = []
    if not output_dir.is_dir():
        return removed
    for entry in output_dir.iterdir():
        if entry.is_dir() and not entry.is_symlink() and STALE_DIRS.match(entry.name):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        elif entry.is_file() and STALE_FILES.match(entry.name):
            entry.unlink(missing_ok=True)
            removed.append(entry)
    if cache_dir is not None:
        cache = Path(cache_dir).resolve()
        if cache.is_dir() and cache.is_relative_to(output_dir.resolve()):
            for entry in cache.iterdir():
                if entry.is_file() and STALE_CACHE_FILES.match(entry.name):
                    entry.unlink(missing_ok=True)
                    removed.append(entry)
    return removed


def remove_temporaries_of(output_dir: str | Path, owner: ProcessIdentity) -> list[Path]:
    """Delete the temporary directories in ``output_dir`` made by ``owner``, a process the caller knows is dead
    (a crashed job process, a killed worker); others' are left alone, and so is a directory whose owner file says
    it is the same host and pid but another start time or pid namespace (another process). Returns what was
    removed."""
    removed: list[Path] = []
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return removed
    for entry in output_dir.iterdir():
        if not (entry.is_dir() and not entry.is_symlink() and STALE_DIRS.match(entry.name)):
            continue
        try:
            marked = json.loads((entry / OWNER_FILE).read_text(encoding="utf-8"))
            made_by = ProcessIdentity(
                str(marked["host"]), int(marked["pid"]), marked.get("started"), marked.get("pidns")
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if made_by.same_as(owner):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
