"""The tasks this package defines, by the name a config's `task:` key gives them."""

from pipeline.config import captioning, language_model, sentiment, tagging, translation

SCHEMAS = {
    "sentiment": sentiment.SCHEMA,
    "tagging": tagging.SCHEMA,
    "translation": translation.SCHEMA,
    "captioning": captioning.SCHEMA,
    "language_model": language_model.SCHEMA,
}
