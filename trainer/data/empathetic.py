"""EmpatheticDialogues (Rashkin et al., 2019): the released CSV files.

Columns `conv_id,utterance_idx,context,prompt,speaker_idx,utterance,...`, one utterance
per row, commas inside text written as `_comma_` and no quoting, so rows are split on
commas the way the corpus's own loader does (extra trailing fields are ignored). The
person who opens a conversation (utterance 1) describes the situation and is the
client; every listener utterance that answers the client becomes an example. The
corpus has no strategy labels; `context` is its emotion label.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from therapist_app.core.dialogue_format import Example, Turn
from trainer.data.emotion_labels import map_emotion
from trainer.data.records import DataError, ImportResult, RowCollector, open_text

SOURCE = "empathetic_dialogues"
REQUIRED = ("conv_id", "utterance_idx", "context", "speaker_idx", "utterance")


def import_empathetic(path: str | Path, max_context_turns: int = 8, skip_invalid: bool = False) -> ImportResult:
    path = Path(path)
    collector = RowCollector(path)
    conversations: dict[str, list[tuple[int, int, dict]]] = defaultdict(list)
    with open_text(path) as lines:
        header = next(lines, "").strip().split(",")
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DataError(
                f"{path}:1: not an EmpatheticDialogues CSV: missing column(s) {', '.join(missing)}"
                f" (found {', '.join(header) or 'nothing'})"
            )
        for number, line in enumerate(lines, start=2):
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split(",")
            if len(fields) < len(header) - 2:  # selfeval and tags are often empty or cut
                collector.error(number, f"expected {len(header)} fields, found {len(fields)}")
                continue
            row = dict(zip(header, fields))
            try:
                index = int(row["utterance_idx"])
            except ValueError:
                collector.error(number, "utterance_idx is not a number")
                continue
            conversations[row["conv_id"]].append((index, number, row))

    for conv_id, rows in conversations.items():
        rows.sort(key=lambda r: r[0])
        collector.add(rows[0][1], lambda rows=rows, c=conv_id: _examples(c, rows, max_context_turns))
    return collector.result(skip_invalid)


def _unescape(text: str) -> str:
    return text.replace("_comma_", ",").strip()


def _examples(conv_id: str, rows: list[tuple[int, int, dict]], max_context_turns: int) -> list[Example]:
    emotion = map_emotion("empathetic_dialogues", rows[0][2]["context"])
    client_id = rows[0][2]["speaker_idx"]
    turns = []
    for _, number, row in rows:
        text = _unescape(row["utterance"])
        if not text:
            raise ValueError(f"empty utterance (line {number})")
        turns.append(Turn("client" if row["speaker_idx"] == client_id else "therapist", text))
    examples = []
    for index in range(1, len(turns)):
        if turns[index].speaker == "therapist" and turns[index - 1].speaker == "client":
            examples.append(
                Example(
                    client_words=turns[index - 1].text,
                    reply=turns[index].text,
                    context=tuple(turns[max(0, index - 1 - max_context_turns) : index - 1]),
                    emotion=emotion,
                    source=SOURCE,
                    conversation_id=f"{SOURCE}-{conv_id}",
                    id=f"{SOURCE}-{conv_id}-u{rows[index][0]}",
                )
            )
    if not examples:
        raise ValueError(f"conversation {conv_id} has no listener reply")
    return examples
