"""Start-up cost of a job process (issue 28): a small suite run with ``isolation = "process"`` and ``"none"``.

A plain script, not a test (run it from the project root; several minutes on a 2-core machine):

    python tests/benchmarks/job_startup.py [--data ../shared/data/scifact] [--out DIR] [--keep]

It writes a suite of five small jobs (a SciFact subset of 200 documents and 64 training queries, two training
steps each; all-MiniLM-L6-v2; in-batch, random, bm25, dense and none), runs ``negbench run`` on it once per
isolation mode, each in a fresh output directory, with ``$NEGBENCH_STARTUP_LOG`` set (:mod:`negbench._phases`),
and prints each job's time by phase and the ratio of the two suites' wall times. Columns (seconds; a phase
nested in another is counted in the inner one only):

- ``start``: from just before the suite process starts the job process until the job process's first line;
- ``imports``: imports in the job process (MLflow's included);
- ``setup``: the job process's runner and its check that negbench's code did not change;
- ``dataset``: loading the dataset; ``tracking``: MLflow (connecting, creating and closing runs);
- ``model``: reading model weights; ``store``: result writes under the store's lock;
- ``work``: the rest of the job (mining, training, evaluation); ``exit``: from the job process's last line until
  the suite process has joined it; ``other``: what no phase covers;
- ``total``: the job, from the suite process's point of view.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLUMNS = ("start", "imports", "setup", "dataset", "tracking", "model", "store", "work", "exit", "other", "total")
STRATEGIES = (
    ("in-batch", ""),
    ("random", ""),
    ("bm25", 'params = { range_min = 0, range_max = 30, sampling = "random" }\n'),
    ("dense", 'params = { range_min = 3, range_max = 30, sampling = "random" }\n'),
    ("none", ""),
)


def suite_text(data: Path, out: Path, isolation: str) -> str:
    blocks = "".join(f'[[strategies]]\nname = "{name}"\n{extra}\n' for name, extra in STRATEGIES)
    return f"""
[suite]
name = "job-startup"
seeds = [0]
output_dir = "{out}"
isolation = "{isolation}"

[[datasets]]
source = "{data}"
name = "scifact-200"
max_corpus = 200
max_train_queries = 64
max_dev_queries = 16
max_test_queries = 16

[[models]]
spec = "sentence-transformers/all-MiniLM-L6-v2"
name = "all-MiniLM-L6-v2"
max_seq_length = 128
batch_size = 64

[training]
epochs = 1
max_steps = 2
batch_size = 16
num_negatives = 1

[evaluation]
metrics = ["ndcg@10", "recall@100"]
curve_points = 0
diagnostics_every = 0

