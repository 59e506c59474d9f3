"""``ar2``: an adversarial retriever–ranker pair; the retriever fits the ranker's distribution over its own
hard candidates.

Reference:
    Zhang et al. 2022, "Adversarial Retriever-Ranker for Dense Text Retrieval" (AR2), ICLR 2022
    (arXiv:2110.03611); reference code: microsoft/SimXNS (co-training scripts).

AR2 plays a minimax game: the retriever (the dual encoder being trained) retrieves candidate negatives from
its own top-k, the ranker (a cross-encoder) learns to pick the positive among them (cross-entropy over
``{d⁺} ∪ D⁻``), and the retriever is trained toward the ranker's distribution over the same candidates
(a KL / soft-target term), so it retrieves what the ranker cannot yet tell apart. Here:

* candidates are ``ance``'s: ranks ``range_min..range_max`` of the retriever's own dense top-k, re-mined with the
  model under training every ``refresh_every`` steps (the base model's list before the first refresh);
* the ranker is initialised from the base model's transformer with a fresh linear head on the first token
  (the pair ``[query; document]`` encoded jointly), owned by the strategy with its own AdamW; at every training
  step it scores each row's own candidates (its positive and its ``num_negatives``), takes one step of
  cross-entropy toward the positive, and its scores *before* that step (temperature ``temperature``) give
  the row's soft target: ``(1 − distill_weight) · onehot(positive) + distill_weight · p_ranker`` over the row's
  columns (in-batch columns get 0). The ranker's time and memory are spent inside the training step, so they
  are part of the row's ``train_s`` and peak memory;
* the ranker's forward and backward run ``ranker_chunk`` rows at a time (gradients accumulated, one optimiser
  step), so its activation memory does not grow with the batch;
* the ranker is trusted only after ``ranker_warmup`` updates (before, the retriever's loss is plain InfoNCE);
  AR2 likewise starts its game from a warmed-up ranker. A frozen ranker (``ranker_lr = 0``) is never
  trusted, so it is never run: ``ar2`` with a frozen ranker is the ``ance`` run (and, with no refresh within the
  run, the static ``dense`` run) step for step.

Departures: AR2 alternates blocks of retriever and ranker steps and adds an R-drop term to the ranker; here both
move every step and the ranker has only the cross-entropy. The ranker's dropout draws from its own seeded
generator, so running it never changes the retriever's random stream. The cross-encoder is a small module
written here rather than sentence-transformers' ``CrossEncoder``, which loads from a path or the hub, whereas
negbench's base model may exist only in memory and the ranker must step inside negbench's loss.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution, IntDistribution
from torch import nn

from negbench.context import Context
from negbench.strategies.ance import ANCE, ANCEParams
from negbench.strategy import LogitView

__all__ = ["AR2", "MAX_WARMUP", "MIN_TEMPERATURE", "AR2Params", "Ranker", "own_columns", "soft_target"]

MIN_TEMPERATURE = 0.01
MAX_WARMUP = 100_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AR2Params(ANCEParams):
    ranker_lr: float = 5e-5
    ranker_warmup: int = 10
    distill_weight: float = 0.5
    temperature: float = 1.0
    ranker_chunk: int = 8  # rows per ranker forward/backward (memory only: the step is the same)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.ranker_lr <= 1.0:
            raise ValueError(f"ranker_lr must be in [0, 1] (0: a frozen ranker), got {self.ranker_lr}")
        if not 1 <= self.ranker_warmup <= MAX_WARMUP:
            raise ValueError(
                f"ranker_warmup must be in [1, {MAX_WARMUP}] updates (a fresh head is noise), got {self.ranker_warmup}"
            )
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ValueError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if not MIN_TEMPERATURE <= self.temperature <= 100.0:  # below, float32 scores / T overflow to inf
            raise ValueError(f"temperature must be in [{MIN_TEMPERATURE}, 100], got {self.temperature}")
        if self.ranker_chunk < 1:
            raise ValueError(f"ranker_chunk must be >= 1 row, got {self.ranker_chunk}")


class Ranker(nn.Module):
    """A cross-encoder: ``head(transformer([query; document])[first token])`` → one relevance logit per pair."""

    def __init__(self, transformer: nn.Module, tokenizer, max_length: int) -> None:
        super().__init__()
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.head = nn.Linear(transformer.config.hidden_size, 1)

    @classmethod
    def from_bi_encoder(cls, model, seed: int) -> Ranker:
        """A ranker from a SentenceTransformer's first (transformer) module, copied, with a fresh seeded head."""
        first = model[0]
        positions = getattr(first.auto_model.config, "max_position_embeddings", None) or 512
        max_length = min(2 * (model.max_seq_length or 256), positions)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ranker = cls(copy.deepcopy(first.auto_model), first.tokenizer, max_length)
        return ranker.float()

    def forward(self, queries: list[str], documents: list[str]) -> torch.Tensor:
        device = self.head.weight.device
        encoded = self.tokenizer(
            queries,
            documents,
            padding=True,
            truncation="longest_first",
            max_length=self.max_length,
            return_tensors="pt",
        ).to(device)
        hidden = self.transformer(**encoded).last_hidden_state[:, 0]
        return self.head(hidden).squeeze(-1)


