"""`run_app` (what `therapist-app` runs with a display) opens the window and returns."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from therapist_app.ui.app import run_app
from therapist_app.ui.main_window import MainWindow

pytestmark = pytest.mark.gui


def test_run_app_opens_the_first_run_page_for_a_new_store(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "system"))
    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    seen = []

    def exec_once(app) -> int:
        # Stands in for the event loop: a real exec()/quit() would end pytest-qt's own.
        qtbot.wait(100)
        [window] = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen.append(window.pages.currentWidget() is window.first_run)
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", exec_once)
    assert run_app(["therapist-app", "--store", str(tmp_path / "new" / "store.db")]) == 0
    assert seen == [True]
    assert not (tmp_path / "new" / "store.db").exists()  # nothing is created before consent
