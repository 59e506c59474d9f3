"""Provenance of a result row: library versions, git revision, device."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version

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


def git_revision() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
