"""pooling-bias (CET): relevance from the trained model's scores × selection by the pooler's rank, fitted jointly
by EM with two anchors; negatives weighted by P(true negative); relevance 0 everywhere is plain InfoNCE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from negbench.context import Context
from negbench.core.loss import InfoNCELoss, info_nce
from negbench.core.strategy import LogitView
from negbench.data.beir import Corpus
from negbench.data.dataset import RetrievalDataset
from negbench.strategies.pooling_bias import PoolingBias, PoolingBiasParams, true_negative_weight
from tests.strategies.views import plain_view

SCALE = 20.0


def _view(batch: int = 4, seed: int = 0) -> LogitView:
    g = torch.Generator().manual_seed(seed)
    query = F.normalize(torch.randn(batch, 8, generator=g), dim=-1)
    docs = F.normalize(torch.randn(2 * batch, 8, generator=g), dim=-1)
    return plain_view(query, docs, SCALE)


def test_relevance_zero_is_plain_infonce():
    view = _view()
    weight = true_negative_weight(torch.zeros(4, 8), torch.rand(4, 8, generator=torch.Generator().manual_seed(1)))
    assert torch.all(weight == 1)
    assert info_nce(view.replace(column_weight=weight)).item() == pytest.approx(info_nce(view).item())


def test_posterior_of_an_unlabelled_document():
    r, s = torch.tensor([0.8, 0.8, 0.0, 1.0]), torch.tensor([0.1, 0.9, 0.5, 0.0])
    # r(1-s)/(1-rs): a likely-relevant document the pool likely skipped is likely a false negative
    expected = 1 - torch.tensor([0.8 * 0.9 / (1 - 0.08), 0.8 * 0.1 / (1 - 0.72), 0.0, 1.0])
    assert torch.allclose(true_negative_weight(r, s), expected)


# ------------------------------------------------------------------------------------ a synthetic pooled world
class _Services:
    """Stands in for MiningServices: fixed embeddings (the base model) and a noisy lexical pooler."""

    def __init__(self, rows: dict[str, int], queries: torch.Tensor, docs: torch.Tensor, pooler: torch.Tensor):
        self.rows, self.queries, self.docs, self.pooler = rows, queries, docs, pooler

    def _index(self, qids):
        return torch.tensor([self.rows[q] for q in qids])

    def query_embeddings(self, qids, model=None):
        return self.queries[self._index(qids)]

    def corpus_embeddings(self, model=None):
        return self.docs

    def dense_topk(self, qids, k, model=None):
        scores, idx = torch.topk(self.query_embeddings(qids) @ self.docs.T, k, dim=1)
        return scores.numpy(), idx.numpy()

    def bm25_topk(self, qids, k):
        scores, idx = torch.topk(self.pooler[self._index(qids)], k, dim=1)
        return scores.numpy(), idx.numpy()


def _world(false_negatives: bool, seed: int = 0, n_queries: int = 160, dim: int = 48):
    """Queries with 3 relevant documents (cos ≈ 0.88) and 8 topical non-relevant ones (cos ≈ 0.6) among random
    documents. The pooler, a lexical retriever, ranks by its own noisy grade (relevant 1, topical 0.5, else 0, noise
    0.25); annotators judge its first document and, with ``false_negatives``, a quarter of the others (else all), so
    the unjudged relevant documents are planted false negatives that the dense candidate lists contain. Returns
    (ctx, relevant sets, false-negative sets), the sets per query row of ``ctx.query_ids``."""
    rng = np.random.default_rng(seed)
    u = F.normalize(torch.as_tensor(rng.standard_normal((n_queries, dim)), dtype=torch.float32), dim=-1)

    def around(noise: float, k: int) -> torch.Tensor:
        e = torch.as_tensor(rng.standard_normal((n_queries, k, dim)) / np.sqrt(dim), dtype=torch.float32)
        return F.normalize(u[:, None, :] + noise * e, dim=-1).reshape(n_queries * k, dim)

    rand = F.normalize(torch.as_tensor(rng.standard_normal((1200, dim)), dtype=torch.float32), dim=-1)
    docs = torch.cat([around(0.55, 3), around(1.3, 8), rand])
    relevant = [set(range(3 * q, 3 * q + 3)) for q in range(n_queries)]
    grade = torch.zeros(n_queries, len(docs))
    for q in range(n_queries):
        grade[q, 3 * q : 3 * q + 3], grade[q, 3 * n_queries + 8 * q : 3 * n_queries + 8 * q + 8] = 1.0, 0.5
    pooler = grade + 0.25 * torch.as_tensor(rng.standard_normal(grade.shape), dtype=torch.float32)
    order = torch.argsort(pooler, dim=1, descending=True).numpy()
    qids, train, missed = [f"q{q}" for q in range(n_queries)], {}, []
    for q in range(n_queries):
        rank = {int(d): k + 1 for k, d in enumerate(order[q, :100])}
        judged = {d for d in relevant[q] if rank.get(d, 999) == 1 or not false_negatives or rng.random() < 0.25}
        missed.append(relevant[q] - judged)
        if judged:
            train[qids[q]] = {f"d{d}": 1 for d in sorted(judged)}
    corpus = Corpus([f"d{i}" for i in range(len(docs))], [f"document {i}" for i in range(len(docs))])
    dataset = RetrievalDataset(
        name="pooled", root=None, corpus=corpus, queries={q: f"query {q}" for q in qids},
        split_qrels={"train": train, "dev": {}}, fingerprint="pooled",
    )  # fmt: skip
    services = _Services({q: i for i, q in enumerate(qids)}, u, docs, pooler)
    ctx = Context(dataset, dataset.training_examples(), services, num_negatives=3, batch_size=16, epochs=1, seed=0)  # type: ignore[arg-type]
    index = [int(q[1:]) for q in ctx.query_ids]
    return ctx, [relevant[q] for q in index], [missed[q] for q in index]


def _batch_view(ctx: Context, examples: list[int], negatives: list[list[int]]) -> LogitView:
    """The shared loss's own view of a batch: rows ``examples``, each with its positive and ``negatives``."""
    services = ctx.services
    rows = ctx.example_query[examples]
    docs = services.corpus_embeddings()
    labels = torch.tensor([[e, ctx.examples[e].doc, *negs] for e, negs in zip(examples, negatives, strict=True)])
    queries = services.query_embeddings([ctx.query_ids[r] for r in rows])
    reps = [[queries]] + [[docs[labels[:, c]]] for c in range(1, labels.shape[1])]
    loss = InfoNCELoss(None, SCALE, ctx.forbidden)
    with torch.no_grad():
        return loss.build_view(reps, labels)


