"""Tasks wire a config to data, model, losses, evaluation and serving (the contract is `base.Task`).

`TASKS` maps the config's `task:` key to the package's task classes; a task defined elsewhere is a
`base.Task` subclass handed to `training.train(..., task=...)` and `export.export_run(..., task=...)`.
"""

from pipeline.tasks import base
from pipeline.tasks import captioning
from pipeline.tasks import language_model
from pipeline.tasks import sentiment
from pipeline.tasks import tagging
from pipeline.tasks import translation

Task = base.Task
Preprocessing = base.Preprocessing

TASKS = {
    "sentiment": sentiment.SentimentTask,
    "tagging": tagging.TaggingTask,
    "translation": translation.TranslationTask,
    "language_model": language_model.LanguageModelTask,
    "captioning": captioning.CaptioningTask,
}


def create_task(config) -> base.Task:
    """Returns the package's task object for a `RunConfig` (its `task` key was checked when it loaded)."""
    return TASKS[config.task](config)
