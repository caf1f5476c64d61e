"""Synthetic sentiment reviews that need word order and memory to classify.

Each review opens with one or two opinion clauses such as ``the acting was
not very good`` and ends with a neutral filler tail of 10 to 40 tokens, so the
decisive words sit far from the end of the sequence. The label depends on
negation and on intensity modifiers attached to particular adjectives, which a
bag of words cannot recover: ``not`` flips the adjective that follows it, and
with two clauses the weighted sum of their polarities decides.
"""

from __future__ import annotations

import dataclasses

import numpy

SENTIMENT_LABELS = ("negative", "positive")
"""Label names, indexed by class id."""

ASPECTS = ("acting", "plot", "music", "ending", "dialogue", "cast", "story", "script", "pacing",
           "direction")
POSITIVE_ADJECTIVES = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "charming",
                       "delightful")
NEGATIVE_ADJECTIVES = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "dreadful")
NEGATIONS = ("not", "never")
INTENSIFIERS = ("very", "extremely", "really", "truly")
DOWNTONERS = ("slightly", "somewhat", "a bit")
CONNECTIVES = ("but", "and")

INTENSIFIER_WEIGHT = 2.0
DOWNTONER_WEIGHT = 0.5
PLAIN_WEIGHT = 1.0

FILLER_PHRASES = (
    "the film runs for two hours",
    "it was shown in the city",
    "it was released in the spring",
    "the events take place in a small town",
    "near the river during the summer",
    "most scenes were shot on location",
    "the director also wrote the screenplay",
    "we saw it on a rainy evening",
    "with a group of friends from work",
    "the theater was about half full",
    "it opens with a long view of the harbor",
    "there is a short break in the middle",
    "the credits list several hundred names",
    "it is based on a novel from the last century",
    "the main character works at a train station",
    "some of the actors appeared in earlier films",
)
MIN_FILLER_TOKENS = 10
MAX_FILLER_TOKENS = 40
_MAX_CLAUSES = 2


@dataclasses.dataclass(frozen=True)
class _Clause:
    """One opinion clause: ``the <aspect> was [negation] [modifier] <adjective>``."""

    aspect: str
    negation: str | None
    modifier: str | None
    adjective: str

    def words(self) -> str:
        """Renders the clause as space-separated words."""
        parts = ["the", self.aspect, "was", self.negation, self.modifier, self.adjective]
        return " ".join(part for part in parts if part)


def _modifier_weight(modifier: str | None) -> float:
    """Returns how strongly a modifier scales its adjective."""
    if modifier in INTENSIFIERS:
        return INTENSIFIER_WEIGHT
    if modifier in DOWNTONERS:
        return DOWNTONER_WEIGHT
    return PLAIN_WEIGHT


def _adjective_polarity(adjective: str) -> float:
    """Returns +1 for a positive adjective and -1 for a negative one."""
    return 1.0 if adjective in POSITIVE_ADJECTIVES else -1.0


def _clause_score(clause: _Clause) -> float:
    """Scores a clause: adjective polarity times modifier weight, flipped by negation."""
    sign = -1.0 if clause.negation else 1.0
    return sign * _adjective_polarity(clause.adjective) * _modifier_weight(clause.modifier)


def _modifier_before(words: list[str], end: int) -> tuple[str | None, int]:
    """Finds a modifier ending just before ``end``; returns it and where it starts."""
    for modifier in INTENSIFIERS + DOWNTONERS:
        modifier_words = modifier.split()
        start = end - len(modifier_words)
        if start >= 0 and words[start:end] == modifier_words:
            return modifier, start
    return None, end


def _clause_ending_at(words: list[str], position: int) -> _Clause:
    """Reads the modifier and negation in front of the adjective at ``position``."""
    modifier, start = _modifier_before(words, position)
    negation = words[start - 1] if start > 0 and words[start - 1] in NEGATIONS else None
    return _Clause(aspect="", negation=negation, modifier=modifier, adjective=words[position])


def sentiment_score(text: str) -> float:
    """Scores a review with the rules used to label the synthetic data.

    Every sentiment adjective contributes its polarity, multiplied by 2 after
    an intensifier or by 0.5 after a downtoner, and flipped by a preceding
    ``not`` or ``never``. The contributions are summed.

    Args:
        text: A review in the synthetic vocabulary, lower case, space separated.

    Returns:
        The weighted sum; positive means a positive review. It is never zero
        for a generated review.
    """
    words = text.split()
    adjectives = set(POSITIVE_ADJECTIVES + NEGATIVE_ADJECTIVES)
    return sum(_clause_score(_clause_ending_at(words, position))
               for position, word in enumerate(words) if word in adjectives)


