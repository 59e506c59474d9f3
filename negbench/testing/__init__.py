"""Test helpers for strategy authors: offline fixtures and the conformance test class."""

from negbench.testing.conformance import StrategyConformance, make_context, toy_setup
from negbench.testing.fixtures import build_tiny_encoder, write_toy_beir

__all__ = ["StrategyConformance", "build_tiny_encoder", "make_context", "toy_setup", "write_toy_beir"]
