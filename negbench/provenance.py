"""Provenance of a result row: library versions, git revision, device."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

PACKAGES = ["negbench", "torch", "transformers", "sentence-transformers", "numpy", "polars", "optuna",
            "bm25s", "pytrec-eval-terrier"]


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def versions_json() -> str:
    return json.dumps(library_versions(), sort_keys=True)


PACKAGE_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_revision() -> str | None:
    """The git revision of negbench's own source (not of the working directory), when it is a checkout."""
    out = _git("rev-parse", "--short=12", "HEAD")
    return out.strip() or None if out else None


@functools.cache
def code_revision() -> str:
    """What identifies the code that produces a result: negbench's version, its git revision and, when its
    source has uncommitted changes, a digest of them (so an edited harness never reuses old results)."""
    try:
        text = f"negbench {version('negbench')}"
    except PackageNotFoundError:
        text = "negbench (not installed)"
    rev = git_revision()
    if rev:
        text += f" {rev}"
        digest = hashlib.sha256((_git("diff", "HEAD", "--", ".") or "").encode())
        untracked = (_git("ls-files", "--others", "--exclude-standard", "--", ".") or "").split()
        for name in sorted(untracked):
            digest.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes())
        if untracked or _git("diff", "HEAD", "--quiet", "--", ".") is None:
            text += f"+dirty.{digest.hexdigest()[:10]}"
    return text


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
