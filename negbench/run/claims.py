"""Work claims shared by many workers through one SQL database (PostgreSQL, or SQLite on one machine).

A unit of work (an Optuna trial slot, a final seed) is *claimed* by inserting its key; only one worker's
insert succeeds. A claim holder renews its heartbeat from a background thread; a claim whose heartbeat is
older than ``grace_s`` belongs to a dead worker and may be taken over by another (``attempts`` counts
that). A finished unit is marked ``done`` and is never claimed again.

The table lives in the same database as the Optuna studies when ``[tuning] storage`` is a SQL URL, so one
URL is all a cluster needs. Written by hand rather than with a queue library: the units are few and
coarse (minutes each), and one small table in the database the workers already share needs no broker.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from negbench._io import ProcessIdentity, this_process

__all__ = ["Claim", "ClaimBoard", "Taken", "owner_process", "retry_schema_race", "worker_id"]

log = logging.getLogger(__name__)
metadata = sa.MetaData()
claims_table = sa.Table(
    "negbench_claims",
    metadata,
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # running | done
    sa.Column("heartbeat", sa.Float, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
)


@dataclass(frozen=True)
class Claim:
    key: str
    owner: str
    state: str
    heartbeat: float
    attempts: int


@dataclass(frozen=True)
class Taken:
    """A claim just taken; ``from_owner`` is the dead worker it was taken over from (None: it was free)."""

    key: str
    from_owner: str | None


def owner_process(owner: str) -> ProcessIdentity | None:
    """The process behind a worker id made by :func:`worker_id` (``host:pid:started:pidns:tag``; ``host:pid:tag``
    from older versions, without start time and namespace), or None when it is not of either form."""
    parts = owner.rsplit(":", 4)
    if len(parts) == 5 and parts[1].isdigit():
        host, pid, started, pidns, _ = parts
        return ProcessIdentity(
            host, int(pid), int(started) if started.isdigit() else None, int(pidns) if pidns.isdigit() else None
        )
    parts = owner.rsplit(":", 2)
    if len(parts) == 3 and parts[0] and parts[1].isdigit():
        return ProcessIdentity(parts[0], int(parts[1]))
    return None


def retry_schema_race(create, attempts: int = 8):
    """Run a schema-creating call, retrying when another worker creates the same tables at the same moment
    (PostgreSQL reports the loser's CREATE TABLE/TYPE as a unique or duplicate-object violation)."""
    import random

    for attempt in range(attempts):
        try:
            return create()
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError, sa.exc.OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random() * 0.8)
    return None


def worker_id() -> str:
    """This process as a claim owner: ``host:pid:started:pidns:tag`` (:class:`negbench._io.ProcessIdentity`, so a
    worker that takes a unit over can tell whether its holder is really gone, and a random tag)."""
    me = this_process()
    return (
        f"{me.host}:{me.pid}:{me.started if me.started is not None else '-'}:"
        f"{me.pidns if me.pidns is not None else '-'}:{uuid.uuid4().hex[:6]}"
    )


class ClaimBoard:
    """Claims on one database URL for one worker (``owner``)."""

    def __init__(self, url: str, *, owner: str | None = None, heartbeat_s: float = 10.0, grace_s: float = 60.0) -> None:
        self.url = url
        self.owner = owner or worker_id()
        self.heartbeat_s = heartbeat_s
        self.grace_s = grace_s
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        retry_schema_race(lambda: metadata.create_all(self.engine, checkfirst=True))
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ heartbeat
    def start(self) -> ClaimBoard:
        self._thread = threading.Thread(target=self._beat, name="negbench-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.engine.dispose()

    def _beat(self) -> None:
        """Renew the held claims every ``heartbeat_s``; a failed renewal (a locked SQLite file, a dropped
        connection) is logged and retried at the next beat instead of ending the thread, which would let the
        claims go stale while this worker still works on them."""
        while not self._stop.wait(self.heartbeat_s):
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        sa.update(claims_table)
                        .where(
                            claims_table.c.key.in_(held),
                            claims_table.c.owner == self.owner,
                            claims_table.c.state == "running",
                        )
                        .values(heartbeat=time.time())
                    )
            except Exception as exc:  # any failure: this thread must outlive it, or the claims go stale
                log.warning("claim heartbeat failed (retrying in %.1f s): %s", self.heartbeat_s, exc)

    # ------------------------------------------------------------------------------ claims
    def claim(self, key: str) -> Taken | None:
        """Take ``key`` if nobody holds it, or if its holder's heartbeat is older than the grace period (then
        :attr:`Taken.from_owner` names the dead holder, whose leftovers the taker cleans up); None if not."""
        now = time.time()
        previous = None
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(claims_table).values(
                        key=key, owner=self.owner, state="running", heartbeat=now, attempts=1
                    )
                )
        except sa.exc.IntegrityError:
            current = self.get(key)
            if current is None or not self.is_stale(current):
                return None
            with self.engine.begin() as conn:  # compare and swap: only if that holder still holds it, silent
                taken = conn.execute(
                    sa.update(claims_table)
                    .where(
                        claims_table.c.key == key,
                        claims_table.c.state == "running",
                        claims_table.c.owner == current.owner,
                        claims_table.c.heartbeat < now - self.grace_s,
                    )
                    .values(owner=self.owner, heartbeat=now, attempts=claims_table.c.attempts + 1)
                ).rowcount
            if taken != 1:
                return None
            previous = current.owner
        with self._lock:
            self._held.add(key)
        return Taken(key, previous)

    def done(self, key: str) -> None:
        with self.engine.begin() as conn:
            marked = conn.execute(
                sa.update(claims_table)
                .where(claims_table.c.key == key, claims_table.c.owner == self.owner)
                .values(state="done", heartbeat=time.time())
            ).rowcount
        if marked != 1:
            log.warning("%s: finished, but another worker had taken it over (this worker's heartbeat went stale)", key)
        with self._lock:
            self._held.discard(key)

    def release(self, key: str) -> None:
        """Give a claim back unfinished (graceful stop): another worker may take it at once."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(claims_table).where(
                    claims_table.c.key == key, claims_table.c.owner == self.owner, claims_table.c.state == "running"
                )
            )
        with self._lock:
            self._held.discard(key)

    def get(self, key: str) -> Claim | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(claims_table).where(claims_table.c.key == key)).first()
        return None if row is None else Claim(*row)

    def with_prefix(self, prefix: str) -> list[Claim]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(claims_table).where(claims_table.c.key.startswith(prefix))).all()
        return [Claim(*row) for row in rows]

    def is_stale(self, claim: Claim) -> bool:
        return claim.state == "running" and claim.heartbeat < time.time() - self.grace_s
