"""The public surface for strategy authors: the :class:`Context` a strategy's hooks receive."""

from negbench.core.context import Context

__all__ = ["Context"]
