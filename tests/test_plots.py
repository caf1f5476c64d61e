"""pipeline/plots.py: each figure is a readable PNG of the expected size, and bad input is refused clearly."""

import csv

import numpy as np
import pytest
from PIL import Image

from pipeline import plots


def _write_history(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_read_history_returns_columns_by_epoch(tmp_path):
    path = _write_history(tmp_path / "history.csv", [
        {"epoch": 0, "loss": 0.9, "val_loss": 1.0, "accuracy": 0.5, "val_accuracy": 0.4},
        {"epoch": 1, "loss": 0.5, "val_loss": 0.7, "accuracy": 0.8, "val_accuracy": ""}])

    history = plots.read_history(path)

    assert history["loss"] == [0.9, 0.5] and history["epoch"] == [0.0, 1.0]
    assert np.isnan(history["val_accuracy"][1])


def test_training_curves_draws_one_panel_per_metric(tmp_path):
    rows = [{"epoch": epoch, "accuracy": 0.5 + epoch / 10, "loss": 1 - epoch / 10, "val_accuracy": 0.5,
             "val_loss": 1.0} for epoch in range(3)]
    one = plots.training_curves(_write_history(tmp_path / "one.csv", [{k: v for k, v in row.items()
                                                                         if "accuracy" not in k} for row in rows]),
                                str(tmp_path / "one.png"))
    two = plots.training_curves(_write_history(tmp_path / "two.csv", rows), str(tmp_path / "figures" / "two.png"))

    assert _image(two).shape[1] > 1.6 * _image(one).shape[1]  # loss and accuracy side by side


def test_training_curves_refuses_an_empty_history(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n", encoding="utf-8")

    with pytest.raises(ValueError, match="no epochs"):
        plots.training_curves(str(path), str(tmp_path / "curves.png"))


def test_confusion_matrix_shades_the_largest_count_darkest(tmp_path):
    path = plots.confusion_matrix([[50, 0], [0, 0]], ["negative", "positive"], str(tmp_path / "matrix.png"))

    pixels = _image(path)
    assert pixels.shape[0] > 100 and pixels.min() < 80  # a dark cell for the count 50


def test_confusion_matrix_checks_its_shape(tmp_path):
    with pytest.raises(ValueError, match="3 classes"):
        plots.confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"], str(tmp_path / "matrix.png"))


def _red_pixels(path) -> int:
    pixels = _image(path).astype(int)
    return int(np.sum((pixels[..., 0] > 230) & (pixels[..., 1] < 190) & (pixels[..., 2] < 190)))


def test_tagging_table_highlights_only_wrong_tags(tmp_path):
    right = {"tokens": ["we", "book", "it"], "gold": ["PRON", "VERB", "PRON"], "predicted": ["PRON", "VERB", "PRON"]}
    wrong = dict(right, predicted=["PRON", "NOUN", "PRON"])

    assert _red_pixels(plots.tagging_table([right], str(tmp_path / "right.png"))) == 0
    assert _red_pixels(plots.tagging_table([wrong], str(tmp_path / "wrong.png"))) > 50


def test_tagging_table_refuses_rows_of_different_lengths(tmp_path):
    with pytest.raises(ValueError, match="differ in length"):
        plots.tagging_table([{"tokens": ["a", "b"], "gold": ["X"], "predicted": ["X", "Y"]}], str(tmp_path / "t.png"))


def test_attention_heatmaps_draw_one_panel_per_sentence(tmp_path):
    alignment = {"source_tokens": ["ein", "hund"], "target_tokens": ["a", "dog", "[END]"],
                 "weights": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])}
    one = plots.attention_heatmaps([alignment], str(tmp_path / "one.png"))
    three = plots.attention_heatmaps([alignment] * 3, str(tmp_path / "three.png"))

    assert _image(three).shape[0] > 1.6 * _image(one).shape[0]  # two rows of panels


def test_attention_heatmaps_check_the_weight_shape(tmp_path):
    alignment = {"source_tokens": ["ein"], "target_tokens": ["a", "[END]"], "weights": np.ones([2, 2])}

    with pytest.raises(ValueError, match="do not match"):
        plots.attention_heatmaps([alignment], str(tmp_path / "attention.png"))


def test_generated_text_table_grows_with_settings_and_wrapped_lines(tmp_path):
    prompts = ["", "lena has"]
    one = plots.generated_text_table(prompts, {"greedy": ["a b .", " two cups ."]}, str(tmp_path / "one.png"))
    three = plots.generated_text_table(prompts, {"greedy": ["a b .", " two cups ."], "T = 0.5": ["c .", " one ."],
                                                 "T = 1.0": ["word " * 60, " x ."]}, str(tmp_path / "three.png"))

    # 4 rows against 8 rows, one of them wrapped onto 4 lines: 11 lines.
    assert 1.8 < _image(three).shape[0] / _image(one).shape[0] < 3.0
    assert _image(three).shape[1] == _image(one).shape[1]


def test_generated_text_table_needs_one_continuation_per_prompt(tmp_path):
    with pytest.raises(ValueError, match="'T = 0.5' has 1 continuations for 2 prompts"):
        plots.generated_text_table(["a", "b"], {"T = 0.5": ["x"]}, str(tmp_path / "samples.png"))
    with pytest.raises(ValueError, match="no prompts"):
        plots.generated_text_table([], {}, str(tmp_path / "samples.png"))
