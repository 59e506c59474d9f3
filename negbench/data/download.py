"""Download BEIR datasets from the official archive into a cache, verifying the published checksum.

``beir:<name>`` is looked up in ``$NEGBENCH_DATA_DIR/<name>``, then in the suite's ``data_dirs``, then in
the cache (``$NEGBENCH_CACHE_DIR`` or ``~/.cache/negbench``), and only then downloaded. The archive base
URL can be pointed at a mirror with ``$NEGBENCH_BEIR_URL``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from negbench.errors import DataError

__all__ = ["BEIR_BASE_URL", "BEIR_MD5", "cache_root", "download_beir", "is_beir_dir", "resolve_beir"]

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"

# md5 of each archive as published in the BEIR README's dataset table.
BEIR_MD5 = {
    "msmarco": "444067daf65d982533ea17ebd59501e4",
    "trec-covid": "ce62140cb23feb9becf6270d0d1fe6d1",
    "nfcorpus": "a89dba18a62ef92f7d323ec890a0d38d",
    "nq": "d4d3d2e48787a744b6f6e691ff534307",
    "hotpotqa": "f412724f78b0d91183a0e86805e16114",
    "fiqa": "17918ed23cd04fb15047f73e6c3bd9d9",
    "arguana": "8ad3e3c2a5867cdced806d6503f29b99",
    "webis-touche2020": "46f650ba5a527fc69e0a6521c5a23563",
    "cqadupstack": "4e41456d7df8ee7760a7f866133bda78",
    "quora": "18fb154900ba42a600f84b839c173167",
    "dbpedia-entity": "c2a39eb420a3164af735795df012ac2c",
    "scidocs": "38121350fc3a4d2f48850f6aff52e4a9",
    "fever": "5a818580227bfb4b35bb6fa46d9b6c03",
    "climate-fever": "8b66f0a9126c521bae2bde127b4dc99d",
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}


def cache_root() -> Path:
    return Path(os.environ.get("NEGBENCH_CACHE_DIR", Path.home() / ".cache" / "negbench"))


def is_beir_dir(path: Path) -> bool:
    return (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file()


def resolve_beir(name: str, data_dirs: list[str] | None = None, checksum: str | None = None) -> Path:
    """Find ``beir:<name>`` locally or download it; return the dataset directory."""
    candidates = []
    if os.environ.get("NEGBENCH_DATA_DIR"):
        candidates.append(Path(os.environ["NEGBENCH_DATA_DIR"]) / name)
    candidates += [Path(d) / name for d in data_dirs or []]
    candidates.append(cache_root() / "datasets" / name)
    for candidate in candidates:
        if is_beir_dir(candidate):
            return candidate
    return download_beir(name, cache_root() / "datasets", checksum=checksum)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_beir(name: str, dest_root: Path, checksum: str | None = None, base_url: str | None = None) -> Path:
    """Download ``<base_url>/<name>.zip``, check its md5, unpack atomically to ``dest_root/<name>``."""
    expected = checksum or BEIR_MD5.get(name)
    if expected is None:
        raise DataError(
            f"no published checksum for BEIR dataset {name!r}; set the dataset's 'checksum' (md5) in the suite",
            field=f"beir:{name}",
        )
    base = (base_url or os.environ.get("NEGBENCH_BEIR_URL") or BEIR_BASE_URL).rstrip("/")
    url = f"{base}/{name}.zip"
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest_root, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
                shutil.copyfileobj(response, out)
        except (urllib.error.URLError, OSError) as exc:
            raise DataError(f"download failed: {exc}", file=url) from None
        actual = _md5(archive)
        if actual != expected.lower():
            raise DataError(f"checksum mismatch: expected md5 {expected}, got {actual}", file=url)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (unpacked / member).resolve()
                if not str(target).startswith(str(unpacked.resolve())):
                    raise DataError(f"unsafe path in archive: {member}", file=url)
            zf.extractall(unpacked)
        root = unpacked / name if (unpacked / name).is_dir() else unpacked
        if not is_beir_dir(root):
            raise DataError("archive holds no corpus.jsonl/queries.jsonl", file=url)
        final = dest_root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(root, final)
    return final
