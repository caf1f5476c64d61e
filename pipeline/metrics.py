"""Evaluation metrics computed from predictions and references (NumPy; no model knowledge)."""

import collections
import re

import numpy as np
import sacrebleu


def classification_report(labels: np.ndarray, predictions: np.ndarray, class_names) -> dict:
    """Accuracy, macro-F1, per-class precision/recall/F1/support and the confusion matrix.

    Args:
        labels: True class indices [examples].
        predictions: Predicted class indices [examples].
        class_names: Names in class-index order.

    Returns:
        A JSON-ready dict. `confusion_matrix[i][j]` counts examples of class i predicted as class j.
        Precision, recall or F1 with a zero denominator are 0 (as scikit-learn's `zero_division=0`).
        `macro_f1` averages the F1 of the classes that occur in the labels or the predictions of these
        examples (as scikit-learn's `f1_score(average="macro")`), named in `macro_average_labels`: a
        class absent from both would count as F1 0 and only depress the average.
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
    present = (actual > 0) | (predicted > 0)
    return {
        "examples": int(labels.size),
        "accuracy": float(true_positives.sum() / labels.size) if labels.size else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_average_labels": [str(name) for name, used in zip(class_names, present) if used],
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


# === Captioning ===

_CAPTION_PUNCTUATION = re.compile(r"[^\w\s]")


def caption_tokens(text: str) -> list[str]:
    """Lower-cased words without punctuation, as the COCO caption evaluation compares them."""
    return _CAPTION_PUNCTUATION.sub(" ", text.lower()).split()


def _normalized(text: str) -> str:
    return " ".join(caption_tokens(text))


def bleu_scores(hypotheses: list[str], references: list[list[str]], max_order: int = 4) -> dict:
    """Corpus BLEU-1 .. BLEU-`max_order` (0-100, sacreBLEU) with any number of references per hypothesis.

    Text is lower-cased and stripped of punctuation first; BLEU-n is the geometric mean of the 1..n-gram
    precisions times the brevity penalty against the closest reference length (as in the COCO
    evaluation), without smoothing.
    """
    width = max((len(items) for items in references), default=0)
    streams = [[_normalized(items[index]) if index < len(items) else None for items in references]
               for index in range(width)]
    hypotheses = [_normalized(text) for text in hypotheses]
    scores = {}
    for order in range(1, max_order + 1):
        bleu = sacrebleu.metrics.BLEU(max_ngram_order=order, tokenize="none", smooth_method="none",
                                      force=True)
        scores[f"bleu_{order}"] = float(bleu.corpus_score(hypotheses, streams).score) if hypotheses else 0.0
    return scores


def _ngram_counts(tokens: list[str], max_order: int) -> collections.Counter:
    return collections.Counter(tuple(tokens[start:start + order]) for order in range(1, max_order + 1)
                               for start in range(len(tokens) - order + 1))


def cider_d(hypotheses: list[str], references: list[list[str]], sigma: float = 6.0,
            max_order: int = 4) -> tuple[float, np.ndarray]:
    """CIDEr-D (Vedantam et al. 2015) as the COCO caption evaluation computes it.

    TF-IDF vectors of 1..4-grams, with document frequencies from the references of the evaluated set;
    the hypothesis' counts are clipped by the reference's, a Gaussian penalty (`sigma`) on the length
    difference applies, the n-gram orders are averaged, and the result is scaled by 10.

    Returns:
        (the corpus score: the mean of the per-image scores, the per-image scores).
    """
    reference_counts = [[_ngram_counts(caption_tokens(text), max_order) for text in items] for items in references]
    document_frequency = collections.Counter(
        ngram for items in reference_counts for ngram in set().union(*[counts.keys() for counts in items]))
    log_images = np.log(float(max(len(references), 1)))

    def vectors(counts: collections.Counter):
        weights = [dict() for _ in range(max_order)]
        norms = np.zeros(max_order)
        for ngram, count in counts.items():
            order = len(ngram) - 1
            weight = count * (log_images - np.log(max(1.0, document_frequency[ngram])))
            weights[order][ngram] = weight
            norms[order] += weight ** 2
        length = sum(count for ngram, count in counts.items() if len(ngram) == 2)  # as the reference code
        return weights, np.sqrt(norms), length

    scores = np.zeros(len(hypotheses))
    for row, (hypothesis, items) in enumerate(zip(hypotheses, reference_counts)):
        hypothesis_vectors, hypothesis_norms, hypothesis_length = vectors(
            _ngram_counts(caption_tokens(hypothesis), max_order))
        total = np.zeros(max_order)
        for counts in items:
            reference_vectors, reference_norms, reference_length = vectors(counts)
            for order in range(max_order):
                value = sum(min(weight, reference_vectors[order].get(ngram, 0.0)) * reference_vectors[order].get(ngram, 0.0)
                            for ngram, weight in hypothesis_vectors[order].items())
                if hypothesis_norms[order] and reference_norms[order]:
                    value /= hypothesis_norms[order] * reference_norms[order]
                total[order] += value * np.exp(-((hypothesis_length - reference_length) ** 2) / (2 * sigma ** 2))
        scores[row] = 10.0 * total.mean() / max(len(items), 1)
    return (float(scores.mean()) if len(scores) else 0.0), scores


def captioning_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """BLEU-1..4 and CIDEr-D (both 0-100: CIDEr-D x 100) and the exact-match rate (any reference)."""
    scores = bleu_scores(hypotheses, references)
    scores["cider"] = 100.0 * cider_d(hypotheses, references)[0]
    matches = [_normalized(hypothesis) in {_normalized(text) for text in items}
               for hypothesis, items in zip(hypotheses, references)]
    scores["exact_match"] = float(np.mean(matches)) if matches else 0.0
    return scores


def consensus_captions(references: list[list[str]]) -> list[str]:
    """For each image, the caption that agrees most (CIDEr-D) with the image's other captions."""
    candidates, others, owners = [], [], []
    for image, items in enumerate(references):
        for index, text in enumerate(items):
            candidates.append(text)
            others.append([other for position, other in enumerate(items) if position != index] or [text])
            owners.append(image)
    _, scores = cider_d(candidates, others)
    best: dict[int, tuple[float, str]] = {}
    for owner, score, text in zip(owners, scores, candidates):
        if owner not in best or score > best[owner][0]:
            best[owner] = (score, text)
    return [best[image][1] for image in range(len(references))]