def label_for_score(score: float) -> str:
    """Maps a nonzero score to ``"positive"`` or ``"negative"``."""
    if score == 0:
        raise ValueError("a score of zero has no sentiment label")
    return SENTIMENT_LABELS[1] if score > 0 else SENTIMENT_LABELS[0]


def _pick(generator: numpy.random.Generator, options: tuple[str, ...]) -> str:
    """Chooses one option uniformly."""
    return options[int(generator.integers(len(options)))]


def _random_modifier(generator: numpy.random.Generator) -> str | None:
    """Draws no modifier, an intensifier or a downtoner with equal chance."""
    kind = int(generator.integers(3))
    if kind == 1:
        return _pick(generator, INTENSIFIERS)
    if kind == 2:
        return _pick(generator, DOWNTONERS)
    return None


def _random_clause(generator: numpy.random.Generator) -> _Clause:
    """Draws a clause with independent aspect, negation, modifier and adjective."""
    negation = _pick(generator, NEGATIONS) if generator.random() < 0.5 else None
    modifier = _random_modifier(generator)
    adjectives = POSITIVE_ADJECTIVES if generator.random() < 0.5 else NEGATIVE_ADJECTIVES
    return _Clause(_pick(generator, ASPECTS), negation, modifier, _pick(generator, adjectives))


def _untied_clauses(generator: numpy.random.Generator) -> list[_Clause]:
    """Draws one or two clauses, redrawing whenever their scores cancel out."""
    while True:
        count = int(generator.integers(1, _MAX_CLAUSES + 1))
        clauses = [_random_clause(generator) for _ in range(count)]
        if sum(_clause_score(clause) for clause in clauses) != 0:
            return clauses


def _with_opposite_adjective(clause: _Clause, generator: numpy.random.Generator) -> _Clause:
    """Replaces the adjective by a random one of the opposite polarity."""
    opposite = NEGATIVE_ADJECTIVES if clause.adjective in POSITIVE_ADJECTIVES else POSITIVE_ADJECTIVES
    return dataclasses.replace(clause, adjective=_pick(generator, opposite))


def _clauses_for_label(label: str, generator: numpy.random.Generator) -> list[_Clause]:
    """Draws clauses whose total score has the sign of ``label``.

    Flipping every adjective negates the score, so the distribution of clauses
    stays symmetric while the classes come out exactly balanced.
    """
    clauses = _untied_clauses(generator)
    if label_for_score(sum(_clause_score(clause) for clause in clauses)) != label:
        clauses = [_with_opposite_adjective(clause, generator) for clause in clauses]
    return clauses


def _filler(generator: numpy.random.Generator) -> str:
    """Draws a neutral tail of MIN_FILLER_TOKENS to MAX_FILLER_TOKENS words."""
    length = int(generator.integers(MIN_FILLER_TOKENS, MAX_FILLER_TOKENS + 1))
    words: list[str] = []
    while len(words) < length:
        words.extend(_pick(generator, FILLER_PHRASES).split())
    return " ".join(words[:length])


def _review(label: str, generator: numpy.random.Generator) -> str:
    """Builds one review with the given label."""
    clauses = _clauses_for_label(label, generator)
    opinion = f" {_pick(generator, CONNECTIVES)} ".join(clause.words() for clause in clauses)
    return f"{opinion} {_filler(generator)}"


