"""Labelled single client turns (emotion or risk), written in independent batches: one
file per batch, `{text, <label field>, batch, ...}` per line (assets/corpus/emotion,
assets/corpus/risk). Older one-file sets join as a batch of their own."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from trainer.data.records import DataError


@dataclass(frozen=True)
class LabelledRow:
    text: str
    label: str
    batch: str
    kind: str = ""
    split: str = "test"
    """For one-file evaluation sets: which part a row belongs to (absent means test)."""


def read_rows(
    path: Path, field: str, batch: str | None = None, allowed: Iterable[str] | None = None
) -> list[LabelledRow]:
    """One file's rows; `batch` overrides the rows' batch id (default: the row's own,
    else the file's name)."""
    allowed = set(allowed) if allowed is not None else None
    rows, errors = [], []
    with Path(path).open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                row = LabelledRow(
                    record["text"],
                    record[field],
                    batch or record.get("batch") or Path(path).stem,
                    record.get("kind", ""),
                    record.get("split", "test"),
                )
            except (json.JSONDecodeError, KeyError, TypeError) as problem:
                errors.append(f"{path}:{number}: expected a JSON object with text, {field} and batch ({problem})")
                continue
            if not isinstance(row.text, str) or not row.text.strip():
                errors.append(f"{path}:{number}: empty text")
            elif allowed is not None and row.label not in allowed:
                errors.append(f"{path}:{number}: unknown {field} {row.label!r}")
            else:
                rows.append(row)
    if errors:
        raise DataError(f"{len(errors)} bad row(s) in {path}:\n  " + "\n  ".join(errors[:20]))
    return rows


def read_batches(folder: Path, field: str, allowed: Iterable[str] | None = None) -> list[LabelledRow]:
    """Every `<batch>.jsonl` in `folder`; a file holds one batch, named by the file."""
    files = sorted(Path(folder).glob("*.jsonl"))
    if not files:
        raise DataError(f"no batch files (*.jsonl) in {folder}")
    rows = []
    for path in files:
        found = read_rows(path, field, allowed=allowed)
        wrong = {r.batch for r in found} - {path.stem}
        if wrong:
            raise DataError(f"{path} holds rows of batch(es) {sorted(wrong)}; a file is one batch")
        rows += found
    return rows
