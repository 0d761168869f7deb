"""The audit CSV and table (core.store.audit_export): header, rows, 0600, no overwrite."""

from __future__ import annotations

import csv
import dataclasses
import doctest
import os
import stat
from datetime import timezone

import pytest

from therapist_app.core.store import audit_export
from therapist_app.core.store.audit_export import (
    ACTION_WORDS,
    CSV_COLUMNS,
    audit_table,
    describe_action,
    write_audit_csv,
)
from therapist_app.core.store.records import AuditEntry
from therapist_app.core.store.schema import AUDIT_ACTIONS

ENTRIES = [
    AuditEntry(12, "2026-03-01T09:30:05.000001+00:00", "backup", None, None, None, None),
    AuditEntry(11, "2026-03-01T09:29:00.000000+00:00", "view_session", 3, 7, None, None),
    AuditEntry(10, "2026-03-01T09:28:00.000000+00:00", "export_training", None, None, None, 0),
]


@pytest.fixture
def open_umask():
    """A umask that would leave a new file world-readable unless the writer forbids it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_doctests():
    assert doctest.testmod(audit_export).failed == 0


def test_the_csv_has_the_header_and_one_row_per_entry(tmp_path, open_umask):
    out = tmp_path / "audit.csv"
    assert write_audit_csv(ENTRIES, out) == 3
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert rows == [
        ["id", "at", "action", "client_id", "session_id", "object_id", "count"],
        ["12", "2026-03-01T09:30:05.000001+00:00", "backup", "", "", "", ""],
        ["11", "2026-03-01T09:29:00.000000+00:00", "view_session", "3", "7", "", ""],
        ["10", "2026-03-01T09:28:00.000000+00:00", "export_training", "", "", "", "0"],
    ]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_an_existing_file_is_never_overwritten(tmp_path):
    out = tmp_path / "audit.csv"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="never writes over"):
        write_audit_csv(ENTRIES, out)
    assert out.read_text() == "keep me"


def test_a_failed_write_leaves_no_file(tmp_path):
    def failing():
        yield ENTRIES[0]
        raise OSError(28, "No space left on device")

    out = tmp_path / "audit.csv"
    with pytest.raises(OSError, match="No space"):
        write_audit_csv(failing(), out)
    assert not out.exists()


def test_the_csv_columns_are_audit_fields_chosen_on_purpose():
    fields = [f.name for f in dataclasses.fields(AuditEntry)]
    assert list(CSV_COLUMNS) == fields[: len(CSV_COLUMNS)]


@pytest.mark.parametrize("action", AUDIT_ACTIONS)
def test_every_audit_action_has_plain_words(action):
    assert action in ACTION_WORDS and "_" not in describe_action(action)


def test_the_table_is_aligned_with_dashes_for_missing_ids():
    lines = audit_table(ENTRIES, timezone.utc).splitlines()
    assert lines[0].split() == ["Time", "(local)", "Action", "Client", "Session", "Object", "Count"]
    assert lines[1].split() == ["2026-03-01", "09:30:05", "Backup", "made", "-", "-", "-", "-"]
    assert lines[3].split()[-5:] == ["exported", "-", "-", "-", "0"]
    client = lines[0].index("Client")  # every row's client cell starts under the header
    assert [line[client - 2 : client + 1] for line in lines[1:]] == ["  -", "  3", "  -"]
