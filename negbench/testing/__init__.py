"""Test helpers for strategy authors: offline fixtures and the conformance test class."""

from negbench.testing.fixtures import build_tiny_encoder, write_toy_beir

__all__ = ["build_tiny_encoder", "write_toy_beir"]
