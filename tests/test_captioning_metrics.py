"""Captioning scores: BLEU-1..4 with several references and CIDEr-D, checked against the COCO caption
evaluation's own numbers, plus the nearest-neighbour baseline's pieces."""

import numpy as np
import pytest

from pipeline import metrics

HYPOTHESES = ["a dog runs on the grass", "two people sit on a bench", "a red circle on the left"]
REFERENCES = [["a dog is running on grass", "the dog runs across the green grass"],
              ["two men sitting on a bench", "people sit on a park bench", "a couple sits on a bench"],
              ["A red circle, on the left."]]


def test_cider_d_matches_the_coco_caption_evaluation():
    # Per-image values printed by pycocoevalcap 1.2 (`pycocoevalcap.cider.cider.Cider`) on these captions.
    corpus, per_image = metrics.cider_d(HYPOTHESES, REFERENCES)
    np.testing.assert_allclose(per_image, [2.1482984856302574, 3.5600070566067883, 10.0], rtol=1e-9)
    assert corpus == pytest.approx(np.mean(per_image))


def test_bleu_with_a_variable_number_of_references_matches_the_coco_caption_evaluation():
    # pycocoevalcap 1.2 `Bleu(4)` gives 1.0, 0.856348838, 0.753481754, 0.660326802 (x 100 here).
    scores = metrics.bleu_scores(HYPOTHESES, REFERENCES)
    assert [round(scores[f"bleu_{order}"], 4) for order in range(1, 5)] == [100.0, 85.6349, 75.3482, 66.0327]


def test_scores_ignore_case_and_punctuation_and_exact_match_takes_any_reference():
    scores = metrics.captioning_scores(["A red circle on the LEFT!", "a blue square"],
                                       [["a red circle on the left"], ["a blue circle", "a blue square ."]])
    assert scores["exact_match"] == 1.0 and scores["bleu_4"] == pytest.approx(100.0)
    worse = metrics.captioning_scores(["a red square on the left", "a green square"],
                                      [["a red circle on the left"], ["a blue circle", "a blue square ."]])
    assert worse["exact_match"] == 0.0 and worse["cider"] < scores["cider"] and worse["bleu_1"] < 100


def test_cider_rewards_rare_ngrams_more_than_common_ones():
    references = [["a dog on grass"], ["a dog on sand"], ["a dog on snow"]]
    _, right_rare = metrics.cider_d(["a cat on grass", "x", "x"], references)
    _, right_common = metrics.cider_d(["a dog on mud", "x", "x"], references)
    assert right_rare[0] > right_common[0]  # "grass" is in one reference set, "a dog on" in all


def test_consensus_caption_and_nearest_neighbour():
    references = [["a dog runs", "a dog runs fast", "the cat sleeps"], ["a bird flies"]]
    assert metrics.consensus_captions(references) == ["a dog runs", "a bird flies"]
    train_features = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert metrics.nearest_neighbour_captions(np.array([[0.1, 3.0], [5.0, 1.0]]), train_features,
                                              ["dog", "bird"]) == ["bird", "dog"]
