"""Mixed precision per task, the XLA/determinism rule, cuDNN eligibility, and XLA-compiled serving signatures."""

import logging

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers
import serving_helpers
from pipeline import compat
from pipeline import config as config_lib
from pipeline import export
from pipeline import run_files
from pipeline import tasks as tasks_lib
from pipeline import training
from pipeline import cudnn
from serving import model_config

# Each tiny task shrunk to a few training steps; evaluation and export still run in full.
_SHRINK = {
    "sentiment": ["data.synthetic_examples=200"],
    "tagging": ["data.synthetic_examples=200"],
    "translation": ["data.synthetic_examples=120", "model.beam_size=2", "model.decoding=greedy"],
}


@pytest.fixture
def restore_dtype_policy():
    previous = keras.mixed_precision.global_policy()
    yield
    keras.mixed_precision.set_global_policy(previous)


def _tiny_config(task: str, directory, *overrides) -> config_lib.RunConfig:
    return config_lib.load_config(
        [str(helpers.REPOSITORY / f"configs/tiny/{task}.yaml")],
        helpers.tiny_overrides(directory) + ["train.epochs=1", "train.steps_per_epoch=2", *_SHRINK[task],
                                             *overrides])


# === Mixed precision ===


@pytest.mark.slow
@pytest.mark.parametrize("task", ["sentiment", "tagging", "translation"])
def test_mixed_bfloat16_trains_evaluates_and_exports_float32_outputs(tmp_path, restore_dtype_policy, task):
    config = _tiny_config(task, tmp_path, "runtime.mixed_precision=mixed_bfloat16", "export.self_check=false")
    run_dir = training.train(config)

    model = run_files.load_trained_model(run_dir)
    recurrent = [layer for layer in compat.flatten_layers(model) if isinstance(layer, keras.layers.RNN)]
    assert recurrent and all(layer.compute_dtype == "bfloat16" for layer in recurrent)
    assert all(layer.variable_dtype == "float32" for layer in recurrent)  # master weights stay float32
    output_layers = [layer for layer in compat.flatten_layers(model)
                     if layer.name in ("probabilities", "tag_probabilities", "logits")]
    assert len(output_layers) == 1 and output_layers[0].compute_dtype == "float32"  # softmax and loss in float32
    history = run_files_history(run_dir)
    assert np.isfinite(history["loss"]) and np.isfinite(history["val_loss"])

    signatures = tf.saved_model.load(export.export_run(run_dir)).signatures
    numeric = {name: spec.dtype for name, spec in signatures["serving_default"].structured_outputs.items()
               if spec.dtype.is_floating}
    assert set(numeric.values()) == ({tf.float32} if task != "tagging" else set()), numeric
    outputs = signatures["serving_default"](text=tf.constant(["a short text", ""]))
    assert all(np.all(np.isfinite(outputs[name].numpy())) for name in numeric)


def run_files_history(run_dir: str) -> dict:
    import csv
    import os
    with open(os.path.join(run_dir, run_files.HISTORY), newline="", encoding="utf-8") as stream:
        row = list(csv.DictReader(stream))[-1]
    return {key: float(value) for key, value in row.items()}


# === XLA training needs determinism off ===


def test_jit_compile_with_determinism_is_refused(tmp_path):
    with pytest.raises(config_lib.ConfigError, match="runtime.deterministic: false"):
        _tiny_config("sentiment", tmp_path, "runtime.jit_compile=true")
    config = _tiny_config("sentiment", tmp_path, "runtime.jit_compile=true", "runtime.deterministic=false")
    assert config.runtime.jit_compile and not config.runtime.deterministic


def test_export_jit_compile_is_refused_for_a_task_without_compiled_signatures(tmp_path):
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/lm.yaml")],
                                    helpers.tiny_overrides(tmp_path) + ["export.jit_compile=true"])
    with pytest.raises(config_lib.ConfigError, match="export.jit_compile"):
        training.check_config(config, tasks_lib.create_task(config))


# === cuDNN eligibility ===


def test_shipped_default_cells_keep_cudnn_and_breaking_keys_are_named():
    sentiment = config_lib.load_config([str(helpers.REPOSITORY / "configs/sentiment_imdb_files.yaml")])
    assert training.cudnn_config_reasons(tasks_lib.create_task(sentiment)) == []
    simple = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    ["model.cell=simple_rnn"])
    assert [reason.split(":")[0] for reason in training.cudnn_config_reasons(tasks_lib.create_task(simple))] == ["model.cell"]
    characters = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/tagging.yaml")],
                                        ["model.char_encoder=bilstm"])
    assert [reason.split(":")[0] for reason in training.cudnn_config_reasons(tasks_lib.create_task(characters))] == ["model.char_encoder"]
    attention = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/captioning.yaml")])
    assert [reason.split(":")[0] for reason in training.cudnn_config_reasons(tasks_lib.create_task(attention))] == ["model.decoder"]
    show_and_tell = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/captioning.yaml")],
                                           ["model.decoder=show_and_tell", "model.attention=none"])
    assert training.cudnn_config_reasons(tasks_lib.create_task(show_and_tell)) == []


