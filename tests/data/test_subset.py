"""Test twins leave training and dev; a subset's share of test-only documents stays near the full corpus's."""

from __future__ import annotations

import json
import shutil

import pytest

from negbench.config.suite import DatasetConfig
from negbench.data.dataset import RetrievalDataset, load_dataset
from negbench.data.splits import limit_queries
from negbench.data.subset import SHARE_BOUND
from negbench.run.store.row import COLUMNS


@pytest.fixture
def beir(tmp_path, toy_data):
    root = tmp_path / "ds"
    shutil.copytree(toy_data, root)
    return root


def _relevant(qrels) -> set[str]:
    return {d for docs in qrels.values() for d, rel in docs.items() if rel > 0}


def _test_only_share(ds: RetrievalDataset) -> float:
    """Documents relevant to an evaluated test query and to no training query, over the evaluated corpus."""
    return len(_relevant(ds.test()) - _relevant(ds.train)) / len(ds.eval_corpus)


def _add_test_twins(beir, split: str, test_ids: list[str], variant=None) -> list[str]:
    """Add to ``split`` a query per test query with its text (whitespace changed, or ``variant(text)``) and its
    positive."""
    text = {r["_id"]: r["text"] for r in map(json.loads, (beir / "queries.jsonl").read_text().splitlines())}
    positive = dict(line.split("\t")[:2] for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:])
    twins = [f"{q}-twin" for q in test_ids]
    with (beir / "queries.jsonl").open("a") as fh:
        fh.writelines(json.dumps({"_id": f"{q}-twin", "text": (variant or _spaced)(text[q])}) + "\n" for q in test_ids)
    path = beir / "qrels" / f"{split}.tsv"
    if not path.is_file():
        path.write_text("query-id\tcorpus-id\tscore\n")
    with path.open("a") as fh:
        fh.writelines(f"{q}-twin\t{positive[q]}\t1\n" for q in test_ids)
    return twins


def _spaced(text: str) -> str:
    return "  " + text.replace(" ", "\t")


def _test_ids(beir) -> list[str]:
    return list(
        dict.fromkeys(line.split("\t")[0] for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:])
    )


def test_test_twins_leave_train_and_dev_with_their_pairs(beir):
    twins = _add_test_twins(beir, "train", _test_ids(beir)[:3])
    ds = load_dataset(DatasetConfig(source=str(beir), dev_fraction=0.3))
    assert not set(twins) & (set(ds.train) | set(ds.dev))
    test_positives = {ds.corpus.index[d] for d in _relevant(ds.test())}
    assert not {e.doc for split in ("train", "dev") for e in ds.training_examples(split)} & test_positives
    assert ds.audit.test_twins_dropped == tuple(sorted(twins))
    assert ds.audit.columns()["test_twins_dropped"] == 3
    (note,) = ds.audit.notes("toy")
    assert "3 train/dev queries with the text of a test query dropped" in note and twins[0] in note


@pytest.mark.parametrize(
    "variant",
    [str.upper, lambda t: t.rstrip(".?!") + "?", lambda t: t.replace(" ", ", ", 1), lambda t: t.replace("e", "\uff45")],
    ids=["case", "question-mark", "comma", "full-width"],
)
def test_twins_that_differ_in_case_or_punctuation_leave_training(beir, variant):
    """Twins were compared with only whitespace collapsed: an upper-case or re-punctuated copy of a test query
    stayed in training with its positive (an uncased tokenizer reads it as the test query itself)."""
    twins = _add_test_twins(beir, "train", _test_ids(beir)[:2], variant)
    ds = load_dataset(DatasetConfig(source=str(beir), dev_fraction=0.3))
    assert not set(twins) & (set(ds.train) | set(ds.dev))
    assert ds.audit.test_twins_dropped == tuple(sorted(twins))


def test_test_twins_leave_a_given_dev_split(beir):
    twins = _add_test_twins(beir, "dev", _test_ids(beir)[:2])
    ds = load_dataset(DatasetConfig(source=str(beir), dev_split="dev"))
    assert set(twins).isdisjoint(ds.dev) and set(twins).isdisjoint(ds.train)
    assert ds.audit.test_twins_dropped == tuple(sorted(twins))


def test_a_dataset_without_test_twins_drops_nothing(beir):
    plain = load_dataset(DatasetConfig(source=str(beir)))
    assert plain.audit.test_twins_dropped == () and plain.audit.subset is None and not plain.audit.notes("toy")
    assert plain.audit.test_only_share == plain.audit.test_only_share_full == pytest.approx(24 / 128)


def test_subset_keeps_its_test_only_share_within_the_bound(beir):
    full = _test_only_share(load_dataset(DatasetConfig(source=str(beir))))
    cfg = DatasetConfig(source=str(beir), max_corpus=40, max_train_queries=10, max_test_queries=20)
    ds = load_dataset(cfg)
    assert len(ds.eval_corpus) == 40
    assert _test_only_share(ds) <= SHARE_BOUND * full  # 20 test queries would make 20 of 40 documents (2.7×)
    test = ds.test()
    assert set(ds.eval_corpus.ids) >= {d for docs in test.values() for d in docs}  # kept test queries keep theirs
    allowed = limit_queries({q: {} for q in _test_ids(beir)}, 20, "test", ds.queries)
    assert len(test) == 11 and set(test) < set(allowed)  # 11 of 40 documents ≤ 1.5 × 24/128 of them
    judged_by_test = {line.split("\t")[1] for line in (beir / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    assert not (set(ds.eval_corpus.ids) & judged_by_test) - _relevant(test)  # the fill brings no other test document
    audit = ds.audit
    assert audit.test_only_share == pytest.approx(_test_only_share(ds))
    assert audit.test_only_share_full == pytest.approx(full) and audit.within_bound
    assert audit.test_queries_cut == (len(test), 20)
    assert audit.subset == f"40 of 128 documents, 10 of 94 train, 10 of 10 dev and {len(test)} of 24 test queries"
    (note,) = audit.notes("toy")
    assert f"{len(test)} of the 20 test queries max_test_queries allows kept" in note and "18.8%" in note


def test_subset_notes_when_the_limits_do_not_allow_the_bound(beir):
    cfg = DatasetConfig(source=str(beir), max_corpus=3, max_train_queries=1, max_dev_queries=1, max_test_queries=5)
    ds = load_dataset(cfg)
    assert len(ds.test()) == 5  # cutting could not reach the bound: every allowed test query stays
    assert not ds.audit.within_bound and ds.audit.test_queries_cut is None
    (note,) = ds.audit.notes("toy")
    assert "the limits do not allow 1.5× the full corpus's share or less (max_corpus ≥ 18 would)" in note


def test_audit_columns_are_result_row_columns(beir):
    assert set(load_dataset(DatasetConfig(source=str(beir))).audit.columns()) <= set(COLUMNS)


def test_scifact_test_twins_and_part3_subset(scifact):
    ds = load_dataset(DatasetConfig(source=str(scifact)))
    assert not {"871", "1291"} & (set(ds.train) | set(ds.dev))
    assert ds.audit.test_twins_dropped == ("1291", "871")  # twins of test queries 1292 and 870
    part3 = load_dataset(
        DatasetConfig(source=str(scifact), max_corpus=1000, max_train_queries=400, max_test_queries=100)
    )
    assert len(part3.eval_corpus) == 1000
    assert _test_only_share(part3) <= SHARE_BOUND * _test_only_share(ds)