def test_planted_false_negatives_are_down_weighted_and_random_in_batch_negatives_kept():
    """CET's point: a relevant document the pool did not judge is a false negative (weight < 0.5), while the
    batch's other documents, which no pooler selected for this query, are true negatives (median weight ≥ 0.9)."""
    ctx, relevant, missed = _world(false_negatives=True)
    strategy = PoolingBias.from_params({"depth": 30})
    strategy.setup(ctx)
    candidates = strategy.mine(ctx)
    chosen, negatives, planted = [], [], []
    for i, row in enumerate(ctx.example_query):
        cands = [int(d) for d in candidates.ids[i]]
        fns = [d for d in cands if d in missed[row]]
        if fns and row not in {ctx.example_query[c] for c in chosen}:
            chosen.append(i)
            negatives.append([fns[0], *[d for d in cands if d not in relevant[row]][:2]])
            planted.append(fns[0])
        if len(chosen) == 16:
            break
    assert len(chosen) == 16
    view = _batch_view(ctx, chosen, negatives)
    weight = strategy.on_logits(view).column_weight
    doc_ids = view.doc_ids.tolist()
    fn_weight = torch.stack([weight[i, doc_ids.index(d)] for i, d in enumerate(planted)])
    rows = ctx.example_query[chosen]
    unrelated = [
        weight[i, j]
        for i, row in enumerate(rows)
        for j, d in enumerate(doc_ids)
        if d not in relevant[row] and d not in set(candidates.ids[chosen[i]].tolist()) and not view.mask[i, j]
    ]
    assert len(unrelated) > 16 * 16
    assert fn_weight.max() < 0.5, fn_weight
    assert torch.stack(unrelated).median() >= 0.9


def test_without_false_negatives_the_weighted_loss_stays_near_plain():
    """With every relevant document labelled there is nothing to correct: a batch of hard negatives keeps a loss
    within a factor of 2 of plain InfoNCE (a collapsed fit weighs every negative ≈ 0 and the loss ≈ 0)."""
    ctx, _, missed = _world(false_negatives=False)
    assert not any(missed)
    strategy = PoolingBias.from_params({"depth": 30})
    strategy.setup(ctx)
    sampled = strategy.sample(ctx, strategy.mine(ctx), epoch=0)
    for start in (0, 16, 32):
        chosen = list(range(start, start + 16))
        view = _batch_view(ctx, chosen, [sampled.ids[i].tolist() for i in chosen])
        plain, weighted = info_nce(view).item(), info_nce(strategy.on_logits(view)).item()
        assert plain / 2 <= weighted <= plain + 1e-6, (plain, weighted)


