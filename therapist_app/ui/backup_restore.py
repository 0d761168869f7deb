"""The Backup and Restore dialogs, and what they need besides widgets.

The dialogs only collect a path and a passphrase and show the outcome; `MainWindow`
runs the work on its task thread (the KDF takes about a second by design, and a backup
copies and verifies every page), locks the store around a restore and reopens it.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from therapist_app.core.store import Store, StoreError, WrongPassphrase
from therapist_app.ui.unlock import NewPassphraseFields, error_label, passphrase_field


class NotTheStorePassphrase(WrongPassphrase):
    """The passphrase typed as the store's own is not: no backup was started."""


def make_backup(store: Store, destination: Path, passphrase: str, separate: bool) -> int:
    """Back `store` up to `destination`; returns the backup's size in bytes. With
    `separate` false the passphrase is meant to be the store's own and is checked
    first. Runs the KDF and copies every page: call it on the task thread."""
    if not separate:
        # A backup "protected with my store passphrase" must really be: a typo there
        # would leave a backup nobody can open.
        try:
            store.verify_passphrase(passphrase)
        except WrongPassphrase:
            raise NotTheStorePassphrase(
                "That is not your store passphrase. Type the passphrase you unlock the app "
                "with, or choose a separate backup passphrase."
            ) from None
    store.backup(destination, passphrase)
    return destination.stat().st_size


def describe_failure(error: BaseException) -> str:
    """A backup or restore error for the screen. The store's messages are written for
    the user and carry file names and ids only; an OS error is reduced to its reason
    and the file's name; anything else to its type."""
    if isinstance(error, WrongPassphrase) and not isinstance(error, NotTheStorePassphrase):
        return "Wrong passphrase for this backup. Check Caps Lock and the keyboard layout."
    if isinstance(error, StoreError):
        return str(error)
    if isinstance(error, OSError):
        where = f" ({Path(error.filename).name})" if error.filename else ""
        return f"{error.strerror or type(error).__name__}{where}."
    return f"Unexpected error ({type(error).__name__})."


def size_text(size: int) -> str:
    """A file size for people.

    >>> size_text(512), size_text(2_500_000), size_text(5 * 1024**4)
    ('512 bytes', '2.4 MB', '5120.0 GB')
    """
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            break
    return f"{value:.1f} {unit}"


def _path_row(field: QLineEdit, choose) -> QHBoxLayout:
    button = QPushButton("&Choose…")
    button.setAccessibleName(f"Choose {field.accessibleName().lower()}")
    button.clicked.connect(choose)
    row = QHBoxLayout()
    row.addWidget(field, 1)
    row.addWidget(button)
    return row