def sentiment_examples(num_examples: int, seed: int) -> tuple[list[str], list[str]]:
    """Generates labelled synthetic reviews.

    Args:
        num_examples: How many reviews to generate; at least 1.
        seed: Seed for ``numpy.random.default_rng``; the same seed gives the
            same reviews.

    Returns:
        ``(texts, labels)`` with labels ``"negative"`` or ``"positive"``.
        The two classes differ in size by at most one.

    Raises:
        ValueError: If ``num_examples`` is not a positive integer.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}")
    generator = numpy.random.default_rng(seed)
    class_ids = generator.permutation(numpy.arange(num_examples) % len(SENTIMENT_LABELS))
    labels = [SENTIMENT_LABELS[int(class_id)] for class_id in class_ids]
    texts = [_review(label, generator) for label in labels]
    return texts, labels


def sentiment_demo_texts() -> list[str]:
    """Returns four fixed reviews for showing predictions.

    They cover a plain intensified opinion, a negation, and two-clause
    reviews where the stronger clause wins; the expected labels are
    positive, negative, positive, negative.
    """
    return [
        "the acting was very good the film runs for two hours it was shown in the city",
        "the plot was not good the events take place in a small town near the river during the summer",
        "the music was slightly bad but the ending was extremely good it was released in the spring",
        "the dialogue was never boring but the pacing was really dull we saw it on a rainy evening",
    ]


# === Tagging ===

_AMBIGUOUS_WORDS = ("book", "duck", "watch", "park", "light", "plant", "ring", "train", "fly", "signal")
_NOUNS = ("dog", "teacher", "river", "city", "child", "window", "garden", "letter")
_VERBS = ("sees", "likes", "finds", "paints", "visits", "cleans")
_DETERMINERS = ("the", "a", "this", "every")
_ADJECTIVES = ("old", "small", "green", "quiet", "bright")
_PRONOUNS = ("we", "they", "you", "i")
_ADVERBS = ("often", "quickly", "rarely", "today")
_ADPOSITIONS = ("near", "behind", "under")
TAGGING_TAGS = ("ADJ", "ADP", "ADV", "DET", "NOUN", "PRON", "VERB")


def _noun_phrase(generator: numpy.random.Generator) -> list[tuple[str, str]]:
    words = [(_pick(generator, _DETERMINERS), "DET")]
    if generator.random() < 0.4:
        words.append((_pick(generator, _ADJECTIVES), "ADJ"))
    pool = _AMBIGUOUS_WORDS if generator.random() < 0.5 else _NOUNS
    words.append((_pick(generator, pool), "NOUN"))
    return words


def _tagged_sentence(generator: numpy.random.Generator) -> list[tuple[str, str]]:
    """Subject, verb, object, optional adverb and prepositional phrase.

    Ambiguous words ("book", "duck", ...) are nouns after a determiner or adjective and verbs after a
    pronoun subject, so only the context tells their tag.
    """
    if generator.random() < 0.5:
        words = [(_pick(generator, _PRONOUNS), "PRON")]
        if generator.random() < 0.3:
            words.append((_pick(generator, _ADVERBS), "ADV"))
        pool = _AMBIGUOUS_WORDS if generator.random() < 0.7 else _VERBS
        words.append((_pick(generator, pool), "VERB"))
    else:
        words = _noun_phrase(generator) + [(_pick(generator, _VERBS), "VERB")]
    words += _noun_phrase(generator)
    if generator.random() < 0.5:
        words += [(_pick(generator, _ADPOSITIONS), "ADP")] + _noun_phrase(generator)
    if generator.random() < 0.3:
        words.append((_pick(generator, _ADVERBS), "ADV"))
    return words


def tagging_examples(num_examples: int, seed: int) -> tuple[list[list[str]], list[list[str]]]:
    """Returns (tokens, tags) per sentence for a POS-like task whose ambiguous words need context.

    Deterministic for a seed. A most-frequent-tag-per-word baseline gets the ambiguous words only about
    half right; a bidirectional tagger can get them all.
    """
    if num_examples < 1:
        raise ValueError(f"num_examples must be >= 1, got {num_examples}")
    generator = numpy.random.default_rng(seed)
    sentences = [_tagged_sentence(generator) for _ in range(num_examples)]
    return ([[word for word, _ in sentence] for sentence in sentences],
            [[tag for _, tag in sentence] for sentence in sentences])


def tagging_demo_texts() -> list[str]:
    """Sentences where the same word is a noun in one and a verb in the other."""
    return ["we book the old train near the river", "the book likes a small duck",
            "they duck a green light today", "a teacher paints the park"]


# === Translation ===

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
_TENS_WORDS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty",
               9: "ninety"}
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
FIRST_YEAR = 1950
LAST_YEAR = 2029


def _number_in_words(number: int) -> str:
    """1..99 as English words: 7 -> "seven", 40 -> "forty", 73 -> "seventy three"."""
    if number < 20:
        return _NUMBER_WORDS[number]
    tens, ones = divmod(number, 10)
    return _TENS_WORDS[tens] + (f" {_NUMBER_WORDS[ones]}" if ones else "")


def _year_in_words(year: int) -> str:
    """1950..2029 as spoken: "nineteen eighty four", "two thousand four", "twenty twelve"."""
    if year < 2000:
        return f"nineteen {_number_in_words(year - 1900)}"
    if year < 2010:
        return "two thousand" + (f" {_NUMBER_WORDS[year - 2000]}" if year > 2000 else "")
    return f"twenty {_number_in_words(year - 2000)}"


def date_pair(day: int, month: int, year: int) -> tuple[str, str]:
    """One synthetic translation pair: a date in words -> its digits in year-month-day order.

    Example: (23, 5, 1984) -> ("twenty three of may nineteen eighty four", "1 9 8 4 - 0 5 - 2 3").
    The target reverses the order of the fields and spells every digit, so the decoder has to find the
    year at the end of the source first and the day at its start last: attention pays off.

    Raises:
        ValueError: If the date is outside 1950..2029 or does not exist (February has 28 days here).
    """
    if not (FIRST_YEAR <= year <= LAST_YEAR and 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]):
        raise ValueError(f"no such date in the synthetic data: day {day}, month {month}, year {year}")
    source = f"{_number_in_words(day)} of {MONTHS[month - 1]} {_year_in_words(year)}"
    target = " - ".join(" ".join(digits) for digits in (f"{year:04d}", f"{month:02d}", f"{day:02d}"))
    return source, target


def translation_examples(num_examples: int, seed: int) -> tuple[list[str], list[str]]:
    """Returns (sources, targets) of random `date_pair`s; deterministic for a seed.

    Raises:
        ValueError: If `num_examples` is not a positive integer.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}")
    generator = numpy.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(num_examples):
        month = int(generator.integers(1, 13))
        day = int(generator.integers(1, _DAYS_IN_MONTH[month - 1] + 1))
        source, target = date_pair(day, month, int(generator.integers(FIRST_YEAR, LAST_YEAR + 1)))
        sources.append(source)
        targets.append(target)
    return sources, targets


