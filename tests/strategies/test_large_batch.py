"""large-batch: GradCache gives the uncached gradients, with activation memory flat in the batch size."""

from __future__ import annotations

import math

import pytest
import torch

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.loss import InfoNCELoss
from negbench.core.models import load_model
from negbench.errors import ConfigError
from negbench.strategies.large_batch import LargeBatch


@pytest.fixture(scope="module")
def model(tiny_model):
    m = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    m.eval()  # dropout off: the uncached and cached passes must see the same network
    return m


def _features(model, ctx, examples: list[int]) -> list[dict]:
    texts = ctx.dataset.corpus.texts
    negatives = [(ctx.examples[i].doc + 1) % len(texts) for i in examples]
    return [
        model.preprocess([ctx.examples[i].query for i in examples]),
        model.preprocess([texts[ctx.examples[i].doc] for i in examples]),
        model.preprocess([texts[d] for d in negatives]),
    ]


def _loss(model, ctx, mini_batch_size: int | None) -> InfoNCELoss:
    return InfoNCELoss(model, 20.0, ctx.forbidden, mini_batch_size=mini_batch_size)


def _labels(ctx, batch: int) -> torch.Tensor:
    """The collator's labels: example, positive id, negative id (the next document, as in _features)."""
    pos = torch.as_tensor(ctx.positive_docs[:batch])
    return torch.stack([torch.arange(batch), pos, (pos + 1) % len(ctx.dataset.corpus)], dim=1)


def _loss_and_grads(model, ctx, batch: int, mini_batch_size: int | None):
    model.zero_grad(set_to_none=True)
    loss = _loss(model, ctx, mini_batch_size)(_features(model, ctx, list(range(batch))), _labels(ctx, batch))
    loss.backward()
    grads = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in model.parameters()]
    return loss.detach(), grads


class _SavedActivations:
    """Bytes of tensors autograd keeps for backward, alive at once (deterministic; no allocator noise)."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    def pack(self, tensor: torch.Tensor) -> _Held:
        return _Held(tensor, self)

    @staticmethod
    def unpack(held: _Held) -> torch.Tensor:
        return held.tensor


class _Held:
    def __init__(self, tensor: torch.Tensor, meter: _SavedActivations) -> None:
        self.tensor, self.meter, self.nbytes = tensor, meter, tensor.numel() * tensor.element_size()
        meter.current += self.nbytes
        meter.peak = max(meter.peak, meter.current)

    def __del__(self) -> None:
        self.meter.current -= self.nbytes


def _peak_saved_bytes(model, ctx, batch: int, mini_batch_size: int | None) -> tuple[int, list[int]]:
    """Peak saved-activation bytes over one forward+backward, and the sizes of forwards run with a graph."""
    graph_forwards: list[int] = []

    def record(_module, args):
        if torch.is_grad_enabled():
            graph_forwards.append(int(args[0]["input_ids"].shape[0]))

    handle = model[0].register_forward_pre_hook(record)
    meter = _SavedActivations()
    try:
        features = _features(model, ctx, list(range(batch)))
        loss_fn = _loss(model, ctx, mini_batch_size)
        with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
            loss_fn(features, _labels(ctx, batch)).backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return meter.peak, graph_forwards


def test_sets_mini_batch_size():
    strategy = LargeBatch.from_params({"mini_batch_size": 4})
    assert strategy.mini_batch_size == 4
    assert LargeBatch().mini_batch_size == 32


def test_same_gradients_as_the_uncached_loss(model, ctx):
    loss_plain, grads_plain = _loss_and_grads(model, ctx, batch=8, mini_batch_size=None)
    loss_cached, grads_cached = _loss_and_grads(model, ctx, batch=8, mini_batch_size=3)  # ragged last chunk
    torch.testing.assert_close(loss_cached, loss_plain)
    assert any(g.abs().sum() > 0 for g in grads_plain)
    for a, b in zip(grads_plain, grads_cached, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_activation_memory_stays_flat_as_the_batch_grows(model, ctx):
    small_cached, forwards_small = _peak_saved_bytes(model, ctx, 8, 4)
    big_cached, forwards_big = _peak_saved_bytes(model, ctx, 32, 4)
    small_plain, _ = _peak_saved_bytes(model, ctx, 8, None)
    big_plain, plain_forwards = _peak_saved_bytes(model, ctx, 32, None)
    # GradCache: only mini-batches of <= 4 sequences are ever embedded with a graph, 3 columns x ceil(B/4)
    assert max(forwards_big) <= 4 and len(forwards_big) == 3 * math.ceil(32 / 4)
    assert len(forwards_small) == 3 * math.ceil(8 / 4)
    assert plain_forwards == [32, 32, 32]
    # 4x the batch: uncached activations grow ~4x, cached ones stay within one mini-batch (+ the small loss graph)
    assert big_plain > 2.5 * small_plain
    assert big_cached < 1.5 * small_cached
    assert big_cached < 0.5 * big_plain


def test_training_loop_runs_the_cached_loss_on_big_batches(ctx, tiny_model, monkeypatch):
    from sentence_transformers.base.losses.gradcache import CachedLossMixin

    from negbench.core.training.loop import train

    calls = []
    original = CachedLossMixin.forward_cached

    def spy(self, features, labels=None):
        calls.append(self.mini_batch_size)
        return original(self, features, labels)

    monkeypatch.setattr(CachedLossMixin, "forward_cached", spy)
    strategy = LargeBatch.from_params({"mini_batch_size": 16})
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    # what the runner does for `training = { batch_size = 48 }` on the strategy: config and context agree
    cfg = TrainingConfig(epochs=1, batch_size=48, lr=1e-3, num_negatives=0)
    ctx.batch_size = cfg.batch_size
    outcome = train(model, ctx, strategy, cfg, device="cpu", mini_batch_size=getattr(strategy, "mini_batch_size", None))
    # one epoch of 48-example batches, every step through the cached loss with 16-sequence mini-batches
    # (the budget rule: full batches only, the short remainder dropped)
    assert outcome.steps == len(ctx.examples) // 48 >= 1
    assert set(outcome.batch_sizes) == {48}
    assert outcome.examples_seen == 48 * outcome.steps
    assert calls == [16] * outcome.steps


def test_param_checks():
    with pytest.raises(ConfigError, match="mini_batch_size"):
        LargeBatch.from_params({"mini_batch_size": 0})
    assert LargeBatch.search_space() == {}  # the batch size is a training setting (training.batch_size)
