"""Shared parameter checks for rank-window strategies."""

from __future__ import annotations


def check_window(range_min: int, range_max: int) -> None:
    if range_min < 0:
        raise ValueError(f"range_min must be >= 0, got {range_min}")
    if range_max <= range_min:
        raise ValueError(f"range_max ({range_max}) must be greater than range_min ({range_min})")
