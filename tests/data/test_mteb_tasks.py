"""MTEB integration: local BEIR tasks through mteb's evaluator, mteb: sources, cache isolation, offline errors.

Everything runs offline. Registry tasks are served from a throwaway Hugging Face ``datasets`` cache that the
tests seed themselves (or leave empty, for the missing-data errors).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from negbench.config.suite import DatasetConfig, ModelConfig
from negbench.core.models import load_model
from negbench.data.dataset import load_dataset
from negbench.errors import DataError
from negbench.evaluation.retrieval import evaluate

mteb_tasks = pytest.importorskip("negbench.data.mteb")
mteb_eval = pytest.importorskip("negbench.evaluation.mteb")

SCIFACT_REVISION = "d56462d0e63a25450459c4f213e49ffdb866f7f9"  # mteb's SciFact task metadata


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty, offline Hugging Face datasets cache for this test."""
    import datasets.config

    cache = tmp_path / "hf-datasets"
    cache.mkdir()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return cache


def seed_hf_cache(cache: Path, repo: str, revision: str, configs: dict[str, dict[str, list[dict]]]) -> None:
    """Lay out ``configs`` ({config: {split: rows}}) the way ``datasets`` caches a hub dataset it has loaded."""
    from datasets.packaged_modules.json.json import Json

    src = cache.parent / "hf-src"
    src.mkdir(exist_ok=True)
    name = repo.split("/")[-1]
    for config, splits in configs.items():
        files = {}
        for split, rows in splits.items():
            files[split] = str(src / f"{config}-{split}.jsonl")
            Path(files[split]).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        builder = Json(
            cache_dir=str(cache / ".build"), dataset_name=name, config_name=config, data_files=files, hash=revision
        )
        builder.download_and_prepare()
        dest = cache / repo.replace("/", "___") / config / "0.0.0" / revision
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(builder.cache_dir, dest)
    shutil.rmtree(cache / ".build")


def beir_rows(root: Path) -> dict[str, dict[str, list[dict]]]:
    """A BEIR directory as the configs of an mteb hub dataset (corpus, queries, default = qrels)."""

    def jsonl(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    qrels = {}
    for path in sorted((root / "qrels").glob("*.tsv")):
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        qrels[path.stem] = [
            {"query-id": q, "corpus-id": d, "score": int(s)} for q, d, s in (line.split("\t") for line in lines)
        ]
    return {
        "corpus": {"corpus": jsonl(root / "corpus.jsonl")},
        "queries": {"queries": jsonl(root / "queries.jsonl")},
        "default": qrels,
    }


def perturbed(model, scale: float, seed: int):
    """A deep copy of ``model`` with Gaussian noise on every weight (a stand-in for a fine-tuned copy)."""
    import copy

    clone = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in clone.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * scale)
    return clone


# ------------------------------------------------------------------------------------------ local tasks


def test_local_task_main_score_equals_negbench_evaluate(tiny, toy_data, tmp_path):
    dataset = load_dataset(DatasetConfig(source=str(toy_data)), require_train=False)
    ours = evaluate(tiny, dataset.corpus, dataset.queries, dataset.test(), ["ndcg@10"]).metrics["ndcg@10"]

    scores = mteb_eval.evaluate_with_mteb(
        tiny, [str(toy_data)], run_dir=tmp_path, model_name="negbench/tiny", revision="h-seed0"
    )

    assert set(scores) == {toy_data.name}
    assert scores[toy_data.name] == pytest.approx(ours, abs=1e-3)
    result_json = mteb_eval.mteb_results_dir(tmp_path, "negbench/tiny", "h-seed0") / f"{toy_data.name}.json"
    stored = json.loads(result_json.read_text())
    assert stored["scores"]["test"][0]["main_score"] == pytest.approx(ours, abs=1e-3)
    meta = json.loads((result_json.parent / "model_meta.json").read_text())
    assert (meta["name"], meta["revision"]) == ("negbench/tiny", "h-seed0")


def test_local_task_loads_like_negbench(toy_data):
    task = mteb_tasks.BeirDirectoryTask(toy_data)
    task.load_data()
    split = task.dataset["default"]["test"]
    dataset = load_dataset(DatasetConfig(source=str(toy_data)), require_train=False)
    assert split["relevant_docs"] == dataset.test()
    assert list(split["corpus"]["text"]) == dataset.corpus.texts
    assert task.metadata.main_score == "ndcg_at_10"
    task.unload_data()  # mteb's unload keeps per-instance metadata of a local task
    assert task.metadata.name == toy_data.name and not task.data_loaded


