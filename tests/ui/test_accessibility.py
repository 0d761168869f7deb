"""Keyboard-only operation, screen-reader names, and palettes that follow the system."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)

from tests.ui.conftest import new_session, say, unlock
from therapist_app.ui.theme import crisis_colors

pytestmark = pytest.mark.gui

_CONTROLS = (QAbstractButton, QLineEdit, QPlainTextEdit, QComboBox, QAbstractItemView, QAbstractSpinBox)


def _unnamed_controls(root: QWidget) -> list[str]:
    unnamed = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, _CONTROLS) or widget.focusPolicy() == Qt.FocusPolicy.NoFocus:
            continue
        if widget.objectName().startswith("qt_") or widget.window().windowType() == Qt.WindowType.Popup:
            continue  # Qt's own sub-controls (spin box editors, a combo box's popup list)
        label = widget.accessibleName() or getattr(widget, "text", lambda: "")()
        if not label.strip():
            unnamed.append(f"{type(widget).__name__} in {type(widget.parent()).__name__}")
    return unnamed


def test_every_control_has_a_name_a_screen_reader_can_read(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "I want to kill myself.")
    window.open_model_manager()
    for root in (window, window.first_run, window.model_manager):
        assert _unnamed_controls(root) == []


def test_the_records_dialogs_name_every_control(qtbot, make_window):
    from therapist_app.ui.audit_view import AuditLogDialog
    from therapist_app.ui.backup_restore import BackupDialog, RestoreDialog

    window = make_window().window
    unlock(qtbot, window)
    for action in (window.backup_action, window.restore_action, window.audit_action):
        action.trigger()
    dialogs = [d for kind in (BackupDialog, RestoreDialog, AuditLogDialog) for d in window.findChildren(kind)]
    assert len(dialogs) == 3
    for dialog in dialogs:
        assert _unnamed_controls(dialog) == []


def test_a_turn_can_be_done_with_the_keyboard_alone(qtbot, make_window):
    h = make_window()
    window = h.window
    window.activateWindow()
    unlock(qtbot, window)
    window.clients.new_code.setFocus()
    qtbot.keyClicks(window.clients.new_code, "K-1")
    qtbot.keyClick(window.clients.new_code, Qt.Key.Key_Return)
    assert window.clients.client.code == "K-1"
    window.clients.new_session_button.setFocus()
    qtbot.keyClick(window.clients.new_session_button, Qt.Key.Key_Space)
    assert window.controller.session is not None
    window.input.setFocus()
    qtbot.keyClicks(window.input, "Work is a lot.")
    qtbot.keyClick(window.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: any(s.record_id for s in window.controller.slots) and not window.controller.generating, timeout=5000
    )
    window.suggestions.cards[1].setFocus()
    qtbot.keyClick(window.suggestions.cards[1], Qt.Key.Key_E)
    editor = window.suggestions.cards[1].editor
    assert editor.hasFocus()
    qtbot.keyClicks(editor, " Take your time.")
    qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    decisions = window.store.session_transcript(window.controller.session.id).decisions
    [decision] = [d for d in decisions if d.decision != "not_chosen"]
    assert decision.decision == "edited"
    assert decision.final_text == "What has been the hardest part of it? Take your time."


def test_every_menu_action_shortcut_is_unique_and_listed(qtbot, make_window):
    window = make_window().window
    keys = [a.shortcut().toString() for a in window.all_actions if not a.shortcut().isEmpty()]
    assert len(keys) == len(set(keys))
    assert {"Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+R", "Esc", "Ctrl+L", "Ctrl+E"} <= set(keys)


def test_crisis_colours_follow_a_dark_palette():
    light, dark = QPalette(), QPalette()
    light.setColor(QPalette.ColorRole.Window, QColor("#f0f0f0"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    assert crisis_colors(light, False) != crisis_colors(dark, False)
    background, foreground = crisis_colors(dark, False)
    assert QColor(foreground).lightness() > QColor(background).lightness()


def test_the_banner_recolours_when_the_palette_changes(qtbot, make_window):
    h = make_window()
    window = h.window
    unlock(qtbot, window)
    new_session(qtbot, window)
    say(qtbot, window, "I want to kill myself.")
    light_style = window.banner.styleSheet()
    system = QApplication.palette()
    dark = QPalette(system)
    dark.setColor(QPalette.ColorRole.Window, QColor("#202020"))
    QApplication.setPalette(dark)
    try:
        qtbot.waitUntil(lambda: window.banner.styleSheet() != light_style, timeout=2000)
        assert "#5c0b0b" in window.banner.styleSheet()
    finally:
        QApplication.setPalette(system)
