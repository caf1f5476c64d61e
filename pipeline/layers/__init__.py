"""Reusable Keras layers. `CUSTOM_OBJECTS` is what `keras.saving.load_model` needs to rebuild them."""

from pipeline.layers import characters
from pipeline.layers import image_encoders
from pipeline.layers import pooling
from pipeline.layers import recurrent
from pipeline.layers import token_dropout

CUSTOM_OBJECTS = {
    "RecurrentStack": recurrent.RecurrentStack,
    "MaskedPooling": pooling.MaskedPooling,
    "AttentionPooling": pooling.AttentionPooling,
    "CharacterEncoder": characters.CharacterEncoder,
    "TokenDropout": token_dropout.TokenDropout,
    "ImageEncoder": image_encoders.ImageEncoder,
}
