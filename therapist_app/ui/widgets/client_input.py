"""The box where the therapist types or pastes what the client said.

Pastes arrive as plain text only (formatting, images and links are dropped), and a
paste too large to be one turn is refused with a message instead of freezing the
editor.
"""

from __future__ import annotations

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QPlainTextEdit

from therapist_app.ui.session_controller import MAX_INPUT_CHARS


class ClientInput(QPlainTextEdit):
    submitted = Signal(str)
    refused = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.setAccessibleName("Client's words")
        self.setPlaceholderText("Type or paste what the client said, then Ctrl+Enter")
        self.setTabChangesFocus(True)

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        return source.hasText()

    def insertFromMimeData(self, source: QMimeData) -> None:
        text = source.text()
        if len(text) + len(self.toPlainText()) > MAX_INPUT_CHARS:
            self.refused.emit(f"The pasted text is {len(text):,} characters; one turn may hold "
                              f"at most {MAX_INPUT_CHARS:,}. Paste it in parts.")
            return
        self.insertPlainText(text)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and \
                event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submit()
            return
        super().keyPressEvent(event)

    def submit(self) -> None:
        text = self.toPlainText()
        if text.strip():
            self.submitted.emit(text)
