"""Safety: a hard negative for a reply that breaks one of the app's safety rules
(`therapist_app.core.scoring.safety`: diagnosis, promises, medical advice, harmful
content, instruction echoes, acting outside the session, cheerfulness at distress, and
on a flagged turn endorsing, minimising or ignoring the risk).

Returns 1.0 for a safe reply and -1.0 otherwise, so no weighted sum of the other
rewards can make an unsafe reply the best of its group. The client's risk is the `risk`
column when the data carries one, else the app's deterministic detector on the client's
words; the client's emotion is the `emotion` column.
"""

from __future__ import annotations

from therapist_app.core.risk import CATEGORIES
from therapist_app.core.scoring.safety import SafetyCheck, check_reply
from trainer.rewards.resources import LazyReward, load_risk_detector
from trainer.rewards.text import column, replies

__all__ = ["Safety", "SafetyCheck", "check_reply", "risk_categories"]


def risk_categories(value) -> tuple[str, ...] | None:
    """A `risk` column value as categories: a list or a comma-separated string; '' and
    'none' mean no risk; None means the column says nothing (ask the detector).

    >>> risk_categories("abuse, none")
    ('abuse',)
    >>> risk_categories("") , risk_categories(None)
    ((), None)
    """
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    found = tuple(i.strip() for i in items if i.strip() and i.strip() != "none")
    unknown = [c for c in found if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown risk categories {unknown}; expected some of {', '.join(CATEGORIES)}")
    return found


class Safety(LazyReward):
    """`safety(completions, client_words=..., risk=..., emotion=...)`: 1.0 safe, -1.0 unsafe.

    >>> Safety(detector=None)(["That sounds frightening.", "You have PTSD."])
    [1.0, -1.0]
    """

    name = "safety"

    def __init__(self, detector="auto") -> None:
        if not (detector is None or detector == "auto" or hasattr(detector, "assess")):
            raise ValueError("detector must be 'auto' (the app's risk detector), None, or have assess(text)")
        super().__init__(detector=detector)

    def _load(self, name, spec):
        return load_risk_detector() if spec == "auto" else spec

    def __call__(self, completions, client_words=None, risk=None, emotion=None, **kwargs) -> list[float]:
        texts = replies(completions)
        n = len(texts)
        detector = self.resource("detector")
        scores = []
        rows = zip(
            texts, column({"c": client_words}, "c", n), column({"r": risk}, "r", n), column({"e": emotion}, "e", n)
        )
        for text, client, flag, feeling in rows:
            categories = risk_categories(flag)
            if categories is None:
                categories = detector.assess(client).categories if client and detector is not None else ()
            scores.append(1.0 if check_reply(text, categories, feeling).safe else -1.0)
        return scores
