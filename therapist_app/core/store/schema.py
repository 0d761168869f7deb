"""The schema as ordered, recorded migrations.

Each migration is a function that runs inside its own transaction together with the row
that records it in `schema_migrations`, so a crash leaves the schema at a whole step.
New migrations are appended to MIGRATIONS; released ones are never edited.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from typing import Callable, Sequence

import sqlcipher3

from therapist_app.core.store.errors import SchemaTooNew

log = logging.getLogger(__name__)

# What an audit row may say happened. Rows carry ids and counts, never text. The
# initial schema checked actions against this tuple as it was then; since migration 2
# the `audit_actions` table holds them, and a migration adds a new one as a row.
INITIAL_AUDIT_ACTIONS = (
    "store_created",
    "view_client",
    "view_session",
    "decision",
    "export_training",
    "erase_client",
    "model_added",
    "model_approval",
    "backup",
    "restore",
    "rekey",
    "passphrase_changed",
    "keychain_changed",
)
AUDIT_ACTIONS = INITIAL_AUDIT_ACTIONS + ("crisis_acknowledged",)


def _initial(conn: sqlcipher3.Connection) -> None:
    actions = ", ".join(f"'{a}'" for a in INITIAL_AUDIT_ACTIONS)
    conn.executescript(f"""
        CREATE TABLE profile (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            display_name TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE clients (
            id INTEGER PRIMARY KEY,
            code TEXT NOT NULL UNIQUE CHECK (length(code) > 0),
            display_name TEXT,
            created_at TEXT NOT NULL
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            client_id INTEGER NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            -- a random id for exports, so exported lines never carry database ids
            conversation_id TEXT NOT NULL UNIQUE,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
        CREATE INDEX sessions_client ON sessions(client_id);
        CREATE TABLE utterances (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            speaker TEXT NOT NULL CHECK (speaker IN ('client', 'therapist')),
            text TEXT NOT NULL,
            created_at TEXT NOT NULL,
            emotion_detected TEXT,
            emotion_confidence REAL,
            emotion_corrected TEXT,
            risk_flags TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX utterances_session ON utterances(session_id, id);
        CREATE TABLE suggestions (
            id INTEGER PRIMARY KEY,
            utterance_id INTEGER NOT NULL REFERENCES utterances(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            strategy TEXT,
            text TEXT NOT NULL,
            latency_ms REAL NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX suggestions_utterance ON suggestions(utterance_id);
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            suggestion_id INTEGER NOT NULL UNIQUE REFERENCES suggestions(id) ON DELETE CASCADE,
            decision TEXT NOT NULL CHECK (decision IN ('accepted', 'edited', 'rejected')),
            final_text TEXT,
            created_at TEXT NOT NULL,
            CHECK ((decision = 'rejected') = (final_text IS NULL))
        );
        CREATE TABLE notes (
            session_id INTEGER PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        -- No foreign keys: audit rows outlive the records they mention (erasure).
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ({actions})),
            client_id INTEGER,
            session_id INTEGER,
            object_id INTEGER,
            count INTEGER
        );
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE CHECK (length(sha256) = 64),
            approved INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
            added_at TEXT NOT NULL
        );
    """)


def _risk_acknowledgements(conn: sqlcipher3.Connection) -> None:
    """The therapist's acknowledgement of a crisis warning, kept with the flagged words
    (who, when, which categories), and audit actions as rows of their own table so new
    ones need no rebuild of the append-only log. The rebuilt log also refuses an insert
    that names an existing row's id: `INSERT OR REPLACE` would otherwise overwrite a row
    without firing the delete trigger."""
    conn.executescript("""
        CREATE TABLE risk_acknowledgements (
            id INTEGER PRIMARY KEY,
            utterance_id INTEGER NOT NULL UNIQUE REFERENCES utterances(id) ON DELETE CASCADE,
            categories TEXT NOT NULL,
            acknowledged_by TEXT NOT NULL,
            acknowledged_at TEXT NOT NULL
        );
        CREATE TABLE audit_actions (name TEXT PRIMARY KEY) WITHOUT ROWID;
        CREATE TABLE audit_v2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            action TEXT NOT NULL REFERENCES audit_actions(name),
            client_id INTEGER,
            session_id INTEGER,
            object_id INTEGER,
            count INTEGER
        );
    """)
    for action in AUDIT_ACTIONS:
        conn.execute("INSERT INTO audit_actions(name) VALUES (?)", (action,))
    conn.executescript("""
        INSERT INTO audit_v2(id, at, action, client_id, session_id, object_id, count)
            SELECT id, at, action, client_id, session_id, object_id, count FROM audit ORDER BY id;
        DROP TABLE audit;
        ALTER TABLE audit_v2 RENAME TO audit;
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_replace BEFORE INSERT ON audit
            WHEN EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)


