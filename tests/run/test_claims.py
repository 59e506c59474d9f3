"""Claims: one holder per unit, heartbeats keep it, a silent holder's claim is taken over, done is final."""

from __future__ import annotations

import dataclasses
import os
import socket
import time

import sqlalchemy as sa

from negbench._io import ProcessIdentity
from negbench.run.claims import ClaimBoard, owner_process, worker_id


def boards(tmp_path, **kw):
    url = f"sqlite:///{tmp_path / 'claims.db'}"
    return ClaimBoard(url, owner="a", **kw), ClaimBoard(url, owner="b", **kw)


def test_only_one_worker_gets_a_unit(tmp_path):
    a, b = boards(tmp_path, grace_s=60)
    assert a.claim("u1") and not b.claim("u1")
    assert b.claim("u2")
    a.done("u1")
    assert not b.claim("u1")  # done units are never claimed again
    assert a.get("u1").state == "done" and a.get("u2").owner == "b"


def test_silent_holder_is_taken_over_but_a_live_one_is_not(tmp_path):
    a, b = boards(tmp_path, heartbeat_s=0.05, grace_s=0.5)
    a.start()
    assert a.claim("live")
    time.sleep(0.8)
    assert not b.claim("live")  # a keeps beating
    a.stop()  # a dies: no more heartbeats
    time.sleep(0.8)
    assert b.claim("live")
    claim = b.get("live")
    assert claim.owner == "b" and claim.attempts == 2


def test_release_frees_at_once(tmp_path):
    a, b = boards(tmp_path)
    assert a.claim("u")
    a.release("u")
    assert b.claim("u")
    assert [c.key for c in b.with_prefix("u")] == ["u"]


def test_a_takeover_names_the_dead_holder_and_a_free_claim_names_none(tmp_path):
    a, b = boards(tmp_path, heartbeat_s=0.05, grace_s=0.3)
    taken = a.claim("u")
    assert taken is not None and taken.from_owner is None
    time.sleep(0.5)  # a never beats: silent
    taken = b.claim("u")
    assert taken is not None and taken.from_owner == "a"
    assert b.claim("v").from_owner is None


def test_owner_process_parses_a_worker_id():
    me = owner_process(worker_id())
    assert me.host == socket.gethostname() and me.pid == os.getpid()
    assert owner_process("a") is None and owner_process("host:x:1") is None


def test_a_worker_id_names_its_process_precisely_enough_to_tell_a_reused_pid(tmp_path):
    """A survivor used to judge a dead worker by host and pid alone: a live process reusing the pid (or pid 1
    in another container with the same host name) had its directories deleted."""
    from negbench._io import is_alive, this_process

    me = owner_process(worker_id())
    assert me == this_process() and is_alive(me) is True
    assert is_alive(dataclasses.replace(me, started=me.started + 1)) is False  # the pid, reused by another
    assert is_alive(dataclasses.replace(me, pidns=(me.pidns or 0) + 1)) is None  # another namespace: unknown
    assert is_alive(dataclasses.replace(me, host="elsewhere")) is None
    assert owner_process("host:with:colons:12:345:678:abcdef") == ProcessIdentity("host:with:colons", 12, 345, 678)
    assert owner_process("o'brien:12:abcdef") == ProcessIdentity("o'brien", 12)  # the older form


def test_a_failed_heartbeat_is_retried_instead_of_ending_the_thread(tmp_path, monkeypatch):
    """One 'database is locked' used to kill the heartbeat thread for good: the live worker's claims went
    stale and another worker took them over (and, since then, cleaned up after it)."""
    a, b = boards(tmp_path, heartbeat_s=0.05, grace_s=0.6)
    assert a.claim("u")
    real_begin, failures = a.engine.begin, []

    def flaky_begin(*args, **kwargs):
        if len(failures) < 3:
            failures.append(1)
            raise sa.exc.OperationalError("UPDATE", {}, Exception("database is locked"))
        return real_begin(*args, **kwargs)

    monkeypatch.setattr(a.engine, "begin", flaky_begin)
    a.start()
    time.sleep(1.0)
    assert len(failures) == 3 and a._thread.is_alive()
    assert b.claim("u") is None  # a's beats resumed: its claim is not stale
    a.stop()


def test_an_exited_process_not_yet_reaped_is_dead():
    """A zombie (exited, its parent not waiting yet) used to count as alive: a killed `--gpus` worker's runs and
    directories stayed until every other worker had ended."""
    import subprocess

    from negbench._io import is_alive, pid_namespace, start_ticks

    child = subprocess.Popen(["sleep", "0.1"])
    me = ProcessIdentity(socket.gethostname(), child.pid, start_ticks(child.pid), pid_namespace())
    time.sleep(0.6)  # exited, not reaped
    assert is_alive(me) is False
    child.wait()
    assert is_alive(me) is False
