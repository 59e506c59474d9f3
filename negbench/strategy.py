"""The public surface for strategy authors: the protocol, the values it passes, and the helpers built-in
strategies use (``Workload``, ``Sizes`` and ``EncoderSizes`` for the compute budget's estimate, ``Compute`` for
the FLOPs of a strategy's own models). Third-party plugins import from here (and from :mod:`negbench.context`,
:mod:`negbench.generators`, :mod:`negbench.testing`); the modules behind it may move between releases."""

from negbench.core.batching import pack, random_batches
from negbench.core.compute import Compute, EncoderSizes, Sizes, Workload
from negbench.core.models import load_encoder
from negbench.core.registry import generators
from negbench.core.search import encode, exact_topk
from negbench.core.strategy import EmptyParams, Strategy, StrategySpec, periodic_unexercised
from negbench.core.types import LogitView, Negatives
from negbench.errors import ConfigError

__all__ = [
    "Compute",
    "ConfigError",
    "EmptyParams",
    "EncoderSizes",
    "LogitView",
    "Negatives",
    "Sizes",
    "Strategy",
    "StrategySpec",
    "Workload",
    "encode",
    "exact_topk",
    "generators",
    "load_encoder",
    "pack",
    "periodic_unexercised",
    "random_batches",
]
