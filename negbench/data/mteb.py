"""MTEB data: ``mteb:<Task>`` dataset sources, and local BEIR directories as MTEB tasks.

Three services, each usable on its own:

* :func:`materialize_mteb_task` loads a registered MTEB retrieval task with mteb's own loader (from the Hugging
  Face hub, or from the local ``datasets`` cache when offline) and writes it as a BEIR-layout directory, so the
  rest of negbench reads it like any other dataset.
* :class:`BeirDirectoryTask` is an MTEB retrieval task whose corpus, queries and qrels come from a BEIR-layout
  directory on disk instead of the hub, so a local dataset runs through mteb's evaluator unchanged.
* :func:`resolve_mteb_task` and :func:`check_mteb_tasks` name the tasks a suite evaluates on (scoring is
  :mod:`negbench.evaluation.mteb`'s).

Importing this module imports mteb (several seconds); import it lazily where ``mteb:`` sources or
``evaluation.mteb_tasks`` are used.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mteb
from datasets import Dataset
from mteb.abstasks.abstask import AbsTask
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from negbench.data.beir import file_digest, read_corpus, read_qrels, read_queries
from negbench.data.download import cache_root, is_beir_dir
from negbench.errors import DataError

if TYPE_CHECKING:
    pass

__all__ = [
    "EXTRA_SPLITS",
    "MARKER",
    "SCHEME",
    "BeirDirectoryTask",
    "check_mteb_tasks",
    "default_dest_root",
    "get_mteb_task",
    "load_task_data",
    "materialize_mteb_task",
    "parse_task_name",
    "resolve_mteb_task",
]

log = logging.getLogger(__name__)

SCHEME = "mteb:"
MARKER = "mteb_task.json"
# Splits copied besides a task's evaluation splits when its dataset has them (training data for negbench).
EXTRA_SPLITS = ("train", "dev", "validation")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_dest_root() -> Path:
    """Where materialised MTEB tasks are cached: ``$NEGBENCH_CACHE_DIR/mteb`` (``~/.cache/negbench/mteb``)."""
    return cache_root() / "mteb"


# ------------------------------------------------------------------------------------ registry tasks


def parse_task_name(name: str) -> tuple[str, str | None]:
    """``"SciFact"`` → ("SciFact", None); ``"mteb:MIRACLRetrieval/de"`` → ("MIRACLRetrieval", "de")."""
    name = name.strip().removeprefix(SCHEME)
    task, _, subset = name.partition("/")
    if not task:
        raise DataError("empty MTEB task name: use mteb:<TaskName> (e.g. mteb:SciFact)", field="source")
    return task, subset or None


def get_mteb_task(name: str, *, field: str = "source") -> AbsTask:
    """A fresh instance of the registered MTEB task ``name``; an unknown name raises a one-line DataError."""
    try:
        return mteb.get_task(name)
    except KeyError as exc:
        hint = str(exc.args[0] if exc.args else exc).removeprefix("KeyError: ")
        raise DataError(f"unknown MTEB task {name!r} ({hint})", field=field) from None


def _offline() -> bool:
    import datasets.config

    flags = [os.environ.get(v, "0").lower() for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")]
    return any(f in {"1", "true", "yes", "on"} for f in flags) or bool(datasets.config.HF_HUB_OFFLINE)


def load_task_data(task: AbsTask, *, field: str = "source") -> None:
    """Load ``task``'s data with mteb's own loader; failures become one-line DataErrors naming the task."""
    if task.data_loaded:
        return
    name = task.metadata.name
    dataset = task.metadata.dataset
    where = f"{dataset['path']}@{str(dataset.get('revision', ''))[:12]}"
    try:
        task.load_data()
    except Exception as exc:  # datasets raises ConnectionError, FileNotFoundError, ValueError … for missing data
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        if _offline():
            import datasets.config

            message = (
                f"MTEB task {name!r}: its dataset {where} is not (fully) in the local Hugging Face datasets "
                f"cache {datasets.config.HF_DATASETS_CACHE} and offline mode is on (HF_HUB_OFFLINE / "
                f"HF_DATASETS_OFFLINE); run once online to cache it ({detail})"
            )
        else:
            message = f"MTEB task {name!r}: cannot load its dataset {where} ({detail})"
        raise DataError(message, field=field) from None


def _qrels_splits(task: AbsTaskRetrieval, subset: str) -> list[str]:
    """Splits of the task's qrels on the hub/cache, for tasks using mteb's standard retrieval loader."""
    if type(task).load_data is not AbsTaskRetrieval.load_data:
        return []  # a custom loader: only its declared evaluation splits are known to load
    from datasets import get_dataset_config_names, get_dataset_split_names

    path, revision = task.metadata.dataset["path"], task.metadata.dataset["revision"]
    try:
        configs = get_dataset_config_names(path, revision)
        if subset != "default":
            config = f"{subset}-qrels"
        else:
            config = "default" if "default" in configs or "qrels" not in configs else "qrels"
        return list(get_dataset_split_names(path, revision=revision, config_name=config))
    except Exception as exc:  # only extra splits are at stake; the evaluation splits load below or fail loudly
        log.info("%s: cannot list qrels splits (%s); copying the evaluation splits only", task.metadata.name, exc)
        return []


def _rows_text(value: Any, what: str, task: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(
            f"MTEB task {task!r}: {what} is not plain text ({type(value).__name__}); only text "
            "retrieval tasks can be a negbench dataset",
            field="source",
        )
    return value


def _write_beir(dest: Path, task: AbsTaskRetrieval, subset: str, splits: list[str]) -> None:
    """Write the loaded splits of ``task`` (one subset) as corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
    name = task.metadata.name
    (dest / "qrels").mkdir(parents=True)
    seen_docs: set[str] = set()
    seen_queries: set[str] = set()
    with (
        (dest / "corpus.jsonl").open("w", encoding="utf-8") as corpus_fh,
        (dest / "queries.jsonl").open("w", encoding="utf-8") as queries_fh,
    ):
        for split in splits:
            data = task.dataset[subset][split]
            corpus = data["corpus"]
            titles = corpus["title"] if "title" in corpus.column_names else [None] * len(corpus)
            for doc_id, title, text in zip(corpus["id"], titles, corpus["text"], strict=True):
                if str(doc_id) in seen_docs:
                    continue
                seen_docs.add(str(doc_id))
                row = {
                    "_id": str(doc_id),
                    "title": _rows_text(title, "a document title", name),
                    "text": _rows_text(text, "a document", name),
                }
                corpus_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            queries = data["queries"]
            for qid, text in zip(queries["id"], queries["text"], strict=True):
                if str(qid) in seen_queries:
                    continue
                seen_queries.add(str(qid))
                queries_fh.write(
                    json.dumps({"_id": str(qid), "text": _rows_text(text, "a query", name)}, ensure_ascii=False) + "\n"
                )
            with (dest / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as fh:
                fh.write("query-id\tcorpus-id\tscore\n")
                for qid, docs in data["relevant_docs"].items():
                    fh.writelines(f"{qid}\t{doc_id}\t{int(score)}\n" for doc_id, score in docs.items())


def materialize_mteb_task(name: str, dest_root: str | Path | None = None, *, subset: str | None = None) -> Path:
    """Load MTEB retrieval task ``name`` via mteb and write it as a BEIR directory under ``dest_root``.

    ``name`` may carry the ``mteb:`` prefix and a ``/<subset>`` suffix (needed for multilingual tasks). The
    task's evaluation splits are written, plus ``train``/``dev``/``validation`` qrels when its dataset has them.
    The directory is reused while the task's dataset revision is unchanged. Returns the directory.
    """
    task_name, parsed_subset = parse_task_name(name)
    subset = subset or parsed_subset
    task = get_mteb_task(task_name)
    if not isinstance(task, AbsTaskRetrieval):
        raise DataError(
            f"MTEB task {task_name!r} is a {task.metadata.type} task; only retrieval tasks can be a negbench dataset",
            field="source",
        )
    if task.metadata.modalities != ["text"]:
        raise DataError(
            f"MTEB task {task_name!r} has modalities {task.metadata.modalities}; only text retrieval "
            "tasks can be a negbench dataset",
            field="source",
        )
    subsets = list(task.hf_subsets)
    if subset is None:
        if len(subsets) != 1:
            raise DataError(
                f"MTEB task {task_name!r} has {len(subsets)} subsets: name one as "
                f"mteb:{task_name}/<subset>, one of {subsets[:20]}",
                field="source",
            )
        subset = subsets[0]
    elif subset not in subsets:
        raise DataError(
            f"MTEB task {task_name!r} has no subset {subset!r}: choose one of {subsets[:20]}", field="source"
        )

    revision = str(task.metadata.dataset.get("revision", ""))
    dest_root = Path(dest_root) if dest_root is not None else default_dest_root()
    dest = dest_root / (task_name if len(subsets) == 1 else f"{task_name}-{_SAFE.sub('_', subset)}")
    marker = {"task": task_name, "subset": subset, "dataset": task.metadata.dataset["path"], "revision": revision}
    if (dest / MARKER).is_file() and is_beir_dir(dest):
        stored = json.loads((dest / MARKER).read_text(encoding="utf-8"))
        if all(stored.get(k) == v for k, v in marker.items()):
            return dest

    eval_splits = list(task.eval_splits)
    available = _qrels_splits(task, subset)
    splits = eval_splits + [s for s in EXTRA_SPLITS if s in available and s not in eval_splits]
    task.filter_languages(None, hf_subsets=[subset]).filter_eval_splits(splits)
    load_task_data(task)
    task.convert_v1_dataset_format_to_v2(num_proc=None)  # tasks with their own (v1) loaders

    dest_root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest_root))
    try:
        _write_beir(tmp, task, subset, splits)
        (tmp / MARKER).write_text(
            json.dumps({**marker, "splits": splits, "mteb_version": mteb.__version__}, indent=2), encoding="utf-8"
        )
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        task.unload_data()
    log.info("materialised MTEB task %s (%s, splits %s) at %s", task_name, subset, splits, dest)
    return dest


