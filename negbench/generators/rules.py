"""``rules``: an offline, rule-based generator of text negatives from a positive document.

References:
    Sahin et al. 2023, "Enhancing Multimodal Compositional Reasoning of Visual Language Models with
    Generative Negative Mining" (arXiv:2311.03964): negatives made by editing the positive (attributes,
    numbers, relations) so they differ from it in exactly what the query asks about; "Don't Retrieve,
    Generate" (2025): generated instead of mined hard negatives. Those use generative models; these rules are
    the offline stand-in the issue asks for, each an edit of the positive's *key sentence* (the sentence sharing
    most content words with the query):

* ``numbers``: two numbers of the key sentence swapped, or each one changed (scaled, shifted; same format);
* ``negate``: the key sentence negated ("not" after its first auxiliary verb, or "It is not the case that"),
  or an existing negation removed;
* ``drop``: the key sentence removed (texts of two sentences or more);
* ``entities``: up to two entity-like tokens of the key sentence (acronyms, gene and protein names, capitalised
  names that do not start a sentence) replaced by entities seen in other documents of the corpus.

Each output differs from the positive; rules that do not apply (no number, one sentence, no entity) are
skipped, so a short text may give fewer than ``count`` negatives.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from negbench.generators import NegativeGenerator

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)(?![\w])")
_TOKEN = re.compile(r"(?<![\w-])[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?![\w-])")
_CAPITALISED = re.compile(r"(?<=[a-z] )[A-Z][a-z]{2,}\b")  # a name inside a sentence (not after a colon)
_AUXILIARY = re.compile(r"\b(is|are|was|were|can|could|does|do|did|has|have|had|will|would|may|might|should|"
                        r"must)\b")
_NEGATION = re.compile(r"\b(not|never)\s+|n't\b")
_STOP = frozenset(STOPWORDS_EN_PLUS)


def sentences(text: str) -> list[str]:
    """The text's sentences (split after ``.!?`` before a capital, digit or bracket)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _STOP}


def key_sentence(query: str, parts: list[str]) -> int:
    """Index of the sentence sharing most content words with the query (the first on a tie)."""
    words = content_words(query)
    overlaps = [len(words & content_words(p)) for p in parts]
    return int(np.argmax(overlaps)) if parts else 0


def acronyms_of(text: str) -> list[str]:
    """Acronym-like tokens (a capital then at least one more capital or digit: ``TNF``, ``BRCA1``, ``IL-6``)."""
    return list(dict.fromkeys(t for t in _TOKEN.findall(text) if any(c.isupper() or c.isdigit() for c in t[1:])))


def names_of(text: str) -> list[str]:
    """Capitalised words inside a sentence (names: ``Drosophila``, ``Europe``)."""
    return list(dict.fromkeys(_CAPITALISED.findall(text)))


ENTITY_KINDS = (acronyms_of, names_of)


def _changed_number(token: str, rng: np.random.Generator) -> str:
    decimal = "." if "." in token else ("," if "," in token else "")
    value = float(token.replace(",", ".")) if decimal else int(token)
    for _ in range(8):
        factor = float(rng.choice([0.5, 2.0, 3.0, 1.5, 0.25]))
        shift = int(rng.integers(1, 10))
        new = value * factor if rng.random() < 0.6 else value + shift * (1 if rng.random() < 0.5 else -1)
        if decimal:
            places = len(token) - token.index(decimal) - 1
            text = f"{abs(new):.{places}f}".replace(".", decimal)
        else:
            text = str(abs(round(new)))
        if text != token:
            return text
    return str(int(value) + 1) if not decimal else token + "1"


def swap_numbers(sentence: str, rng: np.random.Generator) -> str | None:
    found = list(_NUMBER.finditer(sentence))
    if not found:
        return None
    values = [m.group(1) for m in found]
    if len(set(values)) >= 2 and rng.random() < 0.5:  # swap two different numbers
        i, j = sorted(rng.choice(len(values), 2, replace=False))
        while values[i] == values[j]:
            i, j = sorted(rng.choice(len(values), 2, replace=False))
        values[i], values[j] = values[j], values[i]
    else:
        values = [_changed_number(v, rng) for v in values]
    out, last = [], 0
    for match, value in zip(found, values, strict=True):
        out += [sentence[last:match.start(1)], value]
        last = match.end(1)
    return "".join([*out, sentence[last:]])


def negate(sentence: str, rng: np.random.Generator) -> str | None:
    if _NEGATION.search(sentence):
        return _NEGATION.sub("", sentence, count=1)
    auxiliary = _AUXILIARY.search(sentence)
    if auxiliary:
        return f"{sentence[:auxiliary.end()]} not{sentence[auxiliary.end():]}"
    return f"It is not the case that {sentence[0].lower()}{sentence[1:]}" if sentence else None


class RuleGenerator(NegativeGenerator):
    """Offline edits of the positive's key sentence: numbers, negation, sentence dropped, entities swapped.

    Numbers swapped or changed, the sentence negated (or its negation removed), the sentence dropped, entities
    substituted from other documents."""

    name = "rules"

    def __init__(self) -> None:
        self.entities: list[list[str]] = [[] for _ in ENTITY_KINDS]  # per kind, from the whole corpus

    def prepare(self, documents: Sequence[str]) -> None:
        self.entities = [sorted(Counter(e for text in documents for e in kind(text))) for kind in ENTITY_KINDS]

    def substitute_entities(self, sentence: str, rng: np.random.Generator) -> str | None:
        """Up to two entities of the sentence, each replaced by a different entity of the same kind (acronym for
        acronym, name for name) seen elsewhere in the corpus."""
        own = [(entity, k) for k, kind in enumerate(ENTITY_KINDS) for entity in kind(sentence)]
        if not own:
            return None
        changed = sentence
        for pick in sorted(rng.choice(len(own), min(2, len(own)), replace=False)):
            entity, k = own[int(pick)]
            donors = [e for e in self.entities[k] if e != entity and e not in sentence]
            if donors:
                donor = donors[int(rng.integers(len(donors)))]
                changed = re.sub(rf"(?<![\w-]){re.escape(entity)}(?![\w-])", donor, changed)
        return None if changed == sentence else changed

    def generate(self, query: str, positive: str, count: int, rng: np.random.Generator) -> list[str]:
        parts = sentences(positive)
        if not parts:
            return []
        key = key_sentence(query, parts)
        edits: list[Callable[[str, np.random.Generator], str | None]] = [swap_numbers, negate,
                                                                        self.substitute_entities]

        def edited(rule) -> str | None:
            new = rule(parts[key], rng)
            return None if new is None else " ".join([*parts[:key], new, *parts[key + 1:]])

        def dropped(_rule) -> str | None:
            return " ".join(parts[:key] + parts[key + 1:]) if len(parts) > 1 else None

        rules = [(edited, rule) for rule in edits] + [(dropped, None)]
        order = [rules[k] for k in rng.permutation(len(rules))]
        out: list[str] = []
        seen = {" ".join(positive.split())}
        for attempt in range(4 * count + 4):
            if len(out) >= count:
                break
            make, rule = order[attempt % len(order)]
            text = make(rule)
            normalised = None if text is None else " ".join(text.split())
            if normalised and normalised not in seen:
                seen.add(normalised)
                out.append(text)
        return out
