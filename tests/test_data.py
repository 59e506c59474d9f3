"""BEIR loading: malformed input gives clear errors or counted warnings; splits; fingerprints."""

from __future__ import annotations

import json
import shutil

import pytest

from negbench.config import DatasetConfig
from negbench.data import carve_dev, load_dataset
from negbench.errors import DataError


@pytest.fixture
def beir(tmp_path, toy_data):
    root = tmp_path / "ds"
    shutil.copytree(toy_data, root)
    return root


def test_loads_toy_and_carves_dev(beir):
    ds = load_dataset(DatasetConfig(source=str(beir)))
    assert len(ds.corpus) == 128
    assert ds.dev and ds.train and not set(ds.dev) & set(ds.train)
    assert len(ds.dev) == round((len(ds.dev) + len(ds.train)) * 0.1)
    assert len(ds.test()) == 24


def test_dev_carving_is_deterministic():
    train = {f"q{i}": {"d": 1} for i in range(50)}
    assert carve_dev(train, 0.2) == carve_dev(dict(reversed(list(train.items()))), 0.2)


def test_bad_json_line_reports_file_and_line(beir):
    lines = (beir / "corpus.jsonl").read_text().splitlines()
    lines[4] = '{"_id": "d4", "text": broken'
    (beir / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"corpus\.jsonl:5: bad JSON"):
        load_dataset(DatasetConfig(source=str(beir)))


def test_unknown_document_in_qrels_is_counted(beir):
    with (beir / "qrels" / "train.tsv").open("a") as fh:
        fh.write("q1\tnot-a-doc\t1\nq2\talso-missing\t1\n")
    ds = load_dataset(DatasetConfig(source=str(beir)))
    assert ds.warnings["qrels row naming an unknown document"] == 2


def test_malformed_qrels_row(beir):
    with (beir / "qrels" / "train.tsv").open("a") as fh:
        fh.write("q1\td1\n")
    with pytest.raises(DataError, match=r"train\.tsv:\d+: expected 3 tab-separated columns"):
        load_dataset(DatasetConfig(source=str(beir)))


def test_empty_split(beir):
    (beir / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataError, match="empty split"):
        load_dataset(DatasetConfig(source=str(beir)))


def test_missing_files(beir, tmp_path):
    (beir / "qrels" / "test.tsv").unlink()
    with pytest.raises(DataError, match="missing qrels file"):
        load_dataset(DatasetConfig(source=str(beir)))
    with pytest.raises(DataError, match="directory not found"):
        load_dataset(DatasetConfig(source=str(tmp_path / "nowhere")))


def test_test_split_is_not_read_until_asked(beir):
    (beir / "qrels" / "test.tsv").write_text("this\tis\tnot\tvalid\n")
    ds = load_dataset(DatasetConfig(source=str(beir)))  # fine: test qrels are sealed
    assert ds.train
    with pytest.raises(DataError):
        ds.test()


def test_subset_keeps_judged_documents(beir):
    ds = load_dataset(DatasetConfig(source=str(beir), max_corpus=60, max_test_queries=10, max_train_queries=30))
    assert len(ds.corpus) == 60
    judged = {d for split in (ds.train, ds.dev, ds.test()) for docs in split.values() for d in docs}
    assert judged <= set(ds.corpus.ids)
    assert len(ds.test()) == 10 and len(ds.train) == 30


def test_fingerprint_tracks_content_and_subset(beir):
    a = load_dataset(DatasetConfig(source=str(beir))).fingerprint
    assert a == load_dataset(DatasetConfig(source=str(beir))).fingerprint
    assert a != load_dataset(DatasetConfig(source=str(beir), max_corpus=50)).fingerprint
    with (beir / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "extra", "text": "new"}) + "\n")
    assert a != load_dataset(DatasetConfig(source=str(beir))).fingerprint


def test_title_and_text_joined_like_beir(beir):
    ds = load_dataset(DatasetConfig(source=str(beir)))
    first = json.loads((beir / "corpus.jsonl").read_text().splitlines()[0])
    assert ds.corpus.texts[0] == f"{first['title']} {first['text']}"
