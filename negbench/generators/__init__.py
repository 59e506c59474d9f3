"""Text-negative generators: plugins (entry-point group ``negbench.generators``) that write, from a query and
its positive document, texts that no longer support the query — negatives that are not corpus documents.

A generator that needs a model or a network service is a plugin the user installs; negbench's built-in
``rules`` (:mod:`negbench.generators.rules`) works offline. The ``generated`` strategy caches a generator's
output per dataset keyed by :meth:`NegativeGenerator.fingerprint`, so a generator must be deterministic given
the ``rng`` it is handed.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

__all__ = ["NegativeGenerator"]


class NegativeGenerator:
    """Base class of text-negative generators; subclasses set ``name`` and implement :meth:`generate`.

    A generator is created with no arguments, once when it is first looked up (listing, validation), so its
    ``__init__`` must be cheap: load a model or open a connection in :meth:`prepare`."""

    name: ClassVar[str] = ""

    def prepare(self, documents: Sequence[str]) -> None:
        """See the corpus once before generating (e.g. to collect entities to substitute); default: nothing."""

    def generate(self, query: str, positive: str, count: int, rng: np.random.Generator) -> list[str]:
        """Up to ``count`` distinct texts, each different from ``positive``, that no longer answer ``query`` as
        ``positive`` does (contradicted, altered or missing the key facts). Deterministic given ``rng``."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """What the cache of this generator's output is keyed by: its name and the source code of the module that
        defines its class (so an edit to a helper function or pattern there changes it too; code it imports from
        other modules is not covered: a generator that relies on such code should override this)."""
        try:
            source = inspect.getsource(inspect.getmodule(type(self)))
        except (OSError, TypeError):
            source = type(self).__qualname__
        return f"{self.name}-{hashlib.sha256(source.encode()).hexdigest()[:10]}"
