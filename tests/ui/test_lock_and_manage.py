"""Auto-lock on a fake clock, the model manager's checks, export and erasure."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QMouseEvent
from PySide6.QtWidgets import QDialog

from tests.ui.conftest import PASSPHRASE, new_session, say, unlock
from therapist_app.core.model_file import default_adapter_path
from therapist_app.core.policy import Policy
from therapist_app.core.store import Store
from therapist_app.ui.session_export import to_markdown

pytestmark = pytest.mark.gui

# The bundled model's rows: tuned (the default) and untuned when the build ships the
# tuned adapter, else the bundled model alone.
BUNDLED_ROWS = 2 if default_adapter_path() is not None else 1


def test_auto_lock_after_idle_clears_the_screen_and_closes_the_store(qtbot, make_window):
    h = make_window(policy=Policy(lock_timeout_s=60))
    window, clock = h.window, h.clock
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "I feel on edge all the time.")
    window.notes.setPlainText("unsaved note")
    store = window.store
    clock.advance(59)
    qtbot.wait(100)  # several idle checks run
    assert window.pages.currentWidget() is window.workspace
    # Activity resets the idle time.
    QGuiApplication.sendEvent(
        window.transcript.viewport(),
        QMouseEvent(
            QEvent.Type.MouseMove,
            QPointF(5, 5),
            QPointF(5, 5),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )
    clock.advance(59)
    qtbot.wait(100)
    assert window.pages.currentWidget() is window.workspace
    clock.advance(2)
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.unlock, timeout=2000)
    assert store.locked and window.store is None
    assert window.controller.utterances == [] and window.controller.slots == []
    assert window.transcript.model().rowCount() == 0
    assert window.clients.clients.count() == 0 and window.notes.toPlainText() == ""
    assert all(card.body.text() == "" for card in window.suggestions.cards)
    # The engine's KV cache of the session is dropped on the engine's thread.
    qtbot.waitUntil(lambda: h.script.resets >= 2, timeout=2000)
    assert "inactivity" in window.unlock.title.text()
    unlock(qtbot, window)
    session = window.store.sessions(window.store.list_clients()[0].id)[0]
    assert window.store.note(session.id).text == "unsaved note"


def test_a_wall_clock_jump_does_not_lock(qtbot, make_window, monkeypatch):
    import time as time_module

    h = make_window(policy=Policy(lock_timeout_s=60))
    unlock(qtbot, h.window)
    real = time_module.time()
    monkeypatch.setattr(time_module, "time", lambda: real + 86_400)
    qtbot.wait(100)
    assert h.window.pages.currentWidget() is h.window.workspace


def _write_corrupt_gguf(path: Path) -> Path:
    # Valid magic and version, an absurd tensor count, padded past the size check.
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 5) + os.urandom(128 * 1024))
    return path


def test_the_model_manager_refuses_a_corrupt_gguf(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    window.open_model_manager()
    dialog = window.model_manager
    for bad in (_write_corrupt_gguf(tmp_path / "corrupt.gguf"), tmp_path / "missing.gguf"):
        dialog.add_file(bad)
        qtbot.waitUntil(lambda: dialog.status.text().startswith("Refused"), timeout=5000)
        dialog.status.setText("")
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 1))
    dialog.add_file(truncated)
    qtbot.waitUntil(lambda: "truncated" in dialog.status.text(), timeout=5000)
    assert window.store.models() == []
    assert "model_added" not in [a.action for a in window.store.audit_log()]
    assert dialog.table.rowCount() == BUNDLED_ROWS  # only the bundled model (tuned and untuned)


def test_the_model_manager_adds_a_gguf_and_applies_settings_under_policy(qtbot, make_window, tmp_path, tiny_gguf):
    h = make_window(policy=Policy(require_approved_models=True))
    window = h.window
    with qtbot.waitSignal(window.engine.load_failed, timeout=20_000) as refused:
        unlock(qtbot, window, model=False)
    assert "not approved" in refused.args[0]  # not even the bundled model is on the list
    window.open_model_manager()
    dialog = window.model_manager
    assert not dialog.approve_button.isEnabled()  # IT approves under this policy
    dialog.add_file(shutil.copy(tiny_gguf, tmp_path / "tiny.gguf"))
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Added"), timeout=5000)
    assert "blocks it" in dialog.status.text()
    [record] = window.store.models()
    assert not record.approved and len(record.sha256) == 64
    assert window.store.audit_log()[0].action == "model_added"
    names = [dialog.table.item(row, 0).text() for row in range(dialog.table.rowCount())]
    assert names[0].endswith("(default)") and "tiny.gguf" in names
    dialog.table.selectRow(names.index("tiny.gguf"))
    dialog.use_selected()
    assert "does not allow" in dialog.status.text()
    dialog.gpu_layers.setValue(-1)
    assert dialog.gpu_layers.text() == "auto"
    dialog.context.setCurrentIndex(dialog.context.findData(4096))
    dialog.temperature.setValue(0.3)
    with qtbot.waitSignal(window.engine.load_failed, timeout=20_000) as failed:
        dialog.apply()
    assert "not approved" in failed.args[0]
    assert window.model_label.text() == "Model: not loaded"
    assert window.context.settings.model().n_ctx == 4096
    assert window.context.settings.model().temperature == pytest.approx(0.3)


def test_export_markdown_and_pdf_with_deidentification(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "My sister Sarah Jones called me from Leeds on 3 March.")
    window.suggestions.cards[0].accept()
    window.notes.setPlainText("Call Sarah on 07700 900123.")
    md = tmp_path / "out.md"
    window.write_export(md, "markdown", deidentified=True)
    text = md.read_text(encoding="utf-8")
    assert "Sarah" not in text and "Leeds" not in text and "07700" not in text
    assert "[NAME]" in text and "**Client** _(Anxiety)_:" in text and "## Notes" in text
    assert oct(md.stat().st_mode & 0o777) == "0o600"
    pdf = tmp_path / "out.pdf"
    window.write_export(pdf, "pdf", deidentified=False)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    views = [a for a in window.store.audit_log() if a.action == "view_session"]
    assert len(views) >= 3  # opening, and one per export


def test_export_is_off_when_policy_says_so(qtbot, make_window, tmp_path):
    h = make_window(policy=Policy(export_allowed=False))
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    assert not window.export_action.isEnabled()
    window.write_export(tmp_path / "x.md", "markdown", deidentified=True)
    assert not (tmp_path / "x.md").exists()


def test_erasing_a_client_needs_the_code_typed_and_is_audited(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window, "C-099")
    say(qtbot, window, "I have been feeling low.")
    client_id = window.clients.client.id
    window.erase_client()
    from therapist_app.ui.dialogs import EraseClientDialog

    dialog = window.findChild(EraseClientDialog)
    assert not dialog.erase_button.isEnabled()
    dialog.code.setText("C-09")
    assert not dialog.erase_button.isEnabled()
    dialog.code.setText("C-099")
    dialog.erase_button.click()
    qtbot.waitUntil(lambda: not window.tasks.busy and window.store.list_clients() == [], timeout=5000)
    assert window.clients.clients.count() == 0 and window.controller.session is None
    entry = window.store.audit_log()[0]
    assert entry.action == "erase_client" and entry.client_id == client_id


def test_markdown_escapes_nothing_it_should_not():
    from therapist_app.ui.session_export import ExportTurn, SessionExport

    export = SessionExport(
        "Session 1 — client C-1", "2026-01-01 10:00", (ExportTurn("Client", "line one\nline two", None),), "", False
    )
    assert "line one  \nline two" in to_markdown(export)


def test_about_lists_component_versions(qtbot, make_window):
    from therapist_app.ui.dialogs import AboutDialog

    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    versions = dialog.versions
    assert versions["SQLCipher"].startswith("4.")
    assert versions["llama-cpp-python (llama.cpp)"] == "0.3.36"
    assert versions["Qt"].startswith("6.")


def test_font_scaling_is_remembered(qtbot, make_window):
    h = make_window()
    window = h.window
    before = window.font().pointSizeF()
    window.apply_font_step(2)
    assert window.context.settings.font_step() == 2
    assert window.font().pointSizeF() > before
    window.apply_font_step(0)


def test_settings_hold_no_client_text(qtbot, make_window, tmp_path):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window, "C-SECRET")
    say(qtbot, window, "marker-words-zebra")
    window.notes.setPlainText("marker-note-zebra")
    window.apply_font_step(1)
    window.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.rglob("*.ini"))
    assert blob and b"zebra" not in blob and b"C-SECRET" not in blob
    with Store.open(h.store_path, PASSPHRASE) as store:
        assert store.list_clients()[0].code == "C-SECRET"


def test_the_app_locks_when_the_system_suspends(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    QGuiApplication.instance().applicationStateChanged.emit(Qt.ApplicationState.ApplicationSuspended)
    assert window.pages.currentWidget() is window.unlock and window.store is None
    assert "slept" in window.unlock.title.text()


def test_lock_now_closes_an_open_dialog(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    window.open_model_manager()
    window.show_about()
    assert len([d for d in window.findChildren(QDialog) if d.isVisible()]) == 2
    window.lock_action.trigger()
    assert [d for d in window.findChildren(QDialog) if d.isVisible()] == []
    assert window.pages.currentWidget() is window.unlock


def test_an_added_model_is_approved_chosen_and_loaded(qtbot, make_window, tmp_path, tiny_gguf):
    loaded = []
    from tests.ui.fakes import FakeEngine, FakeScript

    script = FakeScript()

    def factory(config):
        loaded.append(config)
        return FakeEngine(config, script)

    h = make_window(script=script, engine_factory=factory)
    window = h.window
    unlock(qtbot, window)
    window.open_model_manager()
    dialog = window.model_manager
    tiny = shutil.copy(tiny_gguf, tmp_path / "tiny.gguf")
    dialog.add_file(tiny)
    qtbot.waitUntil(lambda: dialog.status.text().startswith("Added"), timeout=5000)
    assert "no export manifest" in dialog.status.text()
    row = BUNDLED_ROWS  # the added file follows the bundled rows
    dialog.table.selectRow(row)
    assert dialog.approve_button.isEnabled()
    dialog.approve_selected()
    assert window.store.models()[0].approved
    assert dialog.table.item(row, 2).text() == "approved"
    dialog.use_selected()
    assert dialog.table.item(row, 3).text() == "yes"
    with qtbot.waitSignal(window.engine.loaded, timeout=5000):
        dialog.apply()
    assert loaded[-1].model_path == tiny and loaded[0].model_path is None
    assert window.context.settings.model().model_path == str(tiny)
    assert [a.action for a in window.store.audit_log()][:2] == ["model_approval", "model_added"]
