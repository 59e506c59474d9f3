"""``rules``: an offline, rule-based generator of text negatives from a positive document.

References:
    Sahin et al. 2023, "Enhancing Multimodal Compositional Reasoning of Visual Language Models with
    Generative Negative Mining" (arXiv:2311.03964): negatives made by editing the positive (attributes,
    numbers, relations) so they differ from it in exactly what the query asks about; "Don't Retrieve,
    Generate" (2025): generated instead of mined hard negatives. Those use generative models; these rules are
    the offline stand-in the issue asks for, each an edit of the positive's *key sentences*: those sharing the
    most content words with the query, every one on a tie (so an untouched copy of the evidence, e.g. a title
    that repeats the claim, is not left behind; a key sentence an edit cannot apply to, one without a number
    say, is removed from that negative):

* ``numbers``: in each key sentence, two numbers swapped, or each one changed (scaled, shifted; same format:
  decimal places, thousands commas);
* ``negate``: each key sentence negated ("not" after its first auxiliary verb, or "It is not the case that"),
  or its negation removed ("does not" → "does", "can't" → "can", "Not all" → "All");
* ``drop``: the key sentences removed (when another sentence is left);
* ``entities``: up to two entity-like tokens per key sentence (acronyms, gene and protein names, capitalised
  names that do not start a sentence) replaced by entities seen in other documents of the corpus.

Each output differs from the positive; rules that do not apply (no number, every sentence a key one, no entity)
are skipped, so a short text may give fewer than ``count`` negatives, and a text that shares no content word
with the query gives none (nothing in it is about the query, so no edit would make a hard negative).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal, localcontext

import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS

from negbench.generators import NegativeGenerator

__all__ = [
    "ENTITY_KINDS",
    "RuleGenerator",
    "acronyms_of",
    "content_words",
    "key_sentences",
    "names_of",
    "negate",
    "sentences",
    "swap_numbers",
]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9\-]*")
# an integer, a decimal with a point, or an integer with thousands commas (ASCII digits only); a decimal comma
# ("2,5") is left alone
_NUMBER = re.compile(r"(?<![\w.,])([0-9]{1,3}(?:,[0-9]{3})+|[0-9]+(?:\.[0-9]+)?)(?![\w]|[.,][0-9])")
_TOKEN = re.compile(r"(?<![\w-])[A-Z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*(?![\w-])")
_CAPITALISED = re.compile(r"(?<=[a-z] )[A-Z][a-z]{2,}\b")  # a name inside a sentence (not after a colon)
_AUXILIARY = re.compile(
    r"\b(is|are|was|were|can|could|does|do|did|has|have|had|will|would|may|might|should|"
    r"must)\b"
)
_NEGATION = re.compile(r"(?P<word>\b(?:not|never)\b\s*)|(?P<fused>\bcannot\b|n['’]t\b)", re.IGNORECASE)
_CONTRACTIONS = {"can't": "can", "won't": "will", "shan't": "shall", "ain't": "is", "cannot": "can"}
_STOP = frozenset(STOPWORDS_EN_PLUS)


def sentences(text: str) -> list[str]:
    """The text's sentences (split after ``.!?`` before a capital, digit or bracket)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _STOP}


def key_sentences(query: str, parts: list[str]) -> list[int]:
    """Indices of the sentences that carry what the query asks about: those sharing the most content words with
    the query (every one on a tie, a title that repeats the claim among them); none when no sentence shares a
    content word with the query."""
    words = content_words(query)
    overlaps = [len(words & content_words(p)) for p in parts]
    best = max(overlaps, default=0)
    return [i for i, overlap in enumerate(overlaps) if best and overlap == best]


def acronyms_of(text: str) -> list[str]:
    """Acronym-like tokens (a capital then at least one more capital or digit: ``TNF``, ``BRCA1``, ``IL-6``)."""
    return list(dict.fromkeys(t for t in _TOKEN.findall(text) if any(c.isupper() or c.isdigit() for c in t[1:])))


def names_of(text: str) -> list[str]:
    """Capitalised words inside a sentence (names: ``Drosophila``, ``Europe``)."""
    return list(dict.fromkeys(_CAPITALISED.findall(text)))


ENTITY_KINDS = (acronyms_of, names_of)


