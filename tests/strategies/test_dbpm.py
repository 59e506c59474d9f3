"""dbpm: a pair whose loss history is persistently high is down-weighted; history, not one step, decides."""

from __future__ import annotations

import io

import pytest
import torch

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.dbpm import DBPM, row_losses

N = 16  # training pairs in the toy population


def _view(example_ids: list[int], positive_logit: dict[int, float], step: int) -> LogitView:
    """Rows ``example_ids``; off-diagonal logits 0; each row's positive logit 4 + small spread unless given."""
    batch = len(example_ids)
    logits = torch.zeros(batch, batch)
    for row, e in enumerate(example_ids):
        logits[row, row] = positive_logit.get(e, 4.0 + 0.1 * (e % 5))
    return LogitView(
        query=torch.zeros(batch, 2),
        docs=torch.zeros(batch, 2),
        logits=logits,
        target=torch.arange(batch),
        mask=torch.zeros(batch, batch, dtype=torch.bool),
        row_weight=torch.ones(batch),
        example_ids=torch.tensor(example_ids),
        doc_ids=torch.arange(batch),
        scale=20.0,
        step=step,
    )


def _epochs(dbpm: DBPM, hard: dict[int, float] | list[dict[int, float]], epochs: int = 2) -> list[LogitView]:
    """Feed ``epochs`` passes over the population (two half-batches per epoch, reversed order in odd epochs)."""
    outs, step = [], 0
    for epoch in range(epochs):
        order = list(range(N)) if epoch % 2 == 0 else list(reversed(range(N)))
        logits = hard[epoch] if isinstance(hard, list) else hard
        for half in (order[: N // 2], order[N // 2 :]):
            outs.append(dbpm.on_logits(_view(half, logits, step)))
            step += 1
    return outs


def _weight_of(views: list[LogitView], example: int) -> float:
    for v in views:
        rows = (v.example_ids == example).nonzero().flatten()
        if len(rows):
            return float(v.row_weight[rows[0]])
    raise AssertionError(example)


def test_downweights_a_pair_with_persistently_high_loss():
    dbpm = DBPM()
    outs = _epochs(dbpm, {5: -2.0})
    first, second = outs[:2], outs[2:]
    assert all(torch.equal(v.row_weight, torch.ones(N // 2)) for v in first), "no history: nobody is judged"
    assert _weight_of(second, 5) < 0.05
    for e in range(N):
        if e != 5:
            assert _weight_of(second, e) == 1.0
    loss_plain = info_nce(_view(list(range(N)), {5: -2.0}, 9))
    weighted = _view(list(range(N)), {5: -2.0}, 9)
    weighted = weighted.replace(row_weight=dbpm.weights(weighted.example_ids, row_losses(weighted)).float())
    assert info_nce(weighted) < loss_plain  # the bad pair's term is suppressed
    assert dbpm.state["flagged"] == 1


def test_constant_weighting_uses_bad_weight():
    outs = _epochs(DBPM.from_params({"weighting": "constant", "bad_weight": 0.25}), {5: -2.0})
    assert _weight_of(outs[2:], 5) == pytest.approx(0.25)


def test_history_not_a_single_bad_step_decides():
    dbpm = DBPM()
    outs = _epochs(dbpm, [{}, {5: -2.0}])  # normal in epoch 1, a high loss only now
    assert _weight_of(outs[2:], 5) == 1.0
    outs = _epochs(dbpm, {5: -2.0}, epochs=2)  # … but it stays high: over epochs its mean rises
    assert _weight_of(outs[2:], 5) < 1.0


def test_low_tail_only_with_both_tails():
    logits = {i: 0.3 * (i % 5) for i in range(N)}  # ordinary pairs: loss ≈ 1.5–2.1
    logits[9] = 30.0  # a suspiciously easy pair (DBPM's noisy positive): loss ≈ 0
    high = _epochs(DBPM.from_params({"tails": "high"}), logits)
    both = _epochs(DBPM.from_params({"tails": "both", "weighting": "constant"}), logits)
    assert _weight_of(high[2:], 9) == 1.0
    assert _weight_of(both[2:], 9) == pytest.approx(0.1)
    assert all(_weight_of(both[2:], e) == 1.0 for e in range(N) if e != 9)


def test_state_resumes():
    dbpm = DBPM()
    _epochs(dbpm, {5: -2.0}, epochs=1)
    buffer = io.BytesIO()
    torch.save(dbpm.state_dict(), buffer)
    buffer.seek(0)
    resumed = DBPM()
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    a = _epochs(dbpm, {5: -2.0}, epochs=1)
    b = _epochs(resumed, {5: -2.0}, epochs=1)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x.row_weight, y.row_weight)


def test_setup_sizes_the_memory(ctx):
    dbpm = DBPM()
    dbpm.setup(ctx)
    assert len(dbpm.state["count"]) == len(ctx.examples)


def test_param_checks():
    with pytest.raises(ConfigError, match="bad_weight"):
        DBPM.from_params({"bad_weight": 1.0})
    with pytest.raises(ConfigError, match="cut_high"):
        DBPM.from_params({"cut_high": 0.0})
    with pytest.raises(ConfigError, match="tails"):
        DBPM.from_params({"tails": "low"})


def test_a_one_epoch_run_never_exercises_its_judgement() -> None:
    """DBPM judges a pair by its loss history, from its second sighting on: a one-epoch run (scifact-cpu) never
    re-weights a pair and trains as in-batch; ``negbench plan`` says so before training."""
    assert "never re-weights a pair, so it trains as in-batch" in DBPM().unexercised(1, 25)
    assert DBPM().unexercised(2, 50) is None
    assert DBPM.from_params({"min_history": 2}).unexercised(2, 50) is not None
