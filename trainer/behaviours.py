"""Reflective counselling behaviours: the priming examples that show them, and a counter.

Priming (after "cognitive behaviours" work on RL: a model primed with examples of the
behaviours it should use learns more from RL than one primed on correct answers) is an
ordinary SFT pass on `assets/behaviour_priming.jsonl`, authored exchanges in the
normalised schema where the therapist checks understanding, summarises, or asks before
advising. The counter finds those behaviours in any replies, so an evaluation can show
whether priming and RL kept them.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from therapist_app.core.assets import asset_path
from therapist_app.core.dialogue_format import Example

BEHAVIOURS: dict[str, re.Pattern] = {
    "checking_understanding": re.compile(
        r"\b(did i get that right|is that right|have i got that right|am i (?:understanding|hearing) (?:you|that|this) right|"
        r"have i understood|does that fit|is that close|correct me if|does that sound right|is that how it (?:feels|is))\b"
    ),
    "summarising": re.compile(
        r"\b(so far|to sum up|let me (?:sum up|summari[sz]e|make sure i)|what i'?m hearing is|so what i hear|"
        r"if i put (?:it|that|this) together|you'?ve told me|putting (?:it|that) together|on one hand)\b"
    ),
    "asking_before_advising": re.compile(
        r"\b(would it help (?:if|to)|would you like (?:some|me to|an idea|a suggestion|to (?:hear|look|try|explore))|"
        r"(?:can|may|could) i (?:offer|share|suggest)|would you be open to|are you open to|"
        r"(?:is it|would it be) (?:okay|ok|alright) if (?:i|we))\b"
    ),
}


def behaviours_in(reply: str) -> tuple[str, ...]:
    """The behaviours one reply shows.

    >>> behaviours_in("So far you've told me work and sleep both suffer. Is that right?")
    ('checking_understanding', 'summarising')
    >>> behaviours_in("You should exercise more.")
    ()
    """
    text = reply.lower().replace("’", "'")
    return tuple(name for name, pattern in BEHAVIOURS.items() if pattern.search(text))


def count_behaviours(replies: Iterable[str]) -> dict[str, int]:
    """How many replies show each behaviour (every behaviour listed, zero included).

    >>> count_behaviours(["Would it help to try one thing?", "Did I get that right?", "Okay."])
    {'checking_understanding': 1, 'summarising': 0, 'asking_before_advising': 1}
    """
    counts = Counter(name for reply in replies for name in behaviours_in(reply))
    return {name: counts.get(name, 0) for name in BEHAVIOURS}


def priming_path() -> Path:
    return asset_path("behaviour_priming.jsonl")


def load_priming(path: str | Path | None = None) -> list[Example]:
    """The priming examples, each checked to show at least one behaviour in its reply."""
    from trainer.data.records import read_jsonl

    examples = list(read_jsonl(path or priming_path()).examples)
    silent = [e.id for e in examples if not behaviours_in(e.reply or "")]
    if silent:
        raise ValueError(f"priming examples whose reply shows no reflective behaviour: {', '.join(map(str, silent))}")
    return examples
