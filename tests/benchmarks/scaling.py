"""How negbench's cost grows with the corpus: wall time and peak memory per stage on synthetic BEIR corpora.

    python tests/benchmarks/scaling.py --sizes 10000 100000 1000000 --out scaling.md
    python tests/benchmarks/scaling.py --sizes 10000 100000 1000000 --write-docs   # docs/benchmarks.md

For each size it writes (streamed) a synthetic BEIR directory (``corpus.jsonl``, ``queries.jsonl``,
``qrels/train.tsv``, ``qrels/test.tsv``) of documents of 50 to 150 words drawn from a Zipf vocabulary with
topical words mixed in, and a fixed number of queries (half train, half test: the corpus is what grows), each
made of rare and common words of the one document it judges relevant. Then it measures these stages, each in
a fresh Python process (so one stage's memory never counts in another's):

- ``fingerprint``: :func:`negbench.data.beir.file_digest` of the dataset files (what the fingerprint hashes);
- ``load``: :func:`negbench.data.dataset.load_dataset` (reading, splits, the fingerprint);
- ``bm25``: :meth:`MiningServices.bm25_topk` of the train and dev queries (bm25s tokenising, indexing, top-k);
- ``dense``: :meth:`MiningServices.dense_topk` of the same queries (encoding the corpus and the queries with a
  tiny random encoder, exact top-k, the on-disk cache write);
- ``search``: the exact top-k alone (:func:`negbench.core.search.exact_topk`, embeddings in memory);
- ``evaluate``: :func:`negbench.evaluation.retrieval.evaluate` of the test queries (encoding, exact search,
  pytrec_eval).

A stage's peak RSS is the high-water mark of its process while the stage ran (``getrusage`` when the stage
raised it, else the largest RSS a 10 ms sampler saw), what the process held before it (the loaded dataset, the
model) included; ``+MB`` is that peak less the RSS at the stage's start. Stages after ``load`` load the dataset
first, untimed. Torch runs on ``--threads`` threads (default 1, as the micro-benchmarks do).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import itertools
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = ("fingerprint", "load", "bm25", "dense", "search", "evaluate")
# the stages each worker process measures (``search`` reuses the embeddings ``dense`` computed)
WORKERS = {
    "fingerprint": ("fingerprint",),
    "load": ("load",),
    "bm25": ("bm25",),
    "dense": ("dense", "search"),
    "evaluate": ("evaluate",),
}
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"
REPO = Path(__file__).resolve().parents[2]
VOCAB = 20_000  # pseudo-words; the first ones are English stopwords (bm25s drops them)
TOPICS, TOPIC_WORDS, TOPICAL = 500, 40, 0.3  # topics, words per topic, share of a document's words from its topic
STOPWORDS = ["the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "with", "was", "on", "be", "by"]
BLOCK = 5_000  # documents generated at a time


# ------------------------------------------------------------------------------------------ data


def vocabulary(seed: int) -> list[str]:
    """``VOCAB`` distinct lower-case pseudo-words (stopwords first), the same for a seed on every machine."""
    rng = np.random.default_rng([seed, 1])
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["qu", "ch", "th", "sh"]
    words, seen = list(STOPWORDS), set(STOPWORDS)
    while len(words) < VOCAB:
        word = "".join(rng.choice(syllables, size=int(rng.integers(2, 5))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def write_corpus(root: Path, n_docs: int, n_queries: int, seed: int) -> Path:
    """Write a synthetic BEIR directory of ``n_docs`` documents and ``n_queries`` queries (half train, half test),
    streaming the corpus in blocks; each query judges one document relevant."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    words = np.array(vocabulary(seed))
    rank = np.arange(1, VOCAB + 1, dtype=np.float64)
    cdf = np.cumsum(1.0 / rank**1.07)
    cdf /= cdf[-1]
    rng = np.random.default_rng([seed, 2])
    topic_words = rng.integers(len(STOPWORDS), VOCAB, size=(TOPICS, TOPIC_WORDS))
    targets = rng.choice(n_docs, size=n_queries, replace=False)
    query_of = {int(doc): q for q, doc in enumerate(targets)}
    queries: dict[int, str] = {}
    with (root / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for start in range(0, n_docs, BLOCK):
            size = min(BLOCK, n_docs - start)
            lengths = rng.integers(50, 151, size=size)
            title_lengths = rng.integers(3, 9, size=size)
            total = int(lengths.sum() + title_lengths.sum())
            idx = np.minimum(np.searchsorted(cdf, rng.random(total)), VOCAB - 1)
            topic = np.repeat(rng.integers(TOPICS, size=size), lengths + title_lengths)
            topical = rng.random(total) < TOPICAL
            idx[topical] = topic_words[topic[topical], rng.integers(TOPIC_WORDS, size=int(topical.sum()))]
            tokens = words[idx].tolist()
            pos = 0
            lines = []
            for i in range(size):
                t, n = int(title_lengths[i]), int(lengths[i])
                title, text = " ".join(tokens[pos : pos + t]), " ".join(tokens[pos + t : pos + t + n])
                doc = start + i
                if doc in query_of:
                    queries[query_of[doc]] = _query(idx[pos : pos + t + n], words, rng)
                pos += t + n
                lines.append(json.dumps({"_id": f"d{doc}", "title": title, "text": text}) + "\n")
            fh.writelines(lines)
    half = n_queries // 2
    with (root / "queries.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"_id": f"q{q}", "text": queries[q]}) + "\n" for q in range(n_queries))
    for split, qs in (("train", range(half)), ("test", range(half, n_queries))):
        with (root / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            fh.writelines(f"q{q}\td{int(targets[q])}\t1\n" for q in qs)
    return root


def _query(doc_words: np.ndarray, words: np.ndarray, rng: np.random.Generator) -> str:
    """A query for a document: its 3 rarest distinct words and 2 to 5 of its other words, shuffled."""
    distinct = np.unique(doc_words)
    rare = distinct[-3:]
    common = rng.choice(doc_words, size=int(rng.integers(2, 6)))
    picked = np.concatenate([rare, common])
    rng.shuffle(picked)
    return " ".join(words[picked].tolist())


# ------------------------------------------------------------------------------------- measuring


def _hwm_mb() -> float:
    """This process's peak RSS so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def measure(name: str, fn, out: dict) -> object:
    """Run ``fn`` and record its wall time, peak RSS (MB) and the RSS it added over its start under ``name``."""
    from negbench.run.measure import PeakMemory

    gc.collect()
    hwm_before = _hwm_mb()
    with PeakMemory(interval_s=0.01) as mem:
        start_rss = mem.peak_rss_mb
        began = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - began
    hwm_after = _hwm_mb()
    peak = hwm_after if hwm_after > hwm_before else mem.peak_rss_mb
    out[name] = {"seconds": seconds, "peak_mb": peak, "added_mb": max(0.0, peak - start_rss)}
    return result


def worker(args: argparse.Namespace) -> None:
    """One process, one stage (and the sub-stages measured after it): results as JSON to ``--result``."""
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    from negbench.config.suite import DatasetConfig, ModelConfig
    from negbench.core.mining import MiningServices
    from negbench.core.models import load_model, model_fingerprint
    from negbench.core.search import exact_topk
    from negbench.data.beir import file_digest
    from negbench.data.dataset import load_dataset
    from negbench.evaluation.retrieval import evaluate

    out: dict = {}
    root, cfg = Path(args.data), DatasetConfig(source=args.data)
    model_cfg = ModelConfig(spec=args.model, max_seq_length=args.max_seq_length, batch_size=64)
    cache = Path(tempfile.mkdtemp(prefix="negbench-scaling-cache-"))
    try:
        if args.worker == "fingerprint":
            qrels = sorted(p for p in (root / "qrels").glob("*.tsv") if p.is_file())
            measure("fingerprint", lambda: file_digest([root / "corpus.jsonl", root / "queries.jsonl", *qrels]), out)
        elif args.worker == "load":
            measure("load", lambda: load_dataset(cfg), out)
        else:
            dataset = load_dataset(cfg)
            qids = sorted({*dataset.train, *dataset.dev})
            out["queries"] = len(qids)
            if args.worker == "bm25":
                services = MiningServices(dataset, lambda: None, "no-model", cache)
                _, idx = measure("bm25", lambda: services.bm25_topk(qids, args.k), out)
                judged = {**dataset.train, **dataset.dev}  # a sanity check of the corpus: BM25 finds the answers
                found = [any(dataset.corpus.ids[i] in judged[q] for i in row) for q, row in zip(qids, idx, strict=True)]
                out["bm25"]["quality"] = f"recall@{args.k} {np.mean(found):.3f}"
            elif args.worker == "dense":
                fingerprint = model_fingerprint(args.model, args.max_seq_length)
                services = MiningServices(dataset, lambda: load_model(model_cfg, "cpu"), fingerprint, cache)
                _ = services.base_model  # loaded untimed
                measure("dense", lambda: services.dense_topk(qids, args.k), out)
                q, d = services.query_embeddings(qids), services.corpus_embeddings()
                measure("search", lambda: exact_topk(q, d, args.k), out)
            elif args.worker == "evaluate":
                model, test = load_model(model_cfg, "cpu"), dataset.test()
                out["queries"] = len(test)
                result = measure(
                    "evaluate",
                    lambda: evaluate(model, dataset.eval_corpus, dataset.queries, test, ["ndcg@10", "recall@100"]),
                    out,
                )
                out["evaluate"]["quality"] = f"ndcg@10 {result.metrics['ndcg@10']:.3f} (random encoder)"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    Path(args.result).write_text(json.dumps(out), encoding="utf-8")


def run_worker(stage: str, data: Path, model: Path, args: argparse.Namespace) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result = Path(fh.name)
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", stage, "--data", str(data)]
    command += ["--model", str(model), "--result", str(result), "--k", str(args.k), "--threads", str(args.threads)]
    command += ["--max-seq-length", str(args.max_seq_length)]
    try:
        subprocess.run(command, check=True)
        return json.loads(result.read_text(encoding="utf-8"))
    finally:
        result.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------- report


def growth(rows: dict[int, dict], stage: str, key: str = "seconds") -> list[float | None]:
    """log(value ratio) / log(size ratio) between consecutive sizes (None where a value is missing or zero)."""
    sizes = sorted(rows)
    out: list[float | None] = []
    for a, b in itertools.pairwise(sizes):
        va, vb = rows[a].get(stage, {}).get(key), rows[b].get(stage, {}).get(key)
        out.append(math.log(vb / va) / math.log(b / a) if va and vb else None)
    return out


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        memory = f", {kb / 2**20:.0f} GB RAM"
    return (
        f"{os.cpu_count()} CPUs ({cpu}){memory}, Python {platform.python_version()}, torch {torch.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


def render(rows: dict[int, dict], args: argparse.Namespace, n_queries: int) -> str:
    sizes = sorted(rows)
    stages = [s for s in STAGES if any(s in rows[n] for n in sizes)]
    lines = [
        f"Measured {dt.date.today().isoformat()} on {machine()}; torch threads: {args.threads}; seed {args.seed}.",
        f"{n_queries:,} queries at every size (mining searches the train and dev half, evaluation the test half), "
        f"top-{args.k}; tiny random encoder (hidden {args.dim}, {args.layers} layers, max_seq_length "
        f"{args.max_seq_length}). Each cell: seconds / peak RSS MB (RSS added by the stage).",
        "",
        "| documents | " + " | ".join(stages) + " |",
        "|---:|" + "---:|" * len(stages),
    ]
    for n in sizes:
        cells = []
        for s in stages:
            m = rows[n].get(s)
            cells.append("—" if m is None else f"{m['seconds']:.2f} s / {m['peak_mb']:.0f} MB (+{m['added_mb']:.0f})")
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    if len(sizes) > 1:
        steps = [f"{a:,} → {b:,}" for a, b in itertools.pairwise(sizes)]
        lines += ["", "Growth exponent (log time ratio / log size ratio; 1 is linear; memory: of the RSS added):", ""]
        lines += [
            "| stage | " + " | ".join(f"time {s}" for s in steps) + " | " + " | ".join(f"memory {s}" for s in steps)
        ]
        lines[-1] += " |"
        lines.append("|---|" + "---:|" * (2 * len(steps)))
        fastest, worst = None, -math.inf
        for s in stages:
            times, mems = growth(rows, s), growth(rows, s, "added_mb")
            fmt = ["—" if g is None else f"{g:.2f}" for g in [*times, *mems]]
            lines.append(f"| {s} | " + " | ".join(fmt) + " |")
            if times[-1] is not None and times[-1] > worst:
                fastest, worst = s, times[-1]
        if fastest is not None:
            lines += ["", f"Fastest-growing stage ({steps[-1]}): **{fastest}** (time exponent {worst:.2f})."]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, table: str) -> None:
    """Replace what lies between the scaling markers of ``path`` with ``table``."""
    text = path.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"{path}: expected one {BEGIN} … {END} section")
    path.write_text(pattern.sub(lambda _: f"{BEGIN}\n\n{table}\n{END}", text), encoding="utf-8")


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=2_000, help="queries at every size (half train, half test)")
    parser.add_argument("--stages", nargs="+", choices=list(WORKERS), default=list(WORKERS))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dim", type=int, default=32, help="encoder hidden size")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=32)
    parser.add_argument("--work-dir", type=Path, help="where corpora go (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpora and reuse them")
    parser.add_argument("--out", type=Path, help="write the markdown table to this file")
    parser.add_argument(
        "--write-docs",
        type=Path,
        nargs="?",
        const=REPO / "docs" / "benchmarks.md",
        help=f"write the table between {BEGIN} and {END} of this file (default: docs/benchmarks.md)",
    )
    # one stage in this process (what the driver starts)
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="negbench-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: dict[int, dict] = {}
    try:
        from negbench.testing import build_tiny_encoder

        model = work / f"encoder-{args.dim}x{args.layers}-seed{args.seed}"
        if not (model / "modules.json").is_file():
            build_tiny_encoder(model, [" ".join(vocabulary(args.seed))], dim=args.dim, layers=args.layers)
        for n in sorted(args.sizes):
            data = work / f"beir-{n}-q{args.queries}-seed{args.seed}"
            if not (data / "qrels" / "test.tsv").is_file():
                began = time.perf_counter()
                write_corpus(data, n, args.queries, args.seed)
                print(f"[{n:,}] wrote the corpus in {time.perf_counter() - began:.1f} s", file=sys.stderr, flush=True)
            rows[n] = {}
            for worker_name in args.stages:
                result = run_worker(worker_name, data, model, args)
                rows[n].update({s: result[s] for s in WORKERS[worker_name]})
                for s in WORKERS[worker_name]:
                    m = result[s]
                    print(
                        f"[{n:,}] {s}: {m['seconds']:.2f} s, peak {m['peak_mb']:.0f} MB (+{m['added_mb']:.0f})"
                        + (f"; {m['quality']}" if "quality" in m else ""),
                        file=sys.stderr,
                        flush=True,
                    )
            if not args.keep:
                shutil.rmtree(data, ignore_errors=True)
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    table = render(rows, args, args.queries)
    print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    if args.write_docs:
        write_docs(args.write_docs, table)


if __name__ == "__main__":
    main()
