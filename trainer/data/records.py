"""Reading and writing the normalised JSONL schema, with line-numbered validation.

Error messages name the file, the line and the problem, never the text of a row: a row
is client data and must not reach a log or a terminal scrollback.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from therapist_app.core.dialogue_format import Example
from trainer.progress import progress

log = logging.getLogger(__name__)

# How many row errors a DataError message lists before summarising the rest.
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class RowError:
    """One bad row: where it is and what is wrong with it."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class DataError(ValueError):
    """A data file (or a column mapping) that cannot be imported as it is."""

    def __init__(self, message: str, errors: tuple[RowError, ...] = ()) -> None:
        self.errors = errors
        listed = "\n".join(f"  {e}" for e in errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        if more > 0:
            listed += f"\n  ... and {more} more"
        super().__init__(message + ("\n" + listed if listed else ""))


@dataclass(frozen=True)
class ImportResult:
    """What an importer kept and what it refused."""

    examples: tuple[Example, ...]
    errors: tuple[RowError, ...] = ()


class RowCollector:
    """Gathers valid examples and row errors; `result()` enforces the skip policy."""

    def __init__(self, source: str | Path) -> None:
        self.source = str(source)
        self.examples: list[Example] = []
        self.errors: list[RowError] = []
        self._bar = progress(desc=f"reading {Path(source).name}", unit="row")

    def add(self, line: int, build) -> None:
        """Call `build()` for one row; a ValueError it raises becomes a row error."""
        self._bar.update()
        try:
            built = build()
        except (ValueError, KeyError, TypeError) as problem:
            self.errors.append(RowError(self.source, line, _describe(problem)))
            return
        if isinstance(built, Example):
            self.examples.append(built)
        elif built is not None:
            self.examples.extend(built)

    def error(self, line: int, message: str) -> None:
        self.errors.append(RowError(self.source, line, message))

    def result(self, skip_invalid: bool) -> ImportResult:
        self._bar.close()
        errors = tuple(sorted(self.errors, key=lambda e: e.line))
        if errors and not skip_invalid:
            raise DataError(
                f"{len(errors)} invalid row(s) in {self.source} "
                "(fix them, or pass --skip-invalid to import the valid rows only):",
                errors,
            )
        if errors:
            log.warning("skipped %d invalid row(s) in %s", len(errors), self.source)
        if not self.examples:
            raise DataError(f"no usable examples in {self.source}", errors)
        return ImportResult(tuple(self.examples), errors)


def _describe(problem: Exception) -> str:
    if isinstance(problem, KeyError):
        return f"missing field {problem}"
    return str(problem).splitlines()[0] if str(problem) else type(problem).__name__


def read_jsonl(path: str | Path, skip_invalid: bool = False) -> ImportResult:
    """Read and validate a normalised JSONL file (one `Example` per line)."""
    path = Path(path)
    collector = RowCollector(path)
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            collector.add(number, lambda line=line: example_from_line(line))
    return collector.result(skip_invalid)


def example_from_line(line: str) -> Example:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as bad:
        raise ValueError(f"not valid JSON ({bad.msg} at column {bad.colno})") from None
    if not isinstance(record, dict):
        raise ValueError("a row must be a JSON object")
    example = Example.from_dict(record)
    if not example.client_words.strip():
        raise ValueError("client_words is empty")
    if example.reply is not None and not example.reply.strip():
        raise ValueError("reply is empty")
    return example


def open_text(path: Path):
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    # utf-8-sig: files saved by spreadsheet tools often start with a BOM.
    return path.open(encoding="utf-8-sig", newline="")


def write_jsonl(examples: Iterable[Example], path: str | Path) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for example in examples:
            out.write(example.to_json() + "\n")
            count += 1
    return count


def file_sha256(*paths: str | Path) -> str:
    """One digest over the bytes of the given files, in order: the run folder's data hash."""
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
