"""The box where the therapist types or pastes what the client said.

Pastes arrive as plain text only (formatting, images and links are dropped), and a
paste too large to be one turn is refused with a message instead of freezing the
editor. When typing pauses, the text so far is offered as a draft: the engine decodes
it while the therapist goes on, so the suggestions start sooner once it is added.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit

from therapist_app.ui.session_controller import MAX_INPUT_CHARS

# Long enough not to fire between keystrokes, short enough to fire between words.
DRAFT_PAUSE_MS = 300


class ClientInput(QPlainTextEdit):
    submitted = Signal(str)
    refused = Signal(str)
    draft_paused = Signal(str)  # the text so far, after a pause in typing

    def __init__(self) -> None:
        super().__init__()
        self.setAccessibleName("Client's words")
        self.setPlaceholderText("Type or paste what the client said, then Ctrl+Enter")
        self.setTabChangesFocus(True)
        self._pause = QTimer(self)
        self._pause.setSingleShot(True)
        self._pause.setInterval(DRAFT_PAUSE_MS)
        self._pause.timeout.connect(self._offer_draft)
        self.textChanged.connect(self._pause.start)

    def _offer_draft(self) -> None:
        self.draft_paused.emit(self.toPlainText())

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return source.hasText()

    def insertFromMimeData(self, source: QMimeData) -> None:
        text = source.text()
        if len(text) + len(self.toPlainText()) > MAX_INPUT_CHARS:
            self.refused.emit(
                f"The pasted text is {len(text):,} characters; one turn may hold "
                f"at most {MAX_INPUT_CHARS:,}. Paste it in parts."
            )
            return
        self.insertPlainText(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (
            event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            and event.modifiers() & Qt.KeyboardModifier.ControlModifier
        ):
            self.submit()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        self._pause.stop()
        text = self.toPlainText()
        if text.strip():
            self.submitted.emit(text)
