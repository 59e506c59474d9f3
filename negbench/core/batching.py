"""Batch composition shared by the default sampler and the composing strategies.

:func:`pack` cuts an ordered stream of training examples into batches of ``ctx.batch_size`` in which no
two examples share a query or a positive document, by id or by text (SciFact has twin queries with
identical text under different ids; a twin in the same batch would be a false in-batch negative). An
example that clashes with the batch being filled waits for the next batch, ahead of the rest of the
stream, so every batch but the last few is full and the cost is linear in the stream.
:func:`random_batches` is :func:`pack` over a seeded shuffle: negbench's default composition.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from negbench.core.context import Context

__all__ = ["clash_keys", "pack", "random_batches"]


def clash_keys(ctx: Context, i: int) -> set[tuple[str, object]]:
    """What example ``i`` may not share with another example of its batch: query and positive, id and text."""
    example = ctx.examples[i]
    return {
        ("q", example.query_id),
        ("qt", " ".join(example.query.split())),
        ("d", example.doc),
        ("dt", ctx.dataset.corpus.texts[example.doc]),
    }


def pack(ctx: Context, order: Iterable[int]) -> list[list[int]]:
    """Cut ``order`` into batches of at most ``ctx.batch_size``, keeping the order as far as clashes allow."""
    order = [int(i) for i in order]
    keys = {i: clash_keys(ctx, i) for i in order}
    return _fill_tail(_greedy(order, keys, ctx.batch_size), keys, ctx.batch_size)


def _greedy(order: list[int], keys: dict[int, set], size: int) -> list[list[int]]:
    """One pass: an example that clashes with the batch being filled waits at the front for the next one."""
    pending = deque(order)
    batches: list[list[int]] = []
    while pending:
        batch: list[int] = []
        seen: set[tuple[str, object]] = set()
        skipped: list[int] = []
        while pending and len(batch) < size:
            i = pending.popleft()
            if keys[i] & seen:
                skipped.append(i)
            else:
                batch.append(i)
                seen |= keys[i]
        pending.extendleft(reversed(skipped))
        batches.append(batch)
    return batches


def _clashes(key: set, batch: list[int], keys: dict[int, set], skip: int | None = None) -> bool:
    return any(key & keys[z] for z in batch if z != skip)


def _fill_tail(batches: list[list[int]], keys: dict[int, set], size: int) -> list[list[int]]:
    """Turn the short batches left at the end of a stream into full ones where the examples suffice.

    The tail of a stream can hold examples that clash with each other (one query's several positives, say).
    While the short batches hold at least ``size`` examples, a new batch is filled: a clashing example ``x``
    moves into an earlier full batch whose other members it does not clash with, and the member ``y`` it
    replaces, which does not clash with the new batch, moves into the new batch.
    """
    full = [b for b in batches if len(b) == size]
    left = [i for b in batches if len(b) < size for i in b]
    made: list[list[int]] = []
    while len(left) >= size:
        target, seen, rest = [], set(), []
        for i in left:
            (rest if keys[i] & seen else target).append(i)
            if target and target[-1] == i:
                seen |= keys[i]
        stuck: list[int] = []
        while len(target) < size and rest:
            x = rest.pop()
            swap = next(
                (
                    (batch, pos)
                    for batch in reversed(full)
                    for pos, y in enumerate(batch)
                    if not keys[y] & seen and not _clashes(keys[x], batch, keys, skip=y)
                ),
                None,
            )
            if swap is None:
                stuck.append(x)
                continue
            batch, pos = swap
            target.append(batch[pos])
            seen |= keys[batch[pos]]
            batch[pos] = x
        rest = stuck + rest
        if len(target) < size:  # no swap fits: the remaining examples cannot make a full batch
            left = target + rest
            break
        made.append(target)
        left = rest
    return full + made + _greedy(left, keys, size)


def random_batches(ctx: Context, epoch: int, indices: list[int] | None = None) -> list[list[int]]:
    """Seeded random batches (of ``indices``, default every example) without clashing examples."""
    order = list(indices if indices is not None else range(len(ctx.examples)))
    ctx.rng("batches", epoch).shuffle(order)
    return pack(ctx, order)
