"""Keras models, one file per model family. Models take sizes and a model config, never files.

`CUSTOM_OBJECTS` is what `keras.saving.load_model` needs to rebuild any saved model of the package.
"""

from pipeline import layers
from pipeline.models import recurrent_language_model
from pipeline.models import image_captioner
from pipeline.models import seq2seq_translator

CUSTOM_OBJECTS = {
    **layers.CUSTOM_OBJECTS,
    "Seq2SeqTranslator": seq2seq_translator.Seq2SeqTranslator,
    "RecurrentLanguageModel": recurrent_language_model.RecurrentLanguageModel,
    "ImageCaptioner": image_captioner.ImageCaptioner,
}