def translation_demo_texts() -> list[str]:
    """Dates in words covering each way of saying a year; see `date_pair` for their translations."""
    return [date_pair(23, 5, 1984)[0], date_pair(1, 1, 2000)[0], date_pair(31, 12, 2029)[0],
            date_pair(14, 7, 2007)[0]]


# === Language model ===

_PEOPLE = (("anna", "she"), ("maria", "she"), ("lena", "she"), ("tom", "he"), ("paul", "he"), ("omar", "he"))
_THINGS = ("apple", "book", "coin", "shell", "stamp", "marble")
_PLACES = ("the garden", "the market", "the school", "the station", "the river")


def language_model_line(generator: numpy.random.Generator) -> str:
    """One story line: a count that goes down by one and pronouns that agree with a name said earlier.

    Example: "anna has four shells . at the market she gives one to tom . now anna has three shells ."
    Predicting it well takes memory: the pronoun follows the name, the last name and object repeat the
    first ones, and the final count is one less than the first (spelled out, so characters must count).
    """
    (giver, pronoun), (receiver, _) = (_PEOPLE[index] for index in generator.choice(len(_PEOPLE), 2, replace=False))
    thing = _THINGS[int(generator.integers(len(_THINGS)))]
    count = int(generator.integers(2, 10))
    place = _PLACES[int(generator.integers(len(_PLACES)))]
    remaining = _NUMBER_WORDS[count - 1] + " " + thing + ("s" if count - 1 != 1 else "")
    return (f"{giver} has {_NUMBER_WORDS[count]} {thing}s . at {place} {pronoun} gives one to {receiver} . "
            f"now {giver} has {remaining} .")


def language_model_text(num_lines: int, seed: int) -> str:
    """`num_lines` story lines (see `language_model_line`), each ended by a line break; deterministic for a seed.

    Raises:
        ValueError: If `num_lines` is not a positive integer.
    """
    if isinstance(num_lines, bool) or not isinstance(num_lines, int) or num_lines < 1:
        raise ValueError(f"num_lines must be a positive integer, got {num_lines!r}")
    generator = numpy.random.default_rng(seed)
    return "".join(language_model_line(generator) + "\n" for _ in range(num_lines))


def language_model_demo_prompts() -> list[str]:
    """Prompts whose continuation shows whether the model learned agreement and counting."""
    return ["tom has five apples . at the school ", "lena has", "now maria has t"]
