"""Rows of CSV and JSONL files as dicts, each with the line it starts on."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Iterator

from trainer.data.records import DataError, open_text

# Real corpora carry answers of tens of kilobytes in one cell.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def csv_rows(path: str | Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """The header and (first line of the row, row) for every non-blank row of a quoted CSV."""
    path = Path(path)
    with open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty") from None
        except csv.Error as bad:
            raise DataError(f"{path}:1: unreadable CSV header ({bad})") from None
        rows = []
        start = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return header, rows
            except csv.Error as bad:
                raise DataError(f"{path}:{start}: unreadable CSV row ({bad})") from None
            if any(f.strip() for f in fields):
                rows.append((start, dict(zip(header, fields))))
            start = reader.line_num + 1


def jsonl_rows(path: str | Path) -> Iterator[tuple[int, dict | str]]:
    """(line, parsed object) per non-empty line; a line that is not JSON yields an error text."""
    with open_text(Path(path)) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as bad:
                yield number, f"not valid JSON ({bad.msg} at column {bad.colno})"
