"""Number placeholders (`data.copy_numbers`): masking, copying back in order, and their graph behaviour."""

import pytest
import tensorflow as tf

from pipeline import config as config_lib
from pipeline.data import number_copying
from pipeline.data import subwords

N = number_copying.PLACEHOLDER


def _strings(tensor) -> list[str]:
    return [item.decode("utf-8") for item in tensor.numpy()]


def test_every_run_of_digits_becomes_one_placeholder():
    texts = tf.constant(["Nr. 55 und 10", "keine Zahl", "k-9-Hund", "2007", ""])
    assert _strings(number_copying.mask(texts)) == [f"Nr. {N} und {N}", "keine Zahl", f"k-{N}-Hund", N, ""]


def test_python_strings_are_masked_as_the_graph_masks_them():
    texts = ["Nr. 55 und 10", "k-9-Hund", "ohne", "٣ Hunde"]  # Arabic-Indic digits are not ASCII digits
    assert [number_copying.mask_string(text) for text in texts] == _strings(number_copying.mask(tf.constant(texts)))


def test_digit_runs_are_listed_in_order():
    runs = number_copying.digit_runs(tf.constant(["Nr. 55 und 10", "", "2.00 Euro", "ohne"]))
    assert runs.to_list() == [[b"55", b"10"], [], [b"2", b"00"], []]


def test_only_target_numbers_that_the_source_holds_are_masked():
    targets = tf.constant(["number 55 and 10", "2 thumbs up", "3 boys and 4 girls", "2.00 euros"])
    sources = tf.constant(["Nummer 10 und 55", "zwei Daumen", "3 Jungen", "2 Euro"])
    assert _strings(number_copying.mask_shared(targets, sources)) == [
        f"number {N} and {N}", "2 thumbs up", f"{N} boys and 4 girls", f"{N}.00 euros"]


def test_the_kth_placeholder_takes_the_kth_source_number():
    sources = tf.constant(["Der Zug 7 fährt um 2359 Uhr.", "3 Jungen", "ohne Zahl", "1 2 3", ""])
    translations = tf.constant([f"Train {N} leaves at {N}.", f"{N} boys", "no number", f"{N} and {N}", "empty"])
    assert _strings(number_copying.restore(translations, sources)) == [
        "Train 7 leaves at 2359.", "3 boys", "no number", "1 and 2", "empty"]


def test_a_placeholder_without_a_source_number_is_removed_with_its_space():
    restored = number_copying.restore(tf.constant([f"{N} boys and {N} girls", f"a {N}"]),
                                      tf.constant(["3 Jungen", "ohne"]))
    assert _strings(restored) == ["3 boys and girls", "a"]


def test_masking_then_restoring_gives_the_target_back():
    targets = ["Room 31415 please!", "Train 7 leaves at 2359.", "2 blond girls", "A man.", "# 8 for Iowa"]
    sources = ["Zimmer 31415 bitte!", "Der Zug 7 fährt um 2359 Uhr.", "2 blonde Mädchen", "Ein Mann.", "Die # 8"]
    masked = number_copying.mask_shared(tf.constant(targets), tf.constant(sources))
    assert _strings(number_copying.restore(masked, tf.constant(sources))) == targets


@pytest.mark.parametrize("function", [number_copying.restore, number_copying.mask_shared])
def test_traced_with_unknown_batch_and_on_an_empty_batch(function):
    traced = tf.function(function, input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    assert traced(tf.constant([], tf.string), tf.constant([], tf.string)).shape == [0]
    assert traced(tf.constant(["a"]), tf.constant(["b"])).numpy().tolist() == [b"a"]


def test_the_placeholder_is_one_piece_wherever_it_stands():
    texts = [f"{N} Hunde spielen", "Ein Hund.", f"Nummer {N}!", "Zwei Katzen"] * 20
    model = subwords.train_model(texts, vocabulary_size=40, byte_fallback=False, symbols=[N])
    tokenizer = subwords.tokenizer(model)
    written = [f"Hunde {N}! Nummer {N}.", f"Ein{N}Hund"]
    ids = tokenizer.tokenize(tf.constant(written)).to_list()
    placeholder_id = subwords.pieces(model).index(N)
    assert [row.count(placeholder_id) for row in ids] == [2, 1]
    assert _strings(tokenizer.detokenize(tf.ragged.constant(ids))) == written


def test_copy_numbers_needs_sentencepiece():
    with pytest.raises(config_lib.ConfigError, match="data.copy_numbers: only for data.tokenizer: sentencepiece"):
        config_lib.load_config(["configs/tiny/translation.yaml"], ["data.copy_numbers=true"])
