"""The Audit log view: every audit row of the store, newest first, filtered by action,
exported to CSV.

A table model over the plain list the store returns (rows hold ids, counts and a fixed
action name: no client text to hide), and a dialog around it. The CSV itself is written
by `core.store.audit_export`, the same function as `therapist-app store audit --csv`.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QLabel,
    QTableView,
    QVBoxLayout,
)

from therapist_app.core.store.audit_export import describe_action, local_time, write_audit_csv
from therapist_app.core.store.records import AuditEntry

COLUMNS = ("Time (local)", "Action", "Client id", "Session id", "Object id", "Count")


class AuditTableModel(QAbstractTableModel):
    """The entries, in the store's order (newest first), optionally one action only."""

    def __init__(self, entries: Sequence[AuditEntry], parent=None) -> None:
        super().__init__(parent)
        self._entries = tuple(entries)
        self.action: str | None = None
        self.shown: tuple[AuditEntry, ...] = self._entries

    def actions(self) -> list[str]:
        """The actions present, ordered by their plain words."""
        return sorted({e.action for e in self._entries}, key=describe_action)

    def set_action(self, action: str | None) -> None:
        self.beginResetModel()
        self.action = action
        self.shown = tuple(e for e in self._entries if action is None or e.action == action)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.shown[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(entry, index.column())
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 0:
            return f"{entry.at} (UTC), audit row {entry.id}"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def cell(entry: AuditEntry, column: int) -> str:
        if column == 0:
            return local_time(entry.at)
        if column == 1:
            return describe_action(entry.action)
        value = (entry.client_id, entry.session_id, entry.object_id, entry.count)[column - 2]
        return "" if value is None else str(value)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None


class AuditLogDialog(QDialog):
    def __init__(self, entries: Sequence[AuditEntry], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Audit log")
        intro = QLabel(
            "What was done with these records, newest first. Rows hold ids and "
            "counts only, never client words or notes; they cannot be changed "
            "or deleted."
        )
        intro.setWordWrap(True)
        self.model = AuditTableModel(entries, self)
        self.table = QTableView()
        self.table.setAccessibleName("Audit log")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.filter = QComboBox()
        self.filter.setAccessibleName("Show action")
        self.filter.addItem("All actions", None)
        for action in self.model.actions():
            self.filter.addItem(describe_action(action), action)
        self.filter.currentIndexChanged.connect(lambda _: self._show_action(self.filter.currentData()))
        self.count = QLabel()
        self.count.setAccessibleName("Rows shown")
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Export status")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = buttons.addButton("&Export…", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setToolTip("Write the rows shown to a CSV file (ids only)")
        self.export_button.clicked.connect(self.choose_export)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("&Show:", self.filter)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.count)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._show_action(None)
        self.resize(760, 520)

    def _show_action(self, action: str | None) -> None:
        self.model.set_action(action)
        shown = self.model.rowCount()
        self.count.setText(f"{shown} row{'s' if shown != 1 else ''} shown")
        self.export_button.setEnabled(shown > 0)

    def choose_export(self) -> None:
        default = Path.home() / f"audit-log-{datetime.date.today().isoformat()}.csv"
        # Qt's own dialog: the platform one may record the file in "recent files".
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export audit log",
            str(default),
            "CSV files (*.csv)",
            options=QFileDialog.Option.DontUseNativeDialog | QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.export(Path(path))

    def export(self, path: Path) -> bool:
        """Write the rows shown to `path` (a new file, owner-only); report in the dialog."""
        try:
            rows = write_audit_csv(self.model.shown, path)
        except OSError as error:
            # FileExistsError carries its own sentence; other OS errors their reason.
            reason = str(error) if isinstance(error, FileExistsError) else (error.strerror or type(error).__name__)
            self.status.setText(f"Not exported: {reason}")
            return False
        self.status.setText(f"Exported {rows} row{'s' if rows != 1 else ''} to {path}.")
        return True
