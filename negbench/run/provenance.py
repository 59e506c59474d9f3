"""Provenance of a result row: library versions, git revision, device."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

__all__ = [
    "NOT_ROW_CODE",
    "PACKAGES",
    "PACKAGE_DIR",
    "PINNED",
    "check_code_unchanged",
    "code_revision",
    "determinism",
    "device_name",
    "file_digest",
    "git_revision",
    "library_versions",
    "pin_code_revision",
    "row_code_files",
    "source_digest",
    "versions_json",
]

# every library whose version can change a row's numbers (scikit-learn: the clustering strategies' k-means;
# scipy: the report's significance tests)
PACKAGES = [
    "negbench",
    "torch",
    "transformers",
    "sentence-transformers",
    "numpy",
    "polars",
    "optuna",
    "bm25s",
    "pytrec-eval-terrier",
    "scikit-learn",
    "scipy",
]


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


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # negbench/
# What cannot change a row: the report stage, the command line, the test kit, and the modules that only present
# or alias. Editing them keeps stored rows and studies valid; editing anything else (config, data, core,
# evaluation, the run stage, strategies, generators) keys new rows.
NOT_ROW_CODE = frozenset({"report", "cli", "testing", "__main__.py", "_moved.py", "quiet.py"})


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_revision() -> str | None:
    """The git revision of negbench's own source (not of the working directory), when it is a checkout."""
    out = _git("rev-parse", "--short=12", "HEAD")
    return out.strip() or None if out else None


def row_code_files(root: Path = PACKAGE_DIR) -> list[Path]:
    """The Python sources under ``root`` that can change a result row (all but :data:`NOT_ROW_CODE`)."""
    return [
        path
        for path in sorted(root.rglob("*.py"))
        if "__pycache__" not in path.parts and path.relative_to(root).parts[0] not in NOT_ROW_CODE
    ]


def source_digest(root: Path = PACKAGE_DIR) -> str:
    """SHA-256 (12 hex) of :func:`row_code_files`: what the code that produces a result is, whatever git says (a
    docs commit or a report edit does not change it; an uncommitted edit of the loss does)."""
    digest = hashlib.sha256()
    for path in row_code_files(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


PINNED = "NEGBENCH_CODE_REVISION"


def code_revision() -> str:
    """negbench's version and source digest, as pinned for this suite run (see :func:`pin_code_revision`)."""
    pinned = os.environ.get(PINNED)
    if pinned:
        return pinned
    try:
        text = f"negbench {version('negbench')}"
    except PackageNotFoundError:
        text = "negbench (not installed)"
    return f"{text} src.{source_digest()}"


def pin_code_revision() -> str:
    """Fix the code revision for this process and the job processes it spawns (they inherit the variable)."""
    os.environ[PINNED] = code_revision()
    return os.environ[PINNED]


def check_code_unchanged() -> None:
    """In a job process: refuse to run if negbench's source changed since the suite pinned its revision."""
    pinned = os.environ.get(PINNED)
    if pinned and not pinned.endswith(f"src.{source_digest()}"):
        from negbench.errors import NegbenchError

        raise NegbenchError(
            f"negbench's source changed while the suite was running (pinned: {pinned}); rows "
            "from two code revisions would share one leaderboard: rerun the suite"
        )


def file_digest(path: str | None) -> str | None:
    """SHA-256 (12 hex) of one file (e.g. a plugin strategy's source), or None."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12] if path else None
    except OSError:
        return None


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(torch.device(device))}"
    return f"cpu: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def determinism(device: str) -> str:
    """Make this process's computations reproducible from the seed on ``device``; say what was set.

    CPU kernels are deterministic for a fixed thread count. On CUDA: deterministic algorithms (warn where an
    op has none), cuDNN deterministic and not benchmarking, and cuBLAS's fixed workspace (the variable must be
    set before CUDA starts: the job processes set it first thing).
    """
    if not device.startswith("cuda"):
        return f"cpu: deterministic kernels, {torch.get_num_threads()} threads"
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return (
        "cuda: torch.use_deterministic_algorithms(warn_only), cudnn.deterministic, no cudnn.benchmark, "
        f"CUBLAS_WORKSPACE_CONFIG={os.environ['CUBLAS_WORKSPACE_CONFIG']}"
    )
