"""How loud the libraries are: negbench's own lines and errors only, unless ``--verbose``.

The choice is kept in ``NEGBENCH_VERBOSE`` so the spawned job processes (:mod:`negbench.run.isolation`) make
the same one (transformers' "Loading weights" bars otherwise appear in every job).
"""

from __future__ import annotations

import logging
import os

__all__ = ["VERBOSE_ENV", "quiet_libraries"]

VERBOSE_ENV = "NEGBENCH_VERBOSE"


def quiet_libraries(verbose: bool | None = None) -> None:
    """Log at INFO when ``verbose`` (default: as ``NEGBENCH_VERBOSE`` says), else WARNING with transformers'
    progress bars and notices off."""
    if verbose is None:
        verbose = os.environ.get(VERBOSE_ENV) == "1"
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not verbose:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
