"""Word-level text helpers: tokens, n-grams, overlap (token F1, ROUGE-L) and the
generated turn's raw text up to where the app stops generating."""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

from therapist_app.core.dialogue_format import stop_strings

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(text: str | None) -> list[str]:
    """Lower-case word tokens (apostrophes kept inside words; curly ones made straight).

    >>> words("I don’t KNOW, really.")
    ['i', "don't", 'know', 'really']
    """
    return _WORD.findall((text or "").lower().replace("’", "'"))


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """Consecutive runs of `n` tokens.

    >>> ngrams(["a", "b", "c"], 2)
    [('a', 'b'), ('b', 'c')]
    """
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def turn_text(raw: str) -> str:
    """The generated turn: raw model text up to the first stop string (end-of-turn
    marker, padding after it, or a new speaker line), as the app stops generating.

    >>> turn_text("Okay okay.<|im_end|><|im_end|><|im_end|>")
    'Okay okay.'
    """
    for stop in stop_strings():
        raw = raw.split(stop, 1)[0]
    return raw


def token_f1(candidate: str, reference: str | None) -> float:
    """Unigram F1 between two texts (SQuAD-style bag of words).

    >>> round(token_f1("it sounds hard", "that sounds really hard"), 4)
    0.5714
    >>> token_f1("", "anything")
    0.0
    """
    cand, ref = words(candidate), words(reference)
    common = sum((Counter(cand) & Counter(ref)).values())
    if not cand or not ref or not common:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence.

    >>> lcs_length("a b c d".split(), "a c d e".split())
    3
    """
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l_f(candidate: str, reference: str | None) -> float:
    """ROUGE-L F1 on word tokens (no stemming), in 0..1.

    >>> round(rouge_l_f("a b c d", "a c d e"), 4)
    0.75
    """
    cand, ref = words(candidate), words(reference)
    lcs = lcs_length(cand, ref)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """Whether two drafts say nearly the same thing in nearly the same words: ROUGE-L
    F1 of at least `threshold` (a therapist would see one draft twice).

    >>> near_duplicate("It sounds like the move has been hard.", "It sounds like the move has been really hard.")
    True
    >>> near_duplicate("It sounds like the move has been hard.", "What has the move changed for you?")
    False
    """
    return rouge_l_f(a, b) >= threshold
