"""Small dialogs: About, keyboard shortcuts, client erasure and session export."""

from __future__ import annotations

import platform
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from therapist_app import __version__
from therapist_app.core.store.records import Client


def component_versions() -> dict[str, str]:
    """Versions shown in About: the app, llama.cpp's binding, SQLCipher, Qt, Python."""
    import llama_cpp
    import sqlcipher3

    # SQLCipher's version comes from the linked library itself; an in-memory connection
    # is enough and touches no client data.
    conn = sqlcipher3.connect(":memory:")
    try:
        cipher = conn.execute("PRAGMA cipher_version").fetchone()[0]
    finally:
        conn.close()
    return {
        "therapist-app": __version__,
        "llama-cpp-python (llama.cpp)": llama_cpp.__version__,
        "SQLCipher": cipher,
        "SQLite": sqlcipher3.sqlite_version,
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "Python": platform.python_version(),
    }


class AboutDialog(QDialog):
    def __init__(self, parent=None, model_line: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("About the therapist assistant")
        intro = QLabel(
            "Local, private reply suggestions for therapists. Everything stays on this "
            "computer: there is no network access and no telemetry. Suggestions are drafts "
            "for your judgement."
        )
        intro.setWordWrap(True)
        self.versions = component_versions()
        table = QTableWidget(len(self.versions), 2)
        table.setAccessibleName("Component versions")
        table.setHorizontalHeaderLabels(["Component", "Version"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (name, version) in enumerate(self.versions.items()):
            table.setItem(row, 0, QTableWidgetItem(name))
            table.setItem(row, 1, QTableWidgetItem(version))
        table.resizeColumnsToContents()
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        if model_line:
            model = QLabel(model_line)
            model.setTextFormat(Qt.TextFormat.PlainText)
            layout.addWidget(model)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(460, 360)


class ShortcutsDialog(QDialog):
    """Lists every action that has a shortcut, read from the actions themselves."""

    def __init__(self, actions: list[QAction], extra: list[tuple[str, str]], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [
            (a.text().replace("&", ""), a.shortcut().toString()) for a in actions if not a.shortcut().isEmpty()
        ] + extra
        table = QTableWidget(len(rows), 2)
        table.setAccessibleName("Keyboard shortcuts")
        table.setHorizontalHeaderLabels(["Action", "Keys"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (name, keys) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(name))
            table.setItem(row, 1, QTableWidgetItem(keys))
        table.resizeColumnsToContents()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(480, 520)


class EraseClientDialog(QDialog):
    """Erasure is permanent: the therapist types the client's code to confirm."""

    def __init__(self, client: Client, parent=None) -> None:
        super().__init__(parent)
        self.client = client
        self.setWindowTitle("Erase client")
        warning = QLabel(
            f"Erase client {client.code} and every session, transcript, suggestion and note "
            "recorded about them? This cannot be undone; backups made earlier still hold "
            "them. The audit log keeps only the fact that an erasure happened."
        )
        warning.setTextFormat(Qt.TextFormat.PlainText)
        warning.setWordWrap(True)
        self.code = QLineEdit()
        self.code.setAccessibleName("Type the client code to confirm")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.erase_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.erase_button.setText("Erase permanently")
        self.erase_button.setEnabled(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.code.textChanged.connect(lambda text: self.erase_button.setEnabled(text.strip() == client.code))
        form = QFormLayout()
        form.addRow(f"Type {client.code} to confirm:", self.code)
        layout = QVBoxLayout(self)
        layout.addWidget(warning)
        layout.addLayout(form)
        layout.addWidget(buttons)


class ExportDialog(QDialog):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export session")
        self.format = QComboBox()
        self.format.setAccessibleName("Export format")
        self.format.addItem("Markdown (.md)", "markdown")
        self.format.addItem("PDF (.pdf)", "pdf")
        self.deidentify = QCheckBox("De-identify (replace names, places, dates, contacts)")
        self.deidentify.setChecked(True)
        note = QLabel("The exported file is not encrypted. Keep it only as long as needed.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("&Format:", self.format)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.deidentify)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def choose_path(self) -> Path | None:
        suffix = ".md" if self.format.currentData() == "markdown" else ".pdf"
        # Qt's own dialog: the platform one may record the file in "recent files".
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export session",
            str(Path.home() / f"session{suffix}"),
            f"*{suffix}",
            options=QFileDialog.Option.DontUseNativeDialog,
        )
        if not path:
            return None
        path = Path(path)
        return path if path.suffix == suffix else path.with_name(path.name + suffix)
