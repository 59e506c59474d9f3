"""What one training run measured (:class:`TrainOutcome`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from negbench.core.probes.curves import StepRecord

__all__ = ["TrainOutcome"]


@dataclass
class TrainOutcome:
    """What one training run did and cost. ``train_s`` is pure training steps: the trainer's wall time less
    negative sampling (``sample_s``), refreshes (``refresh_s``), epoch-end callbacks (``callback_s``) and the
    per-step measurements of :class:`StepDiagnostics` (``diagnostics_s``; their records in ``step_records``; of it,
    ``curve_s`` for the ``curve_points`` dev scorings of the learning curve).
    FLOPs (:mod:`negbench.core.compute`) are split the same way: ``train_flops`` (the loss's columns, a strategy's
    extra columns and the models it steps inside the training step), ``sample_flops``, ``refresh_flops``; those of
    callbacks and measurements (``excluded_flops``) are nobody's cost."""

    train_s: float
    steps: int
    examples_seen: int
    losses: list[float] = field(default_factory=list)
    refreshes: int = 0
    refresh_s: float = 0.0
    sample_s: float = 0.0
    callback_s: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    # planted false negatives among the negative columns the loss saw (None when nothing is planted)
    planted_fn_inbatch_share: float | None = None
    # the smallest share of the run's epochs in which any training example was trained (see core.batching.Coverage)
    coverage: float | None = None
    diagnostics_s: float = 0.0
    curve_s: float = 0.0
    curve_points: int = 0
    step_records: list[StepRecord] = field(default_factory=list)
    train_flops: float = 0.0
    sample_flops: float = 0.0
    refresh_flops: float = 0.0
    excluded_flops: float = 0.0

    @property
    def batch_stats(self) -> dict[str, float | int | None]:
        sizes = self.batch_sizes
        return {
            "mean_batch_size": sum(sizes) / len(sizes) if sizes else None,
            "min_batch_size": min(sizes) if sizes else None,
            "max_batch_size": max(sizes) if sizes else None,
        }
