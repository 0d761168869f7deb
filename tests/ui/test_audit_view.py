"""Records > Audit log…: the rows, newest first, the action filter and the CSV export."""

from __future__ import annotations

import csv
import stat

import pytest

from tests.ui.conftest import PASSPHRASE, new_session, say, unlock
from therapist_app.core.store.audit_export import CSV_COLUMNS, local_time
from therapist_app.ui.audit_view import AuditLogDialog

pytestmark = pytest.mark.gui


def _audit_dialog(window) -> AuditLogDialog:
    window.audit_action.trigger()
    [dialog] = [d for d in window.findChildren(AuditLogDialog) if d.isVisible()]
    return dialog


def _column(dialog: AuditLogDialog, column: int) -> list[str]:
    model = dialog.table.model()
    return [model.index(row, column).data() for row in range(model.rowCount())]


def test_the_audit_log_lists_filters_and_exports(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "I keep thinking about my brother.")
    window.suggestions.cards[0].accept()
    window.store.backup(tmp_path / "b.db", PASSPHRASE)
    entries = window.store.audit_log()
    dialog = _audit_dialog(window)

    assert dialog.table.model().rowCount() == len(entries) >= 4
    assert [e.id for e in dialog.model.shown] == sorted((e.id for e in entries), reverse=True)
    assert _column(dialog, 1)[0] == "Backup made"  # the newest row comes first
    assert _column(dialog, 0)[0] == local_time(entries[0].at)
    assert "Session transcript viewed" in _column(dialog, 1)
    decision = next(e for e in entries if e.action == "decision")
    row = [e.id for e in dialog.model.shown].index(decision.id)
    assert decision.object_id is not None and decision.session_id is not None
    expected = [
        "" if v is None else str(v)
        for v in (decision.client_id, decision.session_id, decision.object_id, decision.count)
    ]
    assert [_column(dialog, column)[row] for column in range(2, 6)] == expected
    assert dialog.count.text() == f"{len(entries)} rows shown"

    dialog.filter.setCurrentIndex(dialog.filter.findData("backup"))
    assert _column(dialog, 1) == ["Backup made"] and dialog.count.text() == "1 row shown"
    out = tmp_path / "audit.csv"
    assert dialog.export(out)
    assert "Exported 1 row" in dialog.status.text()
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    assert rows == [list(CSV_COLUMNS), [str(entries[0].id), entries[0].at, "backup", "", "", "", ""]]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    before = out.read_bytes()
    dialog.filter.setCurrentIndex(dialog.filter.findData(None))
    assert dialog.table.model().rowCount() == len(entries)
    assert not dialog.export(out)
    assert "already exists" in dialog.status.text()
    assert out.read_bytes() == before
    every = tmp_path / "every.csv"
    assert dialog.export(every)
    exported = list(csv.DictReader(every.open(encoding="utf-8", newline="")))
    assert [int(r["id"]) for r in exported] == [e.id for e in entries]
    assert b"brother" not in every.read_bytes()  # ids only: no client words


def test_the_audit_log_needs_an_unlocked_store_and_closes_on_lock(qtbot, make_window):
    h = make_window()
    window = h.window
    assert not window.audit_action.isEnabled()
    window.open_audit_log()
    assert window.findChildren(AuditLogDialog) == []
    unlock(qtbot, window)
    dialog = _audit_dialog(window)
    window.lock_action.trigger()
    assert not dialog.isVisible() and not window.audit_action.isEnabled()
