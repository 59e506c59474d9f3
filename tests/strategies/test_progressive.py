"""progressive: the rank window of the mined negatives moves on the declared schedule (per epoch, and at
evenly spaced steps inside an epoch through refresh)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from negbench.errors import ConfigError
from negbench.strategies.progressive import Progressive

EASY_TO_HARD = {"start_min": 40, "start_max": 60, "end_min": 0, "end_max": 20}


def test_linear_schedule_slides_the_window():
    strategy = Progressive.from_params({**EASY_TO_HARD, "schedule": "linear"})
    assert [strategy.window_at(e, 5) for e in range(5)] == [(40, 60), (30, 50), (20, 40), (10, 30), (0, 20)]


def test_step_schedule_jumps_between_stages():
    strategy = Progressive.from_params({**EASY_TO_HARD, "schedule": "step", "stages": 2})
    assert [strategy.window_at(e, 4) for e in range(4)] == [(40, 60), (40, 60), (0, 20), (0, 20)]
    three = Progressive.from_params({**EASY_TO_HARD, "schedule": "step", "stages": 3})
    assert [three.window_at(e, 6) for e in range(6)] == [(40, 60)] * 2 + [(20, 40)] * 2 + [(0, 20)] * 2


def test_widening_schedule():
    strategy = Progressive.from_params({"start_min": 0, "start_max": 10, "end_min": 0, "end_max": 50})
    assert [strategy.window_at(e, 3) for e in range(3)] == [(0, 10), (0, 30), (0, 50)]


def test_sampled_negatives_lie_in_the_scheduled_window(ctx):
    ctx = dataclasses.replace(ctx, epochs=3)
    strategy = Progressive.from_params({**EASY_TO_HARD, "updates_per_epoch": 1})
    candidates = strategy.mine(ctx)
    mean_rank = []
    for epoch in range(3):
        lo, hi = strategy.window_at(epoch, ctx.epochs)
        chosen = strategy.sample(ctx, candidates, epoch)
        ranks = []
        for i, ids in enumerate(chosen.ids):
            ranked = candidates.ids[i].tolist()
            ranks += [ranked.index(int(d)) for d in ids]
        assert all(lo <= r < hi for r in ranks), (epoch, lo, hi)
        mean_rank.append(np.mean(ranks))
    assert mean_rank[0] > mean_rank[1] > mean_rank[2]  # easy → hard


def _ranks(candidates, chosen) -> list[int]:
    return [candidates.ids[i].tolist().index(int(d)) for i, ids in enumerate(chosen.ids) for d in ids]


def test_refresh_moves_the_window_inside_an_epoch(ctx):
    ctx = dataclasses.replace(ctx, epochs=1, steps_per_epoch=len(ctx.examples) // ctx.batch_size)
    strategy = Progressive.from_params({**EASY_TO_HARD, "updates_per_epoch": 4})
    strategy.setup(ctx)
    candidates = strategy.mine(ctx)
    steps = strategy.state["steps_per_epoch"]
    assert steps == len(ctx.examples) // ctx.batch_size  # the run's budget: full batches only
    due = [-(-k * steps // 4) for k in (1, 2, 3)]  # a quarter, half, three quarters of the epoch
    assert [s for s in range(1, 2 * steps) if strategy.refresh_due(s)] == due
    windows = [(40, 60), (27, 47), (13, 33), (0, 20)]  # t = 0, 1/3, 2/3, 1
    assert [strategy.window_at(u, 4) for u in range(4)] == windows
    lo, hi = windows[0]
    assert all(lo <= r < hi for r in _ranks(candidates, strategy.sample(ctx, candidates, 0)))
    for step, (lo, hi) in zip(due, windows[1:], strict=True):
        fresh = strategy.refresh(ctx, step)
        assert all(lo <= r < hi for r in _ranks(fresh, strategy.sample(ctx, fresh, 0))), step


def test_bad_window_is_a_config_error():
    with pytest.raises(ConfigError, match="end_max"):
        Progressive.from_params({"end_min": 10, "end_max": 5})


def test_one_phase_is_no_curriculum() -> None:
    one = Progressive.from_params({"updates_per_epoch": 1})
    assert "no curriculum" in one.unexercised(1, 25) and one.unexercised(2, 50) is None
    assert Progressive().unexercised(1, 25) is None
    assert "no curriculum" in Progressive().unexercised(1, 1)  # four phases, but a one-step epoch never switches


def test_too_few_steps_for_every_phase_never_reach_the_end_window() -> None:
    """With fewer steps per epoch than ``updates_per_epoch`` the phase index jumps and stops short of the last
    phase; the note says how many are reached, and the refresh schedule agrees with it."""
    short = Progressive()  # 4 phases per epoch
    assert "reach 2 of them: the end window is never used" in short.unexercised(1, 2)
    short.state.update(epochs=1, steps_per_epoch=2)
    assert [s for s in range(1, 2) if short.refresh_due(s)] == [1]  # one switch: phases 0 and 2 of 4
    assert short.unexercised(1, 4) is None and short.unexercised(2, 8) is None
