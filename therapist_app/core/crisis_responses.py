"""Authored crisis responses: reviewed drafts that join a flagged turn's candidate pool.

The bundled model is small; on a turn where the client may be at risk it cannot be
relied on to ask about that risk. These responses (assets/crisis_responses.toml, per
risk category, most of them asking directly as structured screening does) are ranked
with the model's drafts, so the therapist always has a safe, direct draft to choose.

The same file holds short safety check questions per category. A model draft that
answers what the client said but ignores the risk is not shown as it is; with a check
question after it (`with_check`) it is specific to the client's words and still asks.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from typing import Sequence

from therapist_app.core.assets import asset_path
from therapist_app.core.risk_patterns import CATEGORIES
from therapist_app.core.scoring.safety import asks_about_risk, check_reply
from therapist_app.core.taxonomy import strategies

ASSET = "crisis_responses.toml"


@dataclass(frozen=True)
class CrisisResponse:
    category: str
    strategy: str
    text: str


@cache
def crisis_responses() -> tuple[CrisisResponse, ...]:
    """Every authored response, checked against the taxonomy and the safety rules.

    >>> sorted({r.category for r in crisis_responses()}) == sorted(CATEGORIES)
    True
    """
    with asset_path(ASSET).open("rb") as f:
        rows = tomllib.load(f).get("response", [])
    loaded = []
    for number, row in enumerate(rows, start=1):
        try:
            response = CrisisResponse(row["category"], row["strategy"], row["text"].strip())
        except KeyError as missing:
            raise ValueError(f"{ASSET}: response {number} lacks {missing}") from None
        if response.category not in CATEGORIES or response.strategy not in strategies():
            raise ValueError(f"{ASSET}: response {number} has an unknown category or strategy")
        unsafe = check_reply(response.text, [response.category]).reasons
        if unsafe:
            raise ValueError(f"{ASSET}: response {number} breaks {', '.join(unsafe)}")
        loaded.append(response)
    missing = [c for c in CATEGORIES if not any(r.category == c and asks_about_risk(r.text, [c]) for r in loaded)]
    if missing:
        raise ValueError(f"{ASSET}: no response asks about {', '.join(missing)}")
    return tuple(loaded)


def responses_for(categories: Sequence[str]) -> list[CrisisResponse]:
    """The authored responses for the flagged categories, most severe category first."""
    return [r for c in categories for r in crisis_responses() if r.category == c]


@cache
def check_questions() -> dict[str, tuple[str, ...]]:
    """Each category's safety check questions, most direct first; every one asks about
    its risk and breaks no safety rule.

    >>> check_questions()["abuse"][0]
    'Are you safe at home?'
    """
    with asset_path(ASSET).open("rb") as f:
        rows = tomllib.load(f).get("check", [])
    questions: dict[str, list[str]] = {c: [] for c in CATEGORIES}
    for number, row in enumerate(rows, start=1):
        category, text = row.get("category"), str(row.get("text", "")).strip()
        if category not in questions or not text:
            raise ValueError(f"{ASSET}: check {number} needs a known category and a text")
        if not asks_about_risk(text, [category]) or not check_reply(text, [category]).safe:
            raise ValueError(f"{ASSET}: check {number} must ask about {category} and break no safety rule")
        questions[category].append(text)
    missing = [c for c, texts in questions.items() if not texts]
    if missing:
        raise ValueError(f"{ASSET}: no check question for {', '.join(missing)}")
    return {c: tuple(texts) for c, texts in questions.items()}


def with_check(text: str, categories: Sequence[str], turn: int = 0) -> str:
    """A draft followed by a check question on the most severe flagged category; `turn`
    picks the question, so the drafts of one round do not all end alike.

    >>> with_check("That sounds like a long week.", ["suicide_selfharm", "abuse"])
    'That sounds like a long week. Are you having any thoughts of ending your life?'
    """
    questions = check_questions()[categories[0]]
    return f"{text.rstrip()} {questions[turn % len(questions)]}"