def nearest_neighbour_captions(query_features: np.ndarray, train_features: np.ndarray,
                               train_captions: list[str]) -> list[str]:
    """The caption of the most similar training image (cosine similarity of pooled encoder features).

    Args:
        query_features: [queries, features].
        train_features: [train images, features].
        train_captions: One caption per training image (e.g. its `consensus_captions`).
    """
    def unit(matrix):
        matrix = np.asarray(matrix, dtype=np.float64)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    nearest = np.argmax(unit(query_features) @ unit(train_features).T, axis=1)
    return [train_captions[index] for index in nearest]


def translation_scores(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU the standard way: BLEU with its defaults (cased, `13a` tokenization, exponential
    smoothing) and chrF (character 6-grams, beta 2), both against the raw references, plus BLEU
    lower-cased (`bleu_lowercase`, for comparison with papers that report it) and each signature string.
    """
    scores = {}
    metrics = {"bleu": sacrebleu.metrics.BLEU(), "bleu_lowercase": sacrebleu.metrics.BLEU(lowercase=True),
               "chrf": sacrebleu.metrics.CHRF()}
    for name, metric in metrics.items():
        scores[name] = float(metric.corpus_score(hypotheses, [references]).score) if hypotheses else 0.0
        scores[f"{name}_signature"] = str(metric.get_signature()) if hypotheses else ""
    return scores
