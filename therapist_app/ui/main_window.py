"""The main window: first run or unlock, then the workspace; locks on idle or suspend.

Orchestration only: the store's key derivation, the model and the analysis run on
workers (workers.py); session state lives in `SessionController`; widgets render it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from therapist_app.core.best_of_n import default_scorer
from therapist_app.core.policy import Policy
from therapist_app.core.store import (
    DatabaseCorrupt,
    DatabaseInUse,
    KdfParams,
    KeychainUnavailable,
    NotEncrypted,
    Store,
    StoreError,
    WalDamaged,
    WrongPassphrase,
    restore,
)
from therapist_app.core.store.keys import read_key_file
from therapist_app.core.store.records import Client, Erasure, Session
from therapist_app.ui import session_export
from therapist_app.ui.analysis import AnalyzerFactory
from therapist_app.ui.audit_view import AuditLogDialog
from therapist_app.ui.backup_restore import (
    BackupDialog,
    RestoreDialog,
    describe_failure,
    make_backup,
    size_text,
)
from therapist_app.ui.dialogs import AboutDialog, EraseClientDialog, ExportDialog, ShortcutsDialog
from therapist_app.ui.idle import IdleWatcher
from therapist_app.ui.model_manager import ModelManagerDialog, policy_gate
from therapist_app.ui.session_controller import SessionController, SessionError
from therapist_app.ui.settings import AppSettings, ModelSettings
from therapist_app.ui.unlock import FirstRunPage, UnlockPage
from therapist_app.ui.widgets.client_input import ClientInput
from therapist_app.ui.widgets.client_panel import ClientPanel
from therapist_app.ui.widgets.crisis_banner import CrisisBanner
from therapist_app.ui.widgets.emotion_chip import EmotionChip
from therapist_app.ui.widgets.suggestion_panel import SuggestionPanel
from therapist_app.ui.widgets.transcript import TranscriptView
from therapist_app.ui.workers import EngineClient, EngineFactory, ScorerFactory, TaskRunner

log = logging.getLogger(__name__)

NOTE_SAVE_DELAY_MS = 1500
MIN_FONT_STEP, MAX_FONT_STEP = -3, 8


@dataclass(frozen=True)
class AppContext:
    """Everything the window depends on, injected so tests can swap the slow parts."""

    store_path: Path
    policy: Policy
    settings: AppSettings
    engine_factory: EngineFactory
    analyzer_factory: AnalyzerFactory
    scorer_factory: ScorerFactory = default_scorer
    kdf: KdfParams = field(default_factory=KdfParams)
    clock: Callable[[], float] = time.monotonic
    idle_check_ms: int = 1000


def describe_open_error(error: BaseException) -> str:
    if isinstance(error, WrongPassphrase):
        return "Wrong passphrase. Check Caps Lock and your keyboard layout, then try again."
    if isinstance(error, KeychainUnavailable):
        return f"The system keychain could not unlock the store: {error}. Use your passphrase."
    if isinstance(error, DatabaseInUse):
        return "Your records are open in another window of the app. Close it first."
    if isinstance(error, (DatabaseCorrupt, NotEncrypted)):
        return f"{error} The file was left untouched. To restore a backup: Records > Restore from backup…"
    if isinstance(error, StoreError):
        return str(error)
    return f"Could not open your records ({type(error).__name__})."


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext) -> None:
        super().__init__()
        self.context = context
        self.policy = context.policy
        self.setWindowTitle("Therapist assistant")
        self.store: Store | None = None
        self.tasks = TaskRunner(self)
        self.engine = EngineClient(context.engine_factory, context.analyzer_factory, context.scorer_factory, self)
        self.controller = SessionController(self.engine, self)
        self.idle = IdleWatcher(context.policy.lock_timeout_s, context.clock, context.idle_check_ms, self)
        self.idle.lock_requested.connect(self._on_lock_requested)
        self._base_font = QApplication.font()
        self._lock_after_task: str | None = None
        self._closed = False
        self.model_manager: ModelManagerDialog | None = None

        self.first_run = FirstRunPage(keychain_allowed=context.policy.keychain_allowed)
        self.unlock = UnlockPage()
        self.workspace = self._build_workspace()
        self.pages = QStackedWidget()
        for page in (self.first_run, self.unlock, self.workspace):
            self.pages.addWidget(page)
        self.setCentralWidget(self.pages)
        self._build_status_bar()
        self._build_menus()
        self.first_run.create_requested.connect(self._create_store)
        self.unlock.unlock_requested.connect(self._open_store)
        self.unlock.keychain_requested.connect(lambda: self._open_store(None))
        self.tasks.busy_changed.connect(self._on_busy)
        self.engine.loaded.connect(self._on_model_loaded)
        self.engine.load_failed.connect(self._on_model_failed)
        self.engine.load_progress.connect(self._on_load_progress)
        self.controller.message.connect(self.show_message)
        self.controller.words_returned.connect(self.input.setPlainText)
        self.controller.tokens_per_second.connect(lambda rate: self.speed_label.setText(f"{rate:.0f} tokens/s"))
        self.controller.session_changed.connect(self._on_session_changed)
        self.controller.generating_changed.connect(self._on_generating)
        self.apply_font_step(context.settings.font_step())
        # Light or dark follows the system; the custom-coloured widgets recolour with it.
        app = QGuiApplication.instance()
        app.paletteChanged.connect(self._recolour)
        app.styleHints().colorSchemeChanged.connect(self._recolour)
        self.resize(1280, 800)
        self._show_start_page()

    # ---- layout -----------------------------------------------------------------

    def _build_workspace(self) -> QWidget:
        controller = self.controller
        self.clients = ClientPanel()
        self.clients.message.connect(self.show_message)
        self.clients.session_selected.connect(self._open_session)
        self.clients.client_selected.connect(lambda _: self._leave_session())
        self.banner = CrisisBanner(controller)
        self.session_title = QLabel("No session open")
        self.session_title.setTextFormat(Qt.TextFormat.PlainText)
        self.session_title.setAccessibleName("Open session")
        self.transcript = TranscriptView(controller)
        self.emotion_chip = EmotionChip(controller)
        self.input = ClientInput()
        self.input.submitted.connect(self.submit_client_words)
        self.input.refused.connect(self.show_message)
        self.input.draft_paused.connect(self.controller.prime_draft)
        self.submit_button = QPushButton("Add client's words (Ctrl+Enter)")
        self.submit_button.setAccessibleName("Add client's words")
        self.submit_button.clicked.connect(self.input.submit)
        chip_row = QHBoxLayout()
        chip_row.addWidget(self.emotion_chip)
        chip_row.addStretch(1)
        chip_row.addWidget(self.submit_button)
        center = QWidget()
        center_layout = QVBoxLayout(center)
        center_layout.addWidget(self.session_title)
        center_layout.addWidget(self.transcript, 3)
        center_layout.addLayout(chip_row)
        center_layout.addWidget(self.input, 1)

        self.suggestions = SuggestionPanel(controller)
        self.notes = QPlainTextEdit()
        self.notes.setAccessibleName("Session notes")
        self.notes.setPlaceholderText("Session notes (saved automatically, encrypted)")
        self.notes.setTabChangesFocus(True)
        self._note_timer = QTimer(self)
        self._note_timer.setSingleShot(True)
        self._note_timer.setInterval(NOTE_SAVE_DELAY_MS)
        self._note_timer.timeout.connect(self.save_note)
        self.notes.textChanged.connect(self._on_note_edited)
        self._note_loading = False
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.suggestions)
        notes_box = QWidget()
        notes_layout = QVBoxLayout(notes_box)
        notes_layout.addWidget(QLabel("Session notes"))
        notes_layout.addWidget(self.notes)
        right.addWidget(notes_box)
        right.setSizes([560, 200])

        body = QSplitter(Qt.Orientation.Horizontal)
        body.addWidget(self.clients)
        body.addWidget(center)
        body.addWidget(right)
        body.setSizes([240, 560, 480])
        page = QWidget()
        layout = QVBoxLayout(page)
        # The banner sits above everything the model writes into, outside any scroll area.
        layout.addWidget(self.banner)
        layout.addWidget(body, 1)
        self._set_session_widgets_enabled(False)
        return page

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = QLabel("Model: not loaded")
        self.model_label.setAccessibleName("Model")
        self.device_label = QLabel("")
        self.device_label.setAccessibleName("Device")
        self.speed_label = QLabel("")
        self.speed_label.setAccessibleName("Tokens per second")
        # Loading a model takes seconds (longer on a first start without an install-time
        # merge, or a large model): a bar that moves, not a label that waits.
        self.load_bar = QProgressBar()
        self.load_bar.setAccessibleName("Model loading progress")
        self.load_bar.setRange(0, 100)
        self.load_bar.setMaximumWidth(260)
        self.load_bar.setTextVisible(True)
        self.load_bar.hide()
        bar.addPermanentWidget(self.load_bar)
        for label in (self.model_label, self.device_label, self.speed_label):
            bar.addPermanentWidget(label)

    def _action(
        self,
        menu,
        text: str,
        slot,
        shortcut: str | QKeySequence.StandardKey | None = None,
        context: Qt.ShortcutContext = Qt.ShortcutContext.WindowShortcut,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(context)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.all_actions.append(action)
        return action

    def _build_menus(self) -> None:
        self.all_actions: list[QAction] = []
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.export_action = self._action(file_menu, "&Export session…", self.export_session, "Ctrl+E")
        if not self.policy.export_allowed:
            self.export_action.setToolTip("Clinic policy does not allow exports")
        self.lock_action = self._action(file_menu, "&Lock now", lambda: self.lock("You locked the app."), "Ctrl+L")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        records_menu = bar.addMenu("&Records")
        self.backup_action = self._action(records_menu, "&Back up…", self.open_backup)
        self.restore_action = self._action(records_menu, "&Restore from backup…", self.open_restore)
        records_menu.addSeparator()
        self.audit_action = self._action(records_menu, "&Audit log…", self.open_audit_log)
        self.training_export_action = self._action(records_menu, "Export &training data…", self.open_training_export)

        client_menu = bar.addMenu("&Client")
        self._action(client_menu, "&New client", self._focus_new_client, "Ctrl+N")
        self._action(client_menu, "Start new &session", self.clients.start_session, "Ctrl+Shift+N")
        self._action(client_menu, "&Find client", self._focus_search, "Ctrl+F")
        client_menu.addSeparator()
        self.erase_action = self._action(client_menu, "&Erase client…", self.erase_client)

        session_menu = bar.addMenu("&Session")
        self._action(session_menu, "Type client's &words", self._focus_input, "Ctrl+I")
        self._action(session_menu, "Go to &suggestions", self._focus_suggestions, "F6")
        self._action(session_menu, "&Correct emotion", self._open_emotion_menu, "Ctrl+M")
        self._action(session_menu, "&Acknowledge crisis warning", self.controller.acknowledge_crisis, "Ctrl+Shift+A")
        session_menu.addSeparator()
        for i in range(3):
            self._action(
                session_menu,
                f"Accept suggestion &{i + 1}",
                lambda _=False, i=i: self.suggestions.cards[i].accept(),
                f"Ctrl+{i + 1}",
            )
        self._action(session_menu, "&Regenerate suggestions", self.suggestions.regenerate, "Ctrl+R")
        self._action(session_menu, "S&top generating", self._stop_or_cancel_edit, "Esc")
        self._action(session_menu, "&Notes", lambda: self.notes.setFocus(), "Ctrl+Shift+E")

        model_menu = bar.addMenu("&Model")
        self._action(model_menu, "&Model manager…", self.open_model_manager, "Ctrl+Shift+M")

        view_menu = bar.addMenu("&View")
        self._action(
            view_menu,
            "&Larger text",
            lambda: self.apply_font_step(self._font_step + 1),
            QKeySequence.StandardKey.ZoomIn,
        )
        self._action(
            view_menu,
            "&Smaller text",
            lambda: self.apply_font_step(self._font_step - 1),
            QKeySequence.StandardKey.ZoomOut,
        )
        self._action(view_menu, "&Reset text size", lambda: self.apply_font_step(0), "Ctrl+0")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "&About", self.show_about)
        self._update_actions()

    # ---- start, unlock, lock -------------------------------------------------------

    def _store_exists(self) -> bool:
        return self.context.store_path.exists()

    def _keychain_offered(self) -> bool:
        if not self.policy.keychain_allowed:
            return False
        try:
            return "keychain" in read_key_file(self.context.store_path).wraps
        except StoreError:
            return False

    def _show_start_page(self, reason: str = "") -> None:
        if self._store_exists():
            self.unlock.prepare(self._keychain_offered(), reason)
            self.pages.setCurrentWidget(self.unlock)
        else:
            self.pages.setCurrentWidget(self.first_run)
        self._update_actions()

    def _create_store(self, name: str, passphrase: str, keychain: bool) -> None:
        path, kdf = self.context.store_path, self.context.kdf

        def create() -> Store:
            path.parent.mkdir(parents=True, exist_ok=True)
            return Store.create(path, passphrase, kdf, keychain=keychain, profile_name=name or None)

        self.tasks.run(create, self._on_unlocked, lambda error: self.first_run.show_error(describe_open_error(error)))

    def _open_store(self, passphrase: str | None, salvage_wal: bool = False) -> None:
        path = self.context.store_path

        def failed(error: BaseException) -> None:
            self.unlock.show_error(describe_open_error(error))
            if isinstance(error, WalDamaged):
                self._offer_wal_salvage(passphrase, str(error))

        self.tasks.run(lambda: Store.open(path, passphrase, salvage_wal=salvage_wal), self._on_unlocked, failed)

    def _offer_wal_salvage(self, passphrase: str | None, why: str) -> None:
        """The recent-changes log is damaged: the therapist chooses between a backup and
        opening with the changes saved before the damage (the log is kept aside)."""
        ask = QMessageBox(
            QMessageBox.Icon.Warning,
            "Recent changes are damaged",
            f"{why}\n\nOpen the records now, keeping the changes saved before the damage?",
            QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
            self,
        )
        ask.setTextFormat(Qt.TextFormat.PlainText)
        ask.button(QMessageBox.StandardButton.Open).clicked.connect(
            lambda: self._open_store(passphrase, salvage_wal=True)
        )
        self._open_dialog(ask)

    def _on_unlocked(self, store: Store) -> None:
        if self._closed:  # the window closed while the key was derived
            store.lock()
            return
        self.first_run.set_busy(False)
        self.unlock.set_busy(False)
        self.store = store
        self.controller.attach_store(store)
        self.clients.attach(store)
        self.pages.setCurrentWidget(self.workspace)
        self.idle.start()
        if store.keychain_message:
            self.show_message(f"Keychain not used: {store.keychain_message}")
        for repaired in (
            store.notice,
            store.compaction_pending
            and (
                "An earlier erasure could not finish compacting the file (the disk is full): "
                "free some space and reopen the records."
            ),
        ):
            if repaired:
                self.show_message(repaired)
        waiting = store.unacknowledged_risk_sessions()
        if waiting:
            codes = {c.id: c.code for c in store.list_clients()}
            where = ", ".join(f"session {session} of client {codes.get(client, client)}" for client, session in waiting)
            self.show_message(f"A crisis warning is waiting to be acknowledged: {where}. Open it to review.")
        if self.engine.info is None and not self.engine.loading:
            self.load_model(self.context.settings.model())
        self._update_actions()
        self.clients.search.setFocus()
        log.info("store unlocked")

    def _on_lock_requested(self, reason: str) -> None:
        self.lock("Locked after inactivity." if reason == "idle" else "Locked when the computer slept.")

    def lock(self, reason: str = "") -> None:
        """Close the store and clear every view of client data."""
        if self.store is None:
            return
        if self.tasks.busy:
            self._lock_after_task = reason  # a task holds the store: lock when it ends
            return
        self.save_note()
        self.idle.stop()
        for dialog in self.findChildren(QDialog):
            dialog.reject()
        self.store.lock()  # the controller clears the session on the store's lock callback
        self.store = None
        self.clients.attach(None)
        self.input.clear()
        self._load_note_text("")
        self.session_title.setText("No session open")
        self.speed_label.setText("")
        self._show_start_page(reason)
        log.info("locked (%s)", "idle" if "inactivity" in reason else "manual or suspend")

    # ---- sessions -------------------------------------------------------------------

    def _open_session(self, session: Session) -> None:
        self.save_note()
        client = self.clients.client
        if self.store is None or client is None:
            return
        self.controller.open_session(client, session)
        note = self.store.note(session.id)
        self._load_note_text(note.text if note else "")

    def _leave_session(self) -> None:
        self.save_note()
        self.controller.close_session()
        self._load_note_text("")

    def _on_session_changed(self) -> None:
        session, client = self.controller.session, self.controller.client
        if session is None or client is None:
            self.session_title.setText("No session open")
        else:
            self.session_title.setText(
                f"{client.code} · Session {session.id} · started {session.started_at[:16].replace('T', ' ')} UTC"
            )
        self._set_session_widgets_enabled(session is not None)
        self._update_actions()

    def _set_session_widgets_enabled(self, enabled: bool) -> None:
        for widget in (self.input, self.submit_button, self.notes):
            widget.setEnabled(enabled)

    def submit_client_words(self, text: str) -> None:
        try:
            self.controller.submit_client_words(text)
        except SessionError as error:
            self.show_message(str(error))
            return
        self.input.clear()

    # ---- notes ------------------------------------------------------------------------

    def _load_note_text(self, text: str) -> None:
        self._note_timer.stop()
        self._note_loading = True
        self.notes.setPlainText(text)
        self._note_loading = False

    def _on_note_edited(self) -> None:
        if not self._note_loading:
            self._note_timer.start()

    def save_note(self) -> None:
        if not self._note_timer.isActive():
            return
        self._note_timer.stop()
        session = self.controller.session
        if session is None or self.store is None or self.store.locked:
            return
        self.store.set_note(session.id, self.notes.toPlainText())

    # ---- export and erasure -------------------------------------------------------------

    def export_session(self) -> None:
        if not self.policy.export_allowed:
            self.show_message("Clinic policy does not allow exporting sessions.")
            return
        if self.controller.session is None:
            self.show_message("Open a session to export it.")
            return
        dialog = ExportDialog(self)
        dialog.accepted.connect(lambda: self._export_chosen(dialog))
        self._open_dialog(dialog)

    def _export_chosen(self, dialog: ExportDialog) -> None:
        path = dialog.choose_path()
        if path is not None:
            self.write_export(path, dialog.format.currentData(), dialog.deidentify.isChecked())

    def write_export(self, path: Path, fmt: str, deidentified: bool) -> None:
        """Write the open session to `path` ('markdown' or 'pdf'). A session is small:
        rendering takes milliseconds, and QTextDocument/QPdfWriter stay on this thread."""
        store, client, session = self.store, self.controller.client, self.controller.session
        if store is None or client is None or session is None or not self.policy.export_allowed:
            return
        self.save_note()
        transcript = store.session_transcript(session.id)  # audited view of the record
        export = session_export.build_export(client, transcript, store.note(session.id), deidentified)
        try:
            if fmt == "markdown":
                session_export.write_markdown(export, path)
            else:
                session_export.write_pdf(export, path)
        except OSError as error:
            self.show_message(f"Export failed: {error.strerror or error}")
            return
        log.info("session %d exported (%s, deidentified=%s)", session.id, fmt, deidentified)
        self.show_message(f"Exported to {path.name}" + (" (de-identified)." if deidentified else "."))

    def erase_client(self) -> None:
        client = self.clients.client
        if client is None or self.store is None:
            self.show_message("Select the client to erase first.")
            return
        dialog = EraseClientDialog(client, self)
        dialog.accepted.connect(lambda: self.erase_confirmed(client))
        self._open_dialog(dialog)

    def erase_confirmed(self, client: Client) -> None:
        store = self.store
        if store is None:
            return
        self._leave_session()
        self.tasks.run(
            lambda: store.erase_client(client.id),
            lambda erasure: self._on_erased(client, erasure),
            lambda error: self.show_message(f"Erasure failed: {error}"),
        )

    def _on_erased(self, client: Client, erasure: Erasure) -> None:
        self.clients.attach(self.store)
        self.show_message(f"Client {client.code}: {erasure.message}")
        if not erasure.compacted or erasure.set_aside:  # more than a status-bar line
            note = QMessageBox(
                QMessageBox.Icon.Information, "Client erased", erasure.message, QMessageBox.StandardButton.Ok, self
            )
            note.setTextFormat(Qt.TextFormat.PlainText)
            self._open_dialog(note)

    def _on_busy(self, busy: bool) -> None:
        self.idle.paused = busy
        if self.pages.currentWidget() is self.workspace:
            self.workspace.setEnabled(not busy)
            self.menuBar().setEnabled(not busy)
        self._update_actions()
        if not busy and self._lock_after_task is not None:
            reason, self._lock_after_task = self._lock_after_task, None
            self.lock(reason)

    # ---- backup, restore, audit log --------------------------------------------------------

    def open_backup(self) -> None:
        if self.store is None:
            return
        dialog = BackupDialog(Path.home(), self)
        dialog.backup_requested.connect(
            lambda destination, passphrase, separate: self.backup_to(dialog, destination, passphrase, separate)
        )
        self._open_dialog(dialog)

    def backup_to(self, dialog: BackupDialog, destination: Path, passphrase: str, separate: bool) -> None:
        """Write a backup on the task thread and report it in `dialog`."""
        store = self.store
        if store is None or self.tasks.busy:
            dialog.show_error("the records are busy or locked; try again.")
            return
        if self.controller.generating or self.controller.analysing:
            # Their results are stored on this thread when they arrive: the store is
            # not thread-safe, so the backup waits for them.
            dialog.show_error("suggestions are still being made; wait for them (or press Stop), then back up.")
            return
        self.save_note()

        def done(size: int) -> None:
            message = (
                f"Backup written: {destination} ({size_text(size)}) and "
                f"{destination.name}.keys. Keep the two files together."
            )
            dialog.show_done(message)
            self.show_message(message)
            log.info("backup written (%d bytes)", size)

        def failed(error: BaseException) -> None:
            dialog.show_error(describe_failure(error))
            self.show_message("No backup was made.")
            log.warning("backup failed: %s", type(error).__name__)

        self.tasks.run(lambda: make_backup(store, destination, passphrase, separate), done, failed)

    def open_restore(self) -> None:
        if self.tasks.busy:
            return
        dialog = RestoreDialog(self.context.store_path, self.store is not None, self)
        dialog.restore_requested.connect(self.restore_from)
        self._open_dialog(dialog)

    def restore_from(self, backup: Path, passphrase: str) -> None:
        """Lock the open store, restore `backup` in its place (the old files renamed
        aside by the store, never deleted) and open the result with the backup's
        passphrase. On failure the old store is as it was, behind the unlock page."""
        if self.tasks.busy:
            self.show_message("Wait for the current task to finish, then restore.")
            return
        target = self.context.store_path
        if self.store is not None:
            self.lock("Restoring from a backup…")
        else:
            self._show_start_page("Restoring from a backup…")
        self.pages.currentWidget().set_busy(True)
        before = self._set_aside_files()

        def run() -> Store:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            return restore(backup, passphrase, target, replace=True)

        def failed(error: BaseException) -> None:
            log.warning("restore failed: %s", type(error).__name__)
            aside = self._set_aside_files() - before
            if aside:  # failed after the swap (opening the restored copy, say)
                after = (
                    f"The previous records were set aside as {', '.join(sorted(aside))}; "
                    "the backup's are in their place: unlock with its passphrase."
                )
            elif self._store_exists():
                after = "Your records were not changed: unlock them with your passphrase."
            else:
                after = ""
            self._show_start_page()
            self.pages.currentWidget().show_error(f"The restore failed: {describe_failure(error)} {after}".rstrip())

        self.tasks.run(run, lambda store: self._on_restored(backup, store, before), failed)

    def _set_aside_files(self) -> set[str]:
        """Names of the files restores have set aside beside the store."""
        target = self.context.store_path
        return {p.name for p in target.parent.glob(f"{target.name}*.replaced-*")}

    def _on_restored(self, backup: Path, store: Store, before: set[str]) -> None:
        self._on_unlocked(store)
        if self.store is not store:
            return
        aside = sorted(self._set_aside_files() - before)
        text = (
            f"Your records are now those of the backup {backup.name}. From now on unlock "
            "the app with the backup's passphrase."
        )
        if aside:
            text += (
                f"\n\nYour previous records were not deleted: they were set aside in "
                f"{self.context.store_path.parent} as {', '.join(aside)}."
            )
        self.show_message(f"Restored from {backup.name}.")
        done = QMessageBox(QMessageBox.Icon.Information, "Records restored", text, QMessageBox.StandardButton.Ok, self)
        done.setTextFormat(Qt.TextFormat.PlainText)
        self._open_dialog(done)
        log.info("restored from a backup (%d files set aside)", len(aside))

    def open_training_export(self) -> None:
        """Choose a file for the de-identified decisions (what `therapist-trainer loop`
        and `dpo` learn from); clinic policy can forbid it."""
        if self.store is None or not self.policy.export_allowed:
            return
        chooser = QFileDialog(
            self, "Export training data", str(Path.home() / "training.jsonl"), "Training data (*.jsonl)"
        )
        chooser.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        chooser.setOption(QFileDialog.Option.DontUseNativeDialog)  # no recent-files entry
        chooser.fileSelected.connect(lambda name: self.export_training_to(Path(name)))
        self._open_dialog(chooser)

    def export_training_to(self, destination: Path) -> None:
        store = self.store
        if store is None or self.tasks.busy:
            return
        self.tasks.run(
            lambda: store.export_training(destination, self.policy),
            lambda count: self.show_message(f"Exported {count} de-identified decisions to {destination.name}."),
            lambda error: self.show_message(f"Training export failed: {error}"),
        )

    def open_audit_log(self) -> None:
        if self.store is None or self.tasks.busy:
            return
        self._open_dialog(AuditLogDialog(self.store.audit_log(), self))

    # ---- model --------------------------------------------------------------------------

    def load_model(self, settings: ModelSettings) -> None:
        approved = (
            frozenset(r.sha256 for r in self.store.models() if r.approved) if self.store is not None else frozenset()
        )
        self.model_label.setText("Model: loading…")
        self.device_label.setText("")
        self.device_label.setToolTip("")
        self._on_load_progress("starting", 0.0)
        self.controller.model_id = "unknown"
        self.engine.load(settings.engine_config(), policy_gate(self.policy, approved))

    def _on_load_progress(self, stage: str, done: float) -> None:
        # A merge has no fractions to report: the bar runs busy until loading starts.
        busy = stage.startswith("preparing")
        self.load_bar.setRange(0, 0 if busy else 100)
        self.load_bar.setValue(round(done * 100))
        self.load_bar.setFormat(f"{stage[:1].upper()}{stage[1:]}: %p%" if not busy else stage)
        self.load_bar.setToolTip(stage)
        self.load_bar.show()

    def _on_model_loaded(self, info) -> None:
        self.load_bar.hide()
        self.controller.model_id = info.model_name
        self.model_label.setText(f"Model: {info.model_name}")
        self.model_label.setToolTip(str(info.model_path.name))
        # What offload chose (or why the GPU was given up) is one sentence: shown as a
        # message, which fades, and kept as the device label's tooltip.
        placement = info.placement
        where = placement.message if placement else f"Running on the {info.device.upper()}"
        self.device_label.setText(f"Device: {placement.label if placement else info.device.upper()}")
        self.device_label.setToolTip(where)
        self.show_message(f"Model ready: {info.model_name}. {where}.")

    def _on_model_failed(self, message: str) -> None:
        self.load_bar.hide()
        self.model_label.setText("Model: not loaded")
        self.device_label.setText("")
        self.device_label.setToolTip("")
        self.show_message(f"The model could not be loaded: {message}")

    def open_model_manager(self) -> None:
        if self.store is None:
            return
        dialog = ModelManagerDialog(
            self.store, self.policy, self.tasks, self.context.settings.model(), self, settings=self.context.settings
        )
        dialog.apply_requested.connect(self._apply_model_settings)
        self._open_dialog(dialog)
        self.model_manager = dialog

    def _apply_model_settings(self, settings: ModelSettings) -> None:
        self.context.settings.set_model(settings)
        self.load_model(settings)

    # ---- status, focus, view ---------------------------------------------------------------

    def _open_dialog(self, dialog: QDialog) -> None:
        """Window-modal and non-blocking; deleted when closed (locking rejects it)."""
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _recolour(self, *_) -> None:
        self.banner.refresh()
        self.emotion_chip.refresh()

    def show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_generating(self, generating: bool) -> None:
        if generating:
            self.speed_label.setText("…")
        self._update_actions()

    def _update_actions(self) -> None:
        unlocked = self.store is not None
        idle = not self.tasks.busy
        self.backup_action.setEnabled(unlocked and idle)
        self.restore_action.setEnabled(idle)
        self.audit_action.setEnabled(unlocked and idle)
        self.training_export_action.setEnabled(unlocked and idle and self.policy.export_allowed)
        self.lock_action.setEnabled(unlocked)
        self.export_action.setEnabled(unlocked and self.policy.export_allowed and self.controller.session is not None)
        self.erase_action.setEnabled(unlocked)

    def _focus_new_client(self) -> None:
        self.clients.new_code.setFocus()

    def _focus_search(self) -> None:
        self.clients.search.setFocus()
        self.clients.search.selectAll()

    def _focus_input(self) -> None:
        self.input.setFocus()

    def _focus_suggestions(self) -> None:
        self.suggestions.setFocus()

    def _open_emotion_menu(self) -> None:
        if self.emotion_chip.isEnabled():
            self.emotion_chip.showMenu()

    def _stop_or_cancel_edit(self) -> None:
        if self.controller.generating:
            self.controller.stop()
            return
        for card in self.suggestions.cards:
            if not card.editor.isHidden():
                card.cancel_edit()

    def apply_font_step(self, step: int) -> None:
        self._font_step = max(MIN_FONT_STEP, min(MAX_FONT_STEP, step))
        font = QApplication.font()
        base = self._base_font.pointSizeF() if self._base_font.pointSizeF() > 0 else 10.0
        font.setPointSizeF(base * (1.0 + 0.125 * self._font_step))
        QApplication.setFont(font)  # menus, tooltips and dialogs
        self.setFont(font)  # this window's widgets at once
        self.context.settings.set_font_step(self._font_step)

    def show_shortcuts(self) -> None:
        extra = [
            ("Accept suggestion (suggestions focused)", "1 / 2 / 3"),
            ("Edit focused suggestion", "E"),
            ("Reject focused suggestion", "R"),
            ("Use edited text", "Ctrl+Enter"),
            ("Add client's words", "Ctrl+Enter"),
        ]
        self._open_dialog(ShortcutsDialog(self.all_actions, extra, self))

    def show_about(self) -> None:
        info = self.engine.info
        line = f"Model: {info.model_name} on {info.device.upper()}" if info else ""
        self._open_dialog(AboutDialog(self, line))

    def closeEvent(self, event: QCloseEvent) -> None:
        event.accept()
        if self._closed:
            return
        self._closed = True
        self.save_note()
        self.idle.stop()
        self.engine.shutdown()
        self.tasks.wait()
        if self.store is not None:
            self.store.lock()
            self.store = None
        app = QGuiApplication.instance()
        app.removeEventFilter(self.idle)
        app.paletteChanged.disconnect(self._recolour)
        app.styleHints().colorSchemeChanged.disconnect(self._recolour)