def audit_row_hash(previous: str, row: Sequence) -> str:
    """The audit chain: each row's hash covers its fields and the previous row's hash,
    so editing, deleting or inserting a row breaks every later link (store check)."""
    fields = json.dumps([previous, *row], separators=(",", ":"))
    return hashlib.sha256(fields.encode("utf-8")).hexdigest()


AUDIT_FIELDS = "id, at, action, client_id, session_id, object_id, count"
CHAIN_START = "0" * 64


def _maintenance_and_audit_chain(conn: sqlcipher3.Connection) -> None:
    """Work a crash or a full disk can leave unfinished (a compaction after an erasure,
    a half-written backup), recorded so the next open completes it; and a hash chain
    over the audit log, so tampering by anyone holding the key shows in `store check`.
    Existing rows are chained in id order; the triggers are lifted for that alone."""
    conn.executescript("""
        CREATE TABLE maintenance (
            task TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            since TEXT NOT NULL,
            PRIMARY KEY (task, detail)
        ) WITHOUT ROWID;
        ALTER TABLE audit ADD COLUMN row_hash TEXT;
        DROP TRIGGER audit_no_update;
    """)
    previous = CHAIN_START
    for row in conn.execute(f"SELECT {AUDIT_FIELDS} FROM audit ORDER BY id").fetchall():
        previous = audit_row_hash(previous, row)
        conn.execute("UPDATE audit SET row_hash = ? WHERE id = ?", (previous, row[0]))
    conn.executescript("""
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """)


def _unchosen_drafts_and_own_replies(conn: sqlcipher3.Connection) -> None:
    """The fate of every draft: `not_chosen` when another draft of the round, or the
    therapist's own words, answered the client; and where a therapist turn came from
    (`origin`: a suggestion, or typed by the therapist). A CHECK cannot be altered in
    place, so the decisions table is rebuilt with its rows."""
    conn.executescript("""
        CREATE TABLE decisions_v2 (
            id INTEGER PRIMARY KEY,
            suggestion_id INTEGER NOT NULL UNIQUE REFERENCES suggestions(id) ON DELETE CASCADE,
            decision TEXT NOT NULL
                CHECK (decision IN ('accepted', 'edited', 'rejected', 'not_chosen')),
            final_text TEXT,
            created_at TEXT NOT NULL,
            CHECK ((decision IN ('rejected', 'not_chosen')) = (final_text IS NULL))
        );
        INSERT INTO decisions_v2(id, suggestion_id, decision, final_text, created_at)
            SELECT id, suggestion_id, decision, final_text, created_at FROM decisions;
        DROP TABLE decisions;
        ALTER TABLE decisions_v2 RENAME TO decisions;
        ALTER TABLE utterances ADD COLUMN origin TEXT CHECK (origin IN ('suggestion', 'own'));
    """)


MIGRATIONS: tuple[tuple[str, Callable[[sqlcipher3.Connection], None]], ...] = (
    ("initial schema", _initial),
    ("risk acknowledgements; audit actions as rows; no audit replace", _risk_acknowledgements),
    ("maintenance tasks; audit hash chain", _maintenance_and_audit_chain),
    ("drafts not chosen; where a therapist turn came from", _unchosen_drafts_and_own_replies),
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def applied_version(conn: sqlcipher3.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn: sqlcipher3.Connection) -> int:
    """Apply the missing migrations in order; returns the schema version now in force."""
    current = applied_version(conn)
    if current > len(MIGRATIONS):
        raise SchemaTooNew(
            f"the store has schema version {current}; this app knows up to "
            f"{len(MIGRATIONS)}. Update the app to open it."
        )
    for version, (name, step) in enumerate(MIGRATIONS[current:], start=current + 1):
        # executescript would commit on its own; run the step's statements one by one
        # inside an explicit transaction instead.
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(_NoCommit(conn))
            conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, now()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("applied schema migration %d (%s)", version, name)
    # A rebuilt table leaves free pages, which no open reads (so none is authenticated
    # there) and which may hold old text: compact once after migrating.
    if current < len(MIGRATIONS) and conn.execute("PRAGMA freelist_count").fetchone()[0]:
        conn.execute("VACUUM")
    return len(MIGRATIONS)


class _NoCommit:
    """Lets a migration write `executescript` while keeping it in the open transaction."""

    def __init__(self, conn: sqlcipher3.Connection) -> None:
        self._conn = conn

    def executescript(self, script: str) -> None:
        for statement in _split_statements(script):
            self._conn.execute(statement)

    def execute(self, sql: str, params: tuple = ()) -> sqlcipher3.Cursor:
        return self._conn.execute(sql, params)


def _split_statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlcipher3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError("a migration ends with an incomplete SQL statement")
    return statements