def test_model_reasons_name_each_layer_and_setting():
    inputs = keras.Input((None, 4))
    features = keras.layers.LSTM(3, return_sequences=True, name="eligible_lstm")(inputs)
    features = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, recurrent_dropout=0.1,
                                                            name="dropped"), name="bidirectional")(features)
    features = keras.layers.GRU(3, return_sequences=True, reset_after=False, activation="relu",
                                name="old_gru")(features)
    features = keras.layers.SimpleRNN(3, return_sequences=True, name="simple")(features)
    outputs = keras.layers.RNN(keras.layers.LSTMCell(2), name="generic")(features)
    reasons = cudnn.model_reasons(keras.Model(inputs, outputs))
    text = "\n".join(reasons)
    assert "eligible_lstm" not in text
    assert sum("recurrent_dropout=0.1" in reason for reason in reasons) == 2  # both directions
    assert any("'old_gru'" in reason and "activation='relu'" in reason and "reset_after=False" in reason
               for reason in reasons)
    assert any("'simple'" in reason for reason in reasons) and any("'generic'" in reason for reason in reasons)


def test_package_models_are_eligible_except_the_cell_driven_caption_decoder(tmp_path):
    config = _tiny_config("tagging", tmp_path)
    task = tasks_lib.create_task(config)
    assert cudnn.model_reasons(task.build_model(task.fit_preprocessing(task.load_splits()))) == []
    captioning = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/captioning.yaml")],
                                        helpers.tiny_overrides(tmp_path))
    from pipeline.models import image_captioner
    model = image_captioner.build_image_captioner(captioning.model, vocabulary_size=20)
    assert model.decoder_cells and all("stepped one token at a time" in reason
                                       for reason in cudnn.model_reasons(model))


def test_train_start_warns_only_when_a_gpu_is_visible(tmp_path, monkeypatch, caplog):
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    helpers.tiny_overrides(tmp_path) + ["model.cell=simple_rnn"])
    task = tasks_lib.create_task(config)
    model = task.build_model(task.fit_preprocessing(task.load_splits()))
    with caplog.at_level(logging.WARNING, logger="pipeline.training"):
        assert training.warn_if_cudnn_ineligible(task, model) == []
        assert not caplog.records
        monkeypatch.setattr(tf.config, "list_physical_devices",
                            lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
        reasons = training.warn_if_cudnn_ineligible(task, model)
    assert any(reason.startswith("model.cell") for reason in reasons)
    assert any("will not use cuDNN" in record.getMessage() and "simple_rnn" in record.getMessage()
               for record in caplog.records)


# === XLA-compiled serving signatures ===


@pytest.fixture(scope="module")
def xla_exports(tmp_path_factory) -> dict:
    """Tiny sentiment and translation exports with `export.jit_compile: true` (self-checked in a fresh process)."""
    directory = tmp_path_factory.mktemp("xla_exports")
    paths = {}
    for task in ("sentiment", "translation"):
        config = _tiny_config(task, directory / task, "export.jit_compile=true",
                              f"export.dir={directory / 'exports'}")
        paths[task] = export.export_run(training.train(config))
    return {"exports_dir": str(directory / "exports"), **paths}


@pytest.mark.slow
def test_compiled_signatures_sit_next_to_the_plain_ones(xla_exports):
    assert {"serving_default", "serving_default_xla"} <= set(tf.saved_model.load(xla_exports["sentiment"]).signatures)
    translation = set(tf.saved_model.load(xla_exports["translation"]).signatures)
    assert {"serving_default_xla", "greedy_xla", "beam_xla", "greedy", "beam", "sample"} <= translation
    assert "sample_xla" not in translation  # stateless multinomial sampling has no XLA kernel


@pytest.mark.slow
def test_server_answers_compiled_signatures_like_the_plain_ones(xla_exports):
    configs = model_config.parse_config_text(
        model_config.config_text_for_exports(xla_exports["exports_dir"], xla_exports["exports_dir"]))
    running = serving_helpers.start_server(configs, num_threads=2)
    try:
        texts = ["the acting was not very good", "", "the music was extremely good and the plot was fine " * 3]
        answers = {}
        for signature in ("serving_default", "serving_default_xla"):
            response = running.request("POST", "/v1/models/tiny_sentiment:predict",
                                       {"signature_name": signature, "instances": texts})
            assert response.status_code == 200, response.text
            answers[signature] = response.json()["predictions"]
        for plain, compiled in zip(answers["serving_default"], answers["serving_default_xla"]):
            assert plain["label"] == compiled["label"]
            np.testing.assert_allclose(plain["probabilities"], compiled["probabilities"], rtol=1e-4, atol=1e-5)

        dates = ["twenty three of may nineteen eighty four", "one of january two thousand", ""]
        for plain_name in ("greedy", "beam"):
            pair = [running.request("POST", "/v1/models/tiny_translation:predict",
                                    {"signature_name": name, "instances": dates}).json()["predictions"]
                    for name in (plain_name, f"{plain_name}_xla")]
            assert [row["translation"] for row in pair[0]] == [row["translation"] for row in pair[1]]
            np.testing.assert_allclose([row["score"] for row in pair[0]], [row["score"] for row in pair[1]],
                                       rtol=1e-4, atol=1e-4)
    finally:
        running.server.stop_thread()
        running.server.manager.stop()