def own_columns(view: LogitView) -> torch.Tensor:
    """``(B, 1 + K)`` the columns of each row's own documents: its positive, then its negatives in order."""
    batch, n = view.logits.shape
    rows = torch.arange(batch, device=view.logits.device)
    return rows[:, None] + batch * torch.arange(n // batch, device=rows.device)[None, :]


def soft_target(view: LogitView, columns: torch.Tensor, ranker_probs: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 − weight) · onehot(target) + weight · ranker_probs`` placed on ``columns``, over the row's columns
    and extra negatives (which get 0)."""
    batch, n = view.logits.shape
    extra = 0 if view.extra_logits is None else view.extra_logits.shape[1]
    target = torch.zeros(batch, n + extra, device=view.logits.device)
    target[torch.arange(batch, device=target.device), view.target] = 1.0 - weight
    return target.scatter_add(1, columns, weight * ranker_probs.to(target.dtype))


class AR2(ANCE):
    """``ance`` candidates, and a cross-encoder ranker trained on them whose distribution the retriever fits."""

    name = "ar2"
    citation = "Zhang et al. 2022, Adversarial Retriever-Ranker for Dense Text Retrieval (AR2), ICLR 2022."
    Params = AR2Params

    def __init__(self, params: AR2Params | None = None) -> None:
        super().__init__(params)
        self.ranker: Ranker | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.ctx: Context | None = None
        self.seed = 0

    @classmethod
    def search_space(cls):
        return {
            **super().search_space(),
            "ranker_lr": FloatDistribution(1e-5, 2e-4, log=True),
            "ranker_warmup": IntDistribution(1, 50, log=True),
            "distill_weight": FloatDistribution(0.1, 1.0),
            "temperature": FloatDistribution(0.5, 5.0, log=True),
        }

    def setup(self, ctx: Context) -> None:
        super().setup(ctx)
        self.ctx = ctx
        self.seed = int(ctx.rng("ar2-ranker").integers(2**31))
        self.state.update(ranker_updates=0, ranker_hits=0, ranker_rows=0, distilled_steps=0, ranker_s=0.0)
        if self.params.ranker_lr > 0:
            if ctx.total_steps is not None and self.params.ranker_warmup >= ctx.total_steps:
                log.warning(
                    "ar2: ranker_warmup=%d >= the run's %d steps: the ranker trains but is never trusted, "
                    "so this run is ance plus the ranker's cost",
                    self.params.ranker_warmup,
                    ctx.total_steps,
                )
            self.ranker = Ranker.from_bi_encoder(ctx.services.base_model, self.seed)
            self.optimizer = torch.optim.AdamW(self.ranker.parameters(), lr=self.params.ranker_lr)

    def trusted(self) -> bool:
        return self.ranker is not None and self.state["ranker_updates"] >= self.params.ranker_warmup

    def on_logits(self, view: LogitView) -> LogitView:
        if self.ranker is None or not torch.is_grad_enabled():
            return view
        if self.ctx is None:
            raise RuntimeError("ar2: setup(ctx) must run before training")
        start = time.perf_counter()
        columns = own_columns(view)
        scores = self.train_ranker(view, columns)
        trusted = self.trusted()  # judged before this step's update is counted
        self.state["ranker_updates"] += 1
        self.state["ranker_s"] += time.perf_counter() - start
        if not trusted or self.params.distill_weight == 0:
            return view
        self.state["distilled_steps"] += 1
        probs = torch.softmax(scores / self.params.temperature, dim=1)
        return view.replace(soft_target=soft_target(view, columns, probs, self.params.distill_weight))

    def train_ranker(self, view: LogitView, columns: torch.Tensor) -> torch.Tensor:
        """One cross-entropy step of the ranker toward each row's positive among its own documents; returns its
        ``(B, 1 + K)`` scores from before the step (masked columns ``-inf``)."""
        ctx, ranker = self.ctx, self.ranker
        device = view.logits.device
        ranker.to(device).train()
        doc_ids = view.doc_ids[columns].cpu()
        queries = [ctx.examples[int(e)].query for e in view.example_ids.cpu() for _ in range(columns.shape[1])]
        documents = [ctx.doc_text(int(d)) for d in doc_ids.reshape(-1)]
        masked = view.mask.gather(1, columns)
        on_cuda = device.type == "cuda"
        rows, width, chunk = columns.shape[0], columns.shape[1], self.params.ranker_chunk
        parts, loss = [], 0.0
        with torch.random.fork_rng(devices=[device] if on_cuda else []), torch.enable_grad():
            torch.manual_seed(self.seed + self.state["ranker_updates"])
            self.optimizer.zero_grad(set_to_none=True)
            for start in range(0, rows, chunk):  # the batch's mean cross-entropy, backpropagated chunk by chunk
                stop = min(start + chunk, rows)
                part = ranker(queries[start * width : stop * width], documents[start * width : stop * width])
                part = part.view(stop - start, width).masked_fill(masked[start:stop], float("-inf"))
                chunk_loss = (
                    F.cross_entropy(part, torch.zeros(stop - start, dtype=torch.long, device=device), reduction="sum")
                    / rows
                )
                chunk_loss.backward()
                parts.append(part.detach())
                loss += float(chunk_loss.detach())
            nn.utils.clip_grad_norm_(ranker.parameters(), 1.0)
            self.optimizer.step()
        scores = torch.cat(parts)
        self.state["ranker_hits"] += int((scores.argmax(dim=1) == 0).sum())
        self.state["ranker_rows"] += len(scores)
        self.state["ranker_loss"] = loss
        return scores
