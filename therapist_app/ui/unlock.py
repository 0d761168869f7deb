"""First run (create a profile and passphrase) and unlock screens.

Both pages only collect input and show results; `MainWindow` runs the key derivation
on a worker (it takes a second by design) and reports back through `show_error`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from therapist_app.ui.passphrase_strength import assess_passphrase


def passphrase_field(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setEchoMode(QLineEdit.EchoMode.Password)
    field.setAccessibleName(name)
    # No autocompletion or clipboard history for passphrases.
    field.setInputMethodHints(
        Qt.InputMethodHint.ImhHiddenText | Qt.InputMethodHint.ImhSensitiveData | Qt.InputMethodHint.ImhNoPredictiveText
    )
    return field


class NewPassphraseFields:
    """A new passphrase typed twice, with the strength meter and advice: the first-run
    page and the backup dialog's separate backup passphrase. The widgets belong to the
    form they are added to."""

    def __init__(self, name: str = "New passphrase", repeat_name: str = "Repeat passphrase") -> None:
        self.passphrase = passphrase_field(name)
        self.confirm = passphrase_field(repeat_name)
        self.meter = QProgressBar()
        self.meter.setRange(0, 4)
        self.meter.setTextVisible(False)
        self.meter.setAccessibleName("Passphrase strength")
        self.strength = QLabel()
        self.strength.setWordWrap(True)
        self.strength.setAccessibleName("Passphrase advice")

    def add_rows(self, form: QFormLayout, label: str) -> None:
        form.addRow(label, self.passphrase)
        form.addRow("", self.meter)
        form.addRow("", self.strength)
        form.addRow("&Repeat it:", self.confirm)

    def update(self, profile_name: str = "") -> bool:
        """Refresh the meter and advice; whether the passphrase is acceptable and typed
        the same twice."""
        strength = assess_passphrase(self.passphrase.text(), profile_name)
        self.meter.setValue(strength.score)
        self.meter.setAccessibleDescription(strength.label)
        self.strength.setText(
            f"{strength.label}. {strength.advice}"
            if self.passphrase.text()
            else "Use a long passphrase: a few unrelated words work well."
        )
        return strength.acceptable and self.passphrase.text() == self.confirm.text()

    def problem(self, profile_name: str = "") -> str:
        """Why the passphrase cannot be used yet."""
        if self.passphrase.text() != self.confirm.text():
            return "The two passphrases differ."
        return assess_passphrase(self.passphrase.text(), profile_name).advice

    def take(self) -> str:
        """The passphrase, leaving both fields empty."""
        passphrase = self.passphrase.text()
        self.passphrase.clear()
        self.confirm.clear()
        return passphrase


def error_label() -> QLabel:
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setStyleSheet("color: palette(bright-text); background: #b00020; padding: 4px;")
    label.setAccessibleName("Error")
    label.hide()
    return label


class _Page(QWidget):
    def __init__(self) -> None:
        super().__init__()
        self.error = error_label()
        self.busy_label = QLabel("Working…")
        self.busy_label.hide()

    def show_error(self, message: str) -> None:
        self.set_busy(False)
        self.error.setText(message)
        self.error.show()

    def set_busy(self, busy: bool) -> None:
        self.busy_label.setVisible(busy)
        self.setEnabled(not busy)


class FirstRunPage(_Page):
    """Emits `create_requested(profile name, passphrase, use keychain)`."""

    create_requested = Signal(str, str, bool)

    def __init__(self, keychain_allowed: bool) -> None:
        super().__init__()
        self.setAccessibleName("Create your profile")
        title = QLabel(
            "<h2>Welcome</h2>Create a profile. Everything you record is "
            "encrypted on this computer with a key protected by your "
            "passphrase. There is no way to recover it if you forget it."
        )
        title.setWordWrap(True)
        self.name = QLineEdit()
        self.name.setAccessibleName("Profile name")
        self.new_passphrase = NewPassphraseFields()
        self.passphrase = self.new_passphrase.passphrase
        self.confirm = self.new_passphrase.confirm
        self.meter = self.new_passphrase.meter
        self.keychain = QCheckBox("Also unlock with the system keychain on this computer")
        self.keychain.setVisible(keychain_allowed)
        self.create_button = QPushButton("Create profile")
        self.create_button.setDefault(True)
        form = QFormLayout()
        form.addRow("Your &name (optional):", self.name)
        self.new_passphrase.add_rows(form, "&Passphrase:")
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(self.keychain)
        layout.addWidget(self.error)
        layout.addWidget(self.create_button)
        layout.addWidget(self.busy_label)
        layout.addStretch(1)
        for field in (self.passphrase, self.confirm, self.name):
            field.textChanged.connect(self._update)
        self.confirm.returnPressed.connect(self._submit)
        self.create_button.clicked.connect(self._submit)
        self._update()

    def _update(self) -> None:
        self.create_button.setEnabled(self.new_passphrase.update(self.name.text()))

    def _submit(self) -> None:
        if not self.create_button.isEnabled():
            self.show_error(self.new_passphrase.problem(self.name.text()))
            return
        self.error.hide()
        self.set_busy(True)
        passphrase = self.new_passphrase.take()
        self.create_requested.emit(
            self.name.text().strip(), passphrase, self.keychain.isVisible() and self.keychain.isChecked()
        )


class UnlockPage(_Page):
    """Emits `unlock_requested(passphrase)`, or `keychain_requested()`."""

    unlock_requested = Signal(str)
    keychain_requested = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setAccessibleName("Unlock")
        self.title = QLabel("<h2>Locked</h2>Enter your passphrase to open your records.")
        self.title.setWordWrap(True)
        self.passphrase = passphrase_field("Passphrase")
        self.unlock_button = QPushButton("&Unlock")
        self.unlock_button.setDefault(True)
        self.keychain_button = QPushButton("Unlock with system &keychain")
        self.keychain_button.hide()
        form = QFormLayout()
        form.addRow("&Passphrase:", self.passphrase)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.unlock_button)
        layout.addWidget(self.keychain_button)
        layout.addWidget(self.busy_label)
        layout.addStretch(1)
        self.passphrase.returnPressed.connect(self._submit)
        self.unlock_button.clicked.connect(self._submit)
        self.keychain_button.clicked.connect(self._keychain)

    def prepare(self, keychain_available: bool, reason: str = "") -> None:
        self.passphrase.clear()
        self.error.hide()
        self.set_busy(False)
        self.keychain_button.setVisible(keychain_available)
        self.title.setText(
            "<h2>Locked</h2>" + (f"{reason} " if reason else "") + "Enter your passphrase to open your records."
        )
        self.passphrase.setFocus()

    def _submit(self) -> None:
        passphrase = self.passphrase.text()
        if not passphrase:
            self.show_error("Enter your passphrase.")
            return
        self.passphrase.clear()
        self.error.hide()
        self.set_busy(True)
        self.unlock_requested.emit(passphrase)

    def _keychain(self) -> None:
        self.error.hide()
        self.set_busy(True)
        self.keychain_requested.emit()