def test_fine_tuned_copies_get_their_own_scores(tiny, toy_data, tmp_path):
    """Two fine-tunes of one base model report the same MTEB identity; negbench names them apart."""
    from mteb.models import SentenceTransformerEncoderWrapper

    a, b = perturbed(tiny, 0.05, seed=1), perturbed(tiny, 0.05, seed=2)
    meta_a, meta_b = (SentenceTransformerEncoderWrapper(m).mteb_model_meta for m in (a, b))
    assert (meta_a.name, meta_a.revision) == (meta_b.name, meta_b.revision)  # what mteb would key its cache by
    import mteb

    naive = mteb.ResultCache(tmp_path / "naive")  # plain mteb usage: b is served a's cached score
    naive_scores = [
        mteb.evaluate(
            m, mteb_tasks.BeirDirectoryTask(toy_data), cache=naive, show_progress_bar=False, co2_tracker=False
        )
        .task_results[0]
        .get_score()
        for m in (a, b)
    ]
    assert naive_scores[0] == naive_scores[1]

    dataset = load_dataset(DatasetConfig(source=str(toy_data)), require_train=False)
    expected = [
        evaluate(m, dataset.corpus, dataset.queries, dataset.test(), ["ndcg@10"]).metrics["ndcg@10"] for m in (a, b)
    ]
    assert abs(expected[0] - expected[1]) > 1e-3

    got = []
    for seed, model in enumerate((a, b)):  # same base name, same run directory, different seeds
        name, revision = mteb_eval.mteb_model_identity("tiny", "in-batch", "cafe01", seed)
        got.append(
            mteb_eval.evaluate_with_mteb(model, [str(toy_data)], run_dir=tmp_path, model_name=name, revision=revision)[
                toy_data.name
            ]
        )
    assert got == [pytest.approx(e, abs=1e-3) for e in expected]
    assert len(list((tmp_path / "mteb" / "results").glob("*/*/toy.json"))) == 2

    again = mteb_eval.evaluate_with_mteb(b, [str(toy_data)], run_dir=tmp_path, model_name=name, revision=revision)
    assert again[toy_data.name] == pytest.approx(expected[1], abs=1e-3)  # re-evaluated, not a stale cache entry


def test_model_identity_is_unique_and_path_safe():
    one = mteb_eval.mteb_model_identity("sentence-transformers/all-MiniLM-L6-v2", "bm25 hard", "ab12", 0)
    two = mteb_eval.mteb_model_identity("sentence-transformers/all-MiniLM-L6-v2", "bm25 hard", "ab12", 1)
    three = mteb_eval.mteb_model_identity("sentence-transformers/all-MiniLM-L6-v2", "in-batch", "ab12", 0)
    assert one == ("negbench/all-MiniLM-L6-v2--bm25_hard", "ab12-seed0")
    assert len({one, two, three}) == 3


# ------------------------------------------------------------------------------------------ mteb: sources


def test_materialize_from_local_hf_cache(hf_cache, toy_data, tmp_path):
    seed_hf_cache(hf_cache, "mteb/scifact", SCIFACT_REVISION, beir_rows(toy_data))

    root = mteb_tasks.materialize_mteb_task("mteb:SciFact", tmp_path / "out")

    assert root == tmp_path / "out" / "SciFact"
    assert sorted(p.name for p in (root / "qrels").iterdir()) == ["test.tsv", "train.tsv"]
    marker = json.loads((root / mteb_tasks.MARKER).read_text())
    assert (marker["task"], marker["revision"], marker["splits"]) == ("SciFact", SCIFACT_REVISION, ["test", "train"])
    ours = load_dataset(DatasetConfig(source=str(root)))
    original = load_dataset(DatasetConfig(source=str(toy_data)))
    assert ours.corpus.ids == original.corpus.ids and ours.corpus.texts == original.corpus.texts
    assert ours.test() == original.test()
    assert ours.train == original.train and ours.dev == original.dev
    assert {q: ours.queries[q] for q in original.queries} == original.queries

    before = (root / "corpus.jsonl").stat().st_mtime_ns
    assert mteb_tasks.materialize_mteb_task("SciFact", tmp_path / "out") == root  # reused, not rewritten
    assert (root / "corpus.jsonl").stat().st_mtime_ns == before