# --------------------------------------------------------------------------------------------- the EM itself
def _pairs(n: int = 60_000, seed: int = 0):
    """Pairs drawn from a known coupled model: relevance σ(12·cos − 9), selection rank^−0.8 (depth 50)."""
    from negbench.strategies.pooling_bias import BUCKETS, Role, bucket_ranks

    g = np.random.default_rng(seed)
    cos = torch.as_tensor(g.uniform(-0.1, 1.0, n))
    buckets = torch.as_tensor(np.minimum(g.geometric(0.3, n) - 1 + (cos < 0.5).numpy() * 2, BUCKETS - 1))
    selection = bucket_ranks(50) ** -0.8
    r = torch.sigmoid(12 * cos - 9)
    y = torch.as_tensor(g.random(n)) < r * selection[buckets]
    roles = torch.where(y, Role.POSITIVE, Role.UNLABELLED)
    random = torch.as_tensor(g.uniform(-0.2, 0.3, n // 4))
    cos = torch.cat([cos, random])
    buckets = torch.cat([buckets, torch.full((len(random),), BUCKETS - 1)])
    roles = torch.cat([roles, torch.full((len(random),), Role.RANDOM)])
    return cos, buckets, roles


def test_the_em_recovers_relevance_and_selection_without_collapsing():
    from negbench.strategies.pooling_bias import fit_coupled

    model, _ = fit_coupled(*_pairs(), depth=50)
    grid = torch.linspace(0.0, 1.0, 11, dtype=torch.float64)
    assert (model.relevance(grid) - torch.sigmoid(12 * grid - 9)).abs().max() < 0.1
    assert model.eta == pytest.approx(0.8, abs=0.1)
    assert model.relevance(torch.tensor([0.1])).item() < 0.01  # a random document is not relevant


def test_a_flat_score_gives_no_correction():
    """A score that tells nothing (the toy encoder before training): the random-document prior keeps r ≈ 0."""
    from negbench.strategies.pooling_bias import Role, fit_coupled

    g = np.random.default_rng(1)
    cos = torch.as_tensor(g.uniform(0.9, 0.95, 3000))
    roles = torch.as_tensor(np.repeat([Role.POSITIVE, Role.UNLABELLED, Role.RANDOM], [100, 1400, 1500]))
    buckets = torch.as_tensor(g.integers(0, 9, 3000))
    model, _ = fit_coupled(cos, buckets, roles, depth=50)
    assert model.weight(cos, buckets).min() > 0.9


def test_online_em_follows_the_trained_models_scores_and_resumes(ctx):
    strategy = PoolingBias.from_params({"depth": 20})
    strategy.setup(ctx)
    before = strategy.model
    doc_ids = torch.tensor([int(d) for d in ctx.positive_docs[:8]] + list(range(100, 108)))
    view = _view(8).replace(example_ids=torch.arange(8), doc_ids=doc_ids)
    saved = strategy.state_dict()
    with torch.no_grad():
        frozen = strategy.on_logits(view).column_weight
    assert strategy.model == before  # no update outside training
    for _ in range(20):  # training steps: the scores now separate positives from everything else
        strategy.on_logits(view.replace(logits=SCALE * torch.where(torch.eye(8, 16, dtype=torch.bool), 0.9, 0.1)))
    assert strategy.model.alpha > before.alpha  # the calibration sharpens with the sharper scores
    strategy.load_state_dict(saved)
    with torch.no_grad():
        assert torch.equal(strategy.on_logits(view).column_weight, frozen)


def test_weights_on_the_toy_corpus_are_probabilities_and_never_touch_the_target(ctx):
    strategy = PoolingBias.from_params({"depth": 20})
    strategy.setup(ctx)
    view = _view()
    out = strategy.on_logits(
        view.replace(
            example_ids=torch.arange(4),
            doc_ids=torch.tensor([int(ctx.positive_docs[i]) for i in range(4)] + [0, 1, 2, 3]),
        )
    )
    assert out.column_weight.shape == (4, 8)
    assert torch.all((out.column_weight >= 0) & (out.column_weight <= 1))
    loss = info_nce(out)  # the target column is weighted 1 by the loss whatever the strategy says
    assert torch.isfinite(loss)


@pytest.mark.parametrize("bad", [{"depth": 0}, {"memory": 0.0}, {"source": "tfidf"}, {"pooler": "judges"}])
def test_bad_params(bad):
    with pytest.raises(ValueError):
        PoolingBiasParams(**bad)
