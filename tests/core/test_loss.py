"""The shared InfoNCE: formula, known-positive masking, row weights, extra negatives, non-finite guard."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from negbench.core.loss import InfoNCELoss, info_nce
from negbench.errors import NonFiniteLossError


def make_loss(forbidden: dict[int, set[int]], on_logits=lambda v: v):
    return InfoNCELoss(model=None, scale=20.0, forbidden_of=lambda e: forbidden[e], on_logits=on_logits)


def labels(doc_ids: list[list[int]]) -> torch.Tensor:
    """The collator's label tensor: example index, then the corpus ids of the positive and the negatives."""
    return torch.tensor([[i, *ids] for i, ids in enumerate(doc_ids)])


def reps(*columns: torch.Tensor) -> list[list[torch.Tensor]]:
    return [[c] for c in columns]


def test_matches_cross_entropy_over_in_batch_and_hard_negatives():
    g = torch.Generator().manual_seed(0)
    q, p, n = (torch.randn(4, 8, generator=g) for _ in range(3))
    loss = make_loss({i: {10 + i} for i in range(4)})
    value = loss.calculate_loss(reps(q, p, n), labels([[10, 20], [11, 21], [12, 22], [13, 23]]))
    logits = 20.0 * F.normalize(q, dim=-1) @ F.normalize(torch.cat([p, n]), dim=-1).T
    assert value == pytest.approx(F.cross_entropy(logits, torch.arange(4)).item(), rel=1e-5)


def test_labelled_positives_of_a_row_are_masked():
    q = torch.eye(3, 4)
    p = torch.eye(3, 4)
    # example 0's query also has doc 11 (example 1's positive) labelled relevant: a known false negative
    loss = make_loss({0: {10, 11}, 1: {11}, 2: {12}})
    view = loss.build_view(reps(q, p), labels([[10], [11], [12]]))
    assert view.mask.tolist() == [[False, True, False], [False, False, False], [False, False, False]]


def test_row_weight_and_extra_negatives_enter_the_formula():
    q = torch.eye(2, 4)
    p = torch.eye(2, 4)
    loss = make_loss({0: {0}, 1: {1}})
    view = loss.build_view(reps(q, p), labels([[0], [1]]))
    base = info_nce(view).item()
    assert info_nce(view.replace(row_weight=torch.tensor([0.0, 0.0]))).item() == 0.0
    harder = info_nce(view.add_negatives(torch.full((2, 3), 20.0)))
    assert harder.item() > base


def test_non_finite_loss_raises():
    q = torch.full((2, 4), float("nan"))
    loss = make_loss({0: {0}, 1: {1}})
    with pytest.raises(NonFiniteLossError, match="non-finite loss"):
        loss.calculate_loss(reps(q, q.clone()), labels([[0], [1]]))


def test_a_document_counts_once_per_row():
    """NGAME's cluster negatives are other rows' positives: the repeated column is masked for every row, so
    the document enters each softmax denominator once (the loss equals the one without the repeat)."""
    g = torch.Generator().manual_seed(1)
    q, p = torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)
    loss = make_loss({0: {10}, 1: {11}, 2: {12}})
    # example 0's explicit negative is doc 11: example 1's positive, already column 1 of the batch
    n = torch.stack([p[1], torch.randn(8, generator=g), torch.randn(8, generator=g)])
    view = loss.build_view(reps(q, p, n), labels([[10, 11], [11, 30], [12, 31]]))
    assert view.mask[:, 3].tolist() == [True, True, True]  # column 3 repeats doc 11
    assert not view.mask[:, :3].any()
    logits = 20.0 * F.normalize(q, dim=-1) @ F.normalize(torch.cat([p, n]), dim=-1).T
    counted_once = torch.cat([logits[:, :3], logits[:, 4:]], dim=1)  # doc 11 only as column 1
    assert info_nce(view).item() == pytest.approx(F.cross_entropy(counted_once, torch.arange(3)).item(), rel=1e-5)


def test_labels_must_name_every_embedded_document():
    q = torch.eye(2, 4)
    loss = make_loss({0: {0}, 1: {1}})
    with pytest.raises(ValueError, match="name 2 documents, 4 were embedded"):
        loss.build_view(reps(q, q.clone(), q.clone()), labels([[0], [1]]))


def _view(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, p, n = (torch.randn(4, 8, generator=g) for _ in range(3))
    return make_loss({i: {10 + i} for i in range(4)}).build_view(
        reps(q, p, n), labels([[10, 20], [11, 21], [12, 22], [13, 23]])
    )


def test_column_weights_scale_the_denominator_and_never_the_target():
    view = _view()
    plain = info_nce(view)
    assert info_nce(view.replace(column_weight=torch.ones_like(view.logits))) == pytest.approx(plain.item())
    zero = torch.ones_like(view.logits)
    zero[0, 5] = 0.0  # row 0 without column 5 …
    assert info_nce(view.replace(column_weight=zero)).item() == pytest.approx(
        info_nce(view.replace(mask=view.mask | (zero == 0))).item()
    )  # … is a mask
    half = torch.full_like(view.logits, 0.5)
    logits = view.logits.masked_fill(view.mask, float("-inf"))
    by_hand = -(
        logits.gather(1, view.target[:, None]).squeeze(1)
        - torch.logsumexp(
            torch.where(torch.eye(4, 8, dtype=torch.bool), logits, logits + torch.log(torch.tensor(0.5))), dim=1
        )
    ).mean()
    assert info_nce(view.replace(column_weight=half)).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_a_one_hot_soft_target_is_plain_infonce_and_a_soft_one_is_its_cross_entropy():
    view = _view()
    one_hot = F.one_hot(view.target, view.logits.shape[1]).float()
    assert info_nce(view.replace(soft_target=one_hot)).item() == pytest.approx(info_nce(view).item(), rel=1e-6)
    soft = torch.softmax(torch.randn(view.logits.shape, generator=torch.Generator().manual_seed(3)), dim=1)
    soft = soft.masked_fill(view.mask, 0.0)
    soft = soft / soft.sum(1, keepdim=True)
    log_p = torch.log_softmax(view.logits.masked_fill(view.mask, float("-inf")), dim=1)
    expected = -torch.where(soft > 0, soft * log_p, torch.zeros_like(log_p)).sum(1).mean()
    assert info_nce(view.replace(soft_target=soft)).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="soft_target"):
        info_nce(view.replace(soft_target=soft[:, :3]))


@pytest.mark.parametrize("broken", [float("nan"), float("inf"), -0.5])
def test_a_broken_soft_target_fails_the_step_instead_of_vanishing_from_the_loss(broken):
    """A NaN target entry was dropped by the ``target > 0`` guard: the loss looked finite while its gradient was
    NaN (ar2 with a tiny temperature trained NaN weights and reported ``ok``)."""
    view = _view()
    soft = F.one_hot(view.target, view.logits.shape[1]).float()
    soft[0, 1] = broken
    with pytest.raises(NonFiniteLossError, match="soft_target"):
        info_nce(view.replace(soft_target=soft))
