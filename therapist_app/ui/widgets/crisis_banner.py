"""The crisis banner: shown from the risk detector's assessment alone.

Nothing the model writes reaches this widget, and only the therapist's
acknowledgement changes it, so no model output can hide or reword the warning.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from therapist_app.ui.analysis import risk_phrases
from therapist_app.ui.session_controller import SessionController
from therapist_app.ui.theme import crisis_colors

_CATEGORY_NAMES = {
    "suicide_selfharm": "suicide or self-harm",
    "harm_others": "harm to others",
    "abuse": "abuse",
    "substance_medical": "substance or medical emergency",
}


def category_name(category: str) -> str:
    return _CATEGORY_NAMES.get(category, category.replace("_", " "))


class CrisisBanner(QFrame):
    def __init__(self, controller: SessionController) -> None:
        super().__init__()
        self._controller = controller
        self.setObjectName("crisisBanner")
        self.setAccessibleName("Crisis warning")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setAccessibleName("Crisis warning text")
        self.acknowledge_button = QPushButton("&Acknowledge")
        self.acknowledge_button.setAccessibleName("Acknowledge crisis warning")
        self.acknowledge_button.setToolTip("Confirm you have seen the warning (Alt+A)")
        self.acknowledge_button.clicked.connect(controller.acknowledge_crisis)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.acknowledge_button)
        controller.crisis_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        crisis = self._controller.crisis
        if crisis is None:
            self.hide()
            return
        categories = ", ".join(category_name(c) for c in crisis.categories)
        if crisis.risk is None:
            # Restored from the store (the session was reopened): the categories were
            # recorded with the words; the phrases are in the transcript.
            what, detail, check = (
                "Possible crisis language earlier in this session",
                "",
                "Review the flagged turn in the transcript",
            )
        else:
            phrases = "; ".join(f"“{p}”" for p in risk_phrases(crisis.risk))
            # A sentence that only resembles authored risk statements (no listed phrase)
            # is said to be that, so the therapist can weigh it; it still needs
            # acknowledging.
            resembles = all(t.source == "learned" for t in crisis.risk.triggers)
            what = "Words that resemble crisis language" if resembles else "Possible crisis language"
            detail = f": {phrases}"
            check = "Ask the client what they mean" if resembles else "Assess risk now"
            categories += f", severity {crisis.risk.severity}"
        if crisis.acknowledged:
            text = (
                f"Acknowledged: {what[0].lower()}{what[1:]} ({categories}){detail}. Follow your clinic's risk protocol."
            )
        else:
            text = f"{what} ({categories}){detail}. {check} and follow your clinic's protocol. Acknowledge to continue."
        self.label.setText(text)
        self.setAccessibleDescription(text)
        self.acknowledge_button.setVisible(not crisis.acknowledged)
        background, foreground = crisis_colors(QGuiApplication.palette(), crisis.acknowledged)
        sheet = (
            f"#crisisBanner {{ background: {background}; border: 2px solid {foreground}; }}"
            f" #crisisBanner QLabel {{ color: {foreground}; font-weight: bold; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)
        self.show()