def test_unknown_task_is_a_one_line_data_error(tmp_path):
    with pytest.raises(DataError) as info:
        mteb_tasks.materialize_mteb_task("mteb:NoSuchTask", tmp_path)
    message = str(info.value)
    assert "NoSuchTask" in message and "\n" not in message
    with pytest.raises(DataError, match="Did you mean: 'SciFact'"):
        mteb_tasks.materialize_mteb_task("mteb:SciFakt", tmp_path)
    with pytest.raises(DataError, match="NoSuchTask"):
        mteb_eval.evaluate_with_mteb(None, ["NoSuchTask"], run_dir=tmp_path, model_name="negbench/x", revision="r")


def test_uncached_task_offline_is_a_one_line_data_error(hf_cache, tmp_path):
    with pytest.raises(DataError) as info:
        mteb_tasks.materialize_mteb_task("mteb:SciFact", tmp_path / "out")
    message = str(info.value)
    assert "'SciFact'" in message and "mteb/scifact" in message and "offline" in message
    assert "\n" not in message
    assert not (tmp_path / "out" / "SciFact").exists()
    with pytest.raises(DataError, match=r"'SciFact'.*offline"):
        mteb_tasks.check_mteb_tasks(["SciFact"])  # what a suite with [evaluation] mteb_tasks checks up front


def test_check_mteb_tasks(toy_data, tmp_path):
    assert mteb_tasks.check_mteb_tasks([str(toy_data), "mteb:SciFact"], load=False) == [toy_data.name, "SciFact"]
    assert mteb_tasks.check_mteb_tasks([str(toy_data)]) == [toy_data.name]
    copy = shutil.copytree(toy_data, tmp_path / "elsewhere" / toy_data.name)
    with pytest.raises(DataError, match="duplicate"):
        mteb_tasks.check_mteb_tasks([str(toy_data), str(copy)], load=False)


def test_non_retrieval_task_is_refused(tmp_path):
    with pytest.raises(DataError, match="only retrieval tasks"):
        mteb_tasks.materialize_mteb_task("mteb:Banking77Classification", tmp_path)


def test_missing_local_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="directory not found"):
        mteb_tasks.resolve_mteb_task(str(tmp_path / "nope"))


# ------------------------------------------------------------------------------------------ acceptance


@pytest.mark.slow
def test_scifact_local_task_agrees_with_negbench_eval(scifact, tmp_path):
    """MiniLM zero-shot on SciFact through mteb's evaluator vs ``negbench eval`` (ndcg@10 = 0.6451)."""
    model = load_model(ModelConfig(spec="sentence-transformers/all-MiniLM-L6-v2", max_seq_length=256), "cpu")
    start = time.perf_counter()
    scores = mteb_eval.evaluate_with_mteb(
        model,
        [str(scifact)],
        run_dir=tmp_path,
        batch_size=64,
        model_name="negbench/all-MiniLM-L6-v2--zero-shot",
        revision="acceptance",
    )
    print(f"SciFact via mteb: ndcg@10 = {scores[scifact.name]:.5f} in {time.perf_counter() - start:.0f} s")
    assert scores[scifact.name] == pytest.approx(0.6451, abs=0.002)


def test_suite_mteb_tasks_score_every_trained_model(tmp_path, toy_data, tiny_model):
    """`[evaluation] mteb_tasks` puts an MTEB main score on each row, stored under the run's own directory."""
    import polars as pl
    from typer.testing import CliRunner

    from negbench.cli import app
    from tests.cli.test_cli import suite_text

    suite = tmp_path / "suite.toml"
    suite.write_text(
        suite_text(
            toy_data,
            tiny_model,
            tmp_path / "out",
            strategies=("none", "in-batch"),
            evaluation=f'mteb_tasks = ["{toy_data}"]\ncurve_points = 0\n',
        )
    )
    result = CliRunner().invoke(app, ["run", str(suite), "--no-progress"])
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(tmp_path / "out" / "results.parquet").sort("strategy")
    column = next(c for c in rows.columns if c.startswith("mteb:"))
    none_row = rows.filter(pl.col("strategy") == "none")
    # the zero-shot model's MTEB main score is negbench's own ndcg@10 on the same data
    assert abs(none_row[column].item() - none_row["ndcg@10"].item()) < 1e-3
    assert rows[column].n_unique() == 2
    assert len(list((tmp_path / "out" / "mteb").rglob("*.json"))) >= 2