# ------------------------------------------------------------------------------------ local tasks


class _InstanceMetadata:
    """``metadata`` held per instance; ``None`` on the class.

    mteb scans task classes for a class-level ``metadata`` (skipping ``None``), and its ``unload_data()`` drops an
    instance attribute ``metadata`` to fall back on the class's; a data descriptor keeps both working.
    """

    def __get__(self, obj: Any, owner: type | None = None) -> TaskMetadata | None:
        return None if obj is None else obj.__dict__["_metadata"]

    def __set__(self, obj: Any, value: TaskMetadata) -> None:
        obj.__dict__["_metadata"] = value


class BeirDirectoryTask(AbsTaskRetrieval):
    """An MTEB retrieval task read from a BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv).

    Documents are ``title + " " + text`` (as mteb joins them); ids, duplicates and qrels rows naming unknown ids
    are handled exactly as :func:`negbench.data.dataset.load_dataset` handles them. The dataset "revision" recorded in
    MTEB's result JSON is a digest of the directory's files.
    """

    metadata = _InstanceMetadata()  # type: ignore[assignment]

    def __init__(
        self,
        root: str | Path,
        *,
        name: str | None = None,
        split: str = "test",
        ignore_identical_ids: bool = True,
        main_score: str = "ndcg_at_10",
        seed: int = 42,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        if not is_beir_dir(self.root):
            raise DataError(
                f"not a BEIR-layout directory (needs corpus.jsonl and queries.jsonl): {self.root}", field="mteb_tasks"
            )
        qrels = self.root / "qrels" / f"{split}.tsv"
        if not qrels.is_file():
            raise DataError("missing qrels file", file=qrels, field="mteb_tasks")
        files = [self.root / "corpus.jsonl", self.root / "queries.jsonl", qrels]
        self.metadata = TaskMetadata(
            name=name or self.root.name,
            description=f"Local BEIR-layout retrieval dataset at {self.root} (negbench).",
            dataset={"path": str(self.root), "revision": file_digest(files)[:16]},
            type="Retrieval",
            category="t2t",
            modalities=["text"],
            eval_splits=[split],
            eval_langs=["eng-Latn"],
            main_score=main_score,
        )
        self.split = split
        self.ignore_identical_ids = ignore_identical_ids
        super().__init__(seed=seed)

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        """Read the directory into mteb's retrieval format (one ``default`` subset, one split)."""
        if self.data_loaded:
            return
        warnings: Counter = Counter()
        corpus = read_corpus(self.root / "corpus.jsonl", warnings)
        queries = read_queries(self.root / "queries.jsonl", warnings)
        qrels = read_qrels(self.root / "qrels" / f"{self.split}.tsv", corpus.index, queries, warnings)
        for what, count in warnings.items():
            log.warning("%s: %d %s(s) skipped", self.root, count, what)
        qids = sorted(qrels)
        self.dataset = {
            "default": {
                self.split: RetrievalSplitData(
                    corpus=Dataset.from_dict({"id": corpus.ids, "text": corpus.texts}),
                    queries=Dataset.from_dict({"id": qids, "text": [queries[q] for q in qids]}),
                    relevant_docs=qrels,
                    top_ranked=None,
                )
            }
        }
        self.data_loaded = True


def resolve_mteb_task(spec: str, *, ignore_identical_ids: bool = True) -> AbsTask:
    """A task for one ``[evaluation] mteb_tasks`` entry: a BEIR directory path, or an MTEB registry name.

    ``ignore_identical_ids`` applies to local directories only; registry tasks keep mteb's own setting.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return BeirDirectoryTask(path, ignore_identical_ids=ignore_identical_ids)
    if spec.startswith((".", "/", "~")) or ("/" in spec and not spec.startswith(SCHEME) and path.parent.is_dir()):
        raise DataError(f"directory not found: {path}", field="mteb_tasks")
    task_name, subset = parse_task_name(spec)
    task = get_mteb_task(task_name, field="mteb_tasks")
    if subset is not None:
        if subset not in task.hf_subsets:
            raise DataError(f"MTEB task {task_name!r} has no subset {subset!r}", field="mteb_tasks")
        task.filter_languages(None, hf_subsets=[subset])
    return task


# ------------------------------------------------------------------------------------ evaluation


def check_mteb_tasks(tasks: Sequence[str], *, load: bool = True) -> list[str]:
    """Validate ``[evaluation] mteb_tasks`` before any training; returns the MTEB task names.

    Every entry must resolve (one-line DataError otherwise); with ``load`` its data must load too (from the
    hub, or the local cache when offline), so a missing dataset fails the suite up front, not after training.
    """
    names = []
    for spec in tasks:
        task = resolve_mteb_task(spec)
        names.append(task.metadata.name)
        if load:
            load_task_data(task, field="mteb_tasks")
            task.unload_data()
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise DataError(
            f"duplicate MTEB task name(s) {duplicates}: give local directories distinct names", field="mteb_tasks"
        )
    return names
