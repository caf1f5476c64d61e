"""Keras models, one file per model family. Models take sizes and a model config, never files."""
