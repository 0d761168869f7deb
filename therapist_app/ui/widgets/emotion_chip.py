"""The detected emotion as a chip; one click opens the list to correct it."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QMenu, QToolButton

from therapist_app.core.taxonomy import emotions
from therapist_app.ui.session_controller import SessionController, SessionError
from therapist_app.ui.theme import chip_colors


class EmotionChip(QToolButton):
    def __init__(self, controller: SessionController) -> None:
        super().__init__()
        self._controller = controller
        self.setObjectName("emotionChip")
        self.setAccessibleName("Client emotion")
        self.setToolTip("The client's emotion as detected; click to correct it (Ctrl+M)")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        group = QActionGroup(self)
        self.actions_by_label: dict[str, QAction] = {}
        for emotion in emotions().values():
            action = QAction(emotion.name, self, checkable=True)
            action.setToolTip(emotion.description)
            action.triggered.connect(lambda _=False, label=emotion.id: self.choose(label))
            group.addAction(action)
            menu.addAction(action)
            self.actions_by_label[emotion.id] = action
        self.setMenu(menu)
        controller.emotion_changed.connect(self.refresh)
        controller.session_changed.connect(self.refresh)
        self.refresh()

    def choose(self, label: str) -> None:
        try:
            self._controller.correct_emotion(label)
        except SessionError as error:
            self._controller.message.emit(str(error))
            self.refresh()

    def refresh(self) -> None:
        controller = self._controller
        reading = controller.emotion
        self.setEnabled(controller.target is not None)
        for action in self.actions_by_label.values():
            action.setChecked(False)
        if reading is None:
            text = "Emotion: not detected"
        else:
            name = emotions()[reading.label].name
            self.actions_by_label[reading.label].setChecked(True)
            if controller.emotion_corrected:
                text = f"Emotion: {name} (set by you)"
            elif controller.emotion_uncertain:
                # Calibrated below one half: more likely wrong than right, so no label
                # is claimed and the suggestions are not steered by it.
                text = f"Emotion: uncertain (perhaps {name}, {reading.confidence:.0%})"
            else:
                text = f"Emotion: {name} {reading.confidence:.0%}"
                if controller.runner_up is not None:
                    text += f" · or {emotions()[controller.runner_up.label].name}"
        self.setText(text)
        self.setAccessibleDescription(text)
        background, foreground = chip_colors(QGuiApplication.palette())
        sheet = (
            f"#emotionChip {{ background: {background}; color: {foreground}; border-radius: 10px; padding: 3px 10px; }}"
        )
        if sheet != self.styleSheet():
            self.setStyleSheet(sheet)
