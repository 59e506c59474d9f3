"""Suite TOML validation: errors name the file and the dotted TOML path."""

from __future__ import annotations

import pytest

from negbench.config.load import load_suite
from negbench.errors import ConfigError

VALID = """
[suite]
name = "t"
seeds = [0, 1]

[[datasets]]
source = "data/x"

[[models]]
spec = "some/model"

[[strategies]]
name = "in-batch"
"""


def write(tmp_path, text: str):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_suite(write(tmp_path, text))
    return str(info.value)


def test_valid_suite_parses_with_defaults(tmp_path):
    suite = load_suite(write(tmp_path, VALID))
    assert suite.suite.seeds == [0, 1]
    assert suite.training.scale == 20.0
    assert suite.evaluation.metrics == ["ndcg@10", "recall@100", "mrr@10", "map@100"]
    assert len(suite.config_hash()) == 16


def test_config_hash_changes_with_content(tmp_path):
    a = load_suite(write(tmp_path, VALID)).config_hash()
    b = load_suite(write(tmp_path, VALID.replace("seeds = [0, 1]", "seeds = [0]"))).config_hash()
    assert a != b


def test_malformed_toml_names_file_and_line(tmp_path):
    msg = error_of(tmp_path, VALID + "\n[[strategies]\nname = 'x'\n")
    assert "suite.toml" in msg and "invalid TOML" in msg and "line" in msg


def test_unknown_field_names_dotted_path(tmp_path):
    msg = error_of(tmp_path, VALID.replace('source = "data/x"', 'source = "data/x"\nsorce = 1'))
    assert "datasets[0].sorce: unknown field" in msg


def test_bad_type_names_dotted_path(tmp_path):
    msg = error_of(tmp_path, VALID.replace("[[models]]\nspec", "[[models]]\nmax_seq_length = -3\nspec"))
    assert "models[0].max_seq_length" in msg


def test_unknown_metric(tmp_path):
    msg = error_of(tmp_path, VALID + '\n[evaluation]\nmetrics = ["ndcg@10", "bleu@4"]\n')
    assert "evaluation.metrics" in msg and "bleu@4" in msg


def test_inverted_search_range(tmp_path):
    text = VALID + '\n[strategies.search_space.range_min]\ntype = "int"\nlow = 10\nhigh = 2\n'
    msg = error_of(tmp_path, text)
    assert "strategies[0].search_space.range_min" in msg and "inverted range" in msg


def test_duplicate_strategy_labels(tmp_path):
    msg = error_of(tmp_path, VALID + '\n[[strategies]]\nname = "in-batch"\n')
    assert "duplicate strategy label" in msg


def test_duplicate_dataset_and_model_names(tmp_path):
    """Reports key curves and ranks by name: two datasets (or models) shown under one name would be averaged
    as if seeds of one."""
    msg = error_of(tmp_path, VALID + '\n[[datasets]]\nsource = "other/x"\n')
    assert "duplicate dataset name 'x'" in msg and "suite.toml" in msg
    load_suite(write(tmp_path, VALID + '\n[[datasets]]\nsource = "other/x"\nname = "x2"\n'))
    assert "duplicate model name 'model'" in error_of(tmp_path, VALID + '\n[[models]]\nspec = "other/model"\n')
    planted = VALID + '\n[[datasets]]\nsource = "data/x"\nfalse_negatives = { rate = 0.3 }\n'
    assert [d.display_name for d in load_suite(write(tmp_path, planted)).datasets] == ["x", "x+fn0.3dup"]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="suite file not found"):
        load_suite(tmp_path / "nope.toml")


def test_missing_required_section(tmp_path):
    msg = error_of(tmp_path, '[suite]\nname = "t"\n')
    assert "datasets" in msg


@pytest.mark.parametrize("value", ['"Auto"', '"4"', "-1", "1001", "4.0", "true", '""'])
def test_a_bad_curve_points_is_one_line_naming_the_field_and_both_forms(tmp_path, value):
    """``curve_points`` is a number or "auto": a typo names the field itself (not pydantic's union branch,
    ``curve_points.constrained-int``) and both accepted forms."""
    msg = error_of(tmp_path, VALID + f"\n[evaluation]\ncurve_points = {value}\n")
    assert 'suite.toml: evaluation.curve_points: must be "auto" or a whole number from 0 to 1000' in msg, msg
    assert "\n" not in msg and "constrained" not in msg


@pytest.mark.parametrize(("value", "parsed"), [('"auto"', "auto"), ("0", 0), ("4", 4), ("1000", 1000)])
def test_curve_points_takes_auto_or_a_number(tmp_path, value, parsed):
    suite = load_suite(write(tmp_path, VALID + f"\n[evaluation]\ncurve_points = {value}\n"))
    assert suite.evaluation.curve_points == parsed
