"""``[evaluation] primary``: the metric the report's verdict rests on, validated against the evaluated metrics."""

from __future__ import annotations

from negbench.config.load import load_suite
from tests.config.test_config import VALID, error_of, write


def test_primary_defaults_to_the_tuning_metric(tmp_path):
    assert load_suite(write(tmp_path, VALID)).primary_metric == "ndcg@10"
    tuned = VALID + '\n[tuning]\nmetric = "recall@100"\n'
    assert load_suite(write(tmp_path, tuned)).primary_metric == "recall@100"
    # a tuning metric that is not evaluated (and not tuned on: n_trials = 0) is no default: the first metric is
    untuned = VALID + '\n[evaluation]\nmetrics = ["map@100", "mrr@10"]\n'
    assert load_suite(write(tmp_path, untuned)).primary_metric == "map@100"


def test_declared_primary_wins_and_stays_out_of_the_hash(tmp_path):
    plain = load_suite(write(tmp_path, VALID))
    declared = load_suite(write(tmp_path, VALID + '\n[evaluation]\nprimary = "mrr@10"\n'))
    assert declared.primary_metric == "mrr@10" and declared.evaluation.primary == "mrr@10"
    # report-only: it changes no job key (job_key dumps the evaluation settings) and not the suite's hash
    assert "primary" not in declared.evaluation.model_dump(mode="json")
    assert declared.config_hash() == plain.config_hash()


def test_primary_must_be_an_evaluated_metric(tmp_path):
    msg = error_of(tmp_path, VALID + '\n[evaluation]\nmetrics = ["ndcg@10", "recall@100"]\nprimary = "mrr@10"\n')
    assert "evaluation.primary" in msg and "'mrr@10' is not one of the evaluation metrics" in msg
    assert "\n" not in msg.strip()  # one line
    assert "evaluation.primary" in error_of(tmp_path, VALID + '\n[evaluation]\nprimary = ""\n')
