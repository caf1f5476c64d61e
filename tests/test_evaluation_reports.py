"""Every task's tiny run: `train` leaves figures and TensorBoard extras; `evaluate --data/--predictions` works.

One shrunk run per task (one epoch on a few hundred synthetic examples) is trained once and shared by the
tests of that task.
"""

import csv
import glob
import json
import os
import pathlib

import pytest

import helpers
from pipeline import config as config_lib
from pipeline import evaluation
from pipeline import reports
from pipeline import training
from pipeline.data import synthetic
from pipeline.data import synthetic_captions

SHRINK = {
    "sentiment": ["data.synthetic_examples=200"],
    "tagging": ["data.synthetic_examples=200"],
    "translation": ["data.synthetic_examples=300", "model.beam_size=2"],
    "lm": ["data.synthetic_examples=200"],
    "captioning": ["data.synthetic_examples=120", "model.beam_size=2"],
}
TASK_FIGURES = {
    "sentiment": {"confusion_matrix.png"},
    "tagging": {"confusion_matrix.png", "tagging_examples.png"},
    "translation": {"attention.png"},
    "lm": set(),
    "captioning": {"captions.png", "attention.png"},
}
EXAMPLES = 12


@pytest.fixture(scope="module", params=sorted(SHRINK))
def tiny_run(request, tmp_path_factory):
    """(config name, run directory, a temporary directory) of a shrunk tiny run, trained once."""
    name = request.param
    directory = tmp_path_factory.mktemp(f"tiny_{name}")
    config = config_lib.load_config([f"tiny/{name}"], helpers.tiny_overrides(directory)
                                    + ["train.epochs=1", "export.on_train_end=false"] + SHRINK[name])
    return name, training.train(config), directory


def _write_labelled_file(name: str, directory: pathlib.Path) -> str:
    """EXAMPLES labelled examples (unseen: another seed) in a file format the task reads."""
    if name == "sentiment":
        texts, labels = synthetic.sentiment_examples(EXAMPLES, seed=99)
        path = directory / "reviews.tsv"
        path.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in zip(texts, labels)),
                        encoding="utf-8")
    elif name == "tagging":
        sentences, tags = synthetic.tagging_examples(EXAMPLES, seed=99)
        path = directory / "sentences.txt"  # one `token tag` per line, blank line between sentences
        path.write_text("\n".join("".join(f"{token} {tag}\n" for token, tag in zip(tokens, sentence_tags))
                                  for tokens, sentence_tags in zip(sentences, tags)), encoding="utf-8")
    elif name == "translation":
        sources, targets = synthetic.translation_examples(EXAMPLES, seed=99)
        path = directory / "pairs.tsv"
        path.write_text("".join(f"{source}\t{target}\n" for source, target in zip(sources, targets)), encoding="utf-8")
    elif name == "lm":
        path = directory / "story.txt"
        path.write_text(synthetic.language_model_text(EXAMPLES, seed=99), encoding="utf-8")
    else:
        images, captions = synthetic_captions.captioning_examples(EXAMPLES, seed=99)
        (directory / "images").mkdir(exist_ok=True)
        path = directory / "captions.csv"
        with open(path, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(["image", "caption"])
            for index, (encoded, references) in enumerate(zip(images, captions)):
                (directory / "images" / f"{index}.png").write_bytes(encoded)
                writer.writerows([f"images/{index}.png", caption] for caption in references)
    return str(path)


@pytest.mark.slow
def test_train_leaves_learning_curves_and_the_task_figures(tiny_run):
    name, run_dir, _ = tiny_run

    written = {path.name for path in pathlib.Path(run_dir, reports.FIGURES_DIR).glob("*.png")}

    assert {reports.LEARNING_CURVES} | TASK_FIGURES[name] <= written
    assert all(path.stat().st_size > 1000 for path in pathlib.Path(run_dir, reports.FIGURES_DIR).glob("*.png"))


def _summaries(directory: str) -> dict[str, set[str]]:
    """Plugin name -> tags of the summaries in the event files directly under `directory`."""
    import tensorflow as tf
    found: dict[str, set[str]] = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.metadata.plugin_data.plugin_name, set()).add(value.tag)
    return found


@pytest.mark.slow
def test_tensorboard_holds_hyperparameters_metrics_figures_and_sample_predictions(tiny_run):
    name, run_dir, _ = tiny_run
    root = os.path.join(run_dir, reports.TENSORBOARD_DIR)

    hyperparameters = _summaries(root)
    evaluation_run = _summaries(os.path.join(root, reports.EVALUATION_RUN))

    assert "hparams" in hyperparameters
    assert {f"figures/{os.path.splitext(figure)[0]}" for figure in {reports.LEARNING_CURVES} | TASK_FIGURES[name]} \
        <= evaluation_run["images"]
    assert "predictions/test" in evaluation_run["text"]
    assert any(tag.startswith("test/") for tag in evaluation_run["scalars"])


@pytest.mark.slow
def test_evaluate_scores_a_labelled_file_and_writes_every_prediction(tiny_run):
    name, run_dir, directory = tiny_run
    data = _write_labelled_file(name, directory)
    predictions = directory / "predictions.jsonl"

    results = evaluation.evaluate(run_dir, data=data, predictions=str(predictions))

    split_name = evaluation.file_split_name(data)
    assert split_name in results and "test" in results  # the run's own metrics are kept
    assert any(isinstance(value, float) for value in results[split_name].values())
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert {row["split"] for row in rows} == {split_name}
    assert [row["example"] for row in rows] == list(range(len(rows)))
    assert len(rows) == EXAMPLES or name == "lm"  # the language model writes one row per line
    assert rows and all(len(row) > 3 for row in rows)


@pytest.mark.slow
def test_the_evaluate_command_takes_data_and_predictions(tiny_run):
    name, run_dir, directory = tiny_run
    if name != "sentiment":
        pytest.skip("one command-line run is enough")
    data = _write_labelled_file(name, directory)
    predictions = directory / "cli_predictions.jsonl"

    process = helpers.run_cli("evaluate", run_dir, "--data", data, "--predictions", str(predictions))

    assert process.returncode == 0, process.stderr
    assert evaluation.file_split_name(data) in json.loads(process.stdout)
    rows = [json.loads(line) for line in predictions.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == EXAMPLES
    assert {"text", "reference", "prediction", "score", "correct"} <= set(rows[0])
