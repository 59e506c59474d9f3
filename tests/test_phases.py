"""The start-up phase log (:mod:`negbench._phases`) and the per-job breakdown tests/benchmarks/job_startup.py reads
from it (issue 28)."""

from __future__ import annotations

import json

import pytest

from negbench import _phases as phases
from tests.benchmarks.job_startup import breakdown


def test_phases_are_written_only_when_a_log_is_named(tmp_path, monkeypatch):
    log = tmp_path / "phases.jsonl"
    monkeypatch.delenv(phases.ENV, raising=False)
    with phases.phase("model"):
        phases.mark("child")
    assert not log.exists()
    monkeypatch.setenv(phases.ENV, str(log))
    with phases.job("a job"), phases.phase("job"), phases.phase("model"), phases.phase("model"):
        pass  # a phase nested in one of the same name is counted once
    phases.mark("exit")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["phase"], r["job"]) for r in records] == [("model", "a job"), ("job", "a job"), ("exit", None)]
    model, job, _ = records
    assert job["start"] <= model["start"] <= model["end"] <= job["end"]


def _write(path, *records: dict) -> None:
    path.write_text("".join(json.dumps({"job": None, **r}) + "\n" for r in records))


def test_the_breakdown_counts_a_nested_phase_in_the_inner_one_only(tmp_path):
    log = tmp_path / "phases.jsonl"
    _write(
        log,
        {"phase": "tracking", "start": 0.0, "end": 2.0, "pid": 1},  # the suite's own, outside any job
        {"phase": "spawn", "start": 3.0, "end": 3.5, "pid": 1, "job": "j", "child": 7},
        {"phase": "child", "start": 4.0, "end": 4.0, "pid": 7},
        {"phase": "imports", "start": 4.0, "end": 4.5, "pid": 7},
        {"phase": "imports", "start": 4.6, "end": 5.0, "pid": 7},  # MLflow's, inside the tracking set-up
        {"phase": "tracking", "start": 4.5, "end": 5.5, "pid": 7},
        {"phase": "model", "start": 6.0, "end": 7.0, "pid": 7, "job": "j"},
        {"phase": "job", "start": 5.5, "end": 10.0, "pid": 7, "job": "j"},
        {"phase": "exit", "start": 10.0, "end": 10.0, "pid": 7},
        {"phase": "joined", "start": 10.25, "end": 10.25, "pid": 1, "job": "j", "child": 7},
    )
    jobs, outside = breakdown(log)
    row = {k: round(v, 6) for k, v in jobs["j"].items() if v}
    assert row == {
        "start": 1.0,
        "imports": 0.9,
        "tracking": 0.6,
        "model": 1.0,
        "work": 3.5,
        "exit": 0.25,
        "total": 7.25,
    }
    assert outside == {"tracking": 2.0}


def test_the_breakdown_of_jobs_run_in_the_suite_process(tmp_path):
    log = tmp_path / "phases.jsonl"
    _write(
        log,
        {"phase": "model", "start": 1.0, "end": 1.5, "pid": 1, "job": "a"},
        {"phase": "job", "start": 0.0, "end": 4.0, "pid": 1, "job": "a"},
        {"phase": "job", "start": 4.0, "end": 5.0, "pid": 1, "job": "b"},
    )
    jobs, _ = breakdown(log)
    assert (jobs["a"]["work"], jobs["a"]["model"], jobs["a"]["total"]) == (3.5, 0.5, 4.0)
    assert jobs["b"]["total"] == pytest.approx(1.0)
