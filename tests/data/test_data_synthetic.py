"""Tests for the synthetic sentiment data."""

import collections
import re
import statistics

import pytest

from pipeline.data import synthetic

ADJECTIVES = set(synthetic.POSITIVE_ADJECTIVES + synthetic.NEGATIVE_ADJECTIVES)


@pytest.fixture(scope="module")
def examples():
    """A shared sample large enough for distribution checks."""
    return synthetic.sentiment_examples(2000, seed=7)


def test_same_seed_gives_same_examples():
    assert synthetic.sentiment_examples(50, seed=3) == synthetic.sentiment_examples(50, seed=3)


def test_different_seeds_differ():
    first_texts, _ = synthetic.sentiment_examples(50, seed=1)
    second_texts, _ = synthetic.sentiment_examples(50, seed=2)

    assert first_texts != second_texts


def test_count_and_label_names(examples):
    texts, labels = examples

    assert len(texts) == len(labels) == 2000
    assert set(labels) == set(synthetic.SENTIMENT_LABELS) == {"negative", "positive"}


@pytest.mark.parametrize("num_examples", [1000, 1001, 3333])
def test_classes_balanced(num_examples):
    _, labels = synthetic.sentiment_examples(num_examples, seed=11)

    positive_share = collections.Counter(labels)["positive"] / num_examples
    assert abs(positive_share - 0.5) <= 0.05


def test_every_label_matches_score_sign(examples):
    for text, label in zip(*examples):
        score = synthetic.sentiment_score(text)
        assert score != 0, text
        assert label == ("positive" if score > 0 else "negative"), text


def test_text_is_lower_case_words_single_spaced(examples):
    for text in examples[0]:
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", text), text


def test_reviews_have_one_or_two_clauses(examples):
    clause_counts = collections.Counter(
        sum(word in ADJECTIVES for word in text.split()) for text in examples[0])

    assert set(clause_counts) == {1, 2}
    assert min(clause_counts.values()) > 500


def test_opinion_words_far_from_end(examples):
    distances = []
    for text in examples[0]:
        words = text.split()
        last_opinion = max(position for position, word in enumerate(words) if word in ADJECTIVES)
        distances.append(len(words) - 1 - last_opinion)

    assert statistics.median(distances) >= 10
    assert min(distances) >= synthetic.MIN_FILLER_TOKENS
    assert max(distances) <= synthetic.MAX_FILLER_TOKENS


def test_filler_vocabulary_is_neutral():
    opinion_words = set(synthetic.ASPECTS) | ADJECTIVES | set(synthetic.NEGATIONS) | set(
        synthetic.CONNECTIVES)
    for modifier in synthetic.INTENSIFIERS + synthetic.DOWNTONERS:
        opinion_words.update(modifier.split()[-1:])
    filler_words = {word for phrase in synthetic.FILLER_PHRASES for word in phrase.split()}

    assert not filler_words & opinion_words


@pytest.mark.parametrize("adjective", synthetic.POSITIVE_ADJECTIVES + synthetic.NEGATIVE_ADJECTIVES)
@pytest.mark.parametrize("modifier", ["", "very ", "slightly ", "a bit "])
@pytest.mark.parametrize("negation", synthetic.NEGATIONS)
def test_negation_flips_otherwise_identical_clause(adjective, modifier, negation):
    plain = synthetic.sentiment_score(f"the acting was {modifier}{adjective}")
    negated = synthetic.sentiment_score(f"the acting was {negation} {modifier}{adjective}")

    assert plain != 0
    assert negated == -plain
    expected_sign = 1 if adjective in synthetic.POSITIVE_ADJECTIVES else -1
    assert plain * expected_sign > 0


def test_modifier_weights():
    assert synthetic.sentiment_score("the plot was good") == 1.0
    assert synthetic.sentiment_score("the plot was extremely bad") == -2.0
    assert synthetic.sentiment_score("the plot was somewhat bad") == -0.5
    assert synthetic.sentiment_score("the plot was a bit good") == 0.5


def test_stronger_clause_decides():
    mixed = "the plot was slightly bad but the acting was extremely good"
    assert synthetic.label_for_score(synthetic.sentiment_score(mixed)) == "positive"
    assert synthetic.label_for_score(synthetic.sentiment_score("the acting was not good")) == "negative"


def test_zero_score_has_no_label():
    with pytest.raises(ValueError):
        synthetic.label_for_score(0.0)


def test_same_bag_of_words_can_carry_either_label():
    negative = "the acting was not good and the plot was bad"
    positive = "the acting was good and the plot was not bad"

    assert sorted(negative.split()) == sorted(positive.split())
    assert synthetic.sentiment_score(negative) < 0 < synthetic.sentiment_score(positive)


@pytest.mark.parametrize("num_examples", [0, -5])
def test_rejects_non_positive_count(num_examples):
    with pytest.raises(ValueError, match="num_examples"):
        synthetic.sentiment_examples(num_examples, seed=0)


def test_demo_texts():
    texts = synthetic.sentiment_demo_texts()
    labels = [synthetic.label_for_score(synthetic.sentiment_score(text)) for text in texts]

    assert len(texts) == 4
    assert labels == ["positive", "negative", "positive", "negative"]
    assert any(" not " in text or " never " in text for text in texts)
    assert any(" but " in text for text in texts)
    assert texts == synthetic.sentiment_demo_texts()
