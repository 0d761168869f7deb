"""ESConv (Liu et al., 2021): a JSON list of support conversations.

Each conversation has `emotion_type`, `situation` and a `dialog` of turns
`{"speaker": "seeker" | "supporter", "content": ..., "annotation": {"strategy": ...}}`.
Every run of supporter turns that answers a seeker becomes one example: the seeker's
latest words (consecutive seeker turns joined), the earlier turns as context, the
first supporter turn of the run as the reply and its annotated strategy. The run's
later turns carry their own strategies but answer no new client words, so they only
become context for the examples after them.
"""

from __future__ import annotations

import json
from pathlib import Path

from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.taxonomy import strategy_from_name
from trainer.data.emotion_labels import map_emotion
from trainer.data.records import DataError, ImportResult, RowCollector, open_text

SOURCE = "esconv"
_SPEAKERS = {"seeker": "client", "usr": "client", "supporter": "therapist", "sys": "therapist"}


def import_esconv(path: str | Path, max_context_turns: int = 8, skip_invalid: bool = False) -> ImportResult:
    """Examples from an ESConv JSON file; errors are numbered by conversation (1-based)."""
    path = Path(path)
    with open_text(path) as f:
        try:
            conversations = json.load(f)
        except json.JSONDecodeError as bad:
            raise DataError(f"{path}:{bad.lineno}: not valid JSON ({bad.msg})") from None
    if not isinstance(conversations, list):
        raise DataError(f"{path}: ESConv data must be a JSON list of conversations")
    collector = RowCollector(path)
    for number, conversation in enumerate(conversations, start=1):
        collector.add(
            number,
            lambda c=conversation, n=number: conversation_examples(c, f"{SOURCE}-{n}", max_context_turns),
        )
    return collector.result(skip_invalid)


def conversation_examples(conversation: dict, conversation_id: str, max_context_turns: int = 8) -> list[Example]:
    if not isinstance(conversation, dict) or not isinstance(conversation.get("dialog"), list):
        raise ValueError("a conversation needs a `dialog` list")
    emotion = map_emotion("esconv", conversation.get("emotion_type"))
    turns: list[tuple[Turn, str | None]] = []
    for index, raw in enumerate(conversation["dialog"], start=1):
        speaker = _SPEAKERS.get(str(raw.get("speaker", "")).casefold())
        if speaker is None:
            raise ValueError(f"turn {index}: speaker must be seeker or supporter")
        text = str(raw.get("content") or "").strip()
        if not text:
            raise ValueError(f"turn {index}: empty content")
        label = (raw.get("annotation") or {}).get("strategy") if speaker == "therapist" else None
        turns.append((Turn(speaker, text), strategy_from_name(label) if label else None))

    examples = []
    for index, (turn, strategy) in enumerate(turns):
        if turn.speaker != "therapist" or index == 0 or turns[index - 1][0].speaker != "client":
            continue
        start = index
        while start > 0 and turns[start - 1][0].speaker == "client":
            start -= 1
        client_words = "\n".join(t.text for t, _ in turns[start:index])
        context = tuple(t for t, _ in turns[max(0, start - max_context_turns) : start])
        examples.append(
            Example(
                client_words=client_words,
                reply=turn.text,
                context=context,
                emotion=emotion,
                strategy=strategy,
                source=SOURCE,
                conversation_id=conversation_id,
                id=f"{conversation_id}-t{index + 1}",
            )
        )
    if not examples:
        raise ValueError("no supporter turn answers a seeker turn")
    return examples
