"""The Strategy protocol: how a negative-sampling strategy plugs into negbench's one training loop.

A strategy changes *which negatives the model sees*, never the model, the loss formula or the optimiser.
Every hook is optional; a strategy overrides only what it changes:

* :meth:`Strategy.mine` — offline candidates per training example (cached services: BM25, dense);
* :meth:`Strategy.sample` — per-epoch choice of ``num_negatives`` among the candidates;
* :meth:`Strategy.batches` — batch composition (which examples share a batch: in-batch negatives);
* :meth:`Strategy.on_logits` — mask / weight / extend the logit view inside the shared InfoNCE loss;
* :meth:`Strategy.refresh` — periodic re-mining or re-clustering during training.

Negatives are document indices: corpus documents, or training-only texts a strategy adds with
:meth:`negbench.core.context.Context.add_texts` (generated negatives; indices from ``len(corpus)`` on), which the
trainer embeds like any document and which are never retrieved or evaluated. A strategy may own trainable parts
of its own (``ar2``'s ranker), stepped inside its hooks: their time, memory and FLOPs are part of the run's (a model
that is not a watched SentenceTransformer reports its tokens with ``ctx.compute.add``). :meth:`Strategy.workload`
declares the encoder work a run will do, for the compute budget's estimate made before training.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import TypeAdapter, ValidationError

from negbench.core.compute import Sizes, Workload
from negbench.core.types import LogitView, Negatives
from negbench.errors import ConfigError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

    from negbench.core.context import Context

__all__ = ["EmptyParams", "Strategy", "StrategySpec", "periodic_unexercised"]


@dataclass(frozen=True)
class EmptyParams:
    """A strategy without parameters."""


class Strategy:
    """Base class of every strategy (built-in or plugin). Subclasses set ``name`` and override hooks."""

    name: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    requires: ClassVar[frozenset[str]] = frozenset()  # services: "bm25", "dense", "guide"
    trains: ClassVar[bool] = True  # False only for the zero-shot reference
    Params: ClassVar[type] = EmptyParams

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()
        self.state: dict[str, Any] = {}

    # ------------------------------------------------------------------ parameters and search space
    @classmethod
    def parse_params(cls, raw: dict[str, Any], where: str = "params") -> Any:
        """Validate TOML/Optuna values into the frozen ``Params`` dataclass; errors name the field."""
        known = {f.name for f in dataclasses.fields(cls.Params)}
        for key in raw:
            if key not in known:
                raise ConfigError(
                    f"strategy {cls.name!r} has no parameter {key!r} (has: {', '.join(sorted(known)) or 'none'})",
                    field=f"{where}.{key}",
                )
        try:
            hints = typing.get_type_hints(cls.Params)
        except Exception:  # a plugin's annotation that does not resolve: its dataclass validation still runs
            hints = {}
        for key, value in raw.items():  # strict per field: no bool for an int, no float for an int, no string
            if isinstance(value, float) and not math.isfinite(value):  # for a number; finite numbers only
                raise ConfigError(f"must be a finite number, got {value}", field=f"{where}.{key}")
            try:
                TypeAdapter(hints.get(key, Any)).validate_python(value, strict=True)
            except ValidationError as exc:
                raise ConfigError(f"{exc.errors()[0]['msg']}, got {value!r}", field=f"{where}.{key}") from None
        try:
            return TypeAdapter(cls.Params).validate_python(dict(raw))
        except ValidationError as exc:
            err = exc.errors()[0]
            message = err["msg"].removeprefix("Value error, ")
            loc = ".".join(str(p) for p in err["loc"])
            if not loc and message.split(maxsplit=1)[0] in known:  # a __post_init__ check: "<field> must …"
                loc = message.split(maxsplit=1)[0]
            raise ConfigError(message, field=f"{where}.{loc}" if loc else where) from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc), field=where) from None

    @classmethod
    def from_params(cls, raw: dict[str, Any] | None = None, where: str = "params") -> Strategy:
        return cls(cls.parse_params(raw or {}, where))

    @classmethod
    def search_space(cls) -> dict[str, BaseDistribution]:
        """Default Optuna search space over ``Params`` fields; suites may narrow or replace it."""
        return {}

    # -------------------------------------------------------------------------------------- hooks
    def setup(self, ctx: Context) -> None:
        """Called once before mining; build indices, clusters, guide models."""

    def mine(self, ctx: Context) -> Negatives | None:
        """Offline candidate negatives per training example, or None (no mined negatives)."""
        return None

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        """Choose ``ctx.num_negatives`` per example for this epoch; default: the top candidates."""
        chosen = []
        for i, ids in enumerate(candidates.ids):
            chosen.append(ctx.fill_random(i, ids[: ctx.num_negatives], epoch))
        return Negatives(chosen)

    def batches(self, ctx: Context, epoch: int) -> list[list[int]] | None:
        """Batch composition for this epoch (lists of example indices), or None for random batches.

        A composer must return at least ``ctx.steps_per_epoch`` batches of exactly ``ctx.batch_size``
        examples (no example twice); the trainer takes the first ``ctx.steps_per_epoch`` full ones and drops
        the short remainder (see :mod:`negbench.core.budget`).
        """
        return None

    # ------------------------------------------------------------------------------------- budget
    def examples_per_epoch(self, n: int) -> int:
        """Training examples composed per epoch out of ``n``; override only to change the budget by design."""
        return n

    def budget_reason(self) -> str | None:
        """Why this strategy's data budget differs from the others' by design (None: it does not)."""
        return None

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        """What of this strategy's method a run of ``epochs`` epochs and ``total_steps`` optimiser steps never
        exercises (a refresh or a judgement that would come later), as a clause naming the setting; None when the
        run exercises all of it. ``negbench plan`` prints it, so a row does not carry a name it does not earn."""
        return None

    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """The encoder work of a run of ``ctx.total_steps`` steps besides the loss's query and positive columns,
        declared before training for the compute budget (``[training] budget = "compute"``, see
        :mod:`negbench.core.setup`). Default: the base model encodes the corpus and the training queries once when
        ``requires`` has ``"dense"``, the teacher (``ctx.guided()``) when it has ``"guide"``; the loss gets the
        ``num_negatives`` mined columns when :meth:`mine` is overridden. Override where a strategy does more
        (refreshes, extra columns, models of its own) or other (a teacher instead of the base model)."""
        encoders = [sizes.base] * ("dense" in self.requires) + [sizes.teacher] * ("guide" in self.requires)
        return Workload(prep=sizes.encoded(ctx.query_ids, *encoders), negatives=type(self).mine is not Strategy.mine)

    def on_logits(self, view: LogitView) -> LogitView:
        """Mask, weight or extend the logits of one batch inside the shared loss."""
        return view

    def refresh_due(self, step: int) -> bool:
        """Whether :meth:`refresh` should run after optimiser step ``step``."""
        return False

    def refresh(self, ctx: Context, step: int) -> Negatives | None:
        """Re-mine or re-cluster with the model being trained; new candidates, or None to keep them."""
        return None

    # ------------------------------------------------------------------------------------- resume
    def state_dict(self) -> dict[str, Any]:
        return dict(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state = dict(state)


@dataclass
class StrategySpec:
    """A strategy class plus the validated params a suite gave it (what the runner instantiates)."""

    cls: type[Strategy]
    params: Any
    label: str
    raw_params: dict[str, Any] = field(default_factory=dict)
    index: int = 0  # position in the suite's [[strategies]]
    space: dict[str, Any] = field(default_factory=dict)  # merged Optuna search space

    def build(self, overrides: dict[str, Any] | None = None) -> Strategy:
        if not overrides:
            return self.cls(self.params)
        return self.cls(self.cls.parse_params({**self.raw_params, **overrides}))


def periodic_unexercised(every: int, length: int, unit: str, setting: str, action: str, instead: str) -> str | None:
    """:meth:`Strategy.unexercised` of a strategy that does ``action`` every ``every`` ``unit`` (never after the
    run's last): None when a run of ``length`` of them has one, else
    ``"<action> every <every> <unit> (<setting>) but the run has <length> <unit>: <instead>"``."""
    if every < length:
        return None
    return f"{action} every {every} {unit} ({setting}) but the run has {length} {unit}: {instead}"
