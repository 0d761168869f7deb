"""CounselChat-style CSV: one licensed therapist's answer to one posted question per row.

Columns used: `questionID`, `questionTitle`, `questionText`, `topic`, `answerText`.
A question with several answers gives several examples sharing a conversation id, so a
split never separates them. The topic gives an emotion where it names one.
"""

from __future__ import annotations

from pathlib import Path

from therapist_app.core.dialogue_format import Example
from trainer.data.emotion_labels import map_emotion
from trainer.data.records import DataError, ImportResult, RowCollector
from trainer.data.tables import csv_rows

SOURCE = "counselchat"
REQUIRED = ("questionID", "questionText", "answerText")


def import_counselchat(path: str | Path, skip_invalid: bool = False) -> ImportResult:
    header, rows = csv_rows(path)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DataError(
            f"{path}:1: not a CounselChat CSV: missing column(s) {', '.join(missing)} (found {', '.join(header)})"
        )
    collector = RowCollector(path)
    for number, row in rows:
        collector.add(number, lambda row=row, n=number: _example(row, n))
    return collector.result(skip_invalid)


def _example(row: dict, line: int) -> Example:
    question = (row.get("questionText") or "").strip() or (row.get("questionTitle") or "").strip()
    answer = (row.get("answerText") or "").strip()
    question_id = (row.get("questionID") or "").strip()
    if not question:
        raise ValueError("questionText and questionTitle are both empty")
    if not answer:
        raise ValueError("answerText is empty")
    if not question_id:
        raise ValueError("questionID is empty")
    topics = [t.strip() for t in (row.get("topic") or "").split(",") if t.strip()]
    emotion = next((e for e in (map_emotion(SOURCE, t, strict=False) for t in topics) if e), None)
    return Example(
        client_words=question,
        reply=answer,
        emotion=emotion,
        source=SOURCE,
        conversation_id=f"{SOURCE}-{question_id}",
        id=f"{SOURCE}-{question_id}-l{line}",
    )
