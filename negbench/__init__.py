"""negbench: a declarative benchmark harness for negative-sampling strategies.

The package reads as its data flow, one stage per subpackage, each importing only the stages before it:
``config`` → ``data`` → ``core`` → ``evaluation`` → ``run`` → ``report`` → ``cli`` (docs/architecture.md).
"""

from negbench import _moved

__all__ = []

__version__ = "0.1.0"

_moved.install()
