"""The suggestions panel: the round's three best drafts, each with its strategy and actions.

While a round runs the cards stream its current leaders; when it ends they show the
ranked drafts, each with a tooltip saying why it ranked there.

Keys while the panel has focus: 1/2/3 accept that draft, E edits and R rejects the
focused draft (the first open one when none has focus). Tokens are painted on a
50 ms timer, not per token, so a fast model cannot flood the event loop.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from therapist_app.core.taxonomy import strategies
from therapist_app.ui.session_controller import SessionController, SessionError, SuggestionSlot

REPAINT_MS = 50
DISCLAIMER = "Suggestions are drafts for your judgement. Nothing is recorded as said until you accept or edit it."
_STATUS = {
    "accepted": "accepted",
    "edited": "edited and used",
    "rejected": "rejected",
    "not_chosen": "not chosen",
}


class SuggestionCard(QFrame):
    decided = Signal()

    def __init__(self, index: int, controller: SessionController) -> None:
        super().__init__()
        self.index = index
        self._controller = controller
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.header = QLabel()
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.PlainText)
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        self.body.setAccessibleName(f"Suggestion {index + 1} text")
        self.editor = QPlainTextEdit()
        self.editor.setAccessibleName(f"Edit suggestion {index + 1}")
        self.editor.setTabChangesFocus(True)
        self.editor.hide()
        self.accept_button = QPushButton(f"Accept ({index + 1})")
        self.accept_button.setAccessibleName(f"Accept suggestion {index + 1}")
        self.edit_button = QPushButton("Edit (E)")
        self.edit_button.setAccessibleName(f"Edit suggestion {index + 1}")
        self.reject_button = QPushButton("Reject (R)")
        self.reject_button.setAccessibleName(f"Reject suggestion {index + 1}")
        self.save_button = QPushButton("Use edited text (Ctrl+Enter)")
        self.save_button.setAccessibleName(f"Use edited suggestion {index + 1}")
        self.cancel_button = QPushButton("Cancel edit")
        for button in (self.save_button, self.cancel_button):
            button.hide()
        buttons = QHBoxLayout()
        for button in (self.accept_button, self.edit_button, self.reject_button, self.save_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.header)
        layout.addWidget(self.body)
        layout.addWidget(self.editor)
        layout.addLayout(buttons)
        self.accept_button.clicked.connect(self.accept)
        self.edit_button.clicked.connect(self.start_edit)
        self.reject_button.clicked.connect(self.reject)
        self.save_button.clicked.connect(self.save_edit)
        self.cancel_button.clicked.connect(self.cancel_edit)
        self.show_slot(None)

    def show_slot(self, slot: SuggestionSlot | None) -> None:
        if slot is None:
            self.header.setText(f"{self.index + 1}.")
            self.body.setText("")
            self.setToolTip("")
            self.setAccessibleName(f"Suggestion {self.index + 1}: empty")
            self._set_actions(False)
            return
        name = strategies()[slot.strategy].name
        if slot.source == "authored":
            name += " (reviewed crisis response)"
        elif slot.source == "checked":
            name += " (with a safety question)"
        state = _STATUS.get(slot.decision or "", "")
        if not state and slot.finish_reason == "cancelled":
            state = "stopped"
        self.header.setText(f"{self.index + 1}. {name}" + (f" — {state}" if state else ""))
        if self.body.text() != slot.text:
            self.body.setText(slot.text)
        # Oversight means seeing why a draft is here: its rank and score components.
        self.setToolTip(f"Why this draft: {slot.explanation}" if slot.explanation else "")
        self.setAccessibleName(f"Suggestion {self.index + 1}, {name}" + (f", {state}" if state else ""))
        self.setAccessibleDescription(slot.text + (f" ({slot.explanation})" if slot.explanation else ""))
        self._set_actions(slot.decidable and not self._controller.generating)

    def _set_actions(self, enabled: bool) -> None:
        if not enabled and not self.editor.isHidden():
            self.cancel_edit()
        for button in (self.accept_button, self.edit_button, self.reject_button):
            button.setEnabled(enabled)

    def _run(self, action) -> bool:
        try:
            action()
        except SessionError as error:
            self._controller.message.emit(str(error))
            return False
        self.decided.emit()
        return True

    def accept(self) -> None:
        self._run(lambda: self._controller.accept(self.index))

    def reject(self) -> None:
        self._run(lambda: self._controller.reject(self.index))

    def start_edit(self) -> None:
        if not self.edit_button.isEnabled():
            return
        self.editor.setPlainText(self.body.text())
        self.body.hide()
        self.editor.show()
        for button in (self.accept_button, self.edit_button, self.reject_button):
            button.hide()
        self.save_button.show()
        self.cancel_button.show()
        self.editor.setFocus()
        self.editor.moveCursor(self.editor.textCursor().MoveOperation.End)

    def save_edit(self) -> None:
        if self._run(lambda: self._controller.edit(self.index, self.editor.toPlainText())):
            self.cancel_edit()

    def cancel_edit(self) -> None:
        self.editor.hide()
        self.body.show()
        self.save_button.hide()
        self.cancel_button.hide()
        for button in (self.accept_button, self.edit_button, self.reject_button):
            button.show()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if not self.editor.isHidden():
            if (
                event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier
            ):
                self.save_edit()
                return
            if event.key() == Qt.Key.Key_Escape:
                self.cancel_edit()
                self.setFocus()
                return
        super().keyPressEvent(event)


class SuggestionPanel(QFrame):
    def __init__(self, controller: SessionController) -> None:
        super().__init__()
        self._controller = controller
        self.setAccessibleName("Suggestions")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.disclaimer = QLabel(DISCLAIMER)
        self.disclaimer.setWordWrap(True)
        self.disclaimer.setAccessibleName("Suggestions are drafts for your judgement")
        self.strategy_picker = QComboBox()
        self.strategy_picker.setAccessibleName("Strategy for the next suggestions")
        self.strategy_picker.addItem("Strategies suited to the emotion", None)
        for strategy in strategies().values():
            self.strategy_picker.addItem(f"All: {strategy.name}", strategy.id)
        self.regenerate_button = QPushButton("Regenerate (Ctrl+R)")
        self.regenerate_button.setAccessibleName("Regenerate suggestions")
        self.stop_button = QPushButton("Stop (Esc)")
        self.stop_button.setAccessibleName("Stop generating suggestions")
        self.status = QLabel()
        self.status.setAccessibleName("Suggestion status")
        controls = QHBoxLayout()
        controls.addWidget(self.strategy_picker, 1)
        controls.addWidget(self.regenerate_button)
        controls.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.disclaimer)
        layout.addLayout(controls)
        layout.addWidget(self.status)
        # Long drafts scroll inside the panel instead of growing the window.
        self.cards = [SuggestionCard(i, controller) for i in range(3)]
        holder = QWidget()
        cards_layout = QVBoxLayout(holder)
        cards_layout.setContentsMargins(0, 0, 0, 0)
        for card in self.cards:
            cards_layout.addWidget(card)
            card.decided.connect(self.setFocus)
        cards_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(holder)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        layout.addWidget(scroll, 1)
        # The therapist's own words, when no draft is right: recorded as their turn, and
        # the open drafts as not chosen (training learns from both).
        self.own_reply = QLineEdit()
        self.own_reply.setPlaceholderText("Or type your own reply and press Enter")
        self.own_reply.setAccessibleName("Your own reply")
        self.own_reply_button = QPushButton("Use my reply")
        self.own_reply_button.setAccessibleName("Use my own reply")
        own = QHBoxLayout()
        own.addWidget(self.own_reply, 1)
        own.addWidget(self.own_reply_button)
        layout.addLayout(own)
        self.own_reply.returnPressed.connect(self.use_own_reply)
        self.own_reply_button.clicked.connect(self.use_own_reply)
        self.regenerate_button.clicked.connect(self.regenerate)
        self.stop_button.clicked.connect(controller.stop)
        self._repaint = QTimer(self)
        self._repaint.setInterval(REPAINT_MS)
        self._repaint.timeout.connect(self.refresh)
        self._dirty = False
        controller.suggestions_reset.connect(self.refresh)
        controller.suggestions_updated.connect(self._mark_dirty)
        controller.suggestions_finished.connect(self.refresh)
        controller.generating_changed.connect(self._on_generating)
        controller.analysing_changed.connect(lambda _: self._update_status())
        controller.session_changed.connect(self.refresh)
        self.refresh()

    def regenerate(self) -> None:
        try:
            self._controller.regenerate(self.strategy_picker.currentData())
        except SessionError as error:
            self._controller.message.emit(str(error))

    def use_own_reply(self) -> None:
        try:
            self._controller.own_reply(self.own_reply.text())
        except SessionError as error:
            self._controller.message.emit(str(error))
            return
        self.own_reply.clear()

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _on_generating(self, generating: bool) -> None:
        if generating:
            self._repaint.start()
        else:
            self._repaint.stop()
        self.refresh()

    def refresh(self) -> None:
        self._dirty = False
        slots = self._controller.slots
        for card in self.cards:
            card.show_slot(slots[card.index] if card.index < len(slots) else None)
        self._update_status()

    def _update_status(self) -> None:
        controller = self._controller
        generating = controller.generating
        self.stop_button.setEnabled(generating)
        self.regenerate_button.setEnabled(controller.target is not None and not controller.analysing)
        can_reply = controller.target is not None and not generating
        self.own_reply.setEnabled(can_reply)
        self.own_reply_button.setEnabled(can_reply)
        if controller.analysing:
            text = "Reading the client's words…"
        elif generating:
            text = "Generating… (Esc stops)"
        elif controller.crisis_pending and any(s.decidable for s in controller.slots):
            text = "Acknowledge the crisis warning before using a suggestion."
        elif controller.none_passed:
            text = "No draft passed the safety checks. Regenerate (Ctrl+R) for new ones, or write your own."
        else:
            text = ""
        self.status.setText(text)

    def focused_card(self) -> SuggestionCard:
        focus = QApplication.focusWidget()
        for card in self.cards:
            if focus is not None and (focus is card or card.isAncestorOf(focus)):
                return card
        open_cards = [c for c in self.cards if c.accept_button.isEnabled()]
        return open_cards[0] if open_cards else self.cards[0]

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            super().keyPressEvent(event)
            return
        if key in (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3):
            self.cards[key - Qt.Key.Key_1].accept()
        elif key == Qt.Key.Key_E:
            self.focused_card().start_edit()
        elif key == Qt.Key.Key_R:
            self.focused_card().reject()
        else:
            super().keyPressEvent(event)