{blocks}"""


def run_suite(data: Path, root: Path, isolation: str) -> tuple[float, Path]:
    """Run the suite in a fresh directory; return its wall time and the phase log."""
    out = root / isolation
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    suite, log = out / "suite.toml", out / "phases.jsonl"
    suite.write_text(suite_text(data, out / "run", isolation))
    env = {**os.environ, "NEGBENCH_STARTUP_LOG": str(log), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "negbench", "run", str(suite), "--no-progress"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"negbench run ({isolation}) failed with {done.returncode}:\n{done.stderr[-4000:]}")
    return wall, log


def exclusive(records: list[dict]) -> dict[str, float]:
    """Seconds by phase name, each phase less the phases nested in it (one process's records)."""
    spans = sorted((r for r in records if r["end"] > r["start"]), key=lambda r: (r["start"], -r["end"]))
    out: dict[str, float] = defaultdict(float)
    stack: list[dict] = []
    for span in spans:
        while stack and stack[-1]["end"] <= span["start"]:
            stack.pop()
        out[span["phase"]] += span["end"] - span["start"]
        if stack:  # nested: taken out of its parent's own time
            out[stack[-1]["phase"]] -= span["end"] - span["start"]
        stack.append(span)
    return out


def breakdown(log: Path) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per job: seconds by column; and the suite process's own phases outside any job."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    spawns = {r["child"]: r for r in records if r["phase"] == "spawn"}
    joins = {r["child"]: r for r in records if r["phase"] == "joined"}
    jobs: dict[str, dict[str, float]] = {}
    if spawns:  # isolation = "process": a job is everything its process wrote
        for pid, spawn in spawns.items():
            own = [r for r in records if r["pid"] == pid]
            first = min(r["end"] for r in own if r["phase"] == "child")
            last = max(r["end"] for r in own if r["phase"] == "exit")
            row = _columns(exclusive(own))
            row["start"] = first - spawn["start"]
            row["exit"] = joins[pid]["end"] - last
            row["total"] = joins[pid]["end"] - spawn["start"]
            row["other"] = row["total"] - sum(row[c] for c in COLUMNS if c not in ("other", "total"))
            jobs[spawn["job"]] = row
        suite_pid = next(iter(spawns.values()))["pid"]
    else:  # isolation = "none": a job is what its run_job wrote in the suite process
        by_job: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            if r["job"] is not None:
                by_job[r["job"]].append(r)
        for name, own in by_job.items():
            row = _columns(exclusive(own))
            row["total"] = max(r["end"] for r in own) - min(r["start"] for r in own)
            row["other"] = row["total"] - sum(row[c] for c in COLUMNS if c not in ("other", "total"))
            jobs[name] = row
        suite_pid = records[0]["pid"] if records else None
    outside = exclusive([r for r in records if r["pid"] == suite_pid and r["job"] is None and r["phase"] != "spawn"])
    return jobs, dict(outside)


def _columns(seconds: dict[str, float]) -> dict[str, float]:
    row = dict.fromkeys(COLUMNS, 0.0)
    for name, value in seconds.items():
        row["work" if name == "job" else name] = row.get("work" if name == "job" else name, 0.0) + value
    return row


def print_table(title: str, wall: float, jobs: dict[str, dict[str, float]], outside: dict[str, float]) -> None:
    print(f"\n{title}: suite wall {wall:.1f} s")
    width = max(len(name) for name in jobs) if jobs else 10
    print(f"{'job':<{width}}  " + " ".join(f"{c:>8}" for c in COLUMNS))
    total = dict.fromkeys(COLUMNS, 0.0)
    for name, row in jobs.items():
        print(f"{name:<{width}}  " + " ".join(f"{row.get(c, 0.0):8.2f}" for c in COLUMNS))
        for c in COLUMNS:
            total[c] += row.get(c, 0.0)
    print(f"{'sum':<{width}}  " + " ".join(f"{total[c]:8.2f}" for c in COLUMNS))
    rest = wall - total["total"]
    print(f"outside the jobs: {rest:.1f} s (suite process start-up, validation, tracking set-up, report)", end="")
    print("; timed there: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(outside.items()) if v > 0.005))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(os.environ.get("NEGBENCH_SCIFACT", REPO.parent / "shared" / "data" / "scifact"))
    parser.add_argument("--data", type=Path, default=default_data, help="SciFact in BEIR layout")
    parser.add_argument("--out", type=Path, default=None, help="where the two suites write (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the output directories")
    parser.add_argument("--modes", nargs="+", default=["process", "none"], choices=["process", "none"])
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        sys.exit(f"no SciFact at {args.data} (--data)")
    root = args.out or Path(tempfile.mkdtemp(prefix="negbench-startup-"))
    walls = {}
    try:
        for mode in args.modes:
            wall, log = run_suite(args.data.resolve(), root.resolve(), mode)
            walls[mode] = wall
            print_table(f'isolation = "{mode}"', wall, *breakdown(log))
    finally:
        if not args.keep and args.out is None:
            shutil.rmtree(root, ignore_errors=True)
    if {"process", "none"} <= walls.keys():
        print(f"\nwall time process / none: {walls['process'] / walls['none']:.2f} (goal: <= 1.3)")


if __name__ == "__main__":
    main()
