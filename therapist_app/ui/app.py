"""`run_app()`: the desktop app's entry point (called by `therapist-app` with a display)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

from therapist_app import __version__
from therapist_app.core.engine import EngineConfig, SuggestionEngine
from therapist_app.core.policy import APP_NAME, PolicyError, load_policy
from therapist_app.ui.analysis import default_analyzer
from therapist_app.ui.main_window import AppContext, MainWindow
from therapist_app.ui.settings import AppSettings

log = logging.getLogger(__name__)


def default_store_path() -> Path:
    from therapist_app.cli.store import default_db_path

    return default_db_path()


def real_engine(config: EngineConfig) -> SuggestionEngine:
    return SuggestionEngine(config)


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="therapist-app", add_help=False)
    parser.add_argument("--store", type=Path, default=None)
    return parser.parse_known_args(argv)


def create_application(argv: list[str]) -> QApplication:
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setApplicationDisplayName("Therapist assistant")
    return app


def run_app(argv: list[str] | None = None) -> int:
    """Open the window; returns the exit code. `--store PATH` picks another store file;
    other arguments go to Qt (e.g. `-platform`)."""
    argv = list(sys.argv if argv is None else argv)
    options, qt_args = _parse(argv[1:])
    app = create_application(argv[:1] + qt_args)
    try:
        policy = load_policy()
    except PolicyError as error:
        # The app must not run under a policy other than the one IT wrote.
        QMessageBox.critical(None, "Clinic policy error", str(error))
        return 2
    context = AppContext(
        store_path=options.store or default_store_path(),
        policy=policy,
        settings=AppSettings(QSettings()),
        engine_factory=real_engine,
        analyzer_factory=default_analyzer,
    )
    window = MainWindow(context)
    window.show()
    return app.exec()
