"""Any JSONL or CSV file (or rows from elsewhere) through a column mapping.

The mapping names, for each field of our schema, the column that holds it:
`client_words` and `reply` are required; `context`, `emotion`, `strategy`,
`conversation_id` and `id` are optional. A context cell is a list (in CSV, a JSON
array) of `{"speaker", "text"}` objects or of plain strings; plain strings alternate
speakers and the last one is the therapist's, since the client speaks next.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Mapping

from therapist_app.core.dialogue_format import Example, Turn
from therapist_app.core.taxonomy import strategy_from_name
from trainer.data.emotion_labels import SCHEMES, map_emotion
from trainer.data.records import DataError, ImportResult, RowCollector
from trainer.data.tables import csv_rows, jsonl_rows

REQUIRED_FIELDS = ("client_words", "reply")
OPTIONAL_FIELDS = ("context", "emotion", "strategy", "conversation_id", "id")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
EMOTION_SCHEMES = ("ours", *SCHEMES)


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`field=column` pairs from the command line; unmapped fields map to their own name.

    >>> parse_mapping(["client_words=question", "reply=answer"])["reply"]
    'answer'
    """
    mapping = {name: name for name in FIELDS}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        name, column = name.strip(), column.strip()
        if not sep or not column:
            raise DataError(f"a column mapping is FIELD=COLUMN, not {pair!r}")
        if name not in FIELDS:
            raise DataError(f"unknown field {name!r} in the column mapping; fields are {', '.join(FIELDS)}")
        mapping[name] = column
    return mapping


def check_columns(mapping: Mapping[str, str], columns: Iterable[str], where: str) -> None:
    """Fail early, naming the columns there are, when a required field's column is absent."""
    columns = list(columns)
    missing = [f"{f} -> {mapping[f]!r}" for f in REQUIRED_FIELDS if mapping[f] not in columns]
    if missing:
        raise DataError(
            f"{where}: the column mapping does not fit this data: {', '.join(missing)} not found;"
            f" available columns: {', '.join(map(str, columns)) or 'none'}"
            " (map them with --map FIELD=COLUMN)"
        )


def example_from_row(row: Mapping, mapping: Mapping[str, str], source: str, emotion_scheme: str = "ours") -> Example:
    def cell(name: str):
        value = row.get(mapping[name])
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    client_words, reply = cell("client_words"), cell("reply")
    if client_words is None:
        raise ValueError(f"column {mapping['client_words']!r} (client_words) is empty")
    if reply is None:
        raise ValueError(f"column {mapping['reply']!r} (reply) is empty")
    strategy = cell("strategy")
    conversation_id, row_id = cell("conversation_id"), cell("id")
    return Example(
        client_words=str(client_words),
        reply=str(reply),
        context=_context(cell("context")),
        emotion=map_emotion(emotion_scheme, cell("emotion")) if emotion_scheme != "ours" else cell("emotion"),
        strategy=strategy_from_name(str(strategy)) if strategy is not None else None,
        source=source,
        conversation_id=None if conversation_id is None else str(conversation_id),
        id=None if row_id is None else str(row_id),
    )


def _context(value) -> tuple[Turn, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("the context cell is not a JSON array") from None
    if not isinstance(value, list):
        raise ValueError("the context must be a list of turns")
    turns = []
    for offset, item in enumerate(reversed(value)):
        if isinstance(item, dict):
            turns.append(Turn(item["speaker"], str(item["text"])))
        elif isinstance(item, str):
            turns.append(Turn("therapist" if offset % 2 == 0 else "client", item))
        else:
            raise ValueError("a context turn must be a string or a {speaker, text} object")
    return tuple(reversed(turns))


def import_table(
    path: str | Path,
    mapping: Mapping[str, str],
    source: str | None = None,
    emotion_scheme: str = "ours",
    skip_invalid: bool = False,
) -> ImportResult:
    """Import a `.jsonl` or `.csv` file through `mapping` (see `parse_mapping`)."""
    path = Path(path)
    source = source or path.stem
    if emotion_scheme not in EMOTION_SCHEMES:
        raise DataError(f"unknown emotion scheme {emotion_scheme!r}; expected one of {', '.join(EMOTION_SCHEMES)}")
    collector = RowCollector(path)
    if path.suffix.lower() == ".csv":
        header, rows = csv_rows(path)
        check_columns(mapping, header, f"{path}:1")
        for number, row in rows:
            collector.add(number, lambda row=row: example_from_row(row, mapping, source, emotion_scheme))
    elif path.suffix.lower() in (".jsonl", ".json"):
        checked = False
        for number, row in jsonl_rows(path):
            if isinstance(row, str):
                collector.error(number, row)
                continue
            if not isinstance(row, dict):
                collector.error(number, "a row must be a JSON object")
                continue
            if not checked:
                check_columns(mapping, row.keys(), f"{path}:{number}")
                checked = True
            collector.add(number, lambda row=row: example_from_row(row, mapping, source, emotion_scheme))
    else:
        raise DataError(f"{path}: expected a .csv or .jsonl file")
    return collector.result(skip_invalid)
