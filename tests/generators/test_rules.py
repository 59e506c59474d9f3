"""The built-in ``rules`` generator: each negative is an edit of the positive's key sentence (numbers, negation,
the sentence dropped, entities from other documents), different from the positive, the rest left alone."""

from __future__ import annotations

import numpy as np

from negbench.generators.rules import (
    RuleGenerator,
    acronyms_of,
    key_sentence,
    negate,
    sentences,
    swap_numbers,
)

POSITIVE = ("Aspirin was studied in a large cohort. The trial enrolled 120 patients with TNF deficiency over 3 "
            "years and the drug is effective in 40 of them. Follow-up continues in Europe.")
QUERY = "how many patients in the aspirin trial with TNF deficiency"
DONORS = ["IL-6 signalling in mice. BRCA1 carriers were followed in Japan.", POSITIVE]


def _generator() -> RuleGenerator:
    generator = RuleGenerator()
    generator.prepare(DONORS)
    return generator


def test_the_key_sentence_is_the_one_sharing_most_words_with_the_query():
    parts = sentences(POSITIVE)
    assert len(parts) == 3 and key_sentence(QUERY, parts) == 1


def test_every_negative_edits_only_the_key_sentence_and_differs_from_the_positive():
    parts = sentences(POSITIVE)
    out = _generator().generate(QUERY, POSITIVE, 8, np.random.default_rng(0))
    assert len(out) >= 4 and len(set(out)) == len(out)
    for text in out:
        assert text != POSITIVE
        assert text.startswith(parts[0]) and text.endswith(parts[2])  # the other sentences are untouched
    assert any(parts[1] not in t and "120" not in t and "TNF" not in t for t in out if t.count(".") == 2)  # dropped
    assert any(" is not effective" in t for t in out)  # negated
    assert any("120" not in t and "TNF" in t and "patients" in t for t in out)  # numbers changed or swapped
    assert any("TNF" not in t and "patients" in t for t in out)  # entity substituted


def test_deterministic_given_the_random_stream():
    a = _generator().generate(QUERY, POSITIVE, 6, np.random.default_rng(5))
    b = _generator().generate(QUERY, POSITIVE, 6, np.random.default_rng(5))
    assert a == b


def test_numbers_are_changed_or_swapped_keeping_their_format():
    sentence = "Doses of 2.5 mg and 10 mg were given to 30 rats."
    for seed in range(20):
        new = swap_numbers(sentence, np.random.default_rng(seed))
        assert new != sentence
        assert new.split()[:2] == ["Doses", "of"] and new.endswith("rats.")
        numbers = [new.split()[k] for k in (2, 5, 10)]
        if sorted(numbers) != sorted(["2.5", "10", "30"]):  # not a swap: every number changed, format kept
            assert numbers[0] != "2.5" and len(numbers[0].split(".")[1]) == 1
            assert numbers[1] != "10" and numbers[1].isdigit() and numbers[2] != "30" and numbers[2].isdigit()
        else:
            assert numbers != ["2.5", "10", "30"]
    assert swap_numbers("No numbers here.", np.random.default_rng(0)) is None
    assert swap_numbers("Gene BRCA1 only.", np.random.default_rng(0)) is None  # digits inside a name are no number


def test_negation_is_added_after_the_auxiliary_or_removed():
    rng = np.random.default_rng(0)
    assert negate("The drug is effective.", rng) == "The drug is not effective."
    assert negate("The protein does not bind actin.", rng) == "The protein does bind actin."
    assert negate("Cells divide rapidly.", rng) == "It is not the case that cells divide rapidly."


def test_entities_come_from_other_documents_and_keep_their_kind():
    generator = _generator()
    sentence = "The trial enrolled patients with TNF deficiency."
    for seed in range(10):
        new = generator.substitute_entities(sentence, np.random.default_rng(seed))
        assert new is not None and "TNF" not in new
        assert set(acronyms_of(new)) <= {"IL-6", "BRCA1"}
    assert RuleGenerator().substitute_entities(sentence, np.random.default_rng(0)) is None  # no corpus seen


def test_a_one_sentence_text_without_numbers_or_entities_gives_what_applies():
    out = _generator().generate("cells", "Cells divide rapidly.", 4, np.random.default_rng(0))
    assert out == ["It is not the case that cells divide rapidly."]
