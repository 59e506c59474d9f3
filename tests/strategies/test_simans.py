"""simans: negatives are drawn with p ∝ exp(−a·(s − s⁺ − b)²): the empirical frequencies follow that density."""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import chisquare

from negbench.strategies.simans import SimANS, simans_pick, simans_probabilities


def test_empirical_frequency_follows_the_density():
    scores = np.linspace(0.3, 0.9, 61)
    positive, a, b = 0.8, 300.0, -0.1  # peak at s⁺ + b = 0.7
    p = simans_probabilities(scores, positive, a, b)
    rng = np.random.default_rng(0)
    draws = 20_000
    counts = np.bincount(
        [int(simans_pick(rng, scores, positive, a, b, 1)[0]) for _ in range(draws)], minlength=len(scores)
    )
    expected = p * draws
    big = expected >= 5  # chi-square over well-populated candidates, the tail pooled in one cell
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    assert chisquare(obs, exp).pvalue > 1e-3
    assert abs(scores[np.argmax(counts)] - (positive + b)) <= 0.02
    assert np.corrcoef(counts, p)[0, 1] > 0.99
    # uniform sampling over the pool is rejected by the same test
    uniform = np.bincount(rng.integers(len(scores), size=draws), minlength=len(scores))
    assert chisquare(np.append(uniform[big], uniform[~big].sum()), exp).pvalue < 1e-6


def test_draws_without_replacement_are_distinct():
    rng = np.random.default_rng(1)
    pick = simans_pick(rng, np.linspace(0, 1, 10), 0.5, 1000.0, 0.0, 10)
    assert sorted(pick.tolist()) == list(range(10))


def test_strategy_samples_follow_the_density_on_the_toy_corpus(ctx):
    ctx = dataclasses.replace(ctx, num_negatives=1)
    strategy = SimANS.from_params({"a": 3000.0, "b": 0.0, "depth": 30})
    candidates = strategy.mine(ctx)
    positive = ctx.positive_scores()
    edges = np.linspace(-0.04, 0.04, 9)
    observed, expected, uniform = np.zeros(10), np.zeros(10), np.zeros(10)
    for epoch in range(60):
        chosen = strategy.sample(ctx, candidates, epoch)
        for i, ids in enumerate(candidates.ids):
            delta = candidates.scores[i] - positive[i]
            cell = np.digitize(delta, edges)  # 10 cells over s − s⁺
            p = simans_probabilities(candidates.scores[i], float(positive[i]), 3000.0, 0.0)
            observed[cell[list(ids).index(int(chosen.ids[i][0]))]] += 1
            np.add.at(expected, cell, p)
            np.add.at(uniform, cell, 1 / len(ids))
    keep = expected >= 5
    assert chisquare(observed[keep], expected[keep] * observed[keep].sum() / expected[keep].sum()).pvalue > 1e-3
    assert np.corrcoef(observed, expected)[0, 1] > 0.98
    assert chisquare(observed[keep], uniform[keep] * observed[keep].sum() / uniform[keep].sum()).pvalue < 1e-6
