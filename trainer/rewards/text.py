"""Text helpers shared by the rewards and the evaluator: replies, words, n-grams, overlap.

TRL passes completions as strings (standard prompts) or as lists of chat messages
(conversational prompts); every reward reads the reply the app would show, i.e. the
completion after `dialogue_format.parse_reply`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

from therapist_app.core.dialogue_format import parse_reply, stop_strings

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def raw_text(completion: Any) -> str:
    """The generated text of one completion, string or chat-message list.

    >>> raw_text([{"role": "assistant", "content": "Hello."}])
    'Hello.'
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, (list, tuple)):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    raise TypeError(f"a completion is a string or a list of messages, not {type(completion).__name__}")


def turn_text(completion: Any) -> str:
    """The generated turn: the raw text up to the first stop string (end-of-turn marker,
    padding after it, or a new speaker line), as the app would stop generating.

    >>> turn_text("Okay okay.<|im_end|><|im_end|><|im_end|>")
    'Okay okay.'
    """
    text = raw_text(completion)
    for stop in stop_strings():
        text = text.split(stop, 1)[0]
    return text


def replies(completions: Sequence[Any]) -> list[str]:
    """The cleaned reply of each completion.

    >>> replies(["Therapist: That sounds hard.<|im_end|>"])
    ['That sounds hard.']
    """
    return [parse_reply(raw_text(c)).text for c in completions]


def words(text: str | None) -> list[str]:
    """Lower-case word tokens (apostrophes kept inside words).

    >>> words("I don't KNOW, really.")
    ['i', "don't", 'know', 'really']
    """
    return _WORD.findall((text or "").lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def column(kwargs: dict, name: str, count: int) -> list:
    """A dataset column TRL passed as a keyword, one value per completion (None if absent)."""
    values = kwargs.get(name)
    if values is None:
        return [None] * count
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        return [values] * count
    if len(values) != count:
        raise ValueError(f"column {name!r} has {len(values)} values for {count} completions")
    return list(values)


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
