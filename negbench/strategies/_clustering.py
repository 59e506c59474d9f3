"""Shared helpers of the clustering strategies (``tas-b``, ``ngame``, ``neighbourhood``).

* :func:`kmeans` — seeded scikit-learn k-means, single-threaded so labels are bit-reproducible;
* :func:`balanced_clusters` — recursive balanced 2-means (NGAME / SiameseXML clustering) into clusters
  of at most ``size`` points;
* :func:`chain_order` — clusters ordered so that each is followed by its nearest unvisited neighbour
  (composers fill a batch from the nearest clusters, :func:`negbench.core.batching.pack`);
* :func:`seed_of`, :func:`normalise` — small utilities.
"""

from __future__ import annotations

import numpy as np

__all__ = ["balanced_clusters", "chain_order", "interleave", "kmeans", "normalise", "seed_of"]


def seed_of(rng: np.random.Generator) -> int:
    """An int seed drawn from a seeded generator (for libraries that want ``random_state``)."""
    return int(rng.integers(2**31 - 1))


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def kmeans(x: np.ndarray, k: int, seed: int, n_init: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Seeded k-means: ``(labels, centroids)`` with ``k`` clipped to the number of points.

    Runs with one thread: scikit-learn's multi-threaded Lloyd step sums partial results in arrival
    order, which can flip near-tie assignments between runs.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = np.ascontiguousarray(x, dtype=np.float64)
    k = max(1, min(int(k), len(x)))
    with threadpool_limits(limits=1):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
    return km.labels_.astype(np.int64), km.cluster_centers_.astype(np.float32)


def _balanced_split(x: np.ndarray, n_left: int, rng: np.random.Generator, iters: int) -> np.ndarray:
    """Balanced spherical 2-means of ``x``: a boolean mask of exactly ``n_left`` rows (the first side)."""
    n = len(x)
    first, second = rng.choice(n, 2, replace=False)
    centroids = np.stack([x[first], x[second]])
    left = np.zeros(n, dtype=bool)
    for _ in range(iters):
        score = x @ (centroids[0] - centroids[1])
        new = np.zeros(n, dtype=bool)
        new[np.argsort(-score, kind="stable")[:n_left]] = True
        if np.array_equal(new, left):
            break
        left = new
        centroids = normalise(np.stack([x[left].mean(0), x[~left].mean(0)]))
    return left


def balanced_clusters(x: np.ndarray, size: int, rng: np.random.Generator, iters: int = 10) -> list[np.ndarray]:
    """Recursively bisect the rows of ``x`` with balanced 2-means until every cluster has <= ``size`` rows.

    A node of ``n`` rows needs ``m = ceil(n / size)`` clusters; it is split ``m // 2 : m - m // 2`` in
    proportion, so all clusters end up with ``n / ceil(n / size)`` rows (±1). Index arrays, deterministic.
    """
    x = normalise(np.asarray(x, dtype=np.float32))
    out: list[np.ndarray] = []
    stack = [np.arange(len(x))]
    while stack:
        idx = stack.pop()
        if len(idx) <= size:
            if len(idx):
                out.append(idx)
            continue
        m = -(-len(idx) // size)
        left = _balanced_split(x[idx], round(len(idx) * (m // 2) / m), rng, iters)
        stack += [idx[~left], idx[left]]
    return out


def interleave(lists: list[list[int]]) -> list[int]:
    """Merge lists so that each is spread evenly over the result (proportional round-robin)."""
    keyed = [((j + 0.5) / len(items), g, item) for g, items in enumerate(lists) for j, item in enumerate(items)]
    return [item for _, _, item in sorted(keyed)]


def chain_order(centroids: np.ndarray, rng: np.random.Generator) -> list[int]:
    """Cluster indices from a random start, each followed by its nearest unvisited cluster (by centroid).

    Cutting the members of clusters laid out in this order into full batches fills a batch that a cluster
    cannot fill from the clusters nearest to it, rather than emitting a small batch.
    """
    c = normalise(np.asarray(centroids, dtype=np.float32))
    if len(c) == 0:
        return []
    current = int(rng.integers(len(c)))
    order, left = [current], set(range(len(c))) - {current}
    while left:
        rest = np.fromiter(left, dtype=np.int64)
        current = int(rest[np.argmax(c[rest] @ c[current])])
        order.append(current)
        left.discard(current)
    return order
