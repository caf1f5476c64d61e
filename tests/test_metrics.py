"""Classification report: accuracy, macro-F1, per-class scores and the confusion matrix, checked by hand."""

import json

import numpy as np
import pytest

from pipeline import metrics

CLASSES = ("cat", "dog", "bird", "fish")
# Hand-made: 8 examples of cat, dog, bird; fish never occurs and is never predicted.
LABELS = [0, 0, 0, 1, 1, 2, 2, 2]
PREDICTIONS = [0, 0, 1, 1, 2, 2, 2, 0]


@pytest.fixture(scope="module")
def report():
    return metrics.classification_report(np.array(LABELS), np.array(PREDICTIONS), CLASSES)


def test_accuracy(report):
    # Correct: positions 0, 1, 3, 5, 6 -> 5 of 8.
    assert report["examples"] == 8
    assert report["accuracy"] == pytest.approx(5 / 8)


def test_confusion_matrix_rows_are_true_classes(report):
    assert report["confusion_matrix"] == [
        [2, 1, 0, 0],  # cat: 2 right, 1 taken for dog
        [0, 1, 1, 0],  # dog: 1 right, 1 taken for bird
        [1, 0, 2, 0],  # bird: 2 right, 1 taken for cat
        [0, 0, 0, 0],  # fish: absent
    ]


def test_per_class_precision_recall_f1_support(report):
    # cat: predicted 3 times (2 right), 3 true -> p = 2/3, r = 2/3, f1 = 2/3.
    # dog: predicted 2 times (1 right), 2 true -> p = 1/2, r = 1/2, f1 = 1/2.
    # bird: predicted 3 times (2 right), 3 true -> p = 2/3, r = 2/3, f1 = 2/3.
    expected = {
        "cat": (2 / 3, 2 / 3, 2 / 3, 3),
        "dog": (1 / 2, 1 / 2, 1 / 2, 2),
        "bird": (2 / 3, 2 / 3, 2 / 3, 3),
        "fish": (0.0, 0.0, 0.0, 0),
    }
    assert list(report["per_class"]) == list(CLASSES)
    for name, (precision, recall, f1, support) in expected.items():
        scores = report["per_class"][name]
        assert scores["precision"] == pytest.approx(precision), name
        assert scores["recall"] == pytest.approx(recall), name
        assert scores["f1"] == pytest.approx(f1), name
        assert scores["support"] == support, name


def test_macro_f1_averages_the_classes_present_in_labels_or_predictions(report):
    # fish occurs in neither, so it is left out of the average (scikit-learn's macro F1).
    assert report["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert report["macro_average_labels"] == ["cat", "dog", "bird"]


def test_macro_f1_counts_a_class_that_is_only_predicted():
    report = metrics.classification_report([0, 0], [0, 1], ["a", "b", "c"])

    assert report["macro_average_labels"] == ["a", "b"]
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_tagging_macro_f1_leaves_out_tags_absent_from_the_split():
    report = metrics.tagging_report([["DET", "NOUN"]], [["DET", "VERB"]], [[False, False]],
                                    ["DET", "NOUN", "PROPN", "VERB", "X"])

    assert report["macro_average_labels"] == ["DET", "NOUN", "VERB"]
    assert report["macro_f1"] == pytest.approx(1 / 3)


def test_precision_and_recall_differ_when_predictions_are_skewed():
    # Class 0: 4 true, predicted 6 times (4 right) -> p = 4/6, r = 1, f1 = 2 * (2/3) / (5/3) = 0.8.
    # Class 1: 2 true, never predicted -> p = 0 (zero division), r = 0, f1 = 0.
    report = metrics.classification_report([0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0], ["a", "b"])

    assert report["per_class"]["a"]["precision"] == pytest.approx(4 / 6)
    assert report["per_class"]["a"]["recall"] == pytest.approx(1.0)
    assert report["per_class"]["a"]["f1"] == pytest.approx(0.8)
    assert report["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert report["macro_f1"] == pytest.approx(0.4)
    assert report["accuracy"] == pytest.approx(4 / 6)


def test_perfect_predictions():
    report = metrics.classification_report([1, 0, 2, 1], [1, 0, 2, 1], ["x", "y", "z"])

    assert report["accuracy"] == 1.0
    assert report["macro_f1"] == 1.0
    assert np.array_equal(np.diag(report["confusion_matrix"]), [1, 2, 1])


def test_confusion_matrix_sums_to_the_number_of_examples(report):
    assert np.sum(report["confusion_matrix"]) == report["examples"]


def test_report_is_json_ready(report):
    assert json.loads(json.dumps(report)) == report
    assert isinstance(report["accuracy"], float)
    assert isinstance(report["per_class"]["cat"]["support"], int)


def test_empty_input_gives_zero_scores():
    report = metrics.classification_report(np.zeros([0]), np.zeros([0]), ["a", "b"])

    assert report["examples"] == 0
    assert report["accuracy"] == 0.0
    assert report["macro_f1"] == 0.0
    assert report["confusion_matrix"] == [[0, 0], [0, 0]]


@pytest.mark.parametrize("labels, predictions", [([0, 1, 1], [0, 1]), ([[0, 1]], [0, 1])])
def test_shape_mismatch_raises(labels, predictions):
    with pytest.raises(ValueError, match="shape"):
        metrics.classification_report(np.array(labels), np.array(predictions), ["a", "b"])
