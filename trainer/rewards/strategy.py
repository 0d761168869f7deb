"""Strategy adherence: does the reply do what its counselling strategy says?

One authored check per strategy in `assets/strategies.toml`, each 0..1. They read the
surface of the reply (a question mark and an open-question word, an invitational
phrase, a reflective frame...), which is what a therapist scanning a suggestion sees.
"""

from __future__ import annotations

from therapist_app.core.scoring.quality import adherence
from trainer.rewards.text import column, replies

__all__ = ["adherence", "strategy_adherence"]


def strategy_adherence(completions, strategy=None, client_words=None, emotion=None, **kwargs) -> list[float | None]:
    """The reply does what its strategy says; None for rows without a strategy.

    >>> strategy_adherence(["How has the week been?", "Fine."], strategy=["question", None])
    [1.0, None]
    """
    texts = replies(completions)
    n = len(texts)
    rows = zip(
        texts, column({"s": strategy}, "s", n), column({"c": client_words}, "c", n), column({"e": emotion}, "e", n)
    )
    return [None if s is None else adherence(t, s, c, e) for t, s, c, e in rows]
