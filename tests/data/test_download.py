"""The BEIR downloader against a local HTTP server on 127.0.0.1: checksum check, atomic unpack, lookup order."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
import zipfile
from functools import partial

import pytest

from negbench.data.download import download_beir, resolve_beir
from negbench.errors import DataError


@pytest.fixture
def server(tmp_path, toy_data):
    serve_dir = tmp_path / "www"
    serve_dir.mkdir()
    archive = serve_dir / "toyset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in toy_data.rglob("*"):
            if path.is_file():
                zf.write(path, f"toyset/{path.relative_to(toy_data)}")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(serve_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *a, **k: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.md5(archive.read_bytes()).hexdigest()
    httpd.shutdown()


def test_download_verifies_checksum_and_unpacks(server, tmp_path):
    url, md5 = server
    out = download_beir("toyset", tmp_path / "cache", checksum=md5, base_url=url)
    assert (out / "corpus.jsonl").is_file() and (out / "qrels" / "test.tsv").is_file()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")]


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    url, _ = server
    with pytest.raises(DataError, match="checksum mismatch"):
        download_beir("toyset", tmp_path / "cache", checksum="0" * 32, base_url=url)
    assert list((tmp_path / "cache").iterdir()) == []


def test_unknown_dataset_without_checksum(tmp_path):
    with pytest.raises(DataError, match="no published checksum"):
        download_beir("made-up", tmp_path / "cache", base_url="http://127.0.0.1:9")


def test_connection_error_is_one_line(tmp_path):
    with pytest.raises(DataError, match="download failed"):
        download_beir("scifact", tmp_path / "cache", base_url="http://127.0.0.1:9")


def test_resolve_prefers_data_dir_then_cache_then_download(server, tmp_path, toy_data, monkeypatch):
    url, md5 = server
    monkeypatch.setenv("NEGBENCH_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("NEGBENCH_BEIR_URL", url)
    monkeypatch.delenv("NEGBENCH_DATA_DIR", raising=False)
    local = tmp_path / "local"
    shutil.copytree(toy_data, local / "toyset")
    assert resolve_beir("toyset", [str(local)]) == local / "toyset"
    monkeypatch.setenv("NEGBENCH_DATA_DIR", str(local))
    assert resolve_beir("toyset") == local / "toyset"
    monkeypatch.delenv("NEGBENCH_DATA_DIR")
    downloaded = resolve_beir("toyset", checksum=md5)
    assert downloaded == tmp_path / "c" / "datasets" / "toyset"
    assert resolve_beir("toyset") == downloaded  # now from the cache, no checksum needed
