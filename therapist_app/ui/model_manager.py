"""The model manager: which GGUF suggests replies, and how it runs.

A model file is untrusted input. Adding one checks its header and tensor extent and
hashes it on a worker thread, then records it in the store (audited) by SHA-256.
Whether it may be loaded is the clinic policy's call: with `require_approved_models`,
only hashes IT listed (or approved in the store by IT's tooling) load, and the
therapist cannot approve a model here.

*Found on this computer* lists the GGUF files other local-model apps downloaded (and
those in folders the user names; core/model_discovery.py). The list is made on the
dialog's own worker, so it never holds up the window's tasks or the lock. *Use found
model* records the file where it lies after the same checks as an added file; *Copy
into the app* copies it into the app's models folder first and records the copy.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from therapist_app.core.engine import EngineConfig
from therapist_app.core.model_discovery import (
    FoundModel,
    InspectedModel,
    app_models_dir,
    copy_and_inspect,
    discover,
    format_size,
    inspect_model,
)
from therapist_app.core.model_file import (
    UNTUNED,
    ModelFileError,
    bundled_model_path,
    default_adapter_path,
    sha256_file,
)
from therapist_app.core.policy import Policy
from therapist_app.core.store import Store
from therapist_app.core.store.records import ModelRecord
from therapist_app.ui.settings import CONTEXT_SIZES, AppSettings, ModelSettings
from therapist_app.ui.workers import TaskRunner

log = logging.getLogger(__name__)


class ModelNotAllowed(ModelFileError):
    """Clinic policy does not allow loading this model file."""


BUNDLED_NAMES = {
    None: "SmolLM2-135M-Instruct, tuned for counselling (default)",
    UNTUNED: "SmolLM2-135M-Instruct, untuned",
}


def policy_gate(policy: Policy, approved_in_store: frozenset[str]):
    """A check run on the engine thread before each load (see workers.ModelGate)."""

    def gate(config: EngineConfig) -> None:
        if not policy.require_approved_models:
            return
        path = Path(config.model_path) if config.model_path else bundled_model_path()
        digest = sha256_file(path)
        if not policy.model_allowed(digest, digest in approved_in_store):
            raise ModelNotAllowed(
                f"clinic policy allows only approved models; {path.name} (sha256 "
                f"{digest[:12]}…) is not approved. Ask IT to add its hash to the policy."
            )

    return gate


class ModelManagerDialog(QDialog):
    """Emits `apply_requested(ModelSettings)` when the therapist applies a change."""

    apply_requested = Signal(object)

    def __init__(
        self,
        store: Store,
        policy: Policy,
        tasks: TaskRunner,
        current: ModelSettings,
        parent=None,
        *,
        settings: AppSettings | None = None,
        discover_models: Callable[[Sequence[str]], list[FoundModel]] | None = None,
        models_folder: Path | None = None,
    ) -> None:
        """`settings` keeps the folders the user adds (without it they last while the
        dialog is open); `discover_models(extra_folders)` and `models_folder` (where a
        copy goes) default to the real computer's."""
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.setAccessibleName("Model manager")
        self._store = store
        self._policy = policy
        self._tasks = tasks
        self._selected_path = current.model_path
        self._settings = settings
        self._folders = settings.model_folders() if settings is not None else ()
        self._discover = discover_models or (lambda folders: discover(extra_folders=folders))
        self._models_folder = models_folder
        self._found: list[FoundModel] = []
        self._closed = False
        self.finished.connect(self._on_finished)
        # The search has a worker of its own: the window's task runner holds off the
        # lock and the records while busy, and a search is no reason to.
        self._scanner = TaskRunner(self)
        self.table = QTableWidget(0, 4)
        self.table.setAccessibleName("Models")
        self.table.setHorizontalHeaderLabels(["Model file", "SHA-256", "Status", "In use"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.add_button = QPushButton("&Add GGUF file…")
        self.approve_button = QPushButton("A&pprove selected")
        self.use_button = QPushButton("&Use selected")
        if policy.require_approved_models:
            self.approve_button.setEnabled(False)
            self.approve_button.setToolTip(
                "Clinic policy: only IT approves models (allowed_model_hashes in the policy file)"
            )
        row = QHBoxLayout()
        for button in (self.add_button, self.approve_button, self.use_button):
            row.addWidget(button)
        row.addStretch(1)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Model manager status")

        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(-1, 999)
        self.gpu_layers.setSpecialValueText("auto")
        self.gpu_layers.setValue(-1 if current.n_gpu_layers is None else current.n_gpu_layers)
        self.gpu_layers.setAccessibleName("GPU layers")
        self.gpu_layers.setToolTip("Layers to run on the GPU; auto fits them to the free GPU memory")
        self.context = QComboBox()
        self.context.setAccessibleName("Context size")
        for size in CONTEXT_SIZES:
            self.context.addItem(f"{size} tokens", size)
        self.context.setCurrentIndex(CONTEXT_SIZES.index(current.n_ctx))
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(current.temperature)
        self.temperature.setAccessibleName("Temperature")
        self.temperature.setToolTip("Higher gives more varied drafts; 0 is deterministic")
        box = QGroupBox("Running the model")
        form = QFormLayout(box)
        form.addRow("&GPU layers:", self.gpu_layers)
        form.addRow("&Context size:", self.context)
        form.addRow("&Temperature:", self.temperature)
        found_box = self._build_found_box()

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Close)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.setText("Apply and &reload")
        self.apply_button.clicked.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(found_box)
        layout.addWidget(box)
        layout.addWidget(buttons)
        self.add_button.clicked.connect(self.choose_file)
        self.approve_button.clicked.connect(self.approve_selected)
        self.use_button.clicked.connect(self.use_selected)
        self.resize(760, 640)
        self.refresh()
        self.search()

    def _build_found_box(self) -> QGroupBox:
        self.found_table = QTableWidget(0, 4)
        self.found_table.setAccessibleName("Models found on this computer")
        self.found_table.setHorizontalHeaderLabels(["Model", "From", "Size", "Status"])
        self.found_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.found_table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.found_table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.found_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.use_found_button = QPushButton("Use found &model")
        self.use_found_button.setToolTip("Check the file and use it where it is (nothing is copied)")
        self.copy_found_button = QPushButton("C&opy into the app")
        self.copy_found_button.setToolTip("Copy the file into the app's own models folder, check the copy and use it")
        self.add_folder_button = QPushButton("Add &folder…")
        self.add_folder_button.setToolTip("Also look for GGUF models in a folder you choose")
        self.remove_folder_button = QPushButton("Remo&ve folder…")
        self.remove_folder_button.setToolTip("Stop looking in a folder you added")
        self.found_status = QLabel()
        self.found_status.setTextFormat(Qt.TextFormat.PlainText)
        self.found_status.setWordWrap(True)
        self.found_status.setAccessibleName("Found models status")
        row = QHBoxLayout()
        for button in (
            self.use_found_button,
            self.copy_found_button,
            self.add_folder_button,
            self.remove_folder_button,
        ):
            row.addWidget(button)
        row.addStretch(1)
        box = QGroupBox("Found on this computer (LM Studio, Ollama, GPT4All, Jan, your folders)")
        layout = QVBoxLayout(box)
        layout.addWidget(self.found_table)
        layout.addLayout(row)
        layout.addWidget(self.found_status)
        self.use_found_button.clicked.connect(lambda: self.use_found(copy=False))
        self.copy_found_button.clicked.connect(lambda: self.use_found(copy=True))
        self.add_folder_button.clicked.connect(self.choose_folder)
        self.remove_folder_button.clicked.connect(self.choose_folder_to_remove)
        return box

    # ---- the table ---------------------------------------------------------------

    def _rows(self) -> list[tuple[str | None, ModelRecord | None]]:
        bundled = [(None, None), (UNTUNED, None)] if default_adapter_path() is not None else [(None, None)]
        return bundled + [(r.path, r) for r in self._store.models()]

    def _status(self, record: ModelRecord | None) -> str:
        if record is None:
            return "bundled with the app"
        in_policy = record.sha256 in self._policy.allowed_model_hashes
        if in_policy:
            return "approved by clinic policy"
        if record.approved:
            return "approved"
        if self._policy.model_allowed(record.sha256, False):
            return "not approved (policy does not require it)"
        return "blocked: not approved by clinic policy"

    def refresh(self) -> None:
        rows = self._rows()
        self.table.setRowCount(len(rows))
        for i, (path, record) in enumerate(rows):
            name = BUNDLED_NAMES.get(path) or self._display_name(path)
            digest = record.sha256[:16] + "…" if record else "—"
            in_use = "yes" if path == self._selected_path else ""
            for column, text in enumerate((name, digest, self._status(record), in_use)):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setData(Qt.ItemDataRole.UserRole, path)
                    item.setToolTip(path or "")
                self.table.setItem(i, column, item)
        self._refresh_found()

    def _display_name(self, path: str) -> str:
        """An Ollama blob's file name is its hash: show the name the app it came from
        gives it."""
        for found in self._found:
            if str(found.path) == path:
                return f"{found.name} ({found.source})"
        return Path(path).name

    def _refresh_found(self) -> None:
        # The store is not thread-safe: while the window's worker holds it, the list
        # shows no "recorded" marks until the next refresh.
        idle = not (self._store.locked or self._tasks.busy)
        recorded = {r.path for r in self._store.models()} if idle else set()
        self.found_table.setRowCount(len(self._found))
        for i, found in enumerate(self._found):
            path = str(found.path)
            status = "recorded, in use" if path == self._selected_path else "recorded" if path in recorded else ""
            for column, text in enumerate((found.name, found.source, format_size(found.size_bytes), status)):
                item = QTableWidgetItem(text)
                item.setToolTip(path)
                self.found_table.setItem(i, column, item)

    def _selected(self) -> tuple[str | None, ModelRecord | None] | None:
        rows = self._rows()
        index = self.table.currentRow()
        return rows[index] if 0 <= index < len(rows) else None

    # ---- actions -----------------------------------------------------------------

    def choose_file(self) -> None:
        # Qt's own dialog: the platform one may add the file to a "recent files" list.
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Add a GGUF model",
            str(Path.home()),
            "GGUF models (*.gguf);;All files (*)",
            options=QFileDialog.Option.DontUseNativeDialog,
        )
        if path:
            self.add_file(Path(path))

    def _set_checking(self, checking: bool) -> None:
        for button in (self.add_button, self.use_found_button, self.copy_found_button):
            button.setEnabled(not checking)

    def add_file(self, path: Path) -> None:
        """Check and hash `path` on a worker, then record it (or show why not)."""
        self.status.setText(f"Checking {path.name}…")
        self._set_checking(True)
        self._tasks.run(lambda: inspect_model(path), self._on_inspected, self._on_refused)

    def use_found(self, copy: bool = False) -> None:
        """Check the selected found model on a worker (after copying it into the app's
        models folder when `copy`), record it and make it the model in use."""
        index = self.found_table.currentRow()
        if not 0 <= index < len(self._found):
            self.found_status.setText("Select a model in the list of found models first.")
            return
        found = self._found[index]
        self._set_checking(True)
        if copy:
            self.status.setText(f"Copying {found.name} into the app's models folder…")
            work = partial(copy_and_inspect, found, self._models_folder or app_models_dir())
        else:
            self.status.setText(f"Checking {found.name}…")
            work = partial(inspect_model, found.path, found.expected_sha256)
        self._tasks.run(work, partial(self._on_inspected, found=found, copied=copy), self._on_refused)

    def _on_inspected(self, model: InspectedModel, found: FoundModel | None = None, copied: bool = False) -> None:
        if self._store.locked:
            return
        approved = model.sha256 in self._policy.allowed_model_hashes
        self._store.register_model(str(model.path), model.sha256, approved=approved)
        log.info(
            "model added (%d bytes, %s)",
            model.size_bytes,
            "copied" if copied else "in place" if found else "chosen file",
        )
        if self._closed:
            return
        self._set_checking(False)
        allowed = self._policy.model_allowed(model.sha256, approved)
        provenance = "matches its export manifest" if model.has_manifest else "no export manifest: provenance unknown"
        name = found.name if found else model.path.name
        where = (
            ""
            if found is None
            else " copied into the app's models folder"
            if copied
            else f", used where {found.source} keeps it"
        )
        text = f"Added {name}{where} ({model.size_bytes / 1e6:.0f} MB, sha256 {model.sha256[:12]}…, {provenance})."
        if not allowed:
            text += " Clinic policy blocks it until IT approves its hash."
        elif found is not None:
            self._selected_path = str(model.path)
            text += " It is now the model in use: press Apply and reload to load it."
        self.status.setText(text)
        self.refresh()

    def _on_refused(self, error: BaseException) -> None:
        if self._closed:
            return
        self._set_checking(False)
        if isinstance(error, (ModelFileError, OSError)):
            self.status.setText(f"Refused: {error}")
        else:
            self.status.setText(f"Refused: the file could not be checked ({type(error).__name__})")
        log.warning("model file refused: %s", type(error).__name__)

    def search(self) -> None:
        """Look for models on this computer, on the dialog's own worker."""
        self.found_status.setText("Looking for models other apps downloaded…")
        folders = self._folders
        self._scanner.run(lambda: self._discover(folders), self._on_found, self._on_search_failed)

    def _on_found(self, models: list[FoundModel]) -> None:
        if self._closed:
            return
        self._found = list(models)
        sources = sorted({m.source for m in self._found})
        if self._found:
            text = f"{len(self._found)} found ({', '.join(sources)}). Select one to use it."
        else:
            text = "No GGUF models in the usual folders of LM Studio, Ollama, GPT4All and Jan."
        if self._folders:
            text += " Also looking in: " + "; ".join(self._folders) + "."
        self.found_status.setText(text)
        log.info("found %d models on this computer", len(self._found))
        if self._tasks.busy:
            self._refresh_found()
        else:
            self.refresh()

    def _on_search_failed(self, error: BaseException) -> None:
        if not self._closed:
            self.found_status.setText(f"The search for models failed ({type(error).__name__}).")
        log.warning("model search failed: %s", type(error).__name__)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self,
            "Add a folder with GGUF models",
            str(Path.home()),
            QFileDialog.Option.ShowDirsOnly | QFileDialog.Option.DontUseNativeDialog,
        )
        if folder:
            self.add_folder(Path(folder))

    def add_folder(self, folder: Path) -> None:
        """Also look in `folder` from now on (remembered in the app's settings)."""
        name = str(Path(folder).expanduser().absolute())
        if name not in self._folders:
            self._set_folders(self._folders + (name,))

    def choose_folder_to_remove(self) -> None:
        if not self._folders:
            self.found_status.setText("No folders were added; the other apps' folders are always searched.")
            return
        folder, chosen = QInputDialog.getItem(
            self, "Remove a folder", "Stop looking in:", list(self._folders), 0, False
        )
        if chosen:
            self.remove_folder(folder)

    def remove_folder(self, folder: str) -> None:
        """Stop looking in `folder`; models already recorded from it stay recorded."""
        self._set_folders(tuple(f for f in self._folders if f != folder))

    def _set_folders(self, folders: tuple[str, ...]) -> None:
        self._folders = folders
        if self._settings is not None:
            self._settings.set_model_folders(folders)
        self.search()

    def _on_finished(self, _result: int) -> None:
        # Work still running reports after the dialog is gone: it records what it
        # checked and leaves the widgets alone.
        self._closed = True

    def approve_selected(self) -> None:
        selected = self._selected()
        if selected is None or selected[1] is None:
            self.status.setText("Select an added model to approve.")
            return
        self._store.set_model_approval(selected[1].sha256, True)
        self.refresh()

    def use_selected(self) -> None:
        selected = self._selected()
        if selected is None:
            self.status.setText("Select a model to use.")
            return
        path, record = selected
        if record is not None and not self._policy.model_allowed(record.sha256, record.approved):
            self.status.setText("Clinic policy does not allow this model.")
            return
        self._selected_path = path
        self.refresh()

    def chosen_settings(self) -> ModelSettings:
        layers = self.gpu_layers.value()
        return ModelSettings(
            model_path=self._selected_path,
            n_gpu_layers=None if layers < 0 else layers,
            n_ctx=self.context.currentData(),
            temperature=round(self.temperature.value(), 2),
        )

    def apply(self) -> None:
        self.apply_requested.emit(self.chosen_settings())
        self.status.setText("Loading the model…")
