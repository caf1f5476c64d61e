"""Translation end to end: tiny run -> BLEU/chrF -> export with four signatures -> fresh-process load; model checks."""

import collections
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import sacrebleu
import tensorflow as tf

import helpers
from pipeline import config as config_lib
from pipeline import models
from pipeline import decoding
from pipeline import export
from pipeline import losses
from pipeline import run_files
from pipeline import tasks
from pipeline import training
from pipeline.data import synthetic
from pipeline.data import sequence_text
from pipeline.models import seq2seq_translator

pytestmark = pytest.mark.slow  # trains tiny models end to end

TEXTS = ["twenty three of may nineteen eighty four", "", "one of january two thousand",
         "thirty one of december twenty twenty nine", "unseen words , here !"]

# Loads an export with TensorFlow alone, as TF Serving would, and runs every signature on the same texts.
_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
texts = tf.constant(json.loads(sys.argv[2]))
results = {"signatures": sorted(loaded.signatures)}
for name in ("serving_default", "greedy", "beam", "sample"):
    arguments = {"text": texts}
    if name == "sample":
        arguments["temperature"] = tf.constant(1e-4)
    outputs = loaded.signatures[name](**arguments)
    results[name] = {"translation": [item.decode() for item in outputs["translation"].numpy()],
                     "score": outputs["score"].numpy().tolist(), "dtypes": sorted(
                         f"{key}:{value.dtype.name}" for key, value in outputs.items())}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def tiny_translation_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_translation")
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/translation.yaml")],
                                    helpers.tiny_overrides(directory))
    run_dir = training.train(config)
    return config, run_dir, export.export_run(run_dir)


def _task_and_model(config, run_dir):
    task = tasks.create_task(config)
    return task, task.load_preprocessing(run_dir), run_files.load_trained_model(run_dir)


def _strings(tensor) -> list[str]:
    return [item.decode("utf-8") for item in np.asarray(tensor)]


def _small_model(**kwargs) -> seq2seq_translator.Seq2SeqTranslator:
    settings = dict(embedding_dim=8, cell="gru", units=6, num_layers=1, bidirectional=False, attention="bahdanau")
    settings.update(kwargs)
    model = seq2seq_translator.Seq2SeqTranslator(20, 15, **settings)
    model.build()
    return model


ENCODER_IDS = np.array([[5, 6, 7, 8, 0], [4, 3, 0, 0, 0], [9, 0, 0, 0, 0]], "int32")
DECODER_IDS = np.array([[2, 5, 6, 7, 9], [2, 8, 9, 0, 0], [2, 4, 0, 0, 0]], "int32")
LABELS = np.array([[5, 6, 7, 9, 3], [8, 9, 3, 0, 0], [4, 3, 0, 0, 0]], "int32")


# === The tiny run ===


def test_metrics_json_has_bleu_chrf_loss_and_accuracy(tiny_translation_run):
    _, run_dir, _ = tiny_translation_run
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        results = json.load(stream)
    for split in ("validation", "test"):
        metrics = results[split]
        for key in ("bleu", "chrf", "greedy_bleu", "greedy_chrf", "exact_match", "loss", "accuracy"):
            assert isinstance(metrics[key], float), key
        assert metrics["decoding"] == "beam" and metrics["examples"] > 0
        assert {"source", "reference", "translation"} == set(metrics["samples"][0])
    assert results["skipped_rows"] == {"train": 0, "validation": 0, "test": 0}
    for relative in ("vocab/source_vocabulary.json", "vocab/target_vocabulary.json", run_files.MODEL_FILE):
        assert os.path.exists(os.path.join(run_dir, relative)), relative


