"""Corpus metrics for generated replies against reference replies.

BLEU is sacrebleu's corpus BLEU (default 13a tokenisation) as a fraction; ROUGE-1/2/L
are rouge-score's F-measures (Porter stemming) averaged over examples; METEOR is nltk's,
averaged over examples on lower-cased word tokens, with WordNet synonyms when the
WordNet data is installed and exact + stem matching only when it is not (the report
says which); distinct-n is unique n-grams over all n-grams of all replies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from trainer.rewards.text import ngrams, words

log = logging.getLogger(__name__)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU in 0..1.

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 6)
    1.0
    """
    import sacrebleu

    _same_length(hypotheses, references)
    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score / 100.0


def rouge(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-L F-measures.

    >>> {k: round(v, 4) for k, v in rouge(["a cat sat"], ["the cat sat down"]).items()}
    {'rouge1': 0.5714, 'rouge2': 0.4, 'rougeL': 0.5714}
    """
    from rouge_score import rouge_scorer

    _same_length(hypotheses, references)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for hypothesis, reference in zip(hypotheses, references):
        scores = scorer.score(reference, hypothesis)
        for key in totals:
            totals[key] += scores[key].fmeasure
    return {k: v / max(len(hypotheses), 1) for k, v in totals.items()}


class _NoSynonyms:
    """Stands in for nltk's WordNet reader when its data is absent: no synonym matches."""

    def synsets(self, word):
        return []


def wordnet_available() -> bool:
    import nltk

    try:
        nltk.data.find("corpora/wordnet")
    except LookupError:
        return False
    return True


@dataclass(frozen=True)
class Meteor:
    score: float
    synonyms: bool  # False: WordNet data absent, exact and stem matches only


def meteor(hypotheses: Sequence[str], references: Sequence[str]) -> Meteor:
    """Mean sentence METEOR (nltk's parameters: alpha 0.9, beta 3, gamma 0.5).

    >>> round(meteor(["the cat sat on the mat"], ["the cat sat on the mat"]).score, 4)
    0.9977
    """
    from nltk.translate.meteor_score import meteor_score

    _same_length(hypotheses, references)
    synonyms = wordnet_available()
    if synonyms:
        from nltk.corpus import wordnet as reader
    else:
        reader = _NoSynonyms()
    total = 0.0
    for hypothesis, reference in zip(hypotheses, references):
        hyp, ref = words(hypothesis), words(reference)
        total += meteor_score([ref], hyp, wordnet=reader) if hyp and ref else 0.0
    return Meteor(total / max(len(hypotheses), 1), synonyms)


def distinct(hypotheses: Sequence[str], n: int) -> float:
    """Unique n-grams over all n-grams, across every reply (0 when there are none).

    >>> distinct(["a b a b"], 1), distinct(["a b a b"], 2)
    (0.5, 0.6666666666666666)
    """
    grams = [g for h in hypotheses for g in ngrams(words(h), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def emotion_accuracy(predicted: Sequence[str | None], annotated: Sequence[str | None]) -> float | None:
    """Share of examples with an annotated emotion whose reply the classifier labels with
    that emotion (None when no example is annotated).

    >>> emotion_accuracy(["sadness", "anger", "fear"], ["sadness", "sadness", None])
    0.5
    """
    pairs = [(p, a) for p, a in zip(predicted, annotated) if a is not None]
    return sum(p == a for p, a in pairs) / len(pairs) if pairs else None


def _same_length(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} replies but {len(references)} references")
    if not hypotheses:
        raise ValueError("no replies to score")
