"""Fixtures for the GUI tests: a real encrypted store (cheap KDF, copied from one
template), the fake engine, a fake clock and throwaway settings."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from tests.ui.fakes import FakeAnalyzer, FakeEngine, FakeScript
from therapist_app.core.best_of_n import DraftScorer
from therapist_app.core.policy import Policy
from therapist_app.core.store import KdfParams, Store
from therapist_app.core.store.keys import key_file_path
from therapist_app.ui.main_window import AppContext, MainWindow
from therapist_app.ui.settings import AppSettings

PASSPHRASE = "violet kettle harbour"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def store_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ui-template") / "store.db"
    Store.create(path, PASSPHRASE, KdfParams.fast(), profile_name="Dr Test").close()
    return path


@dataclass
class Harness:
    window: MainWindow
    script: FakeScript
    analyzer: FakeAnalyzer
    clock: FakeClock
    store_path: Path


@pytest.fixture
def make_window(qtbot, tmp_path, store_template):
    """Build a window; `existing=True` copies the template store (unlock page)."""
    made: list[MainWindow] = []

    def make(
        existing: bool = True,
        policy: Policy | None = None,
        script: FakeScript | None = None,
        analyzer: FakeAnalyzer | None = None,
        engine_factory=None,
        analyzer_factory=None,
    ) -> Harness:
        store_path = tmp_path / "data" / "store.db"
        store_path.parent.mkdir(exist_ok=True)
        if existing:
            shutil.copyfile(store_template, store_path)
            shutil.copyfile(key_file_path(store_template), key_file_path(store_path))
        script = script or FakeScript()
        analyzer = analyzer or FakeAnalyzer()
        clock = FakeClock()
        context = AppContext(
            store_path=store_path,
            policy=policy or Policy(),
            settings=AppSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)),
            engine_factory=engine_factory or (lambda config: FakeEngine(config, script)),
            analyzer_factory=analyzer_factory or (lambda: analyzer),
            scorer_factory=DraftScorer,
            kdf=KdfParams.fast(),
            clock=clock,
            idle_check_ms=20,
        )
        window = MainWindow(context)
        qtbot.addWidget(window)
        window.show()
        made.append(window)
        return Harness(window, script, analyzer, clock, store_path)

    yield make
    for window in made:
        window.close()


def unlock(qtbot, window: MainWindow, passphrase: str = PASSPHRASE, model: bool = True) -> None:
    window.unlock.passphrase.setText(passphrase)
    window.unlock.unlock_button.click()
    qtbot.waitUntil(lambda: window.pages.currentWidget() is window.workspace, timeout=5000)
    if model:
        qtbot.waitUntil(lambda: window.engine.info is not None, timeout=5000)


def new_session(qtbot, window: MainWindow, code: str = "C-017") -> None:
    window.clients.new_code.setText(code)
    window.clients.add_button.click()
    assert window.clients.client is not None and window.clients.client.code == code
    window.clients.new_session_button.click()
    assert window.controller.session is not None


def say(qtbot, window: MainWindow, text: str) -> None:
    """Enter the client's words and wait for the whole round to finish."""
    window.input.setPlainText(text)
    window.submit_button.click()
    qtbot.waitUntil(
        lambda: window.controller.target is not None and window.controller.target.text == text, timeout=5000
    )
    qtbot.waitUntil(
        lambda: not window.controller.generating and any(s.record_id for s in window.controller.slots), timeout=5000
    )
