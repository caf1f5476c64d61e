"""Typed, frozen run configuration: YAML files merged left to right, `--set a.b=c` overrides, strict checks.

A run is described by one `RunConfig`. Its `data`, `model` and `train` blocks depend on the task, picked
by the top-level `task:` key through `SCHEMAS` (or a caller's own mapping of task name to `TaskSchema`).

Modules: `errors` (ConfigError, did-you-mean), `bounds` (numeric bounds declared on their fields, one
check), `common` (the blocks every task shares, RunConfig, TaskSchema), `warm_start` (the model keys that
start an encoder from trained weights), one module per task's blocks, `schemas` (the tasks defined here)
and `loader` (reading, merging, building and writing).
"""

from pipeline.config.captioning import CaptionerModelConfig, CaptioningDataConfig, ImageEncoderConfig
from pipeline.config.common import (DataConfig, ExportConfig, RecurrentConfig, RunConfig, RuntimeConfig,
                                    TaskSchema, TrainConfig)
from pipeline.config.errors import ConfigError
from pipeline.config.language_model import LanguageModelConfig, LanguageModelDataConfig, LanguageModelTrainConfig
from pipeline.config.loader import apply_override, from_tree, load_config, merge, save_config, to_tree
from pipeline.config.schemas import SCHEMAS
from pipeline.config.sentiment import SentimentModelConfig, TextClassificationDataConfig
from pipeline.config.tagging import TaggerModelConfig, TaggingDataConfig
from pipeline.config.translation import (LANGUAGE_PLACEHOLDER, ParallelFiles, Seq2SeqModelConfig,
                                         TranslationDataConfig, tfds_language_pair)
from pipeline.config.warm_start import PretrainedEmbeddingsConfig, RecurrentEncoderConfig
