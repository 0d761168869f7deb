"""The audit log as people read it: plain-word actions, local times, a text table and
a CSV file. Shared by the window's Audit log view and `therapist-app store audit`.

Audit rows hold ids, counts and a fixed action name, never client text, and the CSV
keeps it that way by naming its columns here rather than copying every field of
`AuditEntry`: a field added to the log later leaves through an export only once it is
added to `CSV_COLUMNS` on purpose. The file is created owner-only (0600) and never
written over: `write_audit_csv` refuses an existing path.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Iterable, Sequence

from therapist_app.core.store.records import AuditEntry

CSV_COLUMNS = ("id", "at", "action", "client_id", "session_id", "object_id", "count")
"""The CSV header, in order; `at` is the stored UTC time in ISO 8601 with its offset."""

ACTION_WORDS = {
    "store_created": "Records created",
    "view_client": "Client record viewed",
    "view_session": "Session transcript viewed",
    "decision": "Suggestion decided",
    "export_training": "Training data exported",
    "erase_client": "Client erased",
    "model_added": "Model added",
    "model_approval": "Model approval changed",
    "backup": "Backup made",
    "restore": "Restored from a backup",
    "rekey": "Encryption key replaced",
    "passphrase_changed": "Passphrase changed",
    "keychain_changed": "Keychain unlock changed",
    "crisis_acknowledged": "Crisis warning acknowledged",
}


def describe_action(action: str) -> str:
    """The action in plain words; one this version does not know reads as its name.

    >>> describe_action("view_session")
    'Session transcript viewed'
    >>> describe_action("something_new")
    'Something new'
    """
    return ACTION_WORDS.get(action) or action.replace("_", " ").capitalize()


def local_time(at: str, zone: tzinfo | None = None) -> str:
    """A stored UTC time in the computer's time zone (or `zone`), to the second.

    >>> from datetime import timedelta, timezone
    >>> local_time("2026-03-01T09:30:05.123456+00:00", timezone(timedelta(hours=-5)))
    '2026-03-01 04:30:05'
    """
    return datetime.fromisoformat(at).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _cell(value: int | str | None) -> str:
    return "" if value is None else str(value)


def write_audit_csv(entries: Iterable[AuditEntry], path: str | os.PathLike) -> int:
    """Write `entries` as CSV (header `CSV_COLUMNS`) to a new file readable by its owner
    only; returns the number of rows. Raises FileExistsError rather than overwrite, and
    removes a half-written file if writing fails (a full disk, say)."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists; the audit export never writes over a file, choose a new name"
        ) from None
    rows = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_COLUMNS)
            for entry in entries:
                writer.writerow([_cell(getattr(entry, column)) for column in CSV_COLUMNS])
                rows += 1
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return rows


def audit_table(entries: Sequence[AuditEntry], zone: tzinfo | None = None) -> str:
    """A plain-text table, one row per entry, as `therapist-app store audit` prints it.

    >>> from datetime import timezone
    >>> print(audit_table([AuditEntry(7, "2026-03-01T09:30:05+00:00", "backup",
    ...                               None, None, None, None)], timezone.utc))
    Time (local)         Action       Client  Session  Object  Count
    2026-03-01 09:30:05  Backup made  -       -        -       -
    """
    header = ("Time (local)", "Action", "Client", "Session", "Object", "Count")
    rows = [header] + [
        (
            local_time(e.at, zone),
            describe_action(e.action),
            *(_cell(v) or "-" for v in (e.client_id, e.session_id, e.object_id, e.count)),
        )
        for e in entries
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
