"""The public surface for strategy authors: the :class:`Context` a strategy's hooks receive, and its ``compute``
(:class:`Compute`: report the tokens your own models process)."""

from negbench.core.compute import Compute
from negbench.core.context import Context

__all__ = ["Compute", "Context"]
