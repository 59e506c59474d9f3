"""``generated``: text negatives written from each positive by a generator, not mined from the corpus.

References:
    Sahin et al. 2023, "Enhancing Multimodal Compositional Reasoning of Visual Language Models with
    Generative Negative Mining" (arXiv:2311.03964); "Don't Retrieve, Generate" (2025): hard negatives produced
    by editing or rewriting the positive, so they are close to it yet wrong for the query.

A generator (entry-point group ``negbench.generators``; built in: ``rules``, offline edits of the positive's key
sentence, :mod:`negbench.generators.rules`) writes up to ``pool`` (≤ 32) texts per training pair once; they are
cached per dataset (keyed by the training pairs, the generator's fingerprint and ``pool``; the cost is charged to
every run that uses them, like mined candidates). A text that is empty or equals (up to whitespace) a labelled
positive of the query is dropped (a false negative); the rest become training-only documents
(:meth:`Context.add_texts`): embedded
as negatives, never retrieved or evaluated. Each epoch, ``per_example`` of an example's ``num_negatives`` are
drawn (seeded) from its pool; the rest, and any an example's generator could not write, are random corpus
documents. Generation does not depend on the run seed (each pair's generator stream is seeded by its texts),
so every seed and trial trains on the same generated texts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from optuna.distributions import IntDistribution

from negbench.context import Context
from negbench.strategy import ConfigError, Negatives, Strategy, generators

__all__ = ["MAX_POOL", "Generated", "GeneratedParams", "generate_pool", "pair_rng"]

MAX_POOL = 32  # texts per pair: more is a generation cost, not a better negative (an example uses a few)


@dataclass(frozen=True)
class GeneratedParams:
    generator: str = "rules"
    pool: int = 4
    per_example: int = 1

    def __post_init__(self) -> None:
        try:
            generators.get(self.generator)
        except ConfigError as exc:  # unknown or broken: reported on the field by parse_params
            raise ValueError(f"generator must name an installed generator: {exc.message}") from None
        if not 1 <= self.pool <= MAX_POOL:
            raise ValueError(f"pool must be in [1, {MAX_POOL}] texts per pair, got {self.pool}")
        if not 1 <= self.per_example <= self.pool:
            raise ValueError(f"per_example must be in [1, pool={self.pool}], got {self.per_example}")


def pair_rng(generator: str, query: str, positive: str) -> np.random.Generator:
    """The generator's random stream for one (query, positive) pair: seeded by the texts, not the run."""
    digest = hashlib.sha256("\0".join((generator, query, positive)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _normalised(text: str) -> str:
    return " ".join(text.split())


def generate_pool(ctx: Context, name: str, pool: int) -> list[list[str]]:
    """Up to ``pool`` generated texts per training example, from the generator ``name`` (its raw output cached per
    dataset and training pairs). A text that is empty, or the same (up to whitespace) as a labelled positive of
    the example's query, is dropped: it would be a false negative; texts that differ only in whitespace are one."""
    generator = generators.get(name)()
    pairs = [(e.query, ctx.dataset.corpus.texts[e.doc]) for e in ctx.examples]
    digest = hashlib.sha256("\0\1".join(q + "\0" + d for q, d in pairs).encode()).hexdigest()[:12]

    def compute() -> dict[tuple[str, str], list[str]]:
        generator.prepare(ctx.dataset.corpus.texts)
        made: dict[tuple[str, str], list[str]] = {}
        for query, positive in pairs:
            if (query, positive) not in made:
                texts = generator.generate(query, positive, pool, pair_rng(name, query, positive))
                if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
                    raise TypeError(
                        f"generator {name!r}: generate() must return a list of str, got "
                        f"{type(texts).__name__} {str(texts)[:80]!r}"
                    )
                made[(query, positive)] = list(texts)[:pool]  # the generator was asked for ``pool``
        return made

    made = ctx.services.cached(f"generated-raw-{generator.fingerprint()}-{pool}-{digest}", compute)
    out = []
    for i, pair in enumerate(pairs):
        seen = {""} | {_normalised(ctx.dataset.corpus.texts[d]) for d in ctx.forbidden(i)}  # its own positive too
        kept = []
        for text in made[pair]:  # one text per wording (the first written), none that is empty or a positive
            wording = _normalised(text)
            if wording not in seen:
                seen.add(wording)
                kept.append(text)
        out.append(kept)
    return out


class Generated(Strategy):
    """Negatives written from each positive by a generator plugin (training-only texts), topped up at random."""

    name = "generated"
    citation = "Sahin et al. 2023, Generative Negative Mining (arXiv:2311.03964); Don't Retrieve, Generate (2025)."
    Params = GeneratedParams

    @classmethod
    def search_space(cls):
        return {"pool": IntDistribution(1, 8)}

    def mine(self, ctx: Context) -> Negatives:
        texts = generate_pool(ctx, self.params.generator, self.params.pool)
        ids = [ctx.add_texts(row) for row in texts]
        self.state["generated_per_example"] = float(np.mean([len(row) for row in ids])) if ids else 0.0
        return Negatives(ids)

    def sample(self, ctx: Context, candidates: Negatives, epoch: int) -> Negatives:
        chosen = []
        for i, pool in enumerate(candidates.ids):
            take = min(self.params.per_example, ctx.num_negatives, len(pool))
            picked = pool[np.sort(ctx.rng("generated", i, epoch).choice(len(pool), take, replace=False))]
            chosen.append(ctx.fill_random(i, picked, epoch))
        return Negatives(chosen)
