"""Many-to-one text classifier: embedding -> recurrent stack -> pooling over time -> softmax."""

import keras

from pipeline import config as config_lib
from pipeline.layers import pooling
from pipeline.layers import recurrent
from pipeline.layers import token_dropout


def build_sentiment_classifier(model_config: config_lib.SentimentModelConfig, *, vocabulary_size: int,
                               num_classes: int) -> keras.Model:
    """Builds the classifier as a functional model taking {"token_ids": int32 [batch, time]}.

    Token id 0 is padding: the embedding masks it, so padding never changes the prediction.

    Args:
        model_config: Cell, sizes, pooling, dropout, and whether the embedding trains
            (`pretrained_embeddings.trainable`).
        vocabulary_size: Number of token ids, padding and out-of-vocabulary included.
        num_classes: Number of output classes (2 or more).

    Returns:
        An uncompiled `keras.Model` returning class probabilities (batch, num_classes).
    """
    pool_last = model_config.pooling == "last"
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    words = token_dropout.TokenDropout(model_config.word_dropout, name="word_dropout")(token_ids)
    features = keras.layers.Embedding(vocabulary_size, model_config.embedding_dim, mask_zero=True,
                                      trainable=model_config.pretrained_embeddings.trainable,
                                      name="token_embedding")(words)  # (batch, time, embedding_dim)
    features = keras.layers.Dropout(model_config.dropout, name="embedding_dropout")(features)
    features = recurrent.RecurrentStack(
        cell=model_config.cell, units=model_config.units, num_layers=model_config.layers,
        bidirectional=model_config.bidirectional, dropout=model_config.dropout,
        return_sequences=not pool_last, name="encoder")(features)
    if model_config.pooling in pooling.MaskedPooling.MODES:
        features = pooling.MaskedPooling(model_config.pooling, name="pooling")(features)
    elif model_config.pooling == "attention":
        features = pooling.AttentionPooling(model_config.units, name="pooling")(features)
    features = keras.layers.Dropout(model_config.dropout, name="output_dropout")(features)
    # float32 softmax keeps probabilities exact under mixed precision.
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                       name="probabilities")(features)
    return keras.Model({"token_ids": token_ids}, probabilities, name="sentiment_classifier")


def layer_groups(model: keras.Model) -> dict[str, list[keras.layers.Layer]]:
    """Bottom to top: `embedding` (token embedding), `recurrent_<i>` per recurrent layer, `head` (pooling, output)."""
    return recurrent.encoder_layer_groups(model, [model.get_layer("token_embedding")], model.get_layer("encoder"))
