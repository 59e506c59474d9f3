"""xbm: rows see document embeddings of earlier steps; the FIFO obeys its size and masks positives."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import info_nce
from negbench.core.strategy import LogitView
from negbench.errors import ConfigError
from negbench.strategies.xbm import XBM
from tests.strategies.views import plain_view

SCALE = 20.0


def _view(
    doc_ids: list[int], example_ids: list[int], step: int, seed: int, dim: int = 8, grad: bool = False
) -> LogitView:
    """Batch of ``len(example_ids)`` rows; columns = positives then one negative column."""
    gen = torch.Generator().manual_seed(seed)
    batch, n = len(example_ids), len(doc_ids)
    query = F.normalize(torch.randn(batch, dim, generator=gen), dim=-1).requires_grad_(grad)
    docs = F.normalize(torch.randn(n, dim, generator=gen), dim=-1).requires_grad_(grad)
    return plain_view(query, docs, SCALE, example_ids, doc_ids, step=step)


def test_sees_negatives_from_previous_steps():
    xbm = XBM.from_params({"memory_size": 64})
    first = _view(list(range(8)), [0, 1, 2, 3], step=0, seed=0)
    out0 = xbm.on_logits(first)
    assert out0.extra_logits is None  # nothing remembered yet
    second = _view(list(range(10, 18)), [4, 5, 6, 7], step=1, seed=1, grad=True)
    out1 = xbm.on_logits(second)
    torch.testing.assert_close(out1.extra_logits, SCALE * second.query @ first.docs.T)
    assert info_nce(out1) > info_nce(second)  # more negatives, higher loss
    (query_grad,) = torch.autograd.grad(info_nce(out1), [second.query], retain_graph=True)
    (plain_grad,) = torch.autograd.grad(info_nce(second), [second.query])
    assert not torch.allclose(query_grad, plain_grad)  # the memory shapes the query's gradient
    third = _view(list(range(20, 28)), [8, 9, 10, 11], step=2, seed=2)
    out2 = xbm.on_logits(third)
    expected = torch.cat([first.docs, second.docs.detach()])
    torch.testing.assert_close(out2.extra_logits, SCALE * third.query @ expected.T)
    assert not xbm.memory[0].requires_grad


def test_obeys_the_queue_size_fifo():
    xbm = XBM.from_params({"memory_size": 10})
    views = [_view(list(range(8 * k, 8 * k + 8)), [4 * k + r for r in range(4)], step=k, seed=k) for k in range(3)]
    for v in views:
        xbm.on_logits(v)
        assert len(xbm.memory[1]) <= 10
    emb, ids = xbm.memory
    assert ids.tolist() == [14, 15, *range(16, 24)]  # the newest 10, oldest first
    torch.testing.assert_close(emb, torch.cat([views[1].docs[6:], views[2].docs]))
    nxt = _view(list(range(100, 108)), [20, 21, 22, 23], step=3, seed=9)
    assert xbm.on_logits(nxt).extra_logits.shape == (4, 10)


def test_masks_labelled_positives_and_documents_of_the_current_batch():
    xbm = XBM.from_params({"memory_size": 64})
    xbm.forbidden_of = lambda e: {50 + e}  # example e's query has corpus doc 50+e labelled positive
    xbm.on_logits(_view([50, 51, 52, 53, 7, 8, 9, 10], [9, 8, 7, 6], step=0, seed=0))
    # memory ids: 50, 51, 52, 53, 7, 8, 9, 10. Now rows for examples 1 and 2, whose positives are 51/52 ...
    view = _view([30, 31, 8, 32], [1, 2], step=1, seed=1)
    out = xbm.on_logits(view)
    blocked = torch.isneginf(out.extra_logits)
    ids = [50, 51, 52, 53, 7, 8, 9, 10]
    expected = torch.tensor([[d in (51, 8) for d in ids], [d in (52, 8) for d in ids]])
    assert torch.equal(blocked, expected)  # own labelled positive (row), doc 8 is in this batch (all rows)
    assert torch.isfinite(info_nce(out))


def test_keeps_one_fresh_entry_per_document():
    xbm = XBM.from_params({"memory_size": 64})
    a = _view([1, 2, 3, 1], [0, 1], step=0, seed=0)  # doc 1 twice in one batch
    xbm.on_logits(a)
    assert xbm.memory[1].tolist() == [1, 2, 3]
    b = _view([4, 2], [2], step=1, seed=1)  # doc 2 again: the old copy is dropped, the new one is newest
    xbm.on_logits(b)
    emb, ids = xbm.memory
    assert ids.tolist() == [1, 3, 4, 2]
    torch.testing.assert_close(emb[-1], b.docs[1])


def test_start_step_delays_use_but_not_filling():
    xbm = XBM.from_params({"memory_size": 64, "start_step": 2})
    assert xbm.on_logits(_view(list(range(4)), [0, 1], step=0, seed=0)).extra_logits is None
    assert xbm.on_logits(_view(list(range(4, 8)), [2, 3], step=1, seed=1)).extra_logits is None
    assert xbm.on_logits(_view(list(range(8, 12)), [4, 5], step=2, seed=2)).extra_logits.shape == (2, 8)


def test_state_round_trips_for_resume():
    xbm = XBM.from_params({"memory_size": 12})
    for k in range(3):
        xbm.on_logits(_view(list(range(8 * k, 8 * k + 8)), [4 * k + r for r in range(4)], step=k, seed=k))
    buffer = io.BytesIO()
    torch.save(xbm.state_dict(), buffer)
    buffer.seek(0)
    resumed = XBM.from_params({"memory_size": 12})
    resumed.load_state_dict(torch.load(buffer, weights_only=False))
    nxt = _view(list(range(40, 48)), [30, 31, 32, 33], step=3, seed=7)
    torch.testing.assert_close(resumed.on_logits(nxt).extra_logits, xbm.on_logits(nxt).extra_logits)
    assert torch.equal(resumed.memory[1], xbm.memory[1])


def test_param_checks():
    with pytest.raises(ConfigError, match="memory_size"):
        XBM.from_params({"memory_size": 0})
    with pytest.raises(ConfigError, match="start_step"):
        XBM.from_params({"start_step": -1})


def test_a_run_ending_before_start_step_never_uses_the_memory() -> None:
    assert "never uses its memory, so it trains as in-batch" in XBM.from_params({"start_step": 100}).unexercised(1, 25)
    assert XBM.from_params({"start_step": 24}).unexercised(1, 25) is None and XBM().unexercised(1, 1) is None
