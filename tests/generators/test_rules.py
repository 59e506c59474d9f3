"""The built-in ``rules`` generator: each negative is an edit of the positive's key sentence (numbers, negation,
the sentence dropped, entities from other documents), different from the positive, the rest left alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

from negbench.generators.rules import (
    RuleGenerator,
    acronyms_of,
    key_sentences,
    negate,
    sentences,
    swap_numbers,
)

POSITIVE = (
    "Aspirin was studied in a large cohort. The trial enrolled 120 patients with TNF deficiency over 3 "
    "years and the drug is effective in 40 of them. Follow-up continues in Europe."
)
QUERY = "how many patients in the aspirin trial with TNF deficiency"
DONORS = ["IL-6 signalling in mice. BRCA1 carriers were followed in Japan.", POSITIVE]


def _generator() -> RuleGenerator:
    generator = RuleGenerator()
    generator.prepare(DONORS)
    return generator


def test_the_key_sentence_is_the_one_sharing_most_words_with_the_query():
    parts = sentences(POSITIVE)
    assert len(parts) == 3 and key_sentences(QUERY, parts) == [1]


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


@pytest.mark.parametrize(
    ("sentence", "negated"),
    [
        ("It can't be done.", "It can be done."),
        ("It won't rain.", "It will rain."),
        ("Cells cannot divide.", "Cells can divide."),
        ("Not all cells divide.", "All cells divide."),
        ("The protein doesn't bind.", "The protein does bind."),
        ("It is never used.", "It is used."),
        ("(Isn't) it?", "(Is) it?"),
        ("The drug did not, however, reduce it.", "The drug did, however, reduce it."),
        ("Mice did not.", "Mice did."),
        ("X doesn’t divide.", "X does divide."),
        ("TNF rises in sepsis.", "It is not the case that TNF rises in sepsis."),
    ],
)
def test_a_negation_is_removed_as_a_word_not_as_letters(sentence, negated):
    """Removing "n't" letter by letter gave "It ca be done." and "It wo rain."; "Not all …", "cannot", "not" before
    punctuation and a curly "doesn’t" were not seen as negations ("did not not, however"), and an acronym starting
    a sentence was lower-cased ("tNF")."""
    assert negate(sentence, np.random.default_rng(0)) == negated


def test_thousands_commas_stay_one_number_and_other_digits_are_left_alone():
    for seed in range(20):
        new = swap_numbers("We saw 1,000 cases in 12 rats.", np.random.default_rng(seed))
        numbers = re.findall(r"[0-9][0-9,]*", new)
        assert len(numbers) == 2 and all(re.fullmatch(r"[0-9]{1,3}(,[0-9]{3})*", n) for n in numbers)
        assert numbers != ["1,000", "12"]
    assert swap_numbers("Dose ٣ and １２３ units, 2,5 mg.", np.random.default_rng(0)) is None


def test_a_number_of_any_length_is_changed_exactly():
    """A 400-digit number overflowed float (OverflowError failed the whole run); a long one lost its digits."""
    from decimal import Decimal

    from negbench.generators.rules import _changed_number

    big = "1" * 400
    number = swap_numbers(f"Cells divide {big} times.", np.random.default_rng(0)).split()[2]
    assert number.isdigit() and number != big and len(number) >= 399
    token = "12345678901234567890123"
    for seed in range(10):
        new, value = int(_changed_number(token, np.random.default_rng(seed))), int(token)
        assert 0 < abs(new - value) < 10 or any(
            new == round(Decimal(value) * Decimal(f)) for f in ("0.5", "2", "3", "1.5", "0.25")
        )


def test_every_sentence_tied_for_most_query_words_is_edited():
    """A title that repeats the claim (SciFact joins title and abstract) tied with the abstract's sentence: the
    first on a tie was the only one edited, so the untouched other sentence still supported the query."""
    text = (
        "Aspirin lowers stroke risk in adults. Methods were standard. In adults, aspirin lowers the stroke "
        "risk by 20 percent."
    )
    query = "aspirin lowers stroke risk in adults"
    parts = sentences(text)
    assert key_sentences(query, parts) == [0, 2]
    out = _generator().generate(query, text, 8, np.random.default_rng(0))
    assert "Methods were standard." in out  # dropped: both key sentences
    negated = [t for t in out if "not" in t]
    assert negated and all(t.count(" not ") == 2 for t in negated)  # negated: both key sentences
    for t in out:
        assert parts[0] not in t and parts[2] not in t


def test_a_text_about_nothing_the_query_asks_gives_no_negatives():
    assert key_sentences("quantum chromodynamics", ["Cells divide.", "Mice sleep."]) == []
    assert (
        _generator().generate("quantum chromodynamics", "Cells divide. Mice sleep.", 4, np.random.default_rng(0)) == []
    )


def test_generation_stops_when_the_rules_run_dry(monkeypatch):
    """A huge count on a short text used to try 4·count + 4 edits whatever came out."""
    from negbench.generators import rules

    calls = []

    def counted(sentence, rng):
        calls.append(sentence)
        return negate(sentence, rng)

    monkeypatch.setattr(rules, "negate", counted)
    out = _generator().generate("dose", "The dose is 5 mg.", 100_000, np.random.default_rng(0))
    assert 1 <= len(out) <= 12 and len(calls) <= 4 * 3


def test_the_fingerprint_covers_the_module_not_only_the_class(tmp_path, monkeypatch):
    """Only the class's source was hashed, so editing a helper function of the module reused stale texts."""
    import importlib

    body = (
        "from negbench.generators import NegativeGenerator\n\n"
        "def edit(text):\n    return text + {suffix!r}\n\n"
        "class Gen(NegativeGenerator):\n    name = 'gen'\n\n"
        "    def generate(self, query, positive, count, rng):\n        return [edit(positive)]\n"
    )
    (tmp_path / "gen_a.py").write_text(body.format(suffix=" a"))
    (tmp_path / "gen_b.py").write_text(body.format(suffix=" b"))
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b = importlib.import_module("gen_a").Gen(), importlib.import_module("gen_b").Gen()
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == importlib.import_module("gen_a").Gen().fingerprint()


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
