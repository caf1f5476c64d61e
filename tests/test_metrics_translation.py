"""Translation scores are sacreBLEU's defaults: cased 13a BLEU, chrF, lower-cased BLEU beside them, signatures."""

import sacrebleu

from pipeline import metrics

HYPOTHESES = ["A man rides a bike.", "two dogs play in the snow."]
REFERENCES = ["A man rides a bike across the street.", "Two dogs play in the snow."]


def test_bleu_is_cased_13a_and_bleu_lowercase_ignores_case():
    scores = metrics.translation_scores(HYPOTHESES, REFERENCES)

    assert scores["bleu"] == sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES]).score
    assert scores["bleu_lowercase"] == sacrebleu.corpus_bleu(HYPOTHESES, [REFERENCES], lowercase=True).score
    assert scores["bleu_lowercase"] > scores["bleu"]
    assert scores["chrf"] == sacrebleu.corpus_chrf(HYPOTHESES, [REFERENCES]).score


def test_signatures_name_case_and_tokenization():
    scores = metrics.translation_scores(HYPOTHESES, REFERENCES)

    assert scores["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert "case:lc" in scores["bleu_lowercase_signature"]
    assert scores["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:")


def test_no_hypotheses_score_zero():
    assert metrics.translation_scores([], [])["bleu"] == 0.0
