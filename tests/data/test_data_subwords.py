"""SentencePiece subwords: exact round trips in the graph, reserved ids, bounded seeded samples, bytes fields."""

import dataclasses
import functools

import pytest
import sentencepiece
import tensorflow as tf

from pipeline.data import sequence_text
from pipeline.data import subwords
from pipeline.tasks import base

CORPUS = [
    "Ein Mann fährt mit dem Fahrrad über die Straße.",
    "Zwei Hunde spielen im Schnee, einer bellt!",
    "Die Frau kauft 3 Äpfel für 2,50 Euro.",
    "Kinder spielen Fußball im Park (am Sonntag).",
    "A man rides his bike across the street.",
    "Two dogs play in the snow; one barks!",
    "The woman buys 3 apples for 2.50 euros.",
    "Children play soccer in the park (on Sunday).",
] * 20

ROUND_TRIP = [
    "Ein Mann fährt mit dem Fahrrad über die Straße.",
    "Dr. Müller's 1,234 Äpfel cost €12.50 - really?!",
    "Zoë and Łukasz met in Kraków on 2024-05-01.",  # characters the model never saw: byte fallback
    "ÆØÅ — “quoted” 東京 😀",
    "UPPER lower MiXeD 0123456789",
    "",
]


@functools.cache
def model(byte_fallback: bool = True) -> bytes:
    return subwords.train_model(CORPUS, vocabulary_size=320, byte_fallback=byte_fallback)


def test_tokenizer_round_trips_text_exactly_in_the_graph():
    tokenizer = subwords.tokenizer(model())
    ids = tokenizer.tokenize(tf.constant(ROUND_TRIP))

    assert ids.dtype == tf.int32
    assert [text.decode("utf-8") for text in subwords.detokenize(tokenizer, ids.to_tensor()).numpy()] == ROUND_TRIP


def test_unseen_characters_are_bytes_never_unknown():
    tokenizer = subwords.tokenizer(model())
    ids = tokenizer.tokenize(tf.constant(["Zoë and Łukasz, 東京 😀"])).flat_values.numpy()

    assert sequence_text.UNKNOWN_ID not in ids


def test_without_byte_fallback_unseen_characters_are_unknown_and_dropped_on_output():
    tokenizer = subwords.tokenizer(model(byte_fallback=False))
    ids = tokenizer.tokenize(tf.constant(["Mann 東京"]))

    assert sequence_text.UNKNOWN_ID in ids.flat_values.numpy()
    assert subwords.detokenize(tokenizer, ids.to_tensor()).numpy()[0].decode() == "Mann "


def test_digits_are_pieces_of_their_own():
    processor = sentencepiece.SentencePieceProcessor(model_proto=model())
    pieces = processor.encode("2350 Äpfel", out_type=str)  # digits of the corpus

    assert [piece.lstrip("▁") for piece in pieces[:5] if piece.lstrip("▁")] == ["2", "3", "5", "0"]


def test_reserved_ids_are_the_sequence_ids():
    pieces = subwords.pieces(model())

    assert pieces[:4] == ["", "[UNK]", "[START]", "[END]"]
    assert len(pieces) <= 320


def test_detokenize_drops_padding_start_end_and_unknown_ids():
    tokenizer = subwords.tokenizer(model())
    ids = tokenizer.tokenize(tf.constant(["Zwei Hunde"])).to_tensor().numpy()[0].tolist()
    padded = tf.constant([[sequence_text.START_ID, sequence_text.UNKNOWN_ID] + ids + [sequence_text.END_ID, 0, 0]])

    assert subwords.detokenize(tokenizer, padded).numpy()[0].decode() == "Zwei Hunde"


def test_two_tokenizers_of_different_models_stay_apart_in_one_saved_model(tmp_path):
    module = tf.Module()
    module.source = subwords.tokenizer(model())
    module.target = subwords.tokenizer(model(byte_fallback=False))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(texts):
        return {"source": module.source.tokenize(texts).to_tensor(),
                "target": module.target.tokenize(texts).to_tensor()}

    expected = tokenize(tf.constant(["Zoë 東京"]))
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": tokenize})
    loaded = tf.saved_model.load(str(tmp_path)).signatures["serving_default"](texts=tf.constant(["Zoë 東京"]))

    assert loaded["source"].numpy().tolist() == expected["source"].numpy().tolist()
    assert loaded["target"].numpy().tolist() == expected["target"].numpy().tolist()
    assert expected["source"].numpy().tolist() != expected["target"].numpy().tolist()


def test_sample_is_bounded_seeded_and_skips_blank_lines():
    texts = [f"sentence {index}" for index in range(1000)] + ["", "   "]

    first = subwords.sample_sentences(iter(texts), 50, seed=3)

    assert len(first) == 50 and len(set(first)) == 50 and all(text.strip() for text in first)
    assert first == subwords.sample_sentences(iter(texts), 50, seed=3)
    assert first != subwords.sample_sentences(iter(texts), 50, seed=4)
    assert subwords.sample_sentences(texts, 0, seed=3) == texts[:1000]


def test_training_on_nothing_is_an_error():
    with pytest.raises(ValueError, match="no text"):
        subwords.train_model([], vocabulary_size=100)


@dataclasses.dataclass
class _Models(base.Preprocessing):
    model: bytes
    names: list[str]

    FILES = {"model": "source.sentencepiece.model"}


def test_preprocessing_saves_bytes_fields_as_files(tmp_path):
    value = _Models(model=model(), names=["a", "b"])

    value.save(str(tmp_path))
    loaded = _Models.load(str(tmp_path))

    assert (tmp_path / "source.sentencepiece.model").read_bytes() == model()
    assert (tmp_path / "names.json").exists() and _Models.exists(str(tmp_path))
    assert loaded.model == model() and loaded.names == ["a", "b"]
    (tmp_path / "source.sentencepiece.model").unlink()
    with pytest.raises(FileNotFoundError, match="source.sentencepiece.model"):
        _Models.load(str(tmp_path))


def test_line_breaks_survive_tokenizing_and_detokenizing_lines():
    tokenizer = subwords.tokenizer(model())
    texts = ["Ein Mann fährt.\nZwei Hunde spielen!\n", "Die Frau\n\nkauft 3 Äpfel", "", "\n", "Zoë"]
    newline = sequence_text.START_ID  # the id a language model gives to "\n"

    ids = subwords.tokenize_lines(tokenizer, tf.constant(texts), newline)

    assert ids[3].numpy().tolist() == [newline] and ids[2].numpy().tolist() == []
    assert list(ids[0].numpy()).count(newline) == 2
    assert [text.decode() for text in subwords.detokenize_lines(tokenizer, ids, newline).numpy()] == texts
