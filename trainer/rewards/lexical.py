"""Rewards computed from the words alone: agreement with the therapist's reply, format,
and repeated 4-grams."""

from __future__ import annotations

import re

from therapist_app.core.dialogue_format import parse_reply

from trainer.rewards.text import column, ngrams, raw_text, replies, rouge_l_f, token_f1, turn_text, words

_LABEL_OR_TAG = re.compile(
    r"(?im)^\s*(client|user|patient|therapist|counsell?or|assistant)\s*:|\[[^\]\n]{0,80}\]|<\|"
)
_ENDS_SENTENCE = re.compile(r"[.!?…][\"'”’)\]]*$")


def reference_agreement(completions, reference=None, **kwargs) -> list[float]:
    """Mean of token F1 and ROUGE-L F1 against the therapist's reply (0..1); None when a
    row has no reference.

    >>> [round(x, 4) for x in reference_agreement(["That sounds hard."], reference=["That sounds really hard."])]
    [0.8571]
    >>> reference_agreement(["Nice weather."], reference=["That sounds really hard."])
    [0.0]
    """
    refs = column({"reference": reference}, "reference", len(completions))
    scores: list[float | None] = []
    for reply, ref in zip(replies(completions), refs):
        scores.append(None if not ref else (token_f1(reply, ref) + rouge_l_f(reply, ref)) / 2)
    return scores


def format_compliance(completions, **kwargs) -> list[float]:
    """1.0 for one to three whole sentences and nothing else; lower for cut-off, over-long,
    labelled or empty output.

    >>> format_compliance(["It sounds like a lot.", "Therapist: It sounds like", ""])
    [1.0, 0.5, 0.0]
    """
    scores = []
    for completion in completions:
        raw = raw_text(completion)
        parsed = parse_reply(raw)
        if not parsed.text:
            scores.append(0.0)
            continue
        score = 1.0
        if parsed.truncated:
            score -= 0.5
        if _LABEL_OR_TAG.search(turn_text(raw)):
            score -= 0.25
        if not _ENDS_SENTENCE.search(parsed.text):
            score -= 0.25
        scores.append(max(0.0, score))
    return scores


def repetition_penalty(completions, **kwargs) -> list[float]:
    """Minus the share of 4-grams that repeat an earlier 4-gram of the generated turn (-1..0);
    padding after the end-of-turn marker is not part of the turn.

    >>> repetition_penalty(["I hear you and I hear you and I hear you", "That sounds hard.<|im_end|><|im_end|><|im_end|>"])
    [-0.5, 0.0]
    """
    scores = []
    for completion in completions:
        grams = ngrams(words(turn_text(completion)), 4)
        scores.append(-(len(grams) - len(set(grams))) / len(grams) if grams else 0.0)
    return scores
