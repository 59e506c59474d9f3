"""``ar2``: an adversarial retriever–ranker pair; a ranker picks the positive out of a group of the retriever's own
top candidates, and the retriever fits the ranker's distribution over that group.

Reference:
    Zhang et al. 2022, "Adversarial Retriever-Ranker for Dense Text Retrieval" (AR2), ICLR 2022
    (arXiv:2110.03611); reference code: microsoft/AR2 (``wiki/co_training_wiki_train.py``), microsoft/SimXNS.

AR2 plays a minimax game over a *candidate group* per query, ``D_q = {d⁺} ∪ D⁻``: ``D⁻`` is 15 documents drawn at
random from the retriever's own top 100 (labelled positives removed), re-retrieved as the retriever trains. The
ranker (a cross-encoder) learns by cross-entropy over the group's softmax to put the positive first; the retriever
is trained toward the ranker's distribution over the same group (a KL / soft-target term over the group's softmax,
``p_θ(d | q, D_q)``), so it learns to rank what the ranker cannot yet tell apart. Here:

* the group is the row's positive and ``group_size`` documents drawn (seeded per example and step, without
  replacement) from the retriever's top ``top_k`` (labelled positives removed; topped up at random when the corpus
  is too small), independent of the suite's ``num_negatives``. The top ``top_k`` is mined with ``ance``'s list: the
  base model's before the first refresh, the model under training's every ``refresh_every`` steps; ``ance``'s
  window (``range_min..range_max``) still gives the suite's ``num_negatives`` columns;
* the ranker is initialised from the base model's transformer with a fresh linear head on the first token
  (the pair ``[query; document]`` encoded jointly), owned by the strategy with its own AdamW
  (:mod:`negbench.strategies._ar2_ranker`); at every training step it scores each row's whole group and takes one
  step of cross-entropy toward the positive over the group's softmax. Its scores *before* that step (temperature
  ``temperature``) are ``p_ranker`` over the group;
* once the ranker is trusted, the retriever embeds the group's documents (``group_size`` extra retriever columns
  per row, a declared budget departure: :meth:`AR2.budget_reason`) and each row's softmax is its group only: the
  positive's column and the group's columns (as extra logits); the batch's other columns leave the row. Its target
  is ``(1 − distill_weight) · onehot(positive) + distill_weight · p_ranker``: contrastive cross-entropy over the
  group plus the cross-entropy (KL up to a constant) to the ranker over the group, as AR2's retriever loss has no
  in-batch negatives. During the ranker's warm-up (``ranker_warmup`` updates) the retriever's loss is plain
  InfoNCE with in-batch negatives and the suite's columns. A frozen ranker (``ranker_lr = 0``) is never trusted,
  so it is never run: ``ar2`` with a frozen ranker is the ``ance`` run (and, with no refresh within the run, the
  static ``dense`` run) step for step;
* the ranker's and the group's time, memory and FLOPs are spent inside the training step, so they are part of the
  row's ``train_s``, peak memory and ``train_tflop``: the group's columns pass through the model under training (counted
  as its forward and backward passes are), the ranker reports its pairs' tokens (``ctx.compute.add``, ``6·N`` each: a
  forward and a backward pass). :meth:`AR2.workload` declares both for the compute budget's estimate.

Departures: AR2 alternates blocks of retriever and ranker steps, adds an R-drop term to the ranker and an
adversarial (reward-weighted) term to the retriever; here both move every step, the ranker has only the
cross-entropy and the retriever only the soft-target cross-entropy. Defaults are scaled for CPU: a group of 7 from
the top 30 (AR2: 15 from the top 100). The ranker's dropout draws from its own seeded generator, so running it
never changes the retriever's random stream. The cross-encoder is a small module written here rather than
sentence-transformers' ``CrossEncoder``, which loads from a path or the hub, whereas negbench's base model may exist
only in memory and the ranker must step inside negbench's loss.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from optuna.distributions import FloatDistribution, IntDistribution

from negbench.context import Context
from negbench.strategies._ar2_ranker import Ranker, mean_pair_tokens, pair_max_length, ranker_step, text_tokens
from negbench.strategies._windows import POSITIVE_SLACK, window
from negbench.strategies.ance import ANCE, ANCEParams
from negbench.strategy import LogitView, Negatives, Sizes, Workload, periodic_unexercised

__all__ = ["AR2", "MAX_WARMUP", "MIN_TEMPERATURE", "AR2Params", "Ranker", "group_view"]

MIN_TEMPERATURE = 0.01
MAX_WARMUP = 100_000
MAX_TOP_K = 10_000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AR2Params(ANCEParams):
    ranker_lr: float = 5e-5
    ranker_warmup: int = 10
    distill_weight: float = 0.5
    temperature: float = 1.0
    ranker_chunk: int = 8  # rows per ranker forward/backward (memory only: the step is the same)
    group_size: int = 7  # negatives in each query's group, besides its positive (AR2: 15)
    top_k: int = 30  # the retriever's top documents the group is drawn from (AR2: 100)

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
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1 negative, got {self.group_size}")
        if not self.group_size <= self.top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be <= {MAX_TOP_K} and >= group_size ({self.group_size}), got {self.top_k}")


def group_view(view: LogitView, group_logits: torch.Tensor, ranker_probs: torch.Tensor, weight: float) -> LogitView:
    """``view`` with each row's softmax over its group only: its positive's column, then ``group_logits`` ``(B, G)``
    (scaled, as extra logits); every other column is masked (any extra logits are replaced). The soft target is
    ``(1 − weight) · onehot(positive) + weight · ranker_probs`` over ``[positive, group…]``, 0 elsewhere (AR2 §3)."""
    batch, n = view.logits.shape
    rows = torch.arange(batch, device=view.logits.device)
    mask = torch.ones_like(view.mask)
    mask[rows, view.target] = False
    probs = ranker_probs.to(view.logits.device, torch.float32)
    target = torch.zeros(batch, n + group_logits.shape[1], device=view.logits.device)
    target[rows, view.target] = (1.0 - weight) + weight * probs[:, 0]
    target[:, n:] = weight * probs[:, 1:]
    return view.replace(mask=mask, extra_logits=group_logits, soft_target=target)


def document_prompt(model) -> str | None:
    """The prompt the trainer puts before document columns (as ``negbench``'s loop reads the model's prompts)."""
    prompts = getattr(model, "prompts", None) or {}
    return next((prompts[k] for k in ("document", "passage", "corpus") if k in prompts), None) or None


class AR2(ANCE):
    """``ance`` candidates; a cross-encoder ranker trained over groups of the retriever's top-k, whose distribution
    over each group the retriever fits."""

    name = "ar2"
    citation = "Zhang et al. 2022, Adversarial Retriever-Ranker for Dense Text Retrieval (AR2), ICLR 2022."
    Params = AR2Params

    def __init__(self, params: AR2Params | None = None) -> None:
        super().__init__(params)
        self.ranker: Ranker | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.ctx: Context | None = None
        self.pool: list[np.ndarray] | None = None  # each example's retriever top-k, positives removed
        self.seed = 0
        self.ranker_params = 0  # the ranker's non-embedding parameters (its FLOPs: 6 per token per parameter)
        self._pair_tokens: dict[tuple[int, int, int], float] = {}  # ranker_pair_tokens, per examples

    @classmethod
    def search_space(cls):
        return {
            **super().search_space(),
            "ranker_lr": FloatDistribution(1e-5, 2e-4, log=True),
            "ranker_warmup": IntDistribution(1, 50, log=True),
            "distill_weight": FloatDistribution(0.1, 1.0),
            "temperature": FloatDistribution(0.5, 5.0, log=True),
        }

    def budget_reason(self) -> str | None:
        """The group's extra retriever columns, whenever the retriever may be distilled (AR2's group, §3)."""
        p = self.params
        if p.ranker_lr == 0 or p.distill_weight == 0:
            return None  # the ranker never reaches the retriever: the ance run's columns
        return (
            f"ar2: group of the positive + {p.group_size} of the retriever's top {p.top_k} per query for the ranker "
            f"and the distillation ({p.group_size} retriever columns per query besides the suite's num_negatives)"
        )

    def unexercised(self, epochs: int, total_steps: int) -> str | None:
        """ANCE's refresh (the groups then come from the base model's top-k throughout), and the ranker's warm-up:
        past ``ranker_warmup`` steps the retriever is distilled from the ranker, never in a shorter run."""
        p = self.params
        notes = [
            periodic_unexercised(
                p.refresh_every,
                total_steps,
                "steps",
                "refresh_every",
                "re-mines",
                "the base model's top-k feeds its groups throughout",
            ),
            None
            if p.ranker_warmup < total_steps
            else (
                f"trusts its ranker after {p.ranker_warmup} steps (ranker_warmup) but the run has {total_steps} steps: "
                "the retriever is never distilled, so it trains as ance does, at the ranker's cost"
            ),
        ]
        return "; ".join(n for n in notes if n) or None

    def workload(self, ctx: Context, sizes: Sizes) -> Workload:
        """``ance``'s, and inside the training steps: every step the ranker's forward and backward pass over each
        row's group (``B · (1 + group_size)`` pairs of a query and a document, as :meth:`ranker_pair_tokens` long,
        ``N`` of the base model); every step once it is trusted, ``group_size`` extra retriever columns per row (mean
        document length)."""
        work, p, base = super().workload(ctx, sizes), self.params, sizes.base
        if p.ranker_lr == 0:
            return work
        steps, rows = ctx.total_steps or 0, ctx.batch_size
        ranker = steps * base.train(rows * (1 + p.group_size) * self.ranker_pair_tokens(ctx))
        distilled = max(0, steps - p.ranker_warmup) if p.distill_weight > 0 else 0
        group = distilled * base.train(rows * p.group_size * base.mean_doc)
        return dataclasses.replace(work, train=work.train + ranker + group)

    def ranker_pair_tokens(self, ctx: Context) -> float:
        """Mean tokens of one ranker pair of a row's group, as the ranker tokenises and truncates it (the base model's
        tokenizer, :func:`~negbench.strategies._ar2_ranker.pair_max_length`; no prompt): the example's query with
        its positive (one pair) or with a document of the corpus (``group_size`` pairs; the group's documents are
        the retriever's top ``top_k``, unknown before training, so the corpus's mean). Memoised per examples."""
        key = (id(ctx.services), id(ctx.examples), len(ctx.examples))
        if key not in self._pair_tokens:
            model = ctx.services.base_model
            tokenizer, longest = model[0].tokenizer, pair_max_length(model)
            specials = tokenizer.num_special_tokens_to_add(pair=True)
            corpus = ctx.dataset.corpus.texts
            queries = text_tokens(tokenizer, [e.query for e in ctx.examples])
            docs = text_tokens(tokenizer, corpus)
            positive = np.minimum(queries + docs[ctx.positive_docs] + specials, longest).mean() if len(queries) else 0
            other = mean_pair_tokens(queries, docs, specials, longest)
            self._pair_tokens[key] = (float(positive) + self.params.group_size * other) / (1 + self.params.group_size)
        return self._pair_tokens[key]

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
            self.ranker_params = ctx.compute.params(self.ranker)
            self.optimizer = torch.optim.AdamW(self.ranker.parameters(), lr=self.params.ranker_lr)

    def mine_window(self, ctx: Context, model=None) -> Negatives:
        """``ance``'s window for the suite's columns; the top ``top_k`` of the same list is the groups' pool."""
        p = self.params
        ranked = self.ranked(ctx, max(p.range_max, p.top_k) + POSITIVE_SLACK, model)
        self.pool = [ids[: p.top_k] for ids in ranked.ids]
        return window(ranked, p.range_min, p.range_max)

    def trusted(self) -> bool:
        return self.ranker is not None and self.state["ranker_updates"] >= self.params.ranker_warmup

    def on_logits(self, view: LogitView) -> LogitView:
        if self.ranker is None or not torch.is_grad_enabled():
            return view
        if self.ctx is None:
            raise RuntimeError("ar2: setup(ctx) must run before training")
        start = time.perf_counter()
        group = self.draw_groups(view.example_ids.cpu(), view.doc_ids[view.target].cpu(), view.step)
        scores = self.train_ranker(view.example_ids.cpu(), group, view.logits.device)
        trusted = self.trusted()  # judged before this step's update is counted
        self.state["ranker_updates"] += 1
        self.state["ranker_s"] += time.perf_counter() - start
        if not trusted or self.params.distill_weight == 0:
            return view
        self.state["distilled_steps"] += 1
        probs = torch.softmax(scores / self.params.temperature, dim=1)
        return group_view(view, self.group_logits(view, group), probs, self.params.distill_weight)

    def draw_groups(self, examples: torch.Tensor, positives: torch.Tensor, step: int) -> torch.Tensor:
        """``(B, 1 + group_size)`` document ids: each row's positive, then ``group_size`` of its example's top
        ``top_k`` drawn without replacement (seeded by example and step), in rank order; AR2's ``D_q``."""
        ctx, size = self.ctx, self.params.group_size
        if self.pool is None:
            self.mine_window(ctx)  # the base model's list, when training starts without mine()
        groups = []
        for example, positive in zip(examples.tolist(), positives.tolist(), strict=True):
            pool, rng = self.pool[example], ctx.rng("ar2-group", example, step)
            chosen = [int(d) for d in pool[np.sort(rng.choice(len(pool), min(size, len(pool)), replace=False))]]
            taken = set(chosen) | ctx.forbidden(example)
            if len(pool) < size and len(ctx.dataset.corpus) - len(taken) < size - len(chosen):
                raise ValueError(f"ar2: corpus too small for a group of {size} negatives of example {example}")
            while len(chosen) < size:  # a short top-k (tiny corpus): topped up at random
                d = int(rng.integers(len(ctx.dataset.corpus)))
                if d not in taken:
                    chosen.append(d)
                    taken.add(d)
            groups.append([positive, *chosen])
        return torch.tensor(groups, dtype=torch.long)

    def group_logits(self, view: LogitView, group: torch.Tensor) -> torch.Tensor:
        """``(B, group_size)`` scaled cosines of each row's query and its group's negatives, embedded by the model
        under training (with gradient, its document prompt): the retriever's side of ``p_θ(d | q, D_q)``."""
        model, device = self.ctx.model, view.query.device
        if model is None:
            raise RuntimeError("ar2: ctx.model (the model under training) is not set")
        unique, inverse = torch.unique(group[:, 1:], return_inverse=True)
        features = model.preprocess([self.ctx.doc_text(int(d)) for d in unique], prompt=document_prompt(model))
        features = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        docs = F.normalize(model(features)["sentence_embedding"], dim=-1).to(view.query.dtype)
        return view.scale * torch.einsum("bd,bgd->bg", view.query, docs[inverse.to(device)])

    def train_ranker(
        self, examples: torch.Tensor, group: torch.Tensor, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """One cross-entropy step of the ranker toward each row's positive over its group ``(B, 1 + G)`` (document
        ids, positive first); returns its ``(B, 1 + G)`` scores from before the step."""
        ctx, ranker = self.ctx, self.ranker
        ranker.to(device)
        queries = [ctx.examples[int(e)].query for e in examples]
        documents = [[ctx.doc_text(int(d)) for d in row] for row in group.tolist()]
        seed, tokens = self.seed + self.state["ranker_updates"], ranker.tokens
        scores, loss = ranker_step(ranker, self.optimizer, queries, documents, self.params.ranker_chunk, seed)
        ctx.compute.add(ranker.tokens - tokens, self.ranker_params, trained=True)  # forward and backward
        self.state["ranker_hits"] += int((scores.argmax(dim=1) == 0).sum())
        self.state["ranker_rows"] += len(scores)
        self.state["ranker_loss"] = loss
        return scores
