"""The session transcript: a list model over the controller's utterances."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView

from therapist_app.core.taxonomy import emotions
from therapist_app.ui.session_controller import SessionController

SPEAKER_NAMES = {"client": "Client", "therapist": "You"}


class TranscriptModel(QAbstractListModel):
    def __init__(self, controller: SessionController) -> None:
        super().__init__()
        self._controller = controller
        controller.transcript_changed.connect(self._reload)

    def _reload(self) -> None:
        self.beginResetModel()
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._controller.utterances)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._controller.utterances):
            return None
        utterance = self._controller.utterances[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return f"{SPEAKER_NAMES[utterance.speaker]}: {utterance.text}"
        if role == Qt.ItemDataRole.ToolTipRole:
            parts = [utterance.created_at[:16].replace("T", " ")]
            if utterance.emotion:
                parts.append(f"emotion {emotions()[utterance.emotion].name}")
            if utterance.risk_flags:
                parts.append("risk: " + ", ".join(utterance.risk_flags))
            return " · ".join(parts)
        if role == Qt.ItemDataRole.FontRole and utterance.speaker == "therapist":
            font = QFont()
            font.setItalic(True)
            return font
        if role == Qt.ItemDataRole.BackgroundRole and utterance.speaker == "client":
            return QPalette().color(QPalette.ColorRole.AlternateBase)
        return None


class TranscriptView(QListView):
    def __init__(self, controller: SessionController) -> None:
        super().__init__()
        self.setAccessibleName("Session transcript")
        self.setModel(TranscriptModel(controller))
        self.setWordWrap(True)
        self.setUniformItemSizes(False)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setSpacing(3)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.model().modelReset.connect(self.scrollToBottom)
