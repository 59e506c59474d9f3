"""BEIR loading: malformed input gives clear errors or counted warnings; splits; fingerprints."""

from __future__ import annotations

import json
import shutil

import pytest

from negbench.config.suite import DatasetConfig
from negbench.data.dataset import load_dataset
from negbench.data.splits import _rank_key, carve_dev, limit_queries, normalise_query
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
    queries = {q: f"text {q}" for q in train}
    assert carve_dev(train, queries, 0.2) == carve_dev(dict(reversed(list(train.items()))), queries, 0.2)


def _twin_qrels(n_groups: int = 60, seed: int = 0) -> tuple[dict, dict[str, str], list[set[str]]]:
    """Train qrels in which about a third of the queries come as twins or triplets (whitespace variants)."""
    rng = __import__("random").Random(seed)
    train, queries, groups = {}, {}, []
    for g in range(n_groups):
        size = rng.choice([1, 1, 1, 1, 2, 2, 3])
        ids = {f"q{g}-{m}" for m in range(size)}
        for m, qid in enumerate(sorted(ids)):
            queries[qid] = f"claim {g} is true" if m == 0 else f"  claim {g}\tis  true "
            train[qid] = {f"d{g}-{m}": 1}
        groups.append(ids)
    return train, queries, groups


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.2, 0.33, 0.5])
def test_dev_carving_never_splits_twins(fraction):
    train, queries, groups = _twin_qrels()
    for salt in (f"dev{i}" for i in range(40)):
        rest, dev = carve_dev(train, queries, fraction, salt)
        assert rest and dev and rest.keys() | dev.keys() == train.keys() and not rest.keys() & dev.keys()
        for group in groups:
            assert group <= dev.keys() or group <= rest.keys()
        assert abs(len(dev) - round(len(train) * fraction)) <= 1  # as close as the groups allow


def test_dev_carving_without_twins_is_the_old_hash_prefix():
    train = {f"q{i}": {"d": 1} for i in range(57)}
    queries = {q: f"text {q}" for q in train}
    for fraction in (0.1, 0.25):
        _, dev = carve_dev(train, queries, fraction)
        assert set(dev) == set(sorted(train, key=lambda q: _rank_key("dev", q))[: round(57 * fraction)])


def test_limit_keeps_twin_groups_whole():
    train, queries, groups = _twin_qrels()
    for limit in (1, 7, 20, 33):
        kept = limit_queries(train, limit, "train", queries)
        assert 0 < len(kept) <= max(limit, 3)
        assert all(group <= kept.keys() or not group & kept.keys() for group in groups)
        if limit >= 3:
            assert len(kept) == limit  # singletons fill what a twin group could not


def _add_twins(beir, pairs: list[tuple[str, str]]) -> None:
    """Give each train query ``original`` a twin query ``twin`` (same text, extra whitespace, another positive)."""
    rows = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]
    text = {r["_id"]: r["text"] for r in rows}
    with (beir / "queries.jsonl").open("a") as fh:
        for original, twin in pairs:
            fh.write(json.dumps({"_id": twin, "text": " " + text[original].replace(" ", "  ")}) + "\n")
    with (beir / "qrels" / "train.tsv").open("a") as fh:
        for original, twin in pairs:  # the toy's query qN answers dN; its twin answers the next document
            fh.write(f"{twin}\td{(int(original[1:]) + 1) % 128}\t1\n")


def _train_ids(beir) -> list[str]:
    lines = (beir / "qrels" / "train.tsv").read_text().splitlines()[1:]
    return list(dict.fromkeys(line.split("\t")[0] for line in lines))


def test_load_dataset_keeps_twins_on_one_side(beir):
    originals = _train_ids(beir)[:40]
    _add_twins(beir, [(q, f"{q}-twin") for q in originals])
    ds = load_dataset(DatasetConfig(source=str(beir), dev_fraction=0.3))
    assert not ds.warnings and abs(len(ds.dev) - round((len(ds.train) + len(ds.dev)) * 0.3)) <= 1
    for q in originals:
        assert (q in ds.dev) == (f"{q}-twin" in ds.dev) and (q in ds.train) == (f"{q}-twin" in ds.train)
    assert ds.positives_by_text[normalise_query(ds.queries[originals[0]])] == (
        ds.positives[originals[0]] | ds.positives[f"{originals[0]}-twin"]
    )


def test_given_dev_split_takes_the_train_twins_of_its_queries(beir):
    train_ids = _train_ids(beir)
    dev_ids = train_ids[:5]
    lines = (beir / "qrels" / "train.tsv").read_text().splitlines()
    for split, keep in (("dev", True), ("train", False)):
        rows = [x for x in lines[1:] if (x.split("\t")[0] in dev_ids) == keep]
        (beir / "qrels" / f"{split}.tsv").write_text("\n".join(lines[:1] + rows) + "\n")
    _add_twins(beir, [(q, f"{q}-twin") for q in dev_ids])
    ds = load_dataset(DatasetConfig(source=str(beir), dev_split="dev"))
    assert set(ds.dev) == set(dev_ids) and not any(q.endswith("-twin") for q in ds.train)
    assert ds.warnings["train query with the text of a dev query"] == 5


def test_scifact_twins_stay_on_one_side_of_the_dev_split(scifact):
    for fraction in (0.1, 0.2, 0.5):
        ds = load_dataset(DatasetConfig(source=str(scifact), dev_fraction=fraction))
        sides: dict[str, set[str]] = {}
        for side, qrels in (("train", ds.train), ("dev", ds.dev)):
            for q in qrels:
                sides.setdefault(normalise_query(ds.queries[q]), set()).add(side)
        assert all(len(s) == 1 for s in sides.values())


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
