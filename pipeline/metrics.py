"""Evaluation metrics computed from predictions and references (NumPy; no model knowledge)."""

import numpy as np


def classification_report(labels: np.ndarray, predictions: np.ndarray, class_names) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        labels: True class indices [examples].
        predictions: Predicted class indices [examples].
        class_names: Names in class-index order.

    Returns:
        A JSON-ready dict. `confusion_matrix[i][j]` counts examples of class i predicted as class j.
        Precision, recall or F1 with a zero denominator are 0 (as scikit-learn's `zero_division=0`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    predictions = np.asarray(predictions, dtype=np.int64)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    num_classes = len(class_names)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    true_positives = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, actual)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    per_class = {
        str(name): {"precision": float(precision[index]), "recall": float(recall[index]),
                    "f1": float(f1[index]), "support": int(actual[index])}
        for index, name in enumerate(class_names)
    }
    return {
        "examples": int(labels.size),
        "accuracy": float(true_positives.sum() / labels.size) if labels.size else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
