"""Built-in strategies; each registers through the ``negbench.strategies`` entry-point group."""

__all__ = []