def _plain_label(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


class BackupDialog(QDialog):
    """Emits `backup_requested(destination, passphrase, separate)` and stays open,
    busy, until the window calls `show_done` or `show_error`."""

    backup_requested = Signal(object, str, bool)

    def __init__(self, default_folder: Path, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Back up records")
        intro = _plain_label(
            "A backup is a complete, encrypted copy of your records with its own key, in "
            "two files: the one you choose and the same name ending in .keys. Keep the two "
            "together. The copy is checked page by page before it is given its name, and "
            "an existing file is never written over."
        )
        self.destination = QLineEdit(str(default_folder / f"therapist-backup-{datetime.date.today().isoformat()}.db"))
        self.destination.setAccessibleName("Backup file")
        self.use_store = QRadioButton("Protect it with my store &passphrase")
        self.use_separate = QRadioButton("Protect it with a &separate backup passphrase")
        self.use_store.setChecked(True)
        group = QButtonGroup(self)
        for button in (self.use_store, self.use_separate):
            group.addButton(button)
        self.store_passphrase = passphrase_field("Your store passphrase")
        self.store_box = QWidget()
        store_form = QFormLayout(self.store_box)
        store_form.addRow("Your store pass&phrase:", self.store_passphrase)
        self.new_passphrase = NewPassphraseFields("Backup passphrase", "Repeat backup passphrase")
        self.separate_box = QWidget()
        separate_form = QFormLayout(self.separate_box)
        self.new_passphrase.add_rows(separate_form, "Backup pass&phrase:")
        note = _plain_label("Nobody can open a backup without its passphrase, including us.")
        self.error = error_label()
        self.status = _plain_label()
        self.status.setAccessibleName("Backup status")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close)
        self.backup_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.backup_button.setText("&Back up")
        buttons.accepted.connect(self._submit)
        buttons.rejected.connect(self.reject)
        self._inputs = (
            self.destination,
            self.use_store,
            self.use_separate,
            self.store_box,
            self.separate_box,
            self.backup_button,
        )
        form = QFormLayout()
        form.addRow("Backup &file:", _path_row(self.destination, self.choose_destination))
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        for widget in (
            self.use_store,
            self.store_box,
            self.use_separate,
            self.separate_box,
            note,
            self.error,
            self.status,
            buttons,
        ):
            layout.addWidget(widget)
        for signal in (
            self.destination.textChanged,
            self.store_passphrase.textChanged,
            self.new_passphrase.passphrase.textChanged,
            self.new_passphrase.confirm.textChanged,
            self.use_store.toggled,
        ):
            signal.connect(self._update)
        self._update()

    @property
    def separate(self) -> bool:
        return self.use_separate.isChecked()

    def _ready(self) -> bool:
        if not self.destination.text().strip():
            return False
        if self.separate:
            return self.new_passphrase.update()
        return bool(self.store_passphrase.text())

    def _update(self) -> None:
        self.store_box.setVisible(not self.separate)
        self.separate_box.setVisible(self.separate)
        self.backup_button.setEnabled(self._ready())

    def choose_destination(self) -> None:
        # Qt's own dialog: the platform one may record the file in "recent files".
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Back up records to",
            self.destination.text(),
            "Backups (*.db);;All files (*)",
            options=QFileDialog.Option.DontUseNativeDialog,
        )
        if path:
            self.destination.setText(path)

    def _submit(self) -> None:
        if not self._ready():
            self.error.setText(
                self.new_passphrase.problem() if self.separate else "Choose a backup file and enter your passphrase."
            )
            self.error.show()
            return
        if self.separate:
            passphrase = self.new_passphrase.take()
        else:
            passphrase = self.store_passphrase.text()
            self.store_passphrase.clear()
        self.error.hide()
        self._set_busy(True)
        self.status.setText("Backing up…")
        self.backup_requested.emit(Path(self.destination.text().strip()).expanduser(), passphrase, self.separate)

    def _set_busy(self, busy: bool) -> None:
        for widget in self._inputs:
            widget.setEnabled(not busy)
        if not busy:
            self._update()

    def show_done(self, message: str) -> None:
        self._set_busy(False)
        self.status.setText(message)

    def show_error(self, message: str) -> None:
        self._set_busy(False)
        self.status.setText("")
        self.error.setText(f"No backup was made: {message}")
        self.error.show()


class RestoreDialog(QDialog):
    """Emits `restore_requested(backup, passphrase)` when confirmed, then closes."""

    restore_requested = Signal(object, str)

    def __init__(self, store_path: Path, store_open: bool, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Restore from a backup")
        replaces = store_path.exists()
        lines = [
            "Restoring replaces the records in this app with the backup's.",
            f"Your current records are not deleted: their files are set aside in "
            f"{store_path.parent}, renamed to {store_path.name}.replaced-<date and time>."
            if replaces
            else "",
            "After the restore your records open with the BACKUP's passphrase, the one you "
            "enter here: from then on you unlock the app with it, not with your current "
            "passphrase (and with the passphrase only: a keychain unlock is not carried "
            "over).",
            "Your records are locked first; if the restore fails they stay exactly as they "
            "are and you unlock them as usual."
            if store_open
            else "",
        ]
        self.explanation = _plain_label("\n\n".join(line for line in lines if line))
        self.explanation.setAccessibleName("What a restore does")
        self.backup = QLineEdit()
        self.backup.setAccessibleName("Backup file")
        self.passphrase = passphrase_field("Backup passphrase")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.restore_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.restore_button.setText("Set aside and &restore" if replaces else "&Restore")
        buttons.accepted.connect(self._submit)
        buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Backup &file:", _path_row(self.backup, self.choose_backup))
        form.addRow("Backup pass&phrase:", self.passphrase)
        layout = QVBoxLayout(self)
        layout.addWidget(self.explanation)
        layout.addLayout(form)
        layout.addWidget(buttons)
        for field in (self.backup, self.passphrase):
            field.textChanged.connect(self._update)
        self._update()

    def _update(self) -> None:
        self.restore_button.setEnabled(bool(self.backup.text().strip() and self.passphrase.text()))

    def choose_backup(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Restore from backup",
            self.backup.text() or str(Path.home()),
            "Backups (*.db);;All files (*)",
            options=QFileDialog.Option.DontUseNativeDialog,
        )
        if path:
            self.backup.setText(path)

    def _submit(self) -> None:
        if not self.restore_button.isEnabled():
            return
        passphrase = self.passphrase.text()
        self.passphrase.clear()
        self.accept()  # before the window locks the store, which closes every dialog
        self.restore_requested.emit(Path(self.backup.text().strip()).expanduser(), passphrase)
