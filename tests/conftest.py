"""Shared fixtures: one tiny sentiment run trained once per session."""

import os

import pytest

import helpers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_sentiment_run(tmp_path_factory):
    """Trains, evaluates and exports configs/tiny/sentiment.yaml once; returns (config, run_dir, export)."""
    from pipeline import config as config_lib
    from pipeline import export
    from pipeline import training

    directory = tmp_path_factory.mktemp("tiny_sentiment")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")], helpers.tiny_overrides(directory))
    run_dir = training.train(config)
    export_path = export.export_run(run_dir)
    return config, run_dir, export_path
