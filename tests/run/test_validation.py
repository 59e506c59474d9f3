"""The validation stage and bad input in general: every malformed input is one line naming the file and the
field, exit 2, and nothing created on disk (the output directory does not appear)."""

from __future__ import annotations

import json
import pathlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from negbench.cli import app
from negbench.run.plan import plan_suite
from negbench.run.preflight import check_storage_url, validate_plan
from tests.cli.test_cli import suite_text, tuning_block

runner = CliRunner()


@dataclass
class Case:
    """A malformed input: edits to a fresh copy of the toy suite/data, and what the one-line error names."""

    name: str
    expect: str  # a substring of the error line (the field, usually)
    suite: Callable[[str], str] = lambda s: s
    data: Callable[[Path], None] = lambda root: None
    command: str = "run"


def _set(key: str, value: str, section: str = "[training]") -> Callable[[str], str]:
    """Put ``key = value`` at the top of ``section`` (TOML takes the last duplicate as an error, so replace)."""

    def edit(text: str) -> str:
        lines = [ln for ln in text.splitlines() if not ln.startswith(f"{key} =") or not _in_section(text, ln, section)]
        out = "\n".join(lines)
        return out.replace(f"\n{section}\n", f"\n{section}\n{key} = {value}\n", 1)

    return edit


def _in_section(text: str, line: str, section: str) -> bool:
    current = None
    for ln in text.splitlines():
        if ln.startswith("["):
            current = ln.strip()
        if ln == line:
            return current == section
    return False


