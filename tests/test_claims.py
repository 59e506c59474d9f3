"""Claims: one holder per unit, heartbeats keep it, a silent holder's claim is taken over, done is final."""

from __future__ import annotations

import os
import socket
import time

from negbench.claims import ClaimBoard, owner_process, worker_id


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
    host, pid = owner_process(worker_id())
    assert host == socket.gethostname() and pid == os.getpid()
    assert owner_process("a") is None and owner_process("host:x:1") is None
