"""dss (Sample4Geo's dynamic similarity sampling, Deuser et al. 2023): each anchor shares a batch with its nearest
training pairs — the nearest half of ``neighbour_select`` as they rank, the other half at random from its
``neighbour_range`` — so in-batch negatives are harder than in random batches. Epoch 0's neighbours are mining
work (``mine_s``); their recomputation with the model being trained is refresh work (``refresh_s``)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from negbench.config.suite import ModelConfig, TrainingConfig
from negbench.core.batching import random_batches
from negbench.core.budget import budget_for
from negbench.core.mining import charged_seconds
from negbench.core.models import load_model
from negbench.core.training.loop import train
from negbench.run.measure import Timer
from negbench.strategies.dss import DSS, DSSParams, nearest_pairs, similarity_stream
from negbench.strategies.ngame import pair_embeddings
from negbench.testing import make_context


def _query_to_positive_similarity(ctx, batches) -> float:
    """Mean base-model cosine of a query to the positive of another example in its batch (its in-batch
    negatives' hardness)."""
    q, d = pair_embeddings(ctx)
    return float(np.mean([q[i] @ d[j] for b in batches for i, j in itertools.permutations(b, 2)]))


def _perturbed(tiny_model, scale: float = 0.5):
    """The tiny encoder with its weights moved: a stand-in for the model after some training."""
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    with torch.no_grad():
        gen = torch.Generator().manual_seed(0)
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return model


def test_batches_are_more_similar_than_random_batches(ctx):
    dss = DSS.from_params({"neighbour_select": 3, "neighbour_range": 6})
    dss.setup(ctx)
    ours = [_query_to_positive_similarity(ctx, dss.batches(ctx, epoch)) for epoch in range(3)]
    rand = [_query_to_positive_similarity(ctx, random_batches(ctx, epoch)) for epoch in range(20)]
    assert min(ours) > max(rand), (ours, rand)
    for epoch in range(3):  # every example once, full batches, seeded
        batches = dss.batches(ctx, epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(ctx.examples)))
        assert all(len(b) == ctx.batch_size for b in batches[:-1])
    assert dss.batches(ctx, 1) == DSS.from_params({"neighbour_select": 3, "neighbour_range": 6}).batches(ctx, 1)