def _line(key: str, value: str) -> Callable[[str], str]:
    """Replace the value of the first ``key = …`` line."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key} = "))
        lines[i] = f"{key} = {value}"
        return "\n".join(lines)

    return edit


def _append(block: str) -> Callable[[str], str]:
    return lambda text: text + "\n" + block + "\n"


def _write(rel: str, content: bytes | str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / rel
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return edit


def _corpus_line(row: dict) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        with (root / "corpus.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    return edit


def _replace_first_query(row_text: str) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        lines = (root / "queries.jsonl").read_text().splitlines()
        (root / "queries.jsonl").write_text("\n".join([row_text, *lines[1:]]) + "\n")

    return edit


def _remove(rel: str) -> Callable[[Path], None]:
    return lambda root: (root / rel).unlink()


def _train_only_one_query(root: Path) -> None:
    lines = (root / "qrels" / "train.tsv").read_text().splitlines()
    (root / "qrels" / "train.tsv").write_text("\n".join(lines[:2]) + "\n")


TUNED = tuning_block(2)
CASES = [
    # ------------------------------------------------------------------ suite values: strict types, bounds
    Case("epochs bool", "training.epochs", _set("epochs", "true")),
    Case("epochs float", "training.epochs", _set("epochs", "2.0")),
    Case("epochs 1e20", "training.epochs", _set("epochs", "1e20")),
    Case("epochs too many", "training.epochs", _set("epochs", "1000000")),
    Case("lr inf", "training.lr", _set("lr", "inf")),
    Case("lr nan", "training.lr", _set("lr", "nan")),
    Case("batch_size string", "training.batch_size", _set("batch_size", '"32"')),
    Case("num_negatives huge", "training.num_negatives", _set("num_negatives", "100000")),
    Case("max_steps 1e12", "training.max_steps", _set("max_steps", "1000000000000")),
    Case("seed negative", "suite.seeds", _set("seeds", "[-1]", "[suite]")),
    Case("seed too big", "suite.seeds", _set("seeds", "[4294967296]", "[suite]")),
    Case("seed bool", "suite.seeds", _set("seeds", "[true]", "[suite]")),
    Case("n_trials bool", "tuning.n_trials", _append("[tuning]\nn_trials = true")),
    Case("timeout inf", "tuning.timeout_s", _append("[tuning]\ntimeout_s = inf")),
    Case(
        "param bool for int",
        "strategies[2].params.depth",
        _append('[[strategies]]\nname = "simans"\nparams = {depth = true}'),
    ),
    Case(
        "param float for int",
        "strategies[2].params.depth",
        _append('[[strategies]]\nname = "simans"\nparams = {depth = 2.5}'),
    ),
    Case("param inf", "strategies[2].params.a", _append('[[strategies]]\nname = "simans"\nparams = {a = inf}')),
    Case(
        "param string for float",
        "strategies[2].params.a",
        _append('[[strategies]]\nname = "simans"\nparams = {a = "2"}'),
    ),
    Case(
        "search range inverted",
        "search_space",
        _append('[[strategies]]\nname = "simans"\n[strategies.search_space.a]\ntype = "float"\nlow = 5.0\nhigh = 1.0'),
    ),
    Case("unknown strategy", "strategies[2].name", _append('[[strategies]]\nname = "no-such-strategy"')),
    Case("unknown metric", "evaluation.metrics", _set("metrics", '["ndcg@ten"]', "[evaluation]")),
    Case("unknown field", "training.epoch", _set("epoch", "1")),
    # ------------------------------------------------------------------ models and devices
    Case("device bogus", "models[0].device", _set("device", '"bogus"', "[[models]]")),
    Case("device tpu", "models[0].device", _set("device", '"xla"', "[[models]]")),
    Case("empty model dir", "models[0].spec", _line("spec", '"EMPTYMODEL"')),
    # ------------------------------------------------------------------ storage, tracking, directories
    Case("storage bogus scheme", "tuning.storage", _append('[tuning]\nstorage = "bogus://x"')),
    Case("storage not a URL", "tuning.storage", _append('[tuning]\nstorage = "just-a-path"')),
    Case("storage sqlite missing dir", "tuning.storage", _append('[tuning]\nstorage = "sqlite:////no/such/dir/x.db"')),
    Case("storage sqlite memory", "tuning.storage", _append('[tuning]\nstorage = "sqlite://"')),
    Case("storage driver missing", "tuning.storage", _append('[tuning]\nstorage = "mysql+nosuchdriver://u@h/db"')),
    Case("tracking uri bogus", "tracking.uri", _set("uri", '"gopher://x"', "[tracking]")),
    Case("output_dir a file", "suite.output_dir", _line("output_dir", '"FILE"')),
    Case("output_dir under a file", "suite.output_dir", _line("output_dir", '"FILE/sub"')),
    Case("cache_dir a file", "suite.cache_dir", _set("cache_dir", '"FILE"', "[suite]")),
    # ------------------------------------------------------------------ datasets: found before training
    Case("dataset dir missing", "datasets[0].source", _line("source", '"/no/such"')),
    Case("unknown source scheme", "datasets[0].source", _line("source", '"ftp:x"')),
    Case("corpus bad JSON", "corpus.jsonl:", data=_write("corpus.jsonl", '{"_id": "d0", "text": \n')),
    Case("corpus invalid UTF-8", "corpus.jsonl", data=_write("corpus.jsonl", b'{"_id": "d0", "text": "\xff\xfe"}\n')),
    Case("corpus line not object", "corpus.jsonl:", data=_corpus_line([1, 2])),  # type: ignore[arg-type]
    Case("corpus _id null", "_id", data=_corpus_line({"_id": None, "text": "x"})),
    Case("corpus _id object", "_id", data=_corpus_line({"_id": {"a": 1}, "text": "x"})),
    Case("corpus _id bool", "_id", data=_corpus_line({"_id": True, "text": "x"})),
    Case("corpus _id empty", "_id", data=_corpus_line({"_id": " ", "text": "x"})),
    Case("corpus text number", "text", data=_corpus_line({"_id": "dx", "text": 5})),
    Case("corpus title list", "title", data=_corpus_line({"_id": "dx", "title": ["a"], "text": "x"})),
    Case("corpus empty", "empty corpus", data=_write("corpus.jsonl", "\n\n")),
    Case("queries text object", "text", data=_replace_first_query('{"_id": "q0", "text": {"x": 1}}')),
    Case("queries missing", "queries.jsonl", data=_remove("queries.jsonl")),
    Case("test qrels missing", "test.tsv", data=_remove("qrels/test.tsv")),
    Case("test qrels empty", "test.tsv", data=_write("qrels/test.tsv", "query-id\tcorpus-id\tscore\n")),
    Case("test qrels two columns", "test.tsv:2", data=_write("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\n")),
    Case("test qrels invalid UTF-8", "test.tsv", data=_write("qrels/test.tsv", b"q0\td0\t1\n\xff\n")),
    Case("headerless qrels bad first score", "test.tsv:1", data=_write("qrels/test.tsv", "q0\td0\tx\nq1\td1\t1\n")),
    Case(
        "train qrels bad score",
        "train.tsv:3",
        data=lambda root: (root / "qrels" / "train.tsv").write_text(
            (root / "qrels" / "train.tsv").read_text().replace("\t1\n", "\t1.5\n", 2).replace("\t1.5\n", "\t1\n", 1)
        ),
    ),
    Case("no dev split with tuning", "dev_split", suite=_append(TUNED), data=_train_only_one_query),
    Case("num_negatives over corpus", "corpus has", _set("num_negatives", "4000")),
    # ------------------------------------------------------------------ found by a hostile review
    Case("storage port not a number", "tuning.storage", _append('[tuning]\nstorage = "postgresql://u@h:notaport/x"')),
    Case(
        "int step not whole",
        "search_space",
        _append(
            '[tuning]\nn_trials = 2\n[tuning.search_space."training.batch_size"]\ntype = "int"\nlow = 4\nhigh = 16\n'
            "step = 0.5"
        ),
    ),
    Case(
        "float step negative",
        "step must be > 0",
        _append(
            '[tuning]\nn_trials = 2\n[tuning.search_space."training.lr"]\ntype = "float"\nlow = 1e-4\nhigh = 1e-3\n'
            "step = -1.0"
        ),
    ),
    Case(
        "log with step",
        "log",
        _append(
            '[tuning]\nn_trials = 2\n[tuning.search_space."training.lr"]\ntype = "float"\nlow = 1e-4\nhigh = 1e-3\n'
            "log = true\nstep = 1e-4"
        ),
    ),
    Case(
        "max_steps range through 0",
        "max_steps",
        _append('[tuning]\nn_trials = 2\n[tuning.search_space."training.max_steps"]\ntype = "int"\nlow = -1\nhigh = 5'),
    ),
    Case("NUL in output_dir", "suite.output_dir", _line("output_dir", '"/tmp/a\\u0000b"')),
    Case("empty output_dir", "suite.output_dir", _line("output_dir", '""')),
    Case("blank suite name", "suite.name", _line("name", '"   "')),
    Case("dev split is the test split", "datasets[0]", _set("dev_split", '"test"', "[[datasets]]")),
    Case("train split is the test split", "datasets[0]", _set("train_split", '"test"', "[[datasets]]")),
    Case("split path traversal", "datasets[0].test_split", _set("test_split", '"../../x"', "[[datasets]]")),
    Case(
        "test score out of C int",
        "test.tsv:2",
        data=_write("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq0\td0\t99999999999999999999999\n"),
    ),
    Case("batch over train examples", "training.batch_size", _set("batch_size", "4000")),
]


@pytest.fixture
def toy_copy(toy_data, tmp_path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(toy_data, root)
    return root


def _materialise(case: Case, toy_copy: Path, tiny_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    text = suite_text(toy_copy, tiny_model, out, strategies=("in-batch", "random"))
    text = case.suite(text)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "empty-model").mkdir()
    text = text.replace("FILE", str(tmp_path / "a-file")).replace("EMPTYMODEL", str(tmp_path / "empty-model"))
    case.data(toy_copy)
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path, out


def one_error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_input_is_one_line_exit_2_and_creates_nothing(case, toy_copy, tiny_model, tmp_path):
    path, out = _materialise(case, toy_copy, tiny_model, tmp_path)
    if case.name == "device bogus" and torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    result = runner.invoke(
        app, [case.command, str(path), "--no-progress"] if case.command == "run" else [case.command, str(path)]
    )
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert case.expect in line, line
    assert not out.exists(), "a refused suite must create nothing"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_device_without_a_gpu_is_refused_before_training(toy_data, tiny_model, tmp_path):
    text = suite_text(toy_data, tiny_model, tmp_path / "out").replace(
        "max_seq_length = 32", 'max_seq_length = 32\ndevice = "cuda:0"'
    )
    (tmp_path / "s.toml").write_text(text)
    result = runner.invoke(app, ["run", str(tmp_path / "s.toml")])
    assert result.exit_code == 2
    assert "models[0].device" in one_error_line(result) and "no CUDA GPU" in result.stderr
    assert not (tmp_path / "out").exists()


def test_validate_loads_datasets_and_models_and_says_ok(toy_data, tiny_model, tmp_path):
    (tmp_path / "s.toml").write_text(suite_text(toy_data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["validate", str(tmp_path / "s.toml")])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.stdout and "docs" in result.stdout and "train" in result.stdout
    assert not (tmp_path / "out").exists()


def test_validate_reads_datasets_a_missing_directory_is_not_ok(tiny_model, tmp_path):
    """`negbench validate` used to print "ok" without loading the datasets."""
    (tmp_path / "s.toml").write_text(suite_text(tmp_path / "nope", tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["validate", str(tmp_path / "s.toml")])
    assert result.exit_code == 2
    assert "datasets[0].source" in one_error_line(result)


def test_validate_refuses_a_model_without_tokenizer(toy_data, tiny_model, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(tiny_model, broken)
    for f in broken.rglob("*"):
        if f.is_file() and ("tokenizer" in f.name or f.name in {"vocab.txt", "special_tokens_map.json"}):
            f.unlink()
    (tmp_path / "s.toml").write_text(suite_text(toy_data, broken, tmp_path / "out"))
    result = runner.invoke(app, ["validate", str(tmp_path / "s.toml")])
    assert result.exit_code == 2
    assert "models[0].spec" in one_error_line(result) and "tokenizer" in result.stderr


def test_validation_parses_the_test_split_but_does_not_keep_it(toy_data, tiny_model, tmp_path):
    (tmp_path / "s.toml").write_text(suite_text(toy_data, tiny_model, tmp_path / "out"))
    validated = validate_plan(plan_suite(tmp_path / "s.toml"))
    assert validated.datasets[0]._test_qrels is None  # sealed: tuning cannot see it


def test_shared_train_test_queries_are_dropped_and_noted(toy_copy, tiny_model, tmp_path):
    test_line = (toy_copy / "qrels" / "test.tsv").read_text().splitlines()[1]
    with (toy_copy / "qrels" / "train.tsv").open("a") as fh:
        fh.write(test_line + "\n")
    (tmp_path / "s.toml").write_text(suite_text(toy_copy, tiny_model, tmp_path / "out"))
    validated = validate_plan(plan_suite(tmp_path / "s.toml"))
    qid = test_line.split("\t")[0]
    assert qid not in validated.datasets[0].train and qid not in validated.datasets[0].dev
    assert validated.notes == [
        f"data: 1 train/dev query with the text of a test query dropped, with their pairs ({qid})"
    ]


def test_validate_prints_a_subsets_test_only_share(toy_copy, tiny_model, tmp_path):
    text = suite_text(toy_copy, tiny_model, tmp_path / "out")
    text = text.replace("[[datasets]]\n", "[[datasets]]\nmax_corpus = 80\nmax_train_queries = 40\n", 1)
    (tmp_path / "s.toml").write_text(text)
    result = runner.invoke(app, ["validate", str(tmp_path / "s.toml")])
    assert result.exit_code == 0, result.output
    assert "note: data: subset of 80 of 128 documents" in result.stderr
    assert "make 27.5% of the evaluated corpus (full corpus: 18.8%); 22 of the 24 test queries" in result.stderr


def deny(monkeypatch, method: str, path: Path) -> None:
    """Make ``Path.<method>`` raise PermissionError for ``path`` (tests run as root, where chmod does not)."""
    real = getattr(pathlib.Path, method)

    def denied(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, method, denied)


@pytest.mark.parametrize("command", ["validate", "run", "status"])
def test_unreadable_suite_file_is_one_line(command, tmp_path, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text("[suite]\n")
    deny(monkeypatch, "read_text", path)
    result = runner.invoke(app, [command, str(path)])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(path) in line and "Permission denied" in line


def test_unreadable_corpus_is_one_line_naming_it(toy_copy, tiny_model, tmp_path, monkeypatch):
    corpus = toy_copy / "corpus.jsonl"
    deny(monkeypatch, "open", corpus)
    (tmp_path / "s.toml").write_text(suite_text(toy_copy, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["run", str(tmp_path / "s.toml")])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert str(corpus) in line and "Permission denied" in line
    assert not (tmp_path / "out").exists()


def test_suite_file_that_is_a_directory(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in one_error_line(result)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--max-seq-length", "-1"], "--max-seq-length"),
        (["--metrics", ","], "--metrics"),
    ],
)
def test_eval_option_values_are_checked(args, flag, toy_data, tiny_model):
    result = runner.invoke(app, ["eval", "--dataset", str(toy_data), "--model", str(tiny_model), *args])
    assert result.exit_code == 2
    assert flag in one_error_line(result)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--heartbeat", "-1"], "--heartbeat"),
        (["--grace", "0"], "--grace"),
        (["--storage", "bogus://x"], "--storage"),
    ],
)
def test_worker_option_values_are_checked(args, flag, toy_data, tiny_model, tmp_path):
    (tmp_path / "s.toml").write_text(suite_text(toy_data, tiny_model, tmp_path / "out"))
    result = runner.invoke(app, ["worker", str(tmp_path / "s.toml"), *args])
    assert result.exit_code == 2
    assert flag in one_error_line(result)
    assert not (tmp_path / "out").exists()


def test_storage_url_checks(tmp_path):
    check_storage_url(f"sqlite:///{tmp_path}/x.db", "s.toml", "tuning.storage")  # fine
    check_storage_url(None, "s.toml", "tuning.storage")


def test_rich_markup_in_user_strings_is_plain_text(toy_data, tiny_model, tmp_path):
    """A label, suite name and output path holding rich markup (``[/x]``) used to crash the console."""
    out = tmp_path / "o[/x]"
    text = suite_text(toy_data, tiny_model, out, strategies=("none",)).replace('name = "toy"', 'name = "t[/x]"')
    text = text.replace('name = "none"', 'name = "none"\nlabel = "zero[/b] [red]shot"')
    (tmp_path / "s[").mkdir()
    (tmp_path / "s[/x].toml").write_text(text)
    for command in (["validate"], ["run", "--no-progress"], ["plan"]):
        result = runner.invoke(app, [command[0], str(tmp_path / "s[/x].toml"), *command[1:]])
        assert result.exit_code == 0, result.output
    assert (
        "zero[/b] [red]shot" in result.stdout
        or "zero[/b]" in runner.invoke(app, ["run", str(tmp_path / "s[/x].toml"), "--no-progress"]).stdout
    )
    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "r[/x]")])
    assert result.exit_code == 0, result.output
    assert "r[/x]" in result.stdout


def _store_with_string_metric(directory: Path) -> None:
    directory.mkdir()
    pl.DataFrame(
        {
            "run_id": ["a"],
            "dataset": ["d"],
            "model": ["m"],
            "strategy": ["s"],
            "seed": [0],
            "status": ["ok"],
            "ndcg@10": ["high"],
        }
    ).write_parquet(directory / "results.parquet")


def test_report_on_a_store_whose_metric_holds_strings(tmp_path):
    _store_with_string_metric(tmp_path / "r")
    result = runner.invoke(app, ["report", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "ndcg@10" in one_error_line(result)


def test_compare_on_a_store_whose_metric_holds_strings(tmp_path):
    _store_with_string_metric(tmp_path / "r")
    result = runner.invoke(app, ["compare", str(tmp_path / "r"), str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "ndcg@10" in one_error_line(result)


def test_report_out_an_existing_file(tmp_path):
    from negbench.testing.results import synthetic_store

    store = synthetic_store(tmp_path / "r")
    (tmp_path / "f").write_text("x")
    result = runner.invoke(app, ["report", str(store.directory), "--out", str(tmp_path / "f")])
    assert result.exit_code == 2
    assert str(tmp_path / "f") in one_error_line(result)
    assert (tmp_path / "f").read_text() == "x"


def test_a_fifo_among_the_qrels_files_does_not_hang_validation(toy_copy, tiny_model, tmp_path):
    """The dataset fingerprint used to open every qrels/*.tsv, so a FIFO there blocked for ever."""
    import os
    import subprocess
    import sys

    os.mkfifo(toy_copy / "qrels" / "dev.tsv")
    (tmp_path / "s.toml").write_text(suite_text(toy_copy, tiny_model, tmp_path / "out"))
    done = subprocess.run(
        [sys.executable, "-m", "negbench", "validate", str(tmp_path / "s.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr


def test_interrupted_trials_are_not_counted_as_failed_in_status(toy_data, tiny_model, tmp_path):
    from optuna.trial import TrialState

    from negbench.run.status import job_status
    from negbench.run.suite import SuiteRunner
    from negbench.run.tuning import Tuner

    (tmp_path / "s.toml").write_text(
        suite_text(toy_data, tiny_model, tmp_path / "out", strategies=("in-batch",), extra=TUNED)
    )
    plan = plan_suite(tmp_path / "s.toml")
    runner_ = SuiteRunner(plan)
    job = __import__("negbench.run.suite", fromlist=["Job"]).Job(
        validate_plan(plan).datasets[0], plan.suite.models[0], plan.strategies[0]
    )
    tuner = runner_.tuner_for(job)
    study = tuner.study()
    trial = study.ask()
    trial.suggest_float("training.lr", 1e-4, 1e-2, log=True)
    Tuner.requeue(study, [study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))[0]])
    (row,) = job_status(plan)
    assert row["failed"] == 0
