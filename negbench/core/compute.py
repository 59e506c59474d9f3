"""Compute that does not depend on the machine: FLOPs counted from the tokens each encoder processes.

**Formula** (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1): a forward pass through an
encoder of ``N`` parameters costs about ``2·N`` FLOPs per token, a forward and a backward pass ``6·N``. ``N`` is
the *non-embedding* parameter count: every parameter of the encoder except its embedding tables (token,
position and token-type ``nn.Embedding`` weights: a look-up, not a multiply-add), as in Kaplan's convention. The
attention's context term (``2·n_layer·n_ctx·d`` per token) is left out, as in Kaplan's ``C ≈ 6·N·D``. Tokens are
the non-padding tokens of each batch: the sum of the tokenizer's ``attention_mask``.

**Counting.** :func:`watch` hooks an encoder (every model negbench loads is watched: the model being trained, the
base and guide models of the mining services, a strategy's :func:`~negbench.core.models.load_encoder` model), so
each forward pass adds ``2·N`` per token to this process's FLOP clock, or ``6·N`` when autograd records it (its
backward follows; GradCache's first, gradient-free pass adds ``2·N`` more). A strategy's own model that is not a
SentenceTransformer reports what it processes with ``ctx.compute.add(tokens, params, trained=...)``
(:class:`Compute`). A block is measured like wall time, by the clock's difference (:class:`FlopMeter`), so the
run's phases (training steps, mining, refreshes, evaluation) are split exactly as their seconds are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import nn

from negbench.core.search import model_prompts

__all__ = [
    "FORWARD_FLOPS_PER_TOKEN",
    "TRAINED_FLOPS_PER_TOKEN",
    "Compute",
    "EncoderSizes",
    "FlopMeter",
    "Sizes",
    "TokenCounts",
    "Workload",
    "add_flops",
    "count_tokens",
    "flop_clock",
    "non_embedding_params",
    "token_flops",
    "watch",
]

FORWARD_FLOPS_PER_TOKEN = 2  # × N: one forward pass
TRAINED_FLOPS_PER_TOKEN = 6  # × N: a forward and a backward pass
_WATCHED = "_negbench_flop_params"
_CLOCK = [0.0]


def flop_clock() -> float:
    """FLOPs counted in this process so far (monotonic): measure a block by the difference."""
    return _CLOCK[0]


def add_flops(flops: float) -> None:
    _CLOCK[0] += float(flops)


def token_flops(tokens: float, params: int, trained: bool = False) -> float:
    """``6·N`` (``trained``: forward and backward) or ``2·N`` FLOPs per token."""
    return (TRAINED_FLOPS_PER_TOKEN if trained else FORWARD_FLOPS_PER_TOKEN) * params * float(tokens)


def non_embedding_params(module: nn.Module) -> int:
    """``N``: the parameters of ``module`` outside its ``nn.Embedding`` tables (shared weights counted once)."""
    tables = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters(recurse=False)}
    return sum(p.numel() for p in module.parameters() if id(p) not in tables)


def _tokens(features: Mapping) -> int:
    mask = features.get("attention_mask")
    if isinstance(mask, torch.Tensor):
        return int(mask.sum().item())
    ids = features.get("input_ids")
    return int(ids.numel()) if isinstance(ids, torch.Tensor) else 0


def watch(model: nn.Module) -> int:
    """Count every forward pass of ``model`` (a SentenceTransformer: its first, token-level module is hooked) on
    the FLOP clock; idempotent (a deep copy of a watched model is watched too). Returns its ``N``."""
    params = getattr(model, _WATCHED, None)
    if params is not None:
        return params
    params = non_embedding_params(model)
    target = model[0] if isinstance(model, nn.Sequential) and len(model) else model

    def count(module, args, kwargs):
        features = args[0] if args and isinstance(args[0], Mapping) else kwargs  # a dict or a BatchEncoding
        add_flops(token_flops(_tokens(features), params, trained=torch.is_grad_enabled()))

    target.register_forward_pre_hook(count, with_kwargs=True)
    setattr(model, _WATCHED, params)
    return params


def count_tokens(model, texts: Sequence[str], kind: str, chunk: int = 256) -> np.ndarray:
    """Non-padding tokens of each text as ``model`` encodes it (``kind``: "query" or "document": its prompt,
    truncation to its ``max_seq_length``); no forward pass."""
    query, document = model_prompts(model)
    prompt = query if kind == "query" else document
    out = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), chunk):
        features = model.preprocess(list(texts[start : start + chunk]), prompt=prompt)
        out[start : start + chunk] = features["attention_mask"].sum(dim=1).cpu().numpy()
    return out


class FlopMeter:
    """Context manager: the FLOPs counted while its block ran (``flops``)."""

    def __init__(self) -> None:
        self.flops = 0.0
        self._start = 0.0

    def __enter__(self) -> FlopMeter:
        self._start = flop_clock()
        return self

    def __exit__(self, *exc) -> None:
        self.flops = flop_clock() - self._start


class Compute:
    """``ctx.compute``: how a strategy reports the work of its own models. A SentenceTransformer of its own is
    counted once watched (:meth:`watch`; :func:`~negbench.core.models.load_encoder` models already are); any other
    module reports the non-padding tokens it processes with :meth:`add`, in the phase it runs in (inside a training
    step: ``train_tflop``; in setup, mining or a refresh: ``prep_tflop``)."""

    def __init__(self) -> None:
        self.reported = 0.0  # FLOPs reported with add()

    def add(self, tokens: int, params: int | nn.Module, *, trained: bool = False) -> float:
        """Count ``tokens`` through a model of ``params`` (``N``, or the module: its non-embedding parameters),
        forward only or forward and backward (``trained``); returns the FLOPs added."""
        n = params if isinstance(params, int) else non_embedding_params(params)
        flops = token_flops(tokens, n, trained)
        add_flops(flops)
        self.reported += flops
        return flops

    watch = staticmethod(watch)
    params = staticmethod(non_embedding_params)


class _Counted:
    """What :class:`EncoderSizes` and :class:`TokenCounts` share: the encoder's ``N`` (``params``), the tokens of each
    query (``query_tokens``) and of each corpus document they hold (:meth:`tokens_of`), and FLOPs of tokens."""

    params: int
    query_tokens: dict[str, int]

    def tokens_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def queries(self, qids: Sequence[str]) -> int:
        return sum(self.query_tokens[q] for q in qids)

    def docs(self, ids: Sequence[int] | np.ndarray) -> int:
        return int(self.tokens_of(ids).sum())

    def mean_pair(self, examples: Sequence) -> float:
        """Mean tokens of a training example's query and positive (``query_id``, ``doc``: its corpus index)."""
        if not examples:
            return 0.0
        queries = np.array([self.query_tokens[e.query_id] for e in examples], dtype=np.float64)
        return float((queries + self.tokens_of([e.doc for e in examples])).mean())

    def encode(self, tokens: float) -> float:
        """FLOPs of encoding ``tokens`` (forward only)."""
        return token_flops(tokens, self.params)

    def train(self, tokens: float) -> float:
        """FLOPs of training on ``tokens`` (forward and backward)."""
        return token_flops(tokens, self.params, trained=True)


