"""Client list (pseudonymous codes, search) and the selected client's sessions."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from therapist_app.core.store import Conflict, Store
from therapist_app.core.store.records import Client, Session


def session_title(session: Session) -> str:
    started = session.started_at[:16].replace("T", " ")
    return f"Session {session.id} · {started} UTC" + ("" if session.ended_at else " · open")


class ClientPanel(QWidget):
    client_selected = Signal(object)  # Client (its record view was audited)
    session_selected = Signal(object)  # Session
    message = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.store: Store | None = None
        self.client: Client | None = None
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search clients")
        self.search.setAccessibleName("Search clients")
        self.search.setClearButtonEnabled(True)
        self.clients = QListWidget()
        self.clients.setAccessibleName("Clients")
        self.new_code = QLineEdit()
        self.new_code.setPlaceholderText("New client code, e.g. C-017")
        self.new_code.setAccessibleName("New client code")
        self.add_button = QPushButton("Add client")
        self.add_button.setAccessibleName("Add client")
        self.sessions_label = QLabel("Sessions")
        self.sessions = QListWidget()
        self.sessions.setAccessibleName("Sessions of the selected client")
        self.new_session_button = QPushButton("Start new session")
        self.new_session_button.setAccessibleName("Start new session")
        add_row = QHBoxLayout()
        add_row.addWidget(self.new_code, 1)
        add_row.addWidget(self.add_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Clients"))
        layout.addWidget(self.search)
        layout.addWidget(self.clients, 2)
        layout.addLayout(add_row)
        layout.addWidget(self.sessions_label)
        layout.addWidget(self.sessions, 1)
        layout.addWidget(self.new_session_button)
        self.search.textChanged.connect(self.reload_clients)
        self.new_code.returnPressed.connect(self.add_client)
        self.add_button.clicked.connect(self.add_client)
        self.clients.currentItemChanged.connect(self._on_client_item)
        self.sessions.currentItemChanged.connect(self._on_session_item)
        self.new_session_button.clicked.connect(self.start_session)
        self._update_buttons()

    def attach(self, store: Store | None) -> None:
        self.store = store
        self.client = None
        self.search.clear()
        self.new_code.clear()
        self.clients.clear()
        self.sessions.clear()
        if store is not None:
            self.reload_clients()
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.new_session_button.setEnabled(self.client is not None)
        self.sessions_label.setText(f"Sessions of {self.client.code}" if self.client else "Sessions")

    def reload_clients(self) -> None:
        if self.store is None or self.store.locked:
            return
        query = self.search.text().strip()
        found = self.store.search_clients(query) if query else self.store.list_clients()
        keep = self.client.id if self.client else None
        self.clients.blockSignals(True)
        self.clients.clear()
        for client in found:
            label = client.code + (f" — {client.display_name}" if client.display_name else "")
            item = QListWidgetItem(label)
            item.setData(Qt.ItemDataRole.UserRole, client.id)
            self.clients.addItem(item)
            if client.id == keep:
                self.clients.setCurrentItem(item)
        self.clients.blockSignals(False)

    def add_client(self) -> None:
        if self.store is None:
            return
        code = self.new_code.text().strip()
        if not code:
            self.message.emit("Type a code for the new client (a pseudonym, not their name).")
            return
        try:
            client = self.store.add_client(code)
        except Conflict:
            self.message.emit(f"A client with code {code} already exists.")
            return
        self.new_code.clear()
        self.search.clear()
        self.reload_clients()
        self.select_client(client.id)

    def select_client(self, client_id: int) -> None:
        for row in range(self.clients.count()):
            if self.clients.item(row).data(Qt.ItemDataRole.UserRole) == client_id:
                self.clients.setCurrentRow(row)
                return

    def _on_client_item(self, item: QListWidgetItem | None) -> None:
        if item is None or self.store is None:
            return
        self.client = self.store.get_client(item.data(Qt.ItemDataRole.UserRole))
        self.reload_sessions()
        self._update_buttons()
        self.client_selected.emit(self.client)

    def reload_sessions(self, select: int | None = None) -> None:
        self.sessions.blockSignals(True)
        self.sessions.clear()
        if self.client is not None and self.store is not None:
            for session in reversed(self.store.sessions(self.client.id)):
                item = QListWidgetItem(session_title(session))
                item.setData(Qt.ItemDataRole.UserRole, session)
                self.sessions.addItem(item)
                if session.id == select:
                    self.sessions.setCurrentItem(item)
        self.sessions.blockSignals(False)

    def start_session(self) -> None:
        if self.client is None or self.store is None:
            return
        session = self.store.start_session(self.client.id)
        self.reload_sessions(select=session.id)
        self.session_selected.emit(session)

    def _on_session_item(self, item: QListWidgetItem | None) -> None:
        if item is not None:
            self.session_selected.emit(item.data(Qt.ItemDataRole.UserRole))