def test_an_anchors_batch_holds_its_nearest_half_and_the_rest_from_its_range(ctx, monkeypatch):
    """Synthetic pair embeddings with known neighbours (brute force in float64): the first anchor of an epoch
    (nothing placed yet) shares its batch of ``1 + select`` with exactly its nearest ``select // 2`` pairs and
    ``select - select // 2`` others from its ``neighbour_range``, varying with the epoch."""
    n, select, span = len(ctx.examples), 4, 16
    gen = np.random.default_rng(7)
    q = gen.standard_normal((n, 24)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    d = q + 0.3 * gen.standard_normal((n, 24)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    sims = q.astype(np.float64) @ d.astype(np.float64).T
    np.fill_diagonal(sims, -np.inf)  # the toy set has one example per query and positive: only i itself is barred
    known = np.argsort(-sims, axis=1, kind="stable")[:, :span]
    monkeypatch.setattr("negbench.strategies.dss.pair_embeddings", lambda ctx, model=None: (q, d))
    ctx.batch_size = 1 + select
    dss = DSS.from_params({"neighbour_select": select, "neighbour_range": span})
    assert [r.tolist() for r in nearest_pairs(ctx, q, d, span)] == known.tolist()
    dss.setup(ctx)
    next_ranks = []
    for epoch in range(6):
        first = dss.batches(ctx, epoch)[0]
        anchor, mates = first[0], set(first[1:])
        nearest, rest = set(known[anchor, : select // 2].tolist()), set(known[anchor, select // 2 :].tolist())
        assert nearest <= mates, (epoch, anchor, sorted(mates), sorted(nearest))
        assert len(mates - nearest) == select - select // 2 and mates - nearest <= rest
        next_ranks.append(mates - nearest == set(known[anchor, select // 2 : select].tolist()))
    assert not all(next_ranks)  # the other half is drawn from the range, not its next ranks


def test_groups_take_the_nearest_half_then_random_unplaced_ones_from_the_range():
    """Replay of :func:`similarity_groups` over every anchor: its group is its unplaced nearest ``select // 2``
    neighbours plus unplaced ones of the rest of its range (a placed neighbour is skipped, not replaced)."""
    from negbench.strategies.dss import similarity_groups

    gen = np.random.default_rng(3)
    n, select, span = 60, 6, 12
    neighbours = [gen.permutation(np.delete(np.arange(n), i))[:span] for i in range(n)]
    groups = similarity_groups(np.random.default_rng(0), neighbours, select)
    assert sorted(i for g in groups for i in g) == list(range(n))
    assert similarity_stream(np.random.default_rng(0), neighbours, select) == [i for g in groups for i in g]
    placed: set[int] = set()
    for anchor, *mates in groups:
        row = neighbours[anchor].tolist()
        near = [j for j in row[: select // 2] if j not in placed]
        assert mates[: len(near)] == near  # the nearest half, as they rank
        assert set(mates[len(near) :]) <= set(row[select // 2 :]) - placed
        assert len(mates) - len(near) <= select - select // 2
        placed |= {anchor, *mates}
    assert max(len(g) for g in groups) == 1 + select


def test_neighbours_never_hold_a_labelled_positive_and_are_nearest_first(ctx):
    q, d = pair_embeddings(ctx)
    found = nearest_pairs(ctx, q, d, 5)
    for i, row in enumerate(found):
        assert i not in row.tolist()
        assert not {int(ctx.positive_docs[j]) for j in row} & ctx.forbidden(i)
        sims = d[row] @ q[i]
        assert np.all(np.diff(sims) <= 1e-6)


def test_refresh_recomputes_the_neighbours_with_the_model_being_trained(ctx, tiny_model):
    dss = DSS.from_params({"neighbour_select": 2, "neighbour_range": 4, "refresh_epochs": 2})
    steps = len(ctx.examples) // ctx.batch_size
    ctx.epochs, ctx.steps_per_epoch = 5, steps  # the run's budget (set by the runner)
    dss.setup(ctx)
    # after every second epoch but the last one (training ends there)
    assert [s for s in range(1, 6 * steps) if dss.refresh_due(s)] == [2 * steps, 4 * steps]
    before = dss.batches(ctx, 2)
    first = [r.tolist() for r in dss.state["neighbours"]]
    ctx.model = _perturbed(tiny_model)
    assert dss.batches(ctx, 2) == before  # batches encode nothing: the neighbours change at a refresh only
    dss.refresh(ctx, 2 * steps)
    assert [r.tolist() for r in dss.state["neighbours"]] != first
    assert dss.state["refreshed_at"] == [2 * steps]
    assert dss.batches(ctx, 2) != before


def _track(monkeypatch, strategy, services) -> list[tuple]:
    """Record the strategy hooks the trainer calls and every embedding look-up or encoding, with the hooks it
    ran inside: ("call", hook, argument) and ("embed", (hook, …), what)."""
    events: list[tuple] = []
    stack: list[str] = []

    def hooked(hook, original):
        def wrapper(ctx, *args):
            events.append(("call", hook, args[0] if args else None))
            stack.append(hook)
            try:
                return original(ctx, *args)
            finally:
                stack.pop()

        return wrapper

    for hook in ("setup", "mine", "batches", "refresh"):
        monkeypatch.setattr(strategy, hook, hooked(hook, getattr(strategy, hook)))

    def counted(what, original):
        def wrapper(*args, **kwargs):
            events.append(("embed", tuple(stack), what))
            return original(*args, **kwargs)

        return wrapper

    for what in ("query_embeddings", "corpus_embeddings"):  # cache look-ups: charged even when warm
        monkeypatch.setattr(services, what, counted(what, getattr(services, what)))
    monkeypatch.setattr(SentenceTransformer, "encode", counted("encode", SentenceTransformer.encode))
    return events


def test_epoch0_encoding_is_mining_and_later_ones_are_refreshes(toy_data, tiny_model, tmp_path, monkeypatch):
    """The real path (``negbench.run.final``: setup and mine timed as ``mine_s``, then ``train``): with a cold cache,
    epoch 0's embeddings are looked up and encoded in setup/mine, none inside ``batches`` for any epoch, and each
    later epoch's neighbours come from a refresh (``refresh_s``) with the model being trained, before that epoch's
    batches are composed."""
    ctx = make_context(toy_data, tiny_model, tmp_path / "cold-cache")
    dss = DSS.from_params({"neighbour_select": 2, "neighbour_range": 4})
    cfg = TrainingConfig(epochs=3, batch_size=8, lr=1e-3, num_negatives=0)
    budget = budget_for(dss, len(ctx.examples), cfg)
    events = _track(monkeypatch, dss, ctx.services)
    dss.setup(ctx)
    assert dss.mine(ctx) is None
    mined = [e for e in events if e[0] == "embed"]
    assert {what for _, _, what in mined} >= {"query_embeddings", "corpus_embeddings", "encode"}
    first_training_event = len(events)
    model = load_model(ModelConfig(spec=str(tiny_model), max_seq_length=32), "cpu")
    outcome = train(model, ctx, dss, cfg, device="cpu", budget=budget)
    assert not [e for e in events if e[0] == "embed" and "batches" in e[1]], "batches() looked up or encoded"
    during = [e for e in events[first_training_event:] if e[0] == "embed"]
    assert during and all("refresh" in stack for _, stack, _ in during), during
    steps = budget.steps_per_epoch
    calls = [(hook, arg) for kind, hook, arg in events if kind == "call" and hook in ("batches", "refresh")]
    for epoch in (1, 2):  # the refresh after epoch - 1's last step comes before epoch's batches
        assert calls.index(("refresh", epoch * steps)) < calls.index(("batches", epoch))
    assert outcome.refreshes == 2 and outcome.refresh_s > 0
    assert dss.state["refreshed_at"] == [steps, 2 * steps]
    refreshed = [e for e in events if e[0] == "embed" and "refresh" in e[1] and e[2] == "encode"]
    assert len(refreshed) >= 2 * 2  # queries and positives, re-encoded at each refresh


def test_mine_s_pays_for_the_embeddings_alike_with_a_cold_and_a_warm_cache(toy_data, tiny_model, tmp_path):
    """As ``negbench.run.final`` charges it: setup and mine, timed, plus the recorded cost of every cached
    artefact used — the base model's query and corpus embeddings, whether encoded now (cold) or loaded (warm)."""
    charged = []
    for _ in ("cold", "warm"):
        ctx = make_context(toy_data, tiny_model, tmp_path / "cache")
        services = ctx.services
        services.begin_run()
        dss = DSS.from_params({"neighbour_select": 2, "neighbour_range": 4})
        with Timer() as timer:
            dss.setup(ctx)
            dss.mine(ctx)
        used = dict(services._used)
        assert any("corpus-emb" in k for k in used) and any("query-emb" in k for k in used), used
        charged.append((charged_seconds(timer.seconds, [services]), used))
    (cold, cold_used), (warm, warm_used) = charged
    assert cold_used == warm_used  # the same artefacts at the same recorded cost
    assert min(cold, warm) >= sum(cold_used.values()) > 0


@pytest.mark.parametrize(
    "bad", [{"neighbour_select": 0}, {"neighbour_select": 9, "neighbour_range": 4}, {"refresh_epochs": 0}]
)
def test_bad_params(bad):
    with pytest.raises(ValueError):
        DSSParams(**bad)


def test_a_one_epoch_run_never_recomputes_the_neighbours() -> None:
    assert "never refreshes, so the base model's neighbours serve" in DSS().unexercised(1, 25)
    assert DSS().unexercised(2, 50) is None
