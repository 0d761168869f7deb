"""TRL's shapes for the rewards: completions as text, dataset columns as lists. The word
and overlap helpers live in `therapist_app.core.scoring.text` (re-exported here).

TRL passes completions as strings (standard prompts) or as lists of chat messages
(conversational prompts); every reward reads the reply the app would show, i.e. the
completion after `dialogue_format.parse_reply`.
"""

from __future__ import annotations

from typing import Any, Sequence

from therapist_app.core.dialogue_format import parse_reply
from therapist_app.core.scoring.text import lcs_length, ngrams, rouge_l_f, token_f1, turn_text, words

__all__ = ["column", "lcs_length", "ngrams", "raw_text", "replies", "rouge_l_f", "token_f1", "turn_text", "words"]


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


def replies(completions: Sequence[Any]) -> list[str]:
    """The cleaned reply of each completion.

    >>> replies(["Therapist: That sounds hard.<|im_end|>"])
    ['That sounds hard.']
    """
    return [parse_reply(raw_text(c)).text for c in completions]


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
