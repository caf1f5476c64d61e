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


# === Sequence tagging ===


def _split_tag(tag: str) -> tuple[str, str]:
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, kind = tag.split("-", 1)
    return prefix, kind


def is_span_tagset(tag_names) -> bool:
    """True when the tags are BIO/BIOES chunk tags (`O`, `B-X`, `I-X`, ...), so span scores apply."""
    names = list(tag_names)
    chunk_tags = [name for name in names if name != "O"]
    return bool(chunk_tags) and all(name.split("-", 1)[0] in ("B", "I", "E", "S") and "-" in name
                                    for name in chunk_tags)


def spans(tags) -> set[tuple[int, int, str]]:
    """Chunks of a BIO/BIOES tag sequence as (start, end exclusive, type), like conlleval.

    An `I-X` after `O` or after a chunk of another type starts a new chunk; `E-X` and `S-X` close theirs.
    """
    found = set()
    start, current_type, previous_prefix = None, "", "O"
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split_tag(tag)
        if start is not None and (prefix in ("B", "S", "O") or kind != current_type
                                  or previous_prefix in ("E", "S")):
            found.add((start, position, current_type))
            start = None
        if prefix in ("B", "S") or (prefix in ("I", "E") and start is None):
            start, current_type = position, kind
        previous_prefix = prefix
    return found


def span_scores(gold_sequences, predicted_sequences) -> dict:
    """Exact-match span precision, recall and F1 (span boundaries and type), overall and per type."""
    counts: dict[str, list[int]] = {}  # type -> [true positives, predicted, gold]
    for gold_tags, predicted_tags in zip(gold_sequences, predicted_sequences):
        gold, predicted = spans(gold_tags), spans(predicted_tags)
        for span in gold | predicted:
            entry = counts.setdefault(span[2], [0, 0, 0])
            entry[0] += span in gold and span in predicted
            entry[1] += span in predicted
            entry[2] += span in gold
    def scores(true_positives, predicted, gold):
        precision = true_positives / predicted if predicted else 0.0
        recall = true_positives / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": gold}
    totals = [sum(entry[index] for entry in counts.values()) for index in range(3)]
    return {**scores(*totals), "per_type": {kind: scores(*entry) for kind, entry in sorted(counts.items())}}


def tagging_report(gold_sequences, predicted_sequences, out_of_vocabulary_sequences, tag_names) -> dict:
    """Token accuracy, accuracy on out-of-vocabulary tokens, per-tag scores, and span scores for BIO tags.

    Args:
        gold_sequences: Gold tag names per sentence.
        predicted_sequences: Predicted tag names per sentence (same lengths).
        out_of_vocabulary_sequences: Per sentence, a bool per token: not in the training vocabulary.
        tag_names: All tag names, in index order.

    Returns:
        A JSON-ready dict; `oov_accuracy` is None when no token is out of vocabulary.
    """
    index = {name: position for position, name in enumerate(tag_names)}
    gold = np.array([index[tag] for sentence in gold_sequences for tag in sentence], dtype=np.int64)
    predicted = np.array([index[tag] for sentence in predicted_sequences for tag in sentence], dtype=np.int64)
    unknown = np.array([flag for sentence in out_of_vocabulary_sequences for flag in sentence], dtype=bool)
    report = classification_report(gold, predicted, tag_names)
    report["tokens"] = report.pop("examples")
    report["sentences"] = len(gold_sequences)
    report["oov_tokens"] = int(unknown.sum())
    report["oov_accuracy"] = float((gold[unknown] == predicted[unknown]).mean()) if unknown.any() else None
    if is_span_tagset(tag_names):
        report["spans"] = span_scores(gold_sequences, predicted_sequences)
    return report
