"""Strategy adherence: does the reply do what its counselling strategy says?

One authored check per strategy in `assets/strategies.toml`, each 0..1. They read the
surface of the reply (a question mark and an open-question word, an invitational
phrase, a reflective frame...), which is what a therapist scanning a suggestion sees.
"""

from __future__ import annotations

import re

from therapist_app.core.taxonomy import strategies

from trainer.rewards.emotion import reflection_of_feeling
from trainer.rewards.text import column, replies, token_f1, words

_OPEN_QUESTION = re.compile(r"\b(what|how|when|where|which|who|tell me|could you say|can you say|would you say)\b")
_CLOSED_QUESTION = re.compile(r"(^|[.!?]\s+)(do|does|did|are|is|was|were|have|has|can|could|would|will)\b")
_FIRST_PERSON_EXPERIENCE = re.compile(r"\b(i've|i have (?:felt|been|had)|when i|i remember|i once|i too|me too|i went through|in my own)\b")
_AFFIRMING = re.compile(
    r"\b(strength|strong|courage|brave|took a lot|well done|you managed|you've managed|proud|"
    r"makes sense|matters|you did|you're doing|you are doing|capable|effort|progress|it's okay to|"
    r"it is okay to|that's understandable|took care)\b"
)
_INVITATIONAL = re.compile(
    r"\b(could try|might try|might help|one idea|one small|would you be open|what if you|maybe|perhaps|"
    r"you could|some people find|would it help|how about)\b"
)
_DIRECTIVE = re.compile(r"\b(you must|you need to|you have to|you should)\b")
_INFORMATIVE = re.compile(
    r"\b(many people|a lot of people|it is common|it's common|is common|often|usually|research|"
    r"can be|tends? to|is a normal|is normal|is a natural|is natural|is known)\b"
)
_STOPWORDS = frozenset(
    "i me my you your it its is am are was were be been a an the and or but so to of in on at for with "
    "that this just really very what how do does did not no yes have has had i'm you're it's".split()
)


def _content(text: str) -> str:
    return " ".join(w for w in words(text) if w not in _STOPWORDS)


def adherence(reply: str, strategy: str, client_words: str | None = None, emotion: str | None = None) -> float:
    """How well `reply` carries out `strategy` (0..1).

    >>> adherence("What feels hardest about it?", "question")
    1.0
    >>> adherence("It sounds hard.", "question")
    0.0
    >>> adherence("You should stop worrying.", "suggestion")
    0.3
    >>> adherence("You could try writing the worry down before bed.", "suggestion")
    1.0
    """
    text = reply.lower()
    if not text:
        return 0.0
    if strategy == "question":
        if "?" not in text:
            return 0.0
        return 1.0 if _OPEN_QUESTION.search(text) else 0.6 if _CLOSED_QUESTION.search(text) else 0.4
    if strategy == "restatement":
        overlap = token_f1(_content(text), _content(client_words or ""))
        score = min(1.0, overlap / 0.4)
        return score * (0.5 if text.rstrip().endswith("?") else 1.0)
    if strategy == "reflection":
        return reflection_of_feeling(reply, emotion)
    if strategy == "self_disclosure":
        return 0.6 * bool(_FIRST_PERSON_EXPERIENCE.search(text)) + 0.4 * ("you" in words(text))
    if strategy == "affirmation":
        return 1.0 if _AFFIRMING.search(text) else 0.2
    if strategy == "suggestion":
        return 1.0 if _INVITATIONAL.search(text) else 0.3 if _DIRECTIVE.search(text) else 0.1
    if strategy == "information":
        return 1.0 if _INFORMATIVE.search(text) else 0.3 if not text.endswith("?") else 0.0
    if strategy == "other":
        return 1.0
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(strategies())}")


def strategy_adherence(completions, strategy=None, client_words=None, emotion=None, **kwargs) -> list[float | None]:
    """The reply does what its strategy says; None for rows without a strategy.

    >>> strategy_adherence(["How has the week been?", "Fine."], strategy=["question", None])
    [1.0, None]
    """
    texts = replies(completions)
    n = len(texts)
    rows = zip(texts, column({"s": strategy}, "s", n), column({"c": client_words}, "c", n), column({"e": emotion}, "e", n))
    return [None if s is None else adherence(t, s, c, e) for t, s, c, e in rows]
