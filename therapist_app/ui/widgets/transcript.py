"""The session transcript: a list model over the controller's utterances."""

from __future__ import annotations

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import QAbstractItemView, QListView

from therapist_app.core.store.records import RiskAcknowledgement, Utterance
from therapist_app.core.taxonomy import emotions
from therapist_app.ui.session_controller import SessionController
from therapist_app.ui.widgets.crisis_banner import category_name

SPEAKER_NAMES = {"client": "Client", "therapist": "You"}


def risk_line(utterance: Utterance, acknowledgement: RiskAcknowledgement | None) -> str:
    """The crisis warning's state under a flagged client turn."""
    categories = ", ".join(category_name(c) for c in utterance.risk_flags)
    if acknowledgement is None:
        return f"⚠ Crisis warning ({categories}): not yet acknowledged"
    when = acknowledgement.acknowledged_at[:16].replace("T", " ")
    return f"⚠ Crisis warning ({categories}): acknowledged by {acknowledgement.acknowledged_by}, {when} UTC"


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
            line = f"{SPEAKER_NAMES[utterance.speaker]}: {utterance.text}"
            if utterance.risk_flags:
                line += "\n" + risk_line(utterance, self._controller.acknowledgements.get(utterance.id))
            return line
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
