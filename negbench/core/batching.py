"""Batch composition shared by the default sampler and the composing strategies.

:func:`pack` cuts an ordered stream of training examples into full batches of ``ctx.batch_size`` in which no
two examples share a query or a positive document, by id or by text (SciFact has twin queries with
identical text under different ids; a twin in the same batch would be a false in-batch negative). The
examples that clash with others (a query's several positives, twins, a document positive for two queries) are
placed first, each in the batch nearest its place in the stream where it clashes with nothing, so a query
with ``k`` positives lands in ``k`` distinct batches; the rest of the stream fills the remaining places in
order. Only the stream's last ``len(order) mod batch_size`` examples are left over, unless the data forces
another out (a query with more positives than there are batches), so every example of the stream is trained
whenever the data allows it.

Which examples the data budget leaves out of an epoch of negbench's own random batches (``n mod batch_size``
of them) rotates: :func:`rotate_remainder` swaps into the remainder the examples a seeded schedule says are
due, walking permutations of all examples, so no example is left out a second time before every other one was
left out once (:func:`due_left_out`). A composing strategy's batches are its method and are trained as composed;
its coverage (:class:`Coverage`) is measured and shown by ``plan`` and in its row.
:func:`random_batches` is :func:`pack` over a seeded shuffle: negbench's default composition.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from negbench.core.budget import Budget, enforce

if TYPE_CHECKING:
    from negbench.core.context import Context
    from negbench.core.strategy import Strategy

__all__ = [
    "Coverage",
    "clash_keys",
    "compose_epoch",
    "due_left_out",
    "pack",
    "random_batches",
    "recorded_coverage",
    "rotate_remainder",
]

Keys = dict[int, set[tuple[str, object]]]


def clash_keys(ctx: Context, i: int) -> set[tuple[str, object]]:
    """What example ``i`` may not share with another example of its batch: query and positive, id and text."""
    example = ctx.examples[i]
    return {
        ("q", example.query_id),
        ("qt", " ".join(example.query.split())),
        ("d", example.doc),
        ("dt", ctx.dataset.corpus.texts[example.doc]),
    }


def pack(ctx: Context, order: Iterable[int], batches: int | None = None) -> list[list[int]]:
    """``batches`` (default: as many as ``order`` can fill) full batches from ``order``, then what is left over.

    Earlier examples of ``order`` are preferred: the left-over examples are the last ones, except where an
    earlier example fits in no batch (then a later one takes its place). Each batch keeps its members in stream
    order and the batches follow the stream, so a composer's locality (clusters, neighbours) survives. The
    left-over examples follow as short batches (the budget drops them); fewer full batches come back only when
    the clashes leave no way to fill them that this greedy placement finds.
    """
    order = [int(i) for i in order]
    size = ctx.batch_size
    count = len(order) // size if batches is None else max(0, min(int(batches), len(order) // size))
    keys = {i: clash_keys(ctx, i) for i in order}
    main, spare = order[: count * size], order[count * size :]
    full, seen, unplaced = _place_clashing(main, keys, count, size)
    placed = {i for batch in full for i in batch}
    _fill_in_order(full, seen, [i for i in main if i not in placed and i not in unplaced], keys, size)
    rank = {i: p for p, i in enumerate(order)}
    left = _fill_free(full, seen, sorted(unplaced, key=rank.__getitem__) + spare, keys, size)
    out = [sorted(batch, key=rank.__getitem__) for batch in full]
    return out + _greedy(left, keys, size)


def _place_clashing(main: list[int], keys: Keys, count: int, size: int) -> tuple[list[list[int]], list[set], set]:
    """Put every example of ``main`` that clashes with another one into a batch, those of the largest groups
    (examples sharing a key) first and a group's in stream order (where a group outnumbers the batches, which of
    them is left out is as random as the stream), each into the batch nearest its stream place
    (``position // size``) that has room and holds nothing it clashes with. Returns the batches, their keys and
    the examples no batch could take."""
    holders: dict[tuple[str, object], list[int]] = {}
    for i in main:
        for key in keys[i]:
            holders.setdefault(key, []).append(i)
    group = {i: max(len(holders[key]) for key in keys[i]) for i in main}  # its largest clique
    position = {i: p for p, i in enumerate(main)}
    full: list[list[int]] = [[] for _ in range(count)]
    seen: list[set] = [set() for _ in range(count)]
    unplaced: set[int] = set()
    for i in sorted((i for i in main if group[i] > 1), key=lambda i: (-group[i], position[i])):
        home = position[i] // size
        b = next((b for b in _outward(home, count) if len(full[b]) < size and not keys[i] & seen[b]), None)
        if b is None and not _move_one(i, full, seen, keys, size, home):
            unplaced.add(i)
            continue
        if b is not None:
            full[b].append(i)
            seen[b] |= keys[i]
    return full, seen, unplaced


def _outward(home: int, count: int) -> Iterable[int]:
    """Batch indices by distance from ``home``: home, home + 1, home - 1, home + 2, …"""
    yield home
    for step in range(1, count):
        if home + step < count:
            yield home + step
        if home - step >= 0:
            yield home - step


def _move_one(i: int, full: list[list[int]], seen: list[set], keys: Keys, size: int, home: int) -> bool:
    """Place ``i`` where it clashes with exactly one member, which moves to another batch it fits (one repair)."""
    count = len(full)
    for b in _outward(home, count):
        blockers = [j for j in full[b] if keys[i] & keys[j]]
        if len(blockers) != 1:
            continue
        j = blockers[0]
        rest = set().union(*(keys[z] for z in full[b] if z != j))
        for c in _outward(b, count):
            if c != b and len(full[c]) < size and not keys[j] & seen[c]:
                full[b].remove(j)
                full[b].append(i)
                seen[b] = rest | keys[i]
                full[c].append(j)
                seen[c] |= keys[j]
                return True
    return False


def _fill_in_order(full: list[list[int]], seen: list[set], items: list[int], keys: Keys, size: int) -> None:
    """Fill the batches' free places with ``items`` (which clash with nothing) in order, earliest batches first."""
    b = 0
    for i in items:
        while len(full[b]) >= size:
            b += 1
        full[b].append(i)
        seen[b] |= keys[i]


def _fill_free(full: list[list[int]], seen: list[set], items: list[int], keys: Keys, size: int) -> list[int]:
    """Fill the batches' free places with ``items`` in order of preference: each into a batch with room it clashes
    with nothing in, or (:func:`_repair`) in place of a member that moves to such a batch. Returns the items left
    over (those that fit nowhere, and all of them once no place is free)."""
    room = [b for b in range(len(full)) if len(full[b]) < size]
    left: list[int] = []
    for pos, i in enumerate(items):
        if not room:
            return left + items[pos:]
        b = next((b for b in room if not keys[i] & seen[b]), None)
        if b is not None:
            full[b].append(i)
            seen[b] |= keys[i]
        else:
            b = _repair(i, full, seen, keys, room)
        if b is None:
            left.append(i)
        elif len(full[b]) >= size:
            room.remove(b)
    return left


def _repair(i: int, full: list[list[int]], seen: list[set], keys: Keys, room: list[int]) -> int | None:
    """Put ``i`` into a batch that clashes with it in at most one member ``z`` that fits a batch with room, and
    move ``z`` there. Returns the batch with room that took ``z`` (None: no such move)."""
    for c, batch in enumerate(full):
        blockers = [z for z in batch if keys[i] & keys[z]]
        if len(blockers) > 1:
            continue
        for z in blockers or batch:
            h = next((h for h in room if h != c and not keys[z] & seen[h]), None)
            if h is not None:
                batch[batch.index(z)] = i
                seen[c] = set().union(*(keys[y] for y in batch))
                full[h].append(z)
                seen[h] |= keys[z]
                return h
    return None


def _greedy(order: list[int], keys: Keys, size: int) -> list[list[int]]:
    """Left-over examples as batches without clashes: an example that clashes with the batch being filled waits
    at the front for the next one (linear in the examples when clashes are few)."""
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


def random_batches(ctx: Context, epoch: int, indices: list[int] | None = None) -> list[list[int]]:
    """Seeded random batches (of ``indices``, default every example) without clashing examples."""
    order = list(indices if indices is not None else range(len(ctx.examples)))
    ctx.rng("batches", epoch).shuffle(order)
    return pack(ctx, order)


def due_left_out(ctx: Context, n: int, k: int, epoch: int) -> list[int]:
    """The ``k`` examples (of ``n``) the schedule leaves out of ``epoch``: block ``epoch`` of a walk through
    seeded permutations of all examples. Where a block straddles two permutations, the later one's head avoids
    the earlier one's tail, so each example is left out once per pass and never twice in one epoch."""
    if k <= 0:
        return []
    start, stop = epoch * k, (epoch + 1) * k
    walk: list[int] = []
    previous: list[int] = []
    for cycle in range((stop - 1) // n + 1):
        perm = [int(i) for i in ctx.rng("left-out", cycle).permutation(n)]
        tail_len = (cycle * n) % k  # examples of the previous permutation in the block straddling the boundary
        if cycle and tail_len:
            tail = set(previous[n - tail_len :])
            head = [i for i in perm if i not in tail][: k - tail_len]
            taken = set(head)
            perm = head + [i for i in perm if i not in taken]
        if cycle >= start // n:
            walk += perm
        previous = perm
    offset = start - start // n * n
    return walk[offset : offset + k]


def rotate_remainder(ctx: Context, batches: Iterable[Iterable[int]], steps: int, epoch: int) -> list[list[int]]:
    """The first ``steps`` full batches of a composition of every example, with the examples due to be left out
    this epoch (:func:`due_left_out`) taken out of them and the other left-over examples put in their places
    (:func:`_fill_free`; a due example stays where no left-over one fits); the left-over examples follow in
    short batches. A composition of fewer examples (a subset by design,
    as RS2's) or one that breaks the budget rule comes back as it is."""
    size, n = ctx.batch_size, len(ctx.examples)
    batches = [[int(i) for i in b] for b in batches]
    flat = [i for b in batches for i in b]
    full = [b for b in batches if len(b) == size]
    if len(full) < steps or len(flat) != n or set(flat) != set(range(n)):
        return batches
    trained = [list(b) for b in full[:steps]]
    in_trained = {i for batch in trained for i in batch}
    due = due_left_out(ctx, n, n - steps * size, epoch)
    out = [x for x in due if x in in_trained]  # due, but composed into a trained batch: taken out
    taken_out = set(out)
    for batch in trained:
        batch[:] = [i for i in batch if i not in taken_out]
    keys: Keys = _LazyKeys(ctx)
    seen = [set().union(*(keys[i] for i in batch)) for batch in trained]
    due_set = set(due)
    _fill_free(trained, seen, [i for i in flat if i not in in_trained and i not in due_set], keys, size)
    _fill_free(trained, seen, out, keys, size)  # where no left-over example took its place, a due one stays
    if any(len(b) < size for b in trained):
        return batches  # cannot happen short of a pathological composition: keep the composer's own
    taken = {i for batch in trained for i in batch}
    rest = [i for i in flat if i not in taken]
    return trained + [rest[j : j + size - 1] for j in range(0, len(rest), size - 1)]


class _LazyKeys(dict):
    """:func:`clash_keys` of each example, computed when first asked for."""

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def __missing__(self, i: int) -> set[tuple[str, object]]:
        self[i] = clash_keys(self.ctx, i)
        return self[i]


def compose_epoch(ctx: Context, strategy: Strategy, budget: Budget, epoch: int) -> list[list[int]]:
    """The batches an epoch trains: the strategy's composition as it is, or, where it composes none,
    :func:`random_batches` with the remainder rotated (:func:`rotate_remainder`); held to ``budget``
    (:func:`~negbench.core.budget.enforce`). A composer's own coverage is measured, not changed."""
    raw, who = strategy.batches(ctx, epoch), strategy.name
    if raw is None:  # a composer's batches are its method (a topic, a cluster): only negbench's own rotate
        raw = rotate_remainder(ctx, random_batches(ctx, epoch), budget.steps_per_epoch, epoch)
        who = f"{who} (negbench's random batches)"
    return enforce(raw, budget, len(ctx.examples), who, epoch)


@dataclass
class Coverage:
    """In how many of a run's epochs each training example is trained (:attr:`share`: the smallest share).

    :meth:`add` takes each epoch's trained batches once; the last epoch counts only the batches the run reaches
    (``max_steps`` may stop it early)."""

    examples: int
    epochs: int
    steps_per_epoch: int
    total_steps: int
    batch_size: int
    trained: list[int] = field(default_factory=list)
    recorded: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.trained = self.trained or [0] * self.examples

    @classmethod
    def of(cls, ctx: Context) -> Coverage:
        """An empty record of ``ctx``'s run (its length as :func:`negbench.core.setup.apply_budget` set it)."""
        steps = ctx.steps_per_epoch or 1
        epochs = max(1, ctx.epochs)
        return cls(len(ctx.examples), epochs, steps, ctx.total_steps or epochs * steps, ctx.batch_size)

    def add(self, epoch: int, batches: list[list[int]]) -> None:
        """Count epoch ``epoch``'s trained ``batches`` (once; an epoch past the run's end is ignored)."""
        if epoch in self.recorded or not 0 <= epoch < self.epochs:
            return
        self.recorded.add(epoch)
        for batch in batches[: max(0, self.total_steps - epoch * self.steps_per_epoch)]:
            for i in batch:
                self.trained[i] += 1

    @property
    def share(self) -> float:
        """The smallest share of the epochs in which an example was trained."""
        return min(self.trained, default=0) / self.epochs

    @property
    def left_out(self) -> int:
        """Example-epochs the run's budget leaves untrained (``n mod batch_size`` per epoch, for most)."""
        steps = min(self.total_steps, self.epochs * self.steps_per_epoch)
        return max(0, self.epochs * self.examples - steps * self.batch_size)

    @property
    def best(self) -> float:
        """The largest :attr:`share` the budget allows: its left-out examples spread evenly over all examples."""
        return (self.epochs - math.ceil(self.left_out / max(1, self.examples))) / self.epochs

    def least_trained(self) -> list[int]:
        """The examples trained in the fewest epochs."""
        low = min(self.trained, default=0)
        return [i for i, t in enumerate(self.trained) if t == low]


def recorded_coverage(ctx: Context) -> Coverage:
    """The :class:`Coverage` record of ``ctx``'s training run, which the trainer's batch sampler fills as it
    composes each epoch (kept in ``ctx.extras["coverage"]``, where a final run's row reads it)."""
    record = ctx.extras.get("coverage")
    if not isinstance(record, Coverage):
        record = ctx.extras["coverage"] = Coverage.of(ctx)
    return record
