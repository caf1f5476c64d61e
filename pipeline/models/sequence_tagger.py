"""Many-to-many tagger: word embedding (+ character features) -> recurrent stack -> softmax per token."""

import keras

from pipeline import config as config_lib
from pipeline.layers import characters
from pipeline.layers import recurrent
from pipeline.layers import token_dropout


def build_sequence_tagger(model_config: config_lib.TaggerModelConfig, *, vocabulary_size: int,
                          char_vocabulary_size: int, num_tags: int) -> keras.Model:
    """Builds the tagger as a functional model.

    Inputs are {"token_ids": int32 [batch, time], "char_ids": int32 [batch, time, chars]}; token id 0 is
    padding. The embedding's mask flows through the recurrent stack to the output, so Keras leaves padding
    out of the loss and the metrics.

    Returns:
        An uncompiled `keras.Model` returning tag probabilities (batch, time, num_tags).
    """
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    char_ids = keras.Input(shape=(None, None), dtype="int32", name="char_ids")
    words = token_dropout.TokenDropout(model_config.word_dropout, name="word_dropout")(token_ids)
    features = keras.layers.Embedding(vocabulary_size, model_config.embedding_dim, mask_zero=True,
                                      trainable=model_config.pretrained_embeddings.trainable,
                                      name="token_embedding")(words)  # (batch, time, embedding_dim)
    if model_config.char_encoder != "none":
        word_shapes = characters.CharacterEncoder(
            model_config.char_encoder, vocabulary_size=char_vocabulary_size,
            embedding_dim=model_config.char_embedding_dim, units=model_config.char_units,
            name="char_encoder")(char_ids)  # (batch, time, char features)
        features = keras.layers.Concatenate(name="word_features")([features, word_shapes])
    features = keras.layers.Dropout(model_config.dropout, name="embedding_dropout")(features)
    features = recurrent.RecurrentStack(
        cell=model_config.cell, units=model_config.units, num_layers=model_config.layers,
        bidirectional=model_config.bidirectional, dropout=model_config.dropout, return_sequences=True,
        name="encoder")(features)  # (batch, time, features)
    features = keras.layers.Dropout(model_config.dropout, name="output_dropout")(features)
    probabilities = keras.layers.Dense(num_tags, activation="softmax", dtype="float32",
                                       name="tag_probabilities")(features)
    return keras.Model({"token_ids": token_ids, "char_ids": char_ids}, probabilities, name="sequence_tagger")


def layer_groups(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """Bottom to top: `embedding` (token embedding and character encoder), `recurrent_<i>` per recurrent layer,
    `head` (the output layer)."""
    names = {layer.name for layer in model.layers}
    embedding = [model.get_layer(name) for name in ("token_embedding", "char_encoder") if name in names]
    return recurrent.encoder_layer_groups(model, embedding, model.get_layer("encoder"))
