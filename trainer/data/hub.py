"""Datasets from the Hugging Face Hub by name (or a local dataset folder), via `datasets`.

Rows go through the same column mapping as local files. Offline (no network, or
`HF_HUB_OFFLINE` / `HF_DATASETS_OFFLINE` set), a hub name fails at once with a message
that says how to import the files instead; nothing is attempted over the network then.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

from trainer.data.generic import EMOTION_SCHEMES, check_columns, example_from_row
from trainer.data.records import DataError, ImportResult, RowCollector

log = logging.getLogger(__name__)

OFFLINE_HINT = (
    "download the dataset's files on a connected machine and import them with "
    "`therapist-trainer import --format esconv|empathetic|counselchat|table FILE`"
)


def hub_offline() -> bool:
    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    return any(flag in ("1", "true", "yes", "on") for flag in flags)


def import_hub(
    name: str,
    mapping: Mapping[str, str],
    split: str = "train",
    subset: str | None = None,
    emotion_scheme: str = "ours",
    skip_invalid: bool = False,
) -> ImportResult:
    """Examples from dataset `name` (a hub id or a local dataset folder), split `split`."""
    if emotion_scheme not in EMOTION_SCHEMES:
        raise DataError(f"unknown emotion scheme {emotion_scheme!r}; expected one of {', '.join(EMOTION_SCHEMES)}")
    local = Path(name).exists()
    if not local and hub_offline():
        raise DataError(f"dataset {name!r} is not a local folder and the machine is offline: {OFFLINE_HINT}")
    import datasets

    try:
        rows = datasets.load_dataset(name, subset, split=split)
    except (ConnectionError, TimeoutError, OSError) as failure:
        raise DataError(
            f"could not fetch dataset {name!r} ({type(failure).__name__}); if this machine is offline, {OFFLINE_HINT}"
        ) from None
    except (ValueError, FileNotFoundError) as failure:
        raise DataError(f"dataset {name!r} split {split!r} could not be loaded: {failure}") from None
    source = f"hub:{name}"
    check_columns(mapping, rows.column_names, source)
    collector = RowCollector(source)
    for number, row in enumerate(rows, start=1):
        collector.add(number, lambda row=row: example_from_row(row, mapping, source, emotion_scheme))
    log.info("read %d rows from dataset %s split %s", len(rows), name, split)
    return collector.result(skip_invalid)
