"""Where a dataset's directory comes from: a small registry of source schemes.

``<path>`` is a BEIR-layout directory; ``beir:<name>`` is downloaded (or found in ``data_dirs``) once and cached;
``mteb:<Task>`` is an MTEB retrieval task written out in the BEIR layout once and cached. A new scheme is one
function added to :data:`SOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from negbench.config.suite import DatasetConfig
from negbench.data.download import cache_root, is_beir_dir, resolve_beir
from negbench.errors import DataError

__all__ = ["SOURCES", "resolve_source"]


def _beir(name: str, cfg: DatasetConfig, data_dirs: list[str] | None) -> Path:
    return resolve_beir(name, data_dirs, checksum=cfg.checksum)


def _mteb(name: str, cfg: DatasetConfig, data_dirs: list[str] | None) -> Path:
    from negbench.data.mteb import materialize_mteb_task  # imports mteb (slow): only when asked

    return materialize_mteb_task(name, cache_root() / "mteb")


SOURCES: dict[str, Callable[[str, DatasetConfig, list[str] | None], Path]] = {"beir": _beir, "mteb": _mteb}


def resolve_source(cfg: DatasetConfig, data_dirs: list[str] | None = None) -> Path:
    """Turn a dataset ``source`` into a BEIR-layout directory."""
    source = cfg.source
    scheme, sep, rest = source.partition(":")
    if sep and scheme in SOURCES:
        return SOURCES[scheme](rest, cfg, data_dirs)
    if ":" in source.split("/")[0] and not Path(source).exists():
        known = ", ".join(f"{name}:<…>" for name in SOURCES)
        raise DataError(f"unknown source scheme {scheme!r}: use a directory path or one of {known}", field="source")
    path = Path(source).expanduser()
    if not path.is_dir():
        raise DataError(f"directory not found: {path}", field="source")
    if not is_beir_dir(path):
        raise DataError(f"not a BEIR-layout directory (needs corpus.jsonl and queries.jsonl): {path}", field="source")
    return path
