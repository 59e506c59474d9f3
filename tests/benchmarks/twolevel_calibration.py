"""Null calibration of the seed × query test (:func:`negbench.report.stats.twolevel.seed_query_test`).

    python tests/benchmarks/twolevel_calibration.py [--replicates 20000] [--queries 300 100] [--seeds 3,3 2,2 ...]

Two configurations with the same true mean are drawn from the test's own random-effects model: per query, a
configuration × query effect (±γ_q / 2), per run a seed shift β_s of all queries together, per run and query a
training noise ε_sq. The seed share is the fraction of the true ``Var Δ`` that the seed shifts carry (0: the
queries carry it all; 1: only the seeds); the seed-variance ratio makes one side's seeds noisier than the other's.
For each setting the script prints the test's rejection rate over its nominal α (1.00: exact, above: liberal) at
the α of one comparison, of a Holm family of three and of one of 24 (the first step of Holm). Monte-Carlo error
at ``R`` replicates: a rate r·α has a standard error of about ``sqrt(r / (R·α))`` in these units (±0.15 at
α = 0.05 / 24 and R = 20,000). It measures whatever ``seed_query_test`` the import finds: run it with
``PYTHONPATH`` at another checkout to compare revisions.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from negbench.report.stats.twolevel import seed_query_test

ALPHAS = (0.05, 0.05 / 3, 0.05 / 24)
SHARES = (0.0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0)
QUERY_INTERACTION = 0.0356  # σ²_γ, about that of a real SciFact board (nDCG@10 of two strategies)
QUERY_NOISE = 0.01  # σ²_ε


def rejection_ratios(
    n: int, seeds: tuple[int, int], share: float, ratio: float, replicates: int, rng: np.random.Generator
) -> list[float]:
    """Rejection rate over nominal α at each of :data:`ALPHAS`, for one setting under the null."""
    s1, s0 = seeds
    gamma, noise = (QUERY_INTERACTION, QUERY_NOISE) if share < 1 else (0.0, 0.0)
    query_part = (gamma + noise * (1 / s1 + 1 / s0)) / n
    # seed variances σ²_β1, σ²_β0 in the ratio given, with σ²_β1 / S₁ + σ²_β0 / S₀ = share / (1 − share) · query part
    seed_part = share / (1 - share) * query_part if share < 1 else 1e-4
    unit = seed_part / (ratio / s1 + 1 / s0)
    var1, var0 = ratio * unit, unit
    hits = np.zeros(len(ALPHAS))
    for _ in range(replicates):
        g = rng.normal(0, math.sqrt(gamma), n) / 2
        new = g + rng.normal(0, math.sqrt(var1), (s1, 1)) + rng.normal(0, math.sqrt(noise), (s1, n))
        base = -g + rng.normal(0, math.sqrt(var0), (s0, 1)) + rng.normal(0, math.sqrt(noise), (s0, n))
        p = seed_query_test(new, base).p_value
        hits += [p < a for a in ALPHAS]
    return [float(h / replicates / a) for h, a in zip(hits, ALPHAS, strict=True)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20_000)
    parser.add_argument("--queries", type=int, nargs="+", default=[300, 100])
    parser.add_argument("--seeds", nargs="+", default=["3,3", "2,2", "5,2", "2,5"])
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.0, 10.0, 25.0])
    parser.add_argument("--rng-seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.rng_seed)
    alphas = " | ".join(f"α {a:.4f}" for a in ALPHAS)
    print(f"| queries | seeds | seed var ratio | seed share | {alphas} |")
    print("|---:|---|---:|---:|" + "---:|" * len(ALPHAS))
    for n in args.queries:
        for pair in args.seeds:
            seeds = tuple(int(x) for x in pair.split(","))
            for ratio in args.ratios:
                for share in SHARES:
                    ratios = rejection_ratios(n, seeds, share, ratio, args.replicates, rng)
                    cells = " | ".join(f"{r:.2f}" for r in ratios)
                    print(f"| {n} | {seeds[0]} vs {seeds[1]} | {ratio:g} | {share:g} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
