"""Dropping repeated exchanges: same context, client words and reply after normalisation."""

from __future__ import annotations

import hashlib
import re
from typing import Iterable

from therapist_app.core.dialogue_format import Example, clean_text


def _norm(text: str | None) -> str:
    return re.sub(r"\s+", " ", clean_text(text or "")).casefold()


def exchange_key(example: Example) -> str:
    """A digest of what the model sees and should answer; labels and ids do not count.

    >>> a = Example("I feel  low.", "That sounds hard.")
    >>> exchange_key(a) == exchange_key(Example("i feel low.", "That sounds hard.", source="x"))
    True
    """
    parts = [f"{t.speaker}:{_norm(t.text)}" for t in example.context]
    parts += [_norm(example.client_words), _norm(example.reply), _norm(example.suggestion)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def deduplicate(examples: Iterable[Example]) -> tuple[list[Example], int]:
    """The examples with repeats removed (first one kept, order kept), and how many went."""
    seen: set[str] = set()
    kept = []
    total = 0
    for example in examples:
        total += 1
        key = exchange_key(example)
        if key not in seen:
            seen.add(key)
            kept.append(example)
    return kept, total - len(kept)
