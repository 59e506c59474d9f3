"""``none``: the zero-shot reference — no training, the base model evaluated as it is."""

from __future__ import annotations

from negbench.strategy import Strategy

__all__ = ["NoTraining"]


class NoTraining(Strategy):
    """Zero-shot reference row: every leaderboard carries the untrained base model."""

    name = "none"
    citation = "Zero-shot base model (no fine-tuning)."
    trains = False
