"""Captioning end to end: tiny run -> BLEU/CIDEr-D/baseline -> export on image bytes -> fresh-process load;
model, encoder, feature cache, figure and config checks."""

import collections
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import figures
from pipeline import models
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from pipeline.data import images
from pipeline.data import synthetic_captions
from pipeline.layers import image_encoders
from pipeline.models import image_captioner

pytestmark = pytest.mark.slow  # trains tiny models end to end

SQUEEZENET_WEIGHTS = (helpers.SHARED_DATA / "pretrained_weights" / "squeezenet_v1_1"
                      / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5")
FLICKR_IMAGES = helpers.SHARED_DATA / "flickr8k_subset" / "images"

# Loads an export with TensorFlow alone, as TF Serving would, and captions JPEG files' bytes with every signature.
_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = tf.constant([open(path, "rb").read() for path in json.loads(sys.argv[2])])
results = {"signatures": sorted(loaded.signatures)}
for name in ("serving_default", "greedy", "beam", "sample"):
    arguments = {"image_bytes": images}
    if name == "sample":
        arguments["temperature"] = tf.constant(1e-4)
    outputs = loaded.signatures[name](**arguments)
    results[name] = {"caption": [item.decode() for item in outputs["caption"].numpy()],
                     "score": outputs["score"].numpy().tolist(),
                     "dtypes": sorted(f"{key}:{value.dtype.name}" for key, value in outputs.items())}
print(json.dumps(results))
"""


def _jpeg_files(directory, count=3, seed=11):
    """Synthetic test images saved as real JPEG files; returns (paths, reference captions)."""
    encoded, references = synthetic_captions.captioning_examples(count, seed=seed)
    paths = []
    for index, data in enumerate(encoded):
        path = directory / f"shape_{index}.jpg"
        Image.open(io.BytesIO(data)).convert("RGB").save(path, format="JPEG", quality=95)
        paths.append(str(path))
    return paths, references


@pytest.fixture(scope="module")
def tiny_captioning_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_captioning")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/captioning.yaml")],
                                    helpers.tiny_overrides(directory))
    run_dir = training.train(config)
    return config, run_dir, export.export_run(run_dir), directory


def _task_and_model(config, run_dir):
    task = tasks.create_task(config)
    return task, task.load_preprocessing(run_dir), run_files.load_trained_model(run_dir)


# === The tiny run ===


def test_tiny_captioner_learns_the_synthetic_shapes(tiny_captioning_run):
    config, run_dir, _, _ = tiny_captioning_run
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        results = json.load(stream)
    test = results["test"]
    splits = tasks.create_task(config).load_splits()
    train_captions = collections.Counter(items[0] for items in splits.splits["train"].captions)
    most_frequent = train_captions.most_common(1)[0][0]
    constant_rate = np.mean([most_frequent in items for items in splits.splits["test"].captions])
    assert constant_rate < 0.03, "no single caption may describe many images"
    assert test["exact_match"] >= 0.3 and test["exact_match"] > 10 * constant_rate, test["exact_match"]
    assert test["bleu_4"] >= 60 and test["cider"] > 300
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "cider", "greedy_cider", "nearest_neighbour_cider",
                "nearest_neighbour_bleu_4", "cider_ratio_to_nearest_neighbour", "loss", "accuracy"):
        assert isinstance(test[key], float), key
    assert test["decoding"] == "beam" and test["examples"] == len(splits.splits["test"])
    assert {"caption", "nearest_neighbour", "references"} == set(test["samples"][0])
    assert results["skipped_rows"]["train"] == {"rows": 0, "images": 0}


def test_evaluating_another_split_reuses_the_decoding_loops_of_the_same_model(tiny_captioning_run):
    config, run_dir, _, _ = tiny_captioning_run
    task, preprocessing, model = _task_and_model(config, run_dir)
    other_model = run_files.load_trained_model(run_dir)

    beam = task.traced_decoder(model, preprocessing, "beam")  # traced on first call, seconds for a decoding loop

    assert task.traced_decoder(model, preprocessing, "beam") is beam
    assert task.traced_decoder(model, preprocessing, "greedy") is not beam
    assert task.traced_decoder(other_model, preprocessing, "beam") is not beam
    assert task.traced_decoder(model, preprocessing, "beam") is not beam  # the other model replaced it


def test_export_round_trip_with_jpeg_bytes_in_a_fresh_process(tiny_captioning_run):
    config, run_dir, export_path, directory = tiny_captioning_run
    paths, _ = _jpeg_files(directory)
    if FLICKR_IMAGES.exists():
        paths.append(str(sorted(FLICKR_IMAGES.glob("*.jpg"))[0]))  # a real photograph, another size
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, export_path, json.dumps(paths)],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert process.returncode == 0, process.stderr[-3000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    assert {"serving_default", "greedy", "beam", "sample"} <= set(loaded["signatures"])
    for name in ("serving_default", "greedy", "beam", "sample"):
        assert len(loaded[name]["caption"]) == len(paths)
        assert loaded[name]["dtypes"] == ["caption:string", "score:float32"]
        assert all(score <= 0 for score in loaded[name]["score"])
    assert loaded["serving_default"] == loaded["beam"]  # the tiny config decodes with beam search
    assert loaded["sample"]["caption"] == loaded["greedy"]["caption"]  # temperature -> 0

    task, preprocessing, model = _task_and_model(config, run_dir)
    image_bytes = tf.constant([open(path, "rb").read() for path in paths])
    in_process = task.generate(model, preprocessing, image_bytes, "greedy")
    assert [item.decode() for item in in_process["caption"].numpy()] == loaded["greedy"]["caption"]
    np.testing.assert_allclose(loaded["greedy"]["score"], in_process["score"].numpy(), rtol=1e-4, atol=1e-5)


def test_cli_predict_reads_image_files(tiny_captioning_run):
    _, run_dir, _, directory = tiny_captioning_run
    paths, references = _jpeg_files(directory, count=2, seed=5)
    result = helpers.run_cli("predict", "--signature", "greedy", run_dir, *paths)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["image"] for row in rows] == paths
    assert all(isinstance(row["caption"], str) and row["caption"] and row["score"] <= 0 for row in rows)
    missing = helpers.run_cli("predict", run_dir, str(directory / "nope.jpg"), paths[0])
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    rows = [json.loads(line) for line in missing.stdout.splitlines()]
    assert "nope.jpg: cannot read this input file" in rows[0]["error"] and rows[1]["image"] == paths[0]


def test_attention_maps_and_caption_figure(tiny_captioning_run, tmp_path):
    config, run_dir, _, _ = tiny_captioning_run
    task, preprocessing, model = _task_and_model(config, run_dir)
    encoded, _ = synthetic_captions.captioning_examples(3, seed=21)
    rows = task.caption_with_attention(model, preprocessing, encoded)
    greedy = [item.decode() for item in
              task.generate(model, preprocessing, tf.constant(encoded), "greedy")["caption"].numpy()]
    for row, caption in zip(rows, greedy):
        assert " ".join(token for token in row["tokens"] if token != "[END]") == caption
        assert row["attention"].shape == (len(row["tokens"]), 4, 4)  # 32 px / 2**3 pooling blocks
        np.testing.assert_allclose(row["attention"].sum(axis=(1, 2)), 1.0, rtol=1e-5)
    path = figures.render_caption_grid(rows, str(tmp_path / "captions.png"), cell_size=64, max_words=6)
    assert Image.open(path).size == (64 * 7, 3 * (64 + 58))


# === Encoders and the feature cache ===


@pytest.mark.skipif(not SQUEEZENET_WEIGHTS.exists(), reason="../shared/data/pretrained_weights is absent")
def test_squeezenet_weights_file_loads_and_gives_the_feature_grid():
    encoder = image_encoders.ImageEncoder("squeezenet")
    before = encoder.backbone.get_layer("fire9_expand3x3").kernel.numpy().copy()
    encoder.load_pretrained(str(SQUEEZENET_WEIGHTS))
    assert not np.allclose(before, encoder.backbone.get_layer("fire9_expand3x3").kernel.numpy())
    assert encoder.grid_shape == (13, 13, 512) and encoder.image_size == 227
    assert sum(int(np.prod(weight.shape)) for weight in encoder.backbone.weights) == 722496
    features = encoder(np.full((2, 227, 227, 3), 120, np.uint8))
    assert features.shape == (2, 169, 512) and float(tf.reduce_min(features)) >= 0.0  # ReLU outputs
    with pytest.raises(ValueError, match="does not fit the mobilenet_v2 encoder"):
        image_encoders.ImageEncoder("mobilenet_v2", image_size=96).load_pretrained(str(SQUEEZENET_WEIGHTS))


@pytest.mark.skipif(not SQUEEZENET_WEIGHTS.exists(), reason="../shared/data/pretrained_weights is absent")
def test_cached_features_equal_recomputed_ones(tmp_path):
    paths, references = _jpeg_files(tmp_path, count=6, seed=2)
    with open(tmp_path / "captions.csv", "w") as stream:
        stream.write("image,caption\n" + "".join(f'{os.path.basename(path)},"{items[0]}, indeed"\n'
                                                 for path, items in zip(paths, references)))
    config = config_lib.from_tree({
        "name": "cached", "task": "captioning",
        "data": {"source": "files", "train": str(tmp_path / "captions.csv"), "image_directory": str(tmp_path),
                 "validation_fraction": 0.34, "bucketing": False},
        "model": {"encoder": {"name": "squeezenet", "weights": str(SQUEEZENET_WEIGHTS), "trainable": False,
                              "image_size": 64}, "units": 8, "embedding_dim": 8},
        "train": {"batch_size": 4}})
    task = tasks.create_task(config)
    assert task.caches_features and task.image_key == "image_features"
    splits = task.load_splits()
    preprocessing = task.fit_preprocessing(splits)
    datasets = task.datasets(splits, preprocessing)
    model = task.build_model(preprocessing)
    fresh = image_encoders.ImageEncoder("squeezenet", image_size=64)
    fresh.load_pretrained(str(SQUEEZENET_WEIGHTS))
    train = task.stores["train"]
    pixels = tf.stack([images.load_image(tf.constant(path), 64, from_path=True) for path in train.split.images])
    np.testing.assert_allclose(train.features, fresh(pixels).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(train.features, model.image_features(pixels).numpy(), rtol=1e-5, atol=1e-5)
    features, labels = next(iter(datasets["train"]))
    assert "images" not in features and features["image_features"].shape[1:] == (9, 512)
    rows = [train.split.captions.index([text.decode().split("\n")[0]]) for text in features["references"].numpy()]
    np.testing.assert_allclose(features["image_features"].numpy(), train.features[rows], rtol=1e-6)
    model.compile(optimizer="adam", loss=task.loss())
    model.train_on_batch(features, labels)  # the encoder is frozen: its weights do not move
    np.testing.assert_allclose(model.image_features(pixels).numpy(), train.features, rtol=1e-5, atol=1e-5)


# === Model (no training) ===

IMAGES = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype("uint8")
DECODER_IDS = np.array([[2, 5, 6, 7, 9], [2, 8, 9, 0, 0], [2, 4, 0, 0, 0]], "int32")


def _small_model(**kwargs) -> image_captioner.ImageCaptioner:
    settings = dict(encoder="small_cnn", image_size=32, encoder_filters=(8, 16), units=6, embedding_dim=5, cell="gru")
    settings.update(kwargs)
    model = image_captioner.ImageCaptioner(15, **settings)
    model.build()
    return model


@pytest.mark.parametrize("settings", [
    {"decoder": "show_and_tell", "cell": "lstm", "num_layers": 2},
    {"decoder": "show_attend_and_tell", "cell": "gru", "attention": "bahdanau"},
    {"decoder": "show_attend_and_tell", "cell": "lstm", "attention": "luong", "num_layers": 2},
], ids=lambda settings: "-".join(str(value) for value in settings.values()))
def test_teacher_forced_logits_equal_decode_step_logits(settings):
    model = _small_model(**settings)
    logits = model({"images": IMAGES, "decoder_token_ids": DECODER_IDS}).numpy()
    features = model.image_features(IMAGES)
    np.testing.assert_allclose(model({"image_features": features, "decoder_token_ids": DECODER_IDS}).numpy(),
                               logits, rtol=1e-5, atol=1e-6)
    state = model.encode(IMAGES)
    for position in range(DECODER_IDS.shape[1]):
        step_logits, state = model.decode_step(tf.constant(DECODER_IDS[:, position]), state)
        np.testing.assert_allclose(step_logits.numpy(), logits[:, position], rtol=1e-4, atol=1e-5)


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = _small_model(encoder_trainable=False, decoder="show_attend_and_tell", attention="luong")
    inputs = {"images": IMAGES, "decoder_token_ids": DECODER_IDS}
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", custom_objects=models.CUSTOM_OBJECTS, compile=False)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert loaded.get_config() == model.get_config()
    assert not loaded.image_encoder.trainable and loaded.image_encoder.weights
    assert all(not weight.trainable for weight in loaded.image_encoder.weights)


# === Config ===


def _tree(data=None, **model) -> dict:
    return {"name": "c", "task": "captioning", "data": {"source": "synthetic:captioning", "max_caption_length": 10,
                                                          **(data or {})}, "model": model}


@pytest.mark.parametrize("data, model, message", [
    ({}, {"encoder": {"trainable": False}}, r"^model.encoder.trainable: a frozen encoder needs pretrained weights"),
    ({}, {"encoder": {"name": "squeezenett"}}, r"^model.encoder.name: 'squeezenett' is not one of .*Did you mean 'squeezenet'"),
    ({}, {"encoder": {"image_size": 16}}, r"^model.encoder.image_size: must be >= 32"),
    ({}, {"encoder": {"weigths": "imagenet"}}, r"^model.encoder.weigths: unknown key. Did you mean 'weights'"),
    ({}, {"decoder": "show_attend_and_tel"}, r"^model.decoder: .*Did you mean 'show_attend_and_tell'"),
    ({}, {"attention": "none"}, r"^model.attention: show_attend_and_tell needs 'bahdanau' or 'luong'"),
    ({}, {"bidirectional": True}, r"^model.bidirectional: the caption decoder generates left to right"),
    ({}, {"max_decode_length": 21}, r"^model.max_decode_length: must be <= 2 x data.max_caption_length = 20"),
    ({"on_bad_images": "ignore"}, {}, r"^data.on_bad_images: 'ignore' is not one of \['error', 'skip'\]"),
    ({"max_caption_length": 0}, {}, r"^data.max_caption_length: must be >= 1"),
    ({"captions": "c.csv"}, {}, r"^data.captions: only for data.source 'files'"),
    ({"source": "files", "train": "t.txt"}, {}, r"^data.image_directory: required when data.source is 'files'"),
])
def test_bad_captioning_settings_name_the_key(data, model, message):
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.from_tree(_tree(data, **model))


def test_missing_weights_file_names_the_key():
    config = config_lib.from_tree(_tree(encoder={"name": "squeezenet", "weights": "no/such.h5"}))
    with pytest.raises(FileNotFoundError, match=r"model.encoder.weights: file not found: no/such.h5"):
        tasks.create_task(config).feature_encoder()
