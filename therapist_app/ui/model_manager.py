"""The model manager: which GGUF suggests replies, and how it runs.

A model file is untrusted input. Adding one checks its header and tensor extent and
hashes it on a worker thread, then records it in the store (audited) by SHA-256.
Whether it may be loaded is the clinic policy's call: with `require_approved_models`,
only hashes IT listed (or approved in the store by IT's tooling) load, and the
therapist cannot approve a model here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

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
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from therapist_app.core.engine import EngineConfig
from therapist_app.core.model_file import (
    UNTUNED,
    ModelFileError,
    bundled_model_path,
    check_model_loads,
    default_adapter_path,
    read_gguf_header,
    sha256_file,
)
from therapist_app.core.model_manifest import manifest_path_for, verify_model
from therapist_app.core.policy import Policy
from therapist_app.core.store import Store
from therapist_app.core.store.records import ModelRecord
from therapist_app.ui.settings import CONTEXT_SIZES, ModelSettings
from therapist_app.ui.workers import TaskRunner

log = logging.getLogger(__name__)


class ModelNotAllowed(ModelFileError):
    """Clinic policy does not allow loading this model file."""


@dataclass(frozen=True)
class InspectedModel:
    path: Path
    sha256: str
    size_bytes: int
    has_manifest: bool
    """A manifest from `therapist-trainer export` was found and the file matches it."""


BUNDLED_NAMES = {
    None: "SmolLM2-135M-Instruct, tuned for counselling (default)",
    UNTUNED: "SmolLM2-135M-Instruct, untuned",
}


def inspect_model(path: Path) -> InspectedModel:
    """Header, a llama.cpp load and SHA-256 of a GGUF, and its export manifest when one
    lies beside it (a mismatch is refused). Blocking: run it on a worker."""
    header = read_gguf_header(path)
    check_model_loads(path)
    if manifest_path_for(path).exists():
        verified = verify_model(path)
        return InspectedModel(path, verified.manifest.sha256, header.size_bytes, True)
    return InspectedModel(path, sha256_file(path), header.size_bytes, False)


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
                f"{digest[:12]}…) is not approved. Ask IT to add its hash to the policy.")

    return gate


class ModelManagerDialog(QDialog):
    """Emits `apply_requested(ModelSettings)` when the therapist applies a change."""

    apply_requested = Signal(object)

    def __init__(self, store: Store, policy: Policy, tasks: TaskRunner,
                 current: ModelSettings, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model manager")
        self.setAccessibleName("Model manager")
        self._store = store
        self._policy = policy
        self._tasks = tasks
        self._selected_path = current.model_path
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
            self.approve_button.setToolTip("Clinic policy: only IT approves models "
                                           "(allowed_model_hashes in the policy file)")
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
        self.gpu_layers.setToolTip("Layers to run on the GPU; auto uses all on a GPU build")
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

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply
                                   | QDialogButtonBox.StandardButton.Close)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.apply_button.setText("Apply and &reload")
        self.apply_button.clicked.connect(self.apply)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(box)
        layout.addWidget(buttons)
        self.add_button.clicked.connect(self.choose_file)
        self.approve_button.clicked.connect(self.approve_selected)
        self.use_button.clicked.connect(self.use_selected)
        self.resize(760, 420)
        self.refresh()

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
            name = BUNDLED_NAMES.get(path) or Path(path).name
            digest = record.sha256[:16] + "…" if record else "—"
            in_use = "yes" if path == self._selected_path else ""
            for column, text in enumerate((name, digest, self._status(record), in_use)):
                item = QTableWidgetItem(text)
                if column == 0:
                    item.setData(Qt.ItemDataRole.UserRole, path)
                    item.setToolTip(path or "")
                self.table.setItem(i, column, item)

    def _selected(self) -> tuple[str | None, ModelRecord | None] | None:
        rows = self._rows()
        index = self.table.currentRow()
        return rows[index] if 0 <= index < len(rows) else None

    # ---- actions -----------------------------------------------------------------

    def choose_file(self) -> None:
        # Qt's own dialog: the platform one may add the file to a "recent files" list.
        path, _ = QFileDialog.getOpenFileName(
            self, "Add a GGUF model", str(Path.home()), "GGUF models (*.gguf);;All files (*)",
            options=QFileDialog.Option.DontUseNativeDialog)
        if path:
            self.add_file(Path(path))

    def add_file(self, path: Path) -> None:
        """Check and hash `path` on a worker, then record it (or show why not)."""
        self.status.setText(f"Checking {path.name}…")
        self.add_button.setEnabled(False)
        self._tasks.run(lambda: inspect_model(path), self._on_inspected, self._on_refused)

    def _on_inspected(self, model: InspectedModel) -> None:
        self.add_button.setEnabled(True)
        if self._store.locked:
            return
        approved = model.sha256 in self._policy.allowed_model_hashes
        self._store.register_model(str(model.path), model.sha256, approved=approved)
        allowed = self._policy.model_allowed(model.sha256, approved)
        provenance = ("matches its export manifest" if model.has_manifest
                      else "no export manifest: provenance unknown")
        self.status.setText(
            f"Added {model.path.name} ({model.size_bytes / 1e6:.0f} MB, sha256 "
            f"{model.sha256[:12]}…, {provenance})."
            + ("" if allowed else " Clinic policy blocks it until IT approves its hash."))
        log.info("model added (%d bytes)", model.size_bytes)
        self.refresh()

    def _on_refused(self, error: BaseException) -> None:
        self.add_button.setEnabled(True)
        if isinstance(error, (ModelFileError, OSError)):
            self.status.setText(f"Refused: {error}")
        else:
            self.status.setText(f"Refused: the file could not be checked ({type(error).__name__})")
        log.warning("model file refused: %s", type(error).__name__)

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
