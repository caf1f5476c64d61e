"""Sentiment end to end: config -> train -> evaluate -> export -> fresh-process load -> readable predictions."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import helpers
from pipeline import config as config_lib
from pipeline import export
from pipeline import run_files
from pipeline import run_state
from pipeline import training

pytestmark = pytest.mark.slow  # trains tiny models end to end

# Loads an export with TensorFlow alone, as TF Serving would, and prints its outputs as JSON.
_LOAD_IN_FRESH_PROCESS = """
import json, sys
import tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
outputs = signature(text=tf.constant(json.loads(sys.argv[2])))
print(json.dumps({key: value.numpy().tolist() if value.dtype != tf.string
                  else [item.decode() for item in value.numpy()] for key, value in outputs.items()}))
"""


def _fresh_process_outputs(path: str, texts: list[str]) -> dict:
    process = subprocess.run([sys.executable, "-c", _LOAD_IN_FRESH_PROCESS, path, json.dumps(texts)],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert process.returncode == 0, process.stderr[-2000:]
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_run_directory_holds_config_vocabulary_checkpoints_logs_and_metrics(tiny_sentiment_run):
    config, run_dir, _ = tiny_sentiment_run
    assert config_lib.load_config([os.path.join(run_dir, "config.yaml")]) == config
    for relative in ("vocab/vocabulary.json", "vocab/labels.json", run_files.BEST_WEIGHTS,
                     run_files.LAST_CHECKPOINT, run_files.HISTORY, run_files.MODEL_FILE, "logs/tensorboard"):
        assert os.path.exists(os.path.join(run_dir, relative)), relative
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        results = json.load(stream)
    for split in ("validation", "test"):
        assert 0.0 <= results[split]["accuracy"] <= 1.0
        assert set(results[split]["per_class"]) == {"negative", "positive"}
        assert np.sum(results[split]["confusion_matrix"]) == results[split]["examples"] > 0
    assert results["skipped_rows"] == {"train": 0, "validation": 0, "test": 0}


def test_export_has_tf_serving_layout_and_string_signature(tiny_sentiment_run):
    _, _, export_path = tiny_sentiment_run
    assert os.path.basename(export_path) == "1"
    assert os.path.exists(os.path.join(export_path, "saved_model.pb"))
    siblings = os.listdir(os.path.dirname(export_path))
    assert siblings == ["1"], f"temporary folders left behind: {siblings}"
    shown = subprocess.run(["saved_model_cli", "show", "--dir", export_path, "--tag_set", "serve",
                            "--signature_def", "serving_default"], capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "inputs['text']" in shown.stdout and "DT_STRING" in shown.stdout
    for output in ("label", "score", "probabilities"):
        assert f"outputs['{output}']" in shown.stdout


def test_export_in_fresh_process_equals_in_memory_model(tiny_sentiment_run):
    config, run_dir, export_path = tiny_sentiment_run
    from pipeline import tasks
    task = tasks.create_task(config)
    preprocessing = task.load_preprocessing(run_dir)
    model = run_files.load_trained_model(run_dir)
    texts = ["the acting was not very good and the plot was bad", "", "the music was extremely good",
             "WORDS NEVER SEEN BEFORE <br /> zzz"]
    in_memory = {key: value.numpy() for key, value in task.serving_functions(model, preprocessing)["serving_default"](
        np.array(texts, dtype=object)).items()}
    loaded = _fresh_process_outputs(export_path, texts)
    assert loaded["label"] == [label.decode() for label in in_memory["label"]]
    np.testing.assert_allclose(loaded["probabilities"], in_memory["probabilities"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loaded["score"], np.max(in_memory["probabilities"], axis=-1), rtol=1e-5)
    assert set(loaded["label"]) <= {"negative", "positive"}
    np.testing.assert_allclose(np.sum(loaded["probabilities"], axis=-1), 1.0, rtol=1e-5)


def test_next_export_gets_the_next_version_and_existing_versions_are_never_replaced(tiny_sentiment_run):
    _, run_dir, export_path = tiny_sentiment_run
    base = os.path.dirname(export_path)
    with pytest.raises(export.ExportError, match="already exists"):
        export.export_run(run_dir, version=1)
    assert export.next_version(base) == 2
    assert export.next_version(os.path.join(base, "missing")) == 1


def test_failed_self_check_leaves_no_export_behind(tiny_sentiment_run, tmp_path, monkeypatch):
    _, run_dir, export_path = tiny_sentiment_run
    base = os.path.dirname(export_path)

    def mismatching_check(path, functions, inputs, input_name, signatures=None):
        raise export.ExportError("self-check: output 'label' differs")

    monkeypatch.setattr(export, "self_check", mismatching_check)
    with pytest.raises(export.ExportError):
        export.export_run(run_dir, version=7)
    assert sorted(os.listdir(base)) == ["1"]


def test_self_check_detects_an_export_that_differs(tiny_sentiment_run):
    import tensorflow as tf
    _, _, export_path = tiny_sentiment_run

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def wrong(text):
        return {"label": tf.fill(tf.shape(text), "surely wrong"), "score": tf.zeros(tf.shape(text)),
                "probabilities": tf.zeros([tf.shape(text)[0], 2])}

    with pytest.raises(export.ExportError, match="differs"):
        export.self_check(export_path, {"serving_default": wrong}, ["a text"], "text")


def test_tiny_model_learns_synthetic_sentiment_well_above_chance(tmp_path):
    config = config_lib.load_config(
        [str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
        helpers.tiny_overrides(tmp_path) + [
            "data.synthetic_examples=2000", "train.epochs=6", "model.units=32", "model.embedding_dim=24",
            "model.pooling=max",
            "export.on_train_end=false"])
    run_dir = training.train(config)
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        accuracy = json.load(stream)["test"]["accuracy"]
    assert accuracy >= 0.85, f"test accuracy {accuracy:.3f} on balanced binary data (chance 0.5)"


def test_same_seed_gives_the_same_training_history(tmp_path):
    histories = []
    for attempt in ("first", "second"):
        config = config_lib.load_config(
            [str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
            helpers.tiny_overrides(tmp_path / attempt) + ["train.epochs=1", "export.on_train_end=false"])
        run_dir = training.train(config)
        with open(os.path.join(run_dir, run_files.HISTORY)) as stream:
            histories.append(list(csv.DictReader(stream)))
    assert histories[0] == histories[1]


def test_evaluate_updates_metrics_for_a_chosen_split(tiny_sentiment_run):
    _, run_dir, _ = tiny_sentiment_run
    results = training.evaluate(run_dir, ["train"])
    assert results["train"]["examples"] > results["validation"]["examples"] > 0
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        assert "train" in json.load(stream)
    with pytest.raises(ValueError, match="not available"):
        training.evaluate(run_dir, ["dev"])


def test_resume_after_kill_continues_without_losing_finished_epochs(tmp_path):
    arguments = ["train", "configs/tiny/sentiment.yaml", *(f"--set={item}" for item in helpers.tiny_overrides(tmp_path)),
                 "--set=train.epochs=12", "--set=data.synthetic_examples=1500", "--set=export.on_train_end=false"]
    state_file = tmp_path / "run" / run_state.STATE_FILE
    process = subprocess.Popen([sys.executable, "-m", "pipeline", *arguments], cwd=helpers.REPOSITORY,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if run_state.load(str(tmp_path / "run")).epochs_done >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = run_state.load(str(tmp_path / "run")).epochs_done
    assert 2 <= finished < 12

    resumed = helpers.run_cli(*arguments)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {tmp_path / 'run'} after {finished} finished epoch(s)" in resumed.stderr
    with open(tmp_path / "run" / run_files.HISTORY) as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == list(range(12)), "every epoch appears exactly once in the history"
    assert json.loads(state_file.read_text())["epochs_done"] == 12


def test_resume_with_a_different_config_is_refused(tiny_sentiment_run):
    config, _, _ = tiny_sentiment_run
    tree = config_lib.to_tree(config)
    tree["model"]["units"] = 99
    with pytest.raises(config_lib.ConfigError, match="model.units"):
        training.train(config_lib.from_tree(tree))


def test_cli_train_then_predict_from_arguments_and_stdin(tmp_path):
    trained = helpers.run_cli("train", "configs/tiny/sentiment.yaml", "--set", "train.epochs=1",
                               *(item for override in helpers.tiny_overrides(tmp_path) for item in ("--set", override)))
    assert trained.returncode == 0, trained.stderr[-3000:]
    run_dir = trained.stdout.strip().splitlines()[-1]
    assert run_dir == str(tmp_path / "run")
    assert "prediction: " in trained.stderr
    assert (tmp_path / "exports" / "tiny_sentiment" / "1" / "saved_model.pb").exists()

    from_arguments = helpers.run_cli("predict", run_dir, "the plot was good", "")
    assert from_arguments.returncode == 0, from_arguments.stderr[-3000:]
    rows = [json.loads(line) for line in from_arguments.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["the plot was good", ""]
    assert all(row["label"] in ("negative", "positive") and len(row["probabilities"]) == 2 for row in rows)

    from_stdin = helpers.run_cli("predict", str(tmp_path / "exports" / "tiny_sentiment"),
                                  input_text="first review\nsecond review\n")
    assert from_stdin.returncode == 0, from_stdin.stderr[-3000:]
    assert [json.loads(line)["text"] for line in from_stdin.stdout.splitlines()] == ["first review", "second review"]

    exported = helpers.run_cli("export", run_dir)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.strip().endswith(os.path.join("tiny_sentiment", "2"))


def test_early_stopping_logs_the_best_epoch_and_value(tmp_path, caplog):
    # val_accuracy of the tiny run stays at chance for its first epochs, so patience 1 stops it early.
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment.yaml")],
                                    helpers.tiny_overrides(tmp_path) + [
                                        "train.epochs=8", "train.early_stopping_patience=1",
                                        "train.monitor=val_accuracy", "export.on_train_end=false"])
    with caplog.at_level("INFO", logger="pipeline"):
        training.train(config)

    lines = [record.getMessage() for record in caplog.records if "stopped early" in record.getMessage()]
    assert len(lines) == 1
    assert re.fullmatch(r"training stopped early after epoch [1-7] of 8; best val_accuracy \d\.\d{4} at epoch \d+ "
                        r"\(its weights are kept\)", lines[0])


def test_cli_evaluate_prints_only_json_and_no_native_logging(tiny_sentiment_run):
    _, run_dir, _ = tiny_sentiment_run

    process = helpers.run_cli("evaluate", run_dir, "--split", "validation")

    assert process.returncode == 0, process.stderr[-3000:]
    assert "accuracy" in json.loads(process.stdout)["validation"]  # stdout is one JSON document
    assert not re.search(r"^(WARNING: All log messages before absl|[IWEF]\d{4} )", process.stderr, re.MULTILINE)


@pytest.mark.skipif(not (helpers.SHARED_DATA / "sst").is_dir(), reason="../shared/data/sst is absent")
def test_real_sst2_slice_trains_and_beats_chance(tmp_path):
    config = config_lib.load_config([str(helpers.REPOSITORY / "configs/tiny/sentiment_sst2.yaml")],
                                    helpers.tiny_overrides(tmp_path) + ["train.epochs=3"])
    run_dir = training.train(config)
    with open(os.path.join(run_dir, run_files.METRICS_FILE)) as stream:
        results = json.load(stream)
    assert results["test"]["examples"] == 1821  # the official SST-2 test split
    assert results["test"]["accuracy"] > 0.6
    exported = export.export_run(run_dir)
    assert exported == os.path.join(config.export.dir, "tiny_sentiment_sst2", "1")
    assert os.path.exists(os.path.join(exported, "saved_model.pb"))
