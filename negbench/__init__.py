"""negbench: a declarative benchmark harness for negative-sampling strategies."""

__version__ = "0.1.0"