@dataclass
class EncoderSizes(_Counted):
    """One encoder's ``N`` and the tokens of each corpus document and each query as it encodes them: the inputs of
    the compute budget's estimate (see :meth:`negbench.core.strategy.Strategy.workload`)."""

    params: int
    doc_tokens: np.ndarray  # per corpus index
    query_tokens: dict[str, int]  # per query id

    @cached_property
    def corpus(self) -> int:
        """Tokens of the whole corpus."""
        return int(self.doc_tokens.sum())

    @cached_property
    def mean_doc(self) -> float:
        return float(self.doc_tokens.mean()) if len(self.doc_tokens) else 0.0

    def tokens_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        return self.doc_tokens[np.asarray(ids, dtype=np.int64)]


@dataclass
class TokenCounts(_Counted):
    """The tokens of some corpus documents and queries only, as one encoder encodes them (the same numbers as its
    :class:`EncoderSizes`): what a figure that reads no other text needs (a dev scoring's, the plain loss's). A
    document or query it did not count is a ``KeyError``."""

    params: int
    doc_ids: np.ndarray  # the counted corpus indices, ascending and distinct
    doc_counts: np.ndarray  # the tokens of each
    query_tokens: dict[str, int]  # per counted query id

    def tokens_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.doc_ids, ids), max(len(self.doc_ids) - 1, 0))
        if len(ids) and (not len(self.doc_ids) or (self.doc_ids[at] != ids).any()):
            raise KeyError("corpus documents whose tokens were not counted")
        return self.doc_counts[at]


@dataclass
class Sizes:
    """The base model's :class:`EncoderSizes` and, asked for, the teacher's (the suite's guide; the base model's
    when it names none)."""

    base: EncoderSizes
    teacher_loader: Callable[[], EncoderSizes] | None = field(default=None, repr=False)  # None: the base model

    @cached_property
    def teacher(self) -> EncoderSizes:
        return self.base if self.teacher_loader is None else self.teacher_loader()

    def encoded(self, qids: Sequence[str], *encoders: EncoderSizes) -> float:
        """FLOPs of each distinct encoder of ``encoders`` encoding the corpus and the queries ``qids`` once."""
        distinct = list({id(e): e for e in encoders}.values())
        return sum(e.encode(e.corpus + e.queries(qids)) for e in distinct)


@dataclass(frozen=True)
class Workload:
    """Encoder work a strategy declares for the compute budget's estimate, in FLOPs, for the run length on its
    ``ctx``: ``prep`` before training (setup, mining), ``train`` inside the run's training steps besides the loss's
    own columns (extra columns, models of its own), ``refresh`` over all of the run's refreshes; ``negatives``:
    whether the loss gets the suite's ``num_negatives`` mined columns."""

    prep: float = 0.0
    train: float = 0.0
    refresh: float = 0.0
    negatives: bool = False
