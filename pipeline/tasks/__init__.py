"""Tasks wire a config to data, model, losses, evaluation and serving. `TASKS` maps `task:` to the class."""

from pipeline.tasks import language_model
from pipeline.tasks import captioning
from pipeline.tasks import sentiment
from pipeline.tasks import tagging
from pipeline.tasks import translation

TASKS = {
    "sentiment": sentiment.SentimentTask,
    "tagging": tagging.TaggingTask,
    "translation": translation.TranslationTask,
    "language_model": language_model.LanguageModelTask,
    "captioning": captioning.CaptioningTask,
}


def create_task(config):
    """Returns the task object for a `RunConfig` (its `task` key was checked when the config loaded)."""
    return TASKS[config.task](config)
