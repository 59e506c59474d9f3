"""The hardness probe on hand-built logits with known answers, and on a real training run."""

from __future__ import annotations

import math

import pytest
import torch

from negbench.core.probes.hardness import ACTIVE_MASS, hardness_stats
from negbench.core.strategy import LogitView, Negatives, Strategy


def view(logits, mask=None, scale=20.0, extra=None) -> LogitView:
    """A (B, N) view whose first B columns are the rows' positives (target = row), then negatives column-major."""
    logits = torch.as_tensor(logits, dtype=torch.float32)
    batch, width = logits.shape
    return LogitView(
        query=torch.zeros(batch, 2),
        docs=torch.zeros(width, 2),
        logits=logits,
        target=torch.arange(batch),
        mask=torch.zeros(batch, width, dtype=torch.bool) if mask is None else torch.as_tensor(mask),
        row_weight=torch.ones(batch),
        example_ids=torch.arange(batch),
        doc_ids=torch.arange(width),
        scale=scale,
        extra_logits=extra,
    )


def test_uniform_logits_every_negative_active_and_hardest_share_one_over_n():
    stats = hardness_stats(view(torch.zeros(2, 6)))  # B=2, two mined negatives per row: 5 negatives a row
    assert stats["softmax_negatives"] == 5
    assert stats["active_negatives"] == 5
    assert stats["hardest_share"] == pytest.approx(1 / 6)
    assert stats["pos_rank"] == 1  # ties do not outrank the positive
    assert stats["pos_score"] == stats["neg_score"] == stats["mined_neg_score"] == 0


def test_one_negative_carrying_all_the_mass():
    logits = torch.full((2, 4), -40.0)
    logits[0, 0] = logits[1, 1] = 0.0  # positives
    logits[0, 2] = 40.0  # row 0's own mined negative (column B + 0·B + 0) dominates its softmax
    logits[1, 3] = 40.0  # row 1's own mined negative
    stats = hardness_stats(view(logits, scale=40.0))
    assert stats["hardest_share"] == pytest.approx(1.0, abs=1e-6)
    assert stats["active_negatives"] == 1
    assert stats["pos_rank"] == 2
    assert stats["pos_score"] == 0.0
    assert stats["mined_neg_score"] == pytest.approx(1.0)  # cosines: logit / scale
    assert stats["in_batch_neg_score"] == pytest.approx(-1.0)  # the other row's positive and mined negative
    assert stats["neg_score"] == pytest.approx((1.0 - 1.0 - 1.0) / 3)


def test_masked_columns_leave_the_softmax_and_extra_logits_join_it():
    mask = torch.zeros(2, 4, dtype=torch.bool)
    mask[0, 3] = mask[1, 2] = True  # the other row's mined negative is a labelled positive: masked
    stats = hardness_stats(view(torch.zeros(2, 4), mask=mask))
    assert stats["softmax_negatives"] == 2 and stats["hardest_share"] == pytest.approx(1 / 3)
    extra = torch.zeros(2, 3)
    stats = hardness_stats(view(torch.zeros(2, 4), mask=mask, extra=extra))
    assert stats["softmax_negatives"] == 5 and stats["active_negatives"] == 5
    assert stats["hardest_share"] == pytest.approx(1 / 6)


def test_active_threshold_is_one_percent_of_the_row_mass():
    # row mass: positive e^0, negatives e^a (just above 1 %) and e^b (just below)
    def logit(share):  # a negative with this share of a 3-term softmax whose other two terms are ~1 and tiny
        return math.log(share / (1 - share))

    logits = torch.tensor(
        [[0.0, -50.0, logit(ACTIVE_MASS * 1.2), -50.0], [-50.0, 0.0, -50.0, logit(ACTIVE_MASS * 0.8)]]
    )
    stats = hardness_stats(view(logits))
    assert stats["active_negatives"] == pytest.approx(0.5)  # row 0: one active; row 1: none


def test_without_mined_negatives_there_is_no_mined_score():
    stats = hardness_stats(view(torch.zeros(3, 3)))
    assert "mined_neg_score" not in stats and stats["softmax_negatives"] == 2


class RefreshAtThree(Strategy):
    """Random negatives, refreshed (to new random ones) after step 3."""

    name = "refresh-at-three"

    def mine(self, ctx):
        return Negatives([ctx.fill_random(i, [], 0) for i in range(len(ctx.examples))])

    def refresh_due(self, step):
        return step == 3

    def refresh(self, ctx, step):
        return Negatives([ctx.fill_random(i, [], 1) for i in range(len(ctx.examples))])


def test_training_records_the_probe_every_n_steps_and_at_refresh(ctx, tiny_model):
    from negbench.config.suite import ModelConfig, TrainingConfig
    from negbench.core.models import load_model
    from negbench.core.probes.hardness import HARDNESS_METRICS
    from negbench.core.training.loop import Diagnostics, train

    strategy = RefreshAtThree()
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(max_steps=5, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    outcome = train(
        model, ctx, strategy, cfg, device="cpu", candidates=strategy.mine(ctx), diagnostics=Diagnostics(every=2)
    )
    records = outcome.step_records
    assert {r.kind for r in records} == {"hardness"}
    assert sorted({r.step for r in records}) == [2, 3, 4]  # every 2 steps, and the refresh at 3
    assert {r.metric for r in records} == set(HARDNESS_METRICS)
    by_step = {r.step: r for r in records}
    assert [by_step[s].examples for s in (2, 3, 4)] == [16, 24, 32]
    walls = [by_step[s].wall_s for s in (2, 3, 4)]
    assert walls == sorted(walls) and walls[0] > 0
    assert all(math.isfinite(r.value) for r in records)
    assert outcome.diagnostics_s > 0
