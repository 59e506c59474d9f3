"""Declared comparisons: ``[[comparisons]] better = "star", worse = "dense"`` — the pairs a suite's author fixed
before the run, tested one-sided on the primary metric as a family of their own
(:mod:`negbench.report.stats.declared`). Report-only: they change no job and no result row."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Comparison", "check_comparisons"]


class Comparison(BaseModel):
    """One declared claim: strategy label ``better`` beats strategy label ``worse``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    better: str = Field(min_length=1)
    worse: str = Field(min_length=1)

    @model_validator(mode="after")
    def _two_strategies(self) -> Comparison:
        if self.better == self.worse:
            raise ValueError(f"better and worse are both {self.better!r}: a comparison needs two strategies")
        return self


def check_comparisons(comparisons: Sequence[Comparison], labels: Sequence[str]) -> None:
    """Every label a strategy label of the suite; no pair declared twice or in both directions (ValueError, naming
    the entry as ``[i].better``)."""
    seen: dict[frozenset[str], int] = {}
    for i, comparison in enumerate(comparisons):
        for side in ("better", "worse"):
            label = getattr(comparison, side)
            if label not in labels:
                raise ValueError(
                    f"[{i}].{side} = {label!r} is not a strategy label of this suite ({', '.join(labels)})"
                )
        pair = frozenset((comparison.better, comparison.worse))
        if pair in seen:
            again = f"{comparison.better!r} and {comparison.worse!r}"
            raise ValueError(f"[{i}] compares {again} again (see [{seen[pair]}])")
        seen[pair] = i