def test_evaluating_another_split_reuses_the_decoding_loops_of_the_same_model(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    task, preprocessing, model = _task_and_model(config, run_dir)
    other_model = run_files.load_trained_model(run_dir)

    beam = task.traced_decoder(model, preprocessing, "beam")  # traced on first call, seconds for a decoding loop

    assert task.traced_decoder(model, preprocessing, "beam") is beam
    assert task.traced_decoder(model, preprocessing, "greedy") is not beam
    assert task.traced_decoder(other_model, preprocessing, "beam") is not beam
    assert task.traced_decoder(model, preprocessing, "beam") is not beam  # the other model replaced it


def test_tiny_translator_learns_the_synthetic_dates(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        test = json.load(stream)["test"]
    splits = tasks.create_task(config).load_splits()
    references = splits.splits["test"].targets
    most_frequent = collections.Counter(splits.splits["train"].targets).most_common(1)[0][0]
    constant = sacrebleu.corpus_bleu([most_frequent] * len(references), [references]).score
    copy = sacrebleu.corpus_bleu(splits.splits["test"].sources, [references]).score
    baseline = max(constant, copy)
    assert baseline < 35, "the synthetic task must not be solvable by a constant or by copying"
    assert test["bleu"] >= 90 and test["bleu"] > baseline + 50, f"BLEU {test['bleu']:.1f} vs baseline {baseline:.1f}"
    assert test["exact_match"] >= 0.8 and test["chrf"] >= 90


def test_export_in_a_fresh_process_has_four_string_signatures_matching_in_process_decoding(tiny_translation_run):
    config, run_dir, export_path = tiny_translation_run
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, export_path, json.dumps(TEXTS)],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert process.returncode == 0, process.stderr[-3000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    assert {"serving_default", "greedy", "beam", "sample"} <= set(loaded["signatures"])
    for name in ("serving_default", "greedy", "beam", "sample"):
        assert len(loaded[name]["translation"]) == len(TEXTS)
        assert loaded[name]["dtypes"] == ["score:float32", "translation:string"]
    assert loaded["serving_default"] == loaded["beam"]  # configs/tiny/translation.yaml decodes with beam search
    assert loaded["greedy"]["translation"][0] == "1 9 8 4 - 0 5 - 2 3"
    assert loaded["sample"]["translation"] == loaded["greedy"]["translation"]  # temperature -> 0

    # Greedy decoding in this process, eagerly, straight from encode/decode_step and pipeline.decoding.
    task, preprocessing, model = _task_and_model(config, run_dir)
    encoder_token_ids = task.numeric_inputs(preprocessing, tf.constant(TEXTS))
    state = model.encode(encoder_token_ids)
    result = decoding.greedy_search(lambda ids, state, step: model.decode_step(ids, state), state,
                                    tf.fill([len(TEXTS)], sequence_text.START_ID), end_token=sequence_text.END_ID,
                                    max_length=task.max_decode_length)
    assert _strings(task.detokenize(preprocessing, result.token_ids)) == loaded["greedy"]["translation"]
    np.testing.assert_allclose(loaded["greedy"]["score"], result.scores.numpy(), rtol=1e-4, atol=1e-5)


def test_greedy_signature_equals_a_python_loop_over_decode_step(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    task, preprocessing, model = _task_and_model(config, run_dir)
    expected = _strings(task.serving_functions(model, preprocessing)["greedy"](tf.constant(TEXTS))["translation"])
    state = model.encode(task.numeric_inputs(preprocessing, tf.constant(TEXTS)))
    token_ids = np.full([len(TEXTS)], sequence_text.START_ID, "int32")
    outputs, finished = [[] for _ in TEXTS], np.zeros(len(TEXTS), bool)
    for _ in range(task.max_decode_length):
        logits, state = model.decode_step(tf.constant(token_ids), state)
        token_ids = np.argmax(logits.numpy(), axis=-1).astype("int32")
        for row, token in enumerate(token_ids):
            finished[row] |= token == sequence_text.END_ID
            if not finished[row]:
                outputs[row].append(preprocessing.target_vocabulary[token])
    assert [" ".join(tokens) for tokens in outputs] == expected


def test_cli_predict_translates(tiny_translation_run):
    _, run_dir, _ = tiny_translation_run
    result = helpers.run_cli("predict", run_dir, "twenty three of may nineteen eighty four")
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout.splitlines()[0])
    assert row["text"] == "twenty three of may nineteen eighty four"
    assert row["translation"] == "1 9 8 4 - 0 5 - 2 3" and row["score"] <= 0
    sampled = helpers.run_cli("predict", "--signature", "sample", "--temperature", "0.01", run_dir,
                              "twenty three of may nineteen eighty four")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert json.loads(sampled.stdout.splitlines()[0])["translation"] == "1 9 8 4 - 0 5 - 2 3"


def test_serving_default_with_sampling_is_seeded_and_repeatable(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    tree = config_lib.to_tree(config)
    tree["model"].update(decoding="sample", temperature=3.0)
    task, preprocessing, model = _task_and_model(config_lib.from_tree(tree), run_dir)
    serve = task.serving_functions(model, preprocessing)["serving_default"]
    first, second = serve(tf.constant(TEXTS * 4)), serve(tf.constant(TEXTS * 4))
    assert _strings(first["translation"]) == _strings(second["translation"])
    np.testing.assert_allclose(first["score"].numpy(), second["score"].numpy())


def test_attention_weights_for_plotting(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    task, preprocessing, model = _task_and_model(config, run_dir)
    rows = task.translate_with_attention(model, preprocessing, synthetic.translation_demo_texts()[:2])
    first = rows[0]
    assert first["source_tokens"] == "twenty three of may nineteen eighty four".split()
    assert first["target_tokens"] == "1 9 8 4 - 0 5 - 2 3".split() + ["[END]"]
    assert first["weights"].shape == (len(first["target_tokens"]), len(first["source_tokens"]))
    np.testing.assert_allclose(first["weights"].sum(axis=-1), 1.0, rtol=1e-5)
    assert rows[1]["weights"].shape[1] == len(rows[1]["source_tokens"]) == 5


def test_vectorized_examples_shift_the_target_and_bucket_by_source_length(tiny_translation_run):
    config, run_dir, _ = tiny_translation_run
    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    splits = task.load_splits()
    features, labels = next(iter(task.datasets(splits, preprocessing)["validation"]))
    decoder, labels = features["decoder_token_ids"].numpy(), labels.numpy()
    assert np.all(decoder[:, 0] == sequence_text.START_ID)
    np.testing.assert_array_equal(decoder[:, 1:], labels[:, :-1])
    lengths = np.count_nonzero(labels, axis=1)
    assert np.all(labels[np.arange(len(labels)), lengths - 1] == sequence_text.END_ID)
    assert features["encoder_token_ids"].dtype == tf.int32 and features["source_text"].dtype == tf.string
    assert preprocessing.target_vocabulary[:4] == ["", "[UNK]", "[START]", "[END]"]
    assert preprocessing.source_vocabulary[:2] == ["", "[UNK]"]


# === Model, loss and metric (no training) ===


@pytest.mark.parametrize("settings", [
    {"cell": "gru", "attention": "bahdanau", "bidirectional": True},
    {"cell": "lstm", "attention": "luong", "num_layers": 2},
    {"cell": "simple_rnn", "attention": "none"},
    {"cell": "gru", "attention": "luong", "bidirectional": True, "num_layers": 2},
], ids=lambda settings: "-".join(str(value) for value in settings.values()))
def test_teacher_forced_logits_equal_decode_step_logits(settings):
    model = _small_model(**settings)
    logits = model({"encoder_token_ids": ENCODER_IDS, "decoder_token_ids": DECODER_IDS}).numpy()
    state = model.encode(ENCODER_IDS)
    for position in range(DECODER_IDS.shape[1]):
        step_logits, state = model.decode_step(tf.constant(DECODER_IDS[:, position]), state)
        np.testing.assert_allclose(step_logits.numpy(), logits[:, position], rtol=1e-4, atol=1e-5)


def test_padding_the_source_longer_changes_nothing():
    model = _small_model(bidirectional=True, attention="luong")
    padded = np.pad(ENCODER_IDS, [[0, 0], [0, 4]])
    short = model({"encoder_token_ids": ENCODER_IDS, "decoder_token_ids": DECODER_IDS}).numpy()
    longer = model({"encoder_token_ids": padded, "decoder_token_ids": DECODER_IDS}).numpy()
    np.testing.assert_allclose(longer, short, rtol=1e-5, atol=1e-6)


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = _small_model(cell="lstm", bidirectional=True, num_layers=2)
    inputs = {"encoder_token_ids": ENCODER_IDS, "decoder_token_ids": DECODER_IDS}
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", custom_objects=models.CUSTOM_OBJECTS, compile=False)
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert loaded.get_config() == model.get_config()
    assert [model.source_embedding.name, model.encoder.name, model.bridge.name, model.target_embedding.name,
            model.attention_layer.name, model.output_projection.name] == [
        "source_embedding", "encoder", "bridge", "target_embedding", "attention", "logits"]


def test_masked_loss_ignores_padding_and_smooths_labels():
    logits = np.random.default_rng(0).normal(size=LABELS.shape + (15,)).astype("float32")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    mask = LABELS > 0
    true_log_probs = np.take_along_axis(log_probs, LABELS[..., None], -1)[..., 0]
    expected = -true_log_probs[mask].mean()
    assert float(losses.MaskedSequenceLoss()(LABELS, logits)) == pytest.approx(expected, rel=1e-5)
    smoothed = (0.9 * -true_log_probs - 0.1 * log_probs.mean(-1))[mask].mean()
    assert float(losses.MaskedSequenceLoss(0.1)(LABELS, logits)) == pytest.approx(smoothed, rel=1e-5)
    padded_labels = np.pad(LABELS, [[0, 0], [0, 3]])
    padded_logits = np.pad(logits, [[0, 0], [0, 3], [0, 0]], constant_values=7.0)
    assert float(losses.MaskedSequenceLoss()(padded_labels, padded_logits)) == pytest.approx(expected, rel=1e-5)
    accuracy = losses.MaskedTokenAccuracy()
    accuracy.update_state(padded_labels, padded_logits)
    expected_accuracy = (np.argmax(logits, -1) == LABELS)[mask].mean()
    assert float(accuracy.result()) == pytest.approx(expected_accuracy)


# === Config ===


def _tree(**model) -> dict:
    return {"name": "t", "task": "translation", "data": {"source": "synthetic:translation", "max_target_length": 10},
            "model": model}


@pytest.mark.parametrize("model, path", [({"beam_size": 0}, "model.beam_size"),
                                         ({"label_smoothing": 1.0}, "model.label_smoothing"),
                                         ({"temperature": 0}, "model.temperature"),
                                         ({"max_decode_length": 21}, "model.max_decode_length")])
def test_bad_decoding_settings_name_the_key(model, path):
    with pytest.raises(config_lib.ConfigError, match=rf"^{path}:"):
        config_lib.from_tree(_tree(**model))


def test_attention_choice_is_checked_with_a_hint():
    with pytest.raises(config_lib.ConfigError, match=r"model.attention: 'bahdenau' is not one of .*'bahdanau'"):
        config_lib.from_tree(_tree(attention="bahdenau"))
    config = config_lib.from_tree(_tree(max_decode_length=20))
    assert tasks.create_task(config).max_decode_length == 20
    assert tasks.create_task(config_lib.from_tree(_tree())).max_decode_length == 11
