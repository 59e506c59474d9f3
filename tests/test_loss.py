"""The shared InfoNCE: formula, known-positive masking, row weights, extra negatives, non-finite guard."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.errors import NonFiniteLossError
from negbench.loss import InfoNCELoss, info_nce


def make_loss(doc_ids: list[list[int]], forbidden: dict[int, set[int]], on_logits=lambda v: v):
    return InfoNCELoss(model=None, scale=20.0, doc_ids_of=lambda ex: torch.tensor([doc_ids[i] for i in ex]),
                       forbidden_of=lambda e: forbidden[e], on_logits=on_logits)


def reps(*columns: torch.Tensor) -> list[list[torch.Tensor]]:
    return [[c] for c in columns]


def test_matches_cross_entropy_over_in_batch_and_hard_negatives():
    g = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(4, 8, generator=g) for _ in range(3))
    loss = make_loss([[10, 20], [11, 21], [12, 22], [13, 23]], {i: {10 + i} for i in range(4)})
    value = loss.calculate_loss(reps(q, p, n), torch.arange(4))
    logits = 20.0 * F.normalize(q, dim=-1) @ F.normalize(torch.cat([p, n]), dim=-1).T
    assert value == pytest.approx(F.cross_entropy(logits, torch.arange(4)).item(), rel=1e-5)


def test_labelled_positives_of_a_row_are_masked():
    q = torch.eye(3, 4)
    p = torch.eye(3, 4)
    # example 0's query also has doc 11 (example 1's positive) labelled relevant: a known false negative
    loss = make_loss([[10], [11], [12]], {0: {10, 11}, 1: {11}, 2: {12}})
    view = loss.build_view(reps(q, p), torch.arange(3))
    assert view.mask.tolist() == [[False, True, False], [False, False, False], [False, False, False]]


def test_row_weight_and_extra_negatives_enter_the_formula():
    q = torch.eye(2, 4)
    p = torch.eye(2, 4)
    loss = make_loss([[0], [1]], {0: {0}, 1: {1}})
    view = loss.build_view(reps(q, p), torch.arange(2))
    base = info_nce(view).item()
    assert info_nce(view.replace(row_weight=torch.tensor([0.0, 0.0]))).item() == 0.0
    harder = info_nce(view.add_negatives(torch.full((2, 3), 20.0)))
    assert harder.item() > base


def test_non_finite_loss_raises():
    q = torch.full((2, 4), float("nan"))
    loss = make_loss([[0], [1]], {0: {0}, 1: {1}})
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        loss.calculate_loss(reps(q, q.clone()), torch.arange(2))