def _changed_number(token: str, rng: np.random.Generator) -> str:
    """The number ``token`` scaled or shifted, in its own format (decimal places, thousands commas); exact
    decimal arithmetic, so a number of any length works."""
    thousands = "," in token
    value = Decimal(token.replace(",", ""))
    places = len(token) - token.index(".") - 1 if "." in token else 0
    with localcontext(prec=len(token) + 4):
        for _ in range(8):
            factor = Decimal(str(rng.choice([0.5, 2.0, 3.0, 1.5, 0.25])))
            shift = int(rng.integers(1, 10))
            new = abs(value * factor if rng.random() < 0.6 else value + shift * (1 if rng.random() < 0.5 else -1))
            text = f"{new:.{places}f}" if places else (f"{round(new):,}" if thousands else str(round(new)))
            if text != token:
                return text
    return token + "1" if places else str(int(value) + 1)


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
        out += [sentence[last : match.start(1)], value]
        last = match.end(1)
    return "".join([*out, sentence[last:]])


def _without_negation(sentence: str, match: re.Match) -> str:
    if match.lastgroup == "fused":  # can't → can, cannot → can, doesn't → does
        start = match.start()
        while start > 0 and sentence[start - 1].isalpha():
            start -= 1
        whole = sentence[start : match.end()]
        base = _CONTRACTIONS.get(whole.lower().replace("’", "'"), whole[: len(whole) - 3])
        return sentence[:start] + (base[0].upper() + base[1:] if whole[0].isupper() else base) + sentence[match.end() :]
    before, rest = sentence[: match.start()], sentence[match.end() :]
    if not rest[:1].isalnum():  # "did not, however," → "did, however,"; "did not." → "did."
        before = before.rstrip()
    if match.start() == 0 and rest:  # "Not all cells divide." → "All cells divide."
        rest = rest[0].upper() + rest[1:]
    return before + rest


def _lowered_start(sentence: str) -> str:
    """The sentence with its first word lower-cased when it is an ordinary capitalised word (``The`` → ``the``;
    ``TNF``, ``BRCA1``, ``I`` stay)."""
    first = sentence.split(maxsplit=1)[0] if sentence.strip() else ""
    return sentence[0].lower() + sentence[1:] if first[1:].islower() and first[0].isupper() else sentence


def negate(sentence: str, rng: np.random.Generator) -> str | None:
    """The sentence's first negation removed, or "not" added after its first auxiliary verb, or the sentence
    prefixed with "It is not the case that"."""
    negation = _NEGATION.search(sentence)
    if negation:
        return _without_negation(sentence, negation)
    auxiliary = _AUXILIARY.search(sentence)
    if auxiliary:
        return f"{sentence[: auxiliary.end()]} not{sentence[auxiliary.end() :]}"
    return f"It is not the case that {_lowered_start(sentence)}" if sentence.strip() else None


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
        keys = set(key_sentences(query, parts))
        if not keys:  # nothing in the text is about the query: no edit could make it a hard negative
            return []
        edits: list[Callable[[str, np.random.Generator], str | None]] = [swap_numbers, negate, self.substitute_entities]

        def edited(rule) -> str | None:  # the rule applied to the key sentences; those it cannot edit removed
            new = [rule(p, rng) if i in keys else p for i, p in enumerate(parts)]
            if all(new[i] is None for i in keys):
                return None
            return " ".join(p for p in new if p is not None)

        def dropped(_rule) -> str | None:  # every key sentence removed, if anything is left
            rest = [p for i, p in enumerate(parts) if i not in keys]
            return " ".join(rest) if rest else None

        rules = [(edited, rule) for rule in edits] + [(dropped, None)]
        order = [rules[k] for k in rng.permutation(len(rules))]
        out: list[str] = []
        seen = {" ".join(positive.split())}
        fruitless = 0
        for attempt in range(4 * count + 4):
            if len(out) >= count or fruitless >= 2 * len(order):  # done, or two passes found nothing new
                break
            make, rule = order[attempt % len(order)]
            text = make(rule)
            normalised = None if text is None else " ".join(text.split())
            if normalised and normalised not in seen:
                seen.add(normalised)
                out.append(text)
                fruitless = 0
            else:
                fruitless += 1
        return out
