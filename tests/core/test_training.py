"""The training loop: determinism under a seed, batches without duplicates, refresh wiring."""

from __future__ import annotations

import torch

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.batching import random_batches
from negbench.core.models import load_model
from negbench.core.strategy import Negatives, Strategy
from negbench.core.training.loop import train


def test_random_batches_never_repeat_a_query_or_positive(ctx):
    for epoch in range(3):
        batches = random_batches(ctx, epoch)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(ctx.examples)))
        for batch in batches:
            assert len({ctx.examples[i].query_id for i in batch}) == len(batch)
            assert len({ctx.examples[i].doc for i in batch}) == len(batch)
    assert random_batches(ctx, 0) != random_batches(ctx, 1)


def _train(ctx, tiny_model, strategy, candidates=None, steps=3):
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(max_steps=steps, batch_size=8, lr=1e-3, num_negatives=ctx.num_negatives)
    outcome = train(model, ctx, strategy, cfg, device="cpu", candidates=candidates)
    return model, outcome


def test_same_seed_same_weights(ctx, tiny_model):
    from negbench.strategies.random_negatives import RandomNegatives

    a, _ = _train(ctx, tiny_model, RandomNegatives(), RandomNegatives().mine(ctx))
    b, _ = _train(ctx, tiny_model, RandomNegatives(), RandomNegatives().mine(ctx))
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)


class CountingRefresh(Strategy):
    name = "counting"

    def mine(self, ctx):
        return Negatives([ctx.fill_random(i, [], 0) for i in range(len(ctx.examples))])

    def refresh_due(self, step):
        return step % 2 == 0

    def refresh(self, ctx, step):
        self.state.setdefault("steps", []).append(step)
        assert ctx.model is not None and not ctx.model.training  # refresh encodes in eval mode
        return Negatives([ctx.fill_random(i, [], 100 + step) for i in range(len(ctx.examples))])


def test_refresh_runs_on_schedule_and_swaps_negatives(ctx, tiny_model):
    strategy = CountingRefresh()
    _, outcome = _train(ctx, tiny_model, strategy, strategy.mine(ctx), steps=4)
    assert strategy.state["steps"] == [2, 4]
    assert outcome.refreshes == 2 and outcome.steps == 4
    assert outcome.examples_seen == 4 * 8


class RecordingRefresh(CountingRefresh):
    """Refreshes to new random negatives every 2 steps and records the ids the loss saw for each batch."""

    name = "recording"

    def on_logits(self, view):
        self.state.setdefault("views", []).append(view.doc_ids.tolist())
        return view


def test_ids_the_loss_sees_are_the_texts_that_were_embedded_through_a_refresh(ctx, tiny_model, monkeypatch):
    """The data loader collates one batch ahead: ids looked up at loss time named the *new* negatives for a
    batch embedded with the *old* texts. Every column's id must be the id of the text embedded there."""
    from negbench.core.training import loop as training

    # the texts the base collator tokenised, column-major like the loss's documents
    texts_seen: list[list[str]] = []
    base_call = training.NegativeCollator.__init__

    def init(self, base, state, sampler):
        def base_recorder(rows):
            k = state.num_negatives
            texts_seen.append([r["positive"] for r in rows] + [r[f"negative_{j}"] for j in range(k) for r in rows])
            return base(rows)

        base_recorder.valid_label_columns = base.valid_label_columns
        base_call(self, base_recorder, state, sampler)

    monkeypatch.setattr(training.NegativeCollator, "__init__", init)
    strategy = RecordingRefresh()
    _, outcome = _train(ctx, tiny_model, strategy, strategy.mine(ctx), steps=6)
    assert outcome.refreshes == 3
    views = strategy.state["views"]
    assert len(views) == 6 and len(texts_seen) >= 6
    texts = ctx.dataset.corpus.texts
    for step, (ids, seen) in enumerate(zip(views, texts_seen, strict=False)):
        assert [texts[d] for d in ids] == seen, f"step {step + 1}: a column's id is not the text embedded"


class EpochComposer(Strategy):
    """Different batches every epoch; records which examples the loss saw."""

    name = "epoch-composer"

    def batches(self, ctx, epoch):
        order = list(range(len(ctx.examples)))
        ctx.rng("test", epoch).shuffle(order)
        self.state.setdefault("composed", {})[epoch] = order[: ctx.steps_per_epoch * ctx.batch_size]
        return [order[i : i + ctx.batch_size] for i in range(0, len(order), ctx.batch_size)]

    def on_logits(self, view):
        self.state.setdefault("seen", []).extend(view.example_ids.tolist())
        return view


def test_each_epoch_trains_its_own_full_batches(ctx, tiny_model):
    """Later epochs used to be cut to epoch 0's batch count; each epoch must use its own composition, whole."""
    strategy = EpochComposer()
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(epochs=3, batch_size=8, lr=1e-3, num_negatives=0)
    ctx.batch_size = 8
    outcome = train(model, ctx, strategy, cfg, device="cpu")
    per_epoch = len(ctx.examples) // 8
    assert outcome.steps == 3 * per_epoch and set(outcome.batch_sizes) == {8}
    seen = strategy.state["seen"]
    for epoch in range(3):
        assert seen[epoch * per_epoch * 8 : (epoch + 1) * per_epoch * 8] == strategy.state["composed"][epoch]


def test_max_steps_sets_the_epochs_the_schedules_see(ctx, tiny_model):
    """NGAME's refresh cadence and progressive's curriculum read ctx.epochs; with max_steps they used to see
    the config's epochs = 1 while the trainer ran several."""
    from negbench.strategies.in_batch import InBatch

    ctx.batch_size = 8
    per_epoch = len(ctx.examples) // 8
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    cfg = TrainingConfig(max_steps=2 * per_epoch + 1, batch_size=8, lr=1e-3, num_negatives=0)
    outcome = train(model, ctx, InBatch(), cfg, device="cpu")
    assert outcome.steps == 2 * per_epoch + 1 and ctx.epochs == 3


def test_training_prints_no_model_card_widget_progress(ctx, tiny_model, capfd):
    """negbench writes no model card, so sentence-transformers' card data (and its "Computing widget
    examples" progress line on every run) is not collected."""
    from negbench.strategies.random_negatives import RandomNegatives

    _train(ctx, tiny_model, RandomNegatives(), RandomNegatives().mine(ctx), steps=1)
    captured = capfd.readouterr()
    assert "Computing widget examples" not in captured.err + captured.out
