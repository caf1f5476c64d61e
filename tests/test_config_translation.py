"""Translation config: the SentencePiece block and its rules, and the scored monitors."""

import pytest

import helpers
from pipeline import config as config_lib

TINY = str(helpers.REPOSITORY / "configs/tiny/translation.yaml")
SUBWORDS = ["data.tokenizer=sentencepiece", "data.source_vocabulary_size=400", "data.target_vocabulary_size=400"]


def test_sentencepiece_settings_load_with_their_defaults():
    config = config_lib.load_config([TINY], SUBWORDS + ["data.sentencepiece.model_type=bpe"])

    settings = config.data.sentencepiece
    assert config.data.tokenizer == "sentencepiece"
    assert (settings.model_type, settings.character_coverage, settings.byte_fallback, settings.shared,
            settings.input_sentence_size) == ("bpe", 1.0, True, False, 1000000)
    assert config_lib.load_config([TINY]).data.tokenizer == "words"


@pytest.mark.parametrize("overrides, message", [
    (["data.strip_punctuation=true"], "data.strip_punctuation: only for data.tokenizer: words"),
    (["data.sentencepiece.shared=true", "data.target_vocabulary_size=500"],
     "data.target_vocabulary_size: must equal data.source_vocabulary_size"),
    (["data.target_vocabulary_size=100"], "data.target_vocabulary_size: must be >= 320 with "
                                          "data.sentencepiece.byte_fallback: true"),
    (["data.sentencepiece.byte_fallback=false", "data.source_vocabulary_size=5"],
     "data.source_vocabulary_size: must be >= 8"),
    (["data.sentencepiece.character_coverage=0"], r"data.sentencepiece.character_coverage: must be in \(0, 1\]"),
    (["data.sentencepiece.model_type=word"], "data.sentencepiece.model_type"),
    (["data.sentencepiece.vocabulary_size=8"], "data.sentencepiece.vocabulary_size: unknown key"),
])
def test_sentencepiece_rules(overrides, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.load_config([TINY], SUBWORDS + overrides)


def test_the_multi30k_config_is_cased_subwords_monitored_by_a_generation_score():
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/translation_multi30k_de_en.yaml")])

    assert config.data.tokenizer == "sentencepiece" and not config.data.lowercase
    assert config.train.monitor in ("val_bleu", "val_loss")
