"""The app's de-identified export: already the normalised schema, so importing is validating.

Rows keep their `decision` and `suggestion` (preference training pairs what the therapist
used with what they turned down); SFT keeps only rows with a reply. A decision on a draft
(accepted, edited, rejected, not_chosen) carries the model's `suggestion`; a reply the
therapist typed themselves (`own`) carries none.
"""

from __future__ import annotations

from pathlib import Path

from therapist_app.core.dialogue_format import Example
from trainer.data.records import ImportResult, RowCollector, example_from_line, open_text


def import_app_export(path: str | Path, skip_invalid: bool = False) -> ImportResult:
    path = Path(path)
    collector = RowCollector(path)
    with open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                collector.add(number, lambda line=line: _decision_row(line))
    return collector.result(skip_invalid)


def _decision_row(line: str) -> Example:
    example = example_from_line(line)
    if example.decision is None:
        raise ValueError("not an app export row: `decision` is missing")
    if example.decision == "own":
        if example.suggestion:
            raise ValueError("an `own` row is the therapist's reply and holds no `suggestion`")
    elif not example.suggestion:
        raise ValueError(f"a {example.decision} row needs the model's `suggestion`")
    return example
