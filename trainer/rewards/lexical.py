"""Rewards computed from the words alone: agreement with the therapist's reply, format,
and repeated 4-grams."""

from __future__ import annotations

from therapist_app.core.scoring.quality import format_score, repetition
from trainer.rewards.text import column, raw_text, replies, rouge_l_f, token_f1


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
    """1.0 for one to three whole sentences and nothing else (`scoring.quality.format_score`).

    >>> format_compliance(["It sounds like a lot.", "Therapist: It sounds like", ""])
    [1.0, 0.5, 0.0]
    """
    return [format_score(raw_text(c)) for c in completions]


def repetition_penalty(completions, **kwargs) -> list[float]:
    """Minus the share of repeated 4-grams in the generated turn (`scoring.quality.repetition`).

    >>> repetition_penalty(["I hear you and I hear you and I hear you", "That sounds hard.<|im_end|><|im_end|>"])
    [-0.5, -0.0]
    """
    return [repetition(raw_text(c)) for c in completions]
