"""The store's domain methods: profile, clients, sessions, utterances, suggestions,
decisions, notes, the audit log and the model registry.

Every method runs in `atomic()`; reads of a client's record write their "view" audit
row in the same transaction. Audit rows hold ids and counts only.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Iterable, Sequence

from therapist_app.core.dialogue_format import SPEAKERS, UNUSED, Decision
from therapist_app.core.store.errors import CrisisNotAcknowledged, InvalidInput, NotFound
from therapist_app.core.store.records import (
    AuditEntry,
    Client,
    DecisionRecord,
    Erasure,
    ModelRecord,
    Note,
    Profile,
    RiskAcknowledgement,
    Session,
    Suggestion,
    Transcript,
    Utterance,
)
from therapist_app.core.store.schema import (
    AUDIT_ACTIONS,
    AUDIT_FIELDS,
    CHAIN_START,
    audit_row_hash,
    now,
)
from therapist_app.core.taxonomy import check_emotion, strategies

log = logging.getLogger(__name__)

_UTTERANCE_COLUMNS = (
    "id, session_id, speaker, text, created_at, emotion_detected, "
    "emotion_confidence, emotion_corrected, risk_flags, origin"
)
ORIGINS = ("suggestion", "own")


def _utterance(row: Sequence) -> Utterance:
    return Utterance(*row[:8], risk_flags=tuple(json.loads(row[8])), origin=row[9])


def _acknowledgement(row: Sequence) -> RiskAcknowledgement:
    return RiskAcknowledgement(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4])


_ACKNOWLEDGEMENT_COLUMNS = "a.id, a.utterance_id, a.categories, a.acknowledged_by, a.acknowledged_at"


def _text(value, what: str, *, optional: bool = False) -> str | None:
    """Validate text at the store's edge, so a bad value is refused with its own message
    instead of failing deep inside SQLite or, later, every export."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}; nothing was saved")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} holds a character that is not valid text (an unpaired "
            "surrogate, usually from a damaged paste); nothing was saved"
        ) from None
    return value


def _id(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be a whole number, not {type(value).__name__}")
    return value


def _rows(first: int, last: int) -> str:
    return f"row {first} is" if first == last else f"rows {first} to {last} are"


def _check_strategy(strategy: str | None) -> None:
    if strategy is not None and strategy not in strategies():
        raise ValueError(f"unknown strategy {strategy!r}")


class StoreRecords:
    """Mixed into `Store`; relies on its `_require()`, `atomic()`, `path` and
    `_finish_compaction()`."""

    def _audit(
        self,
        action: str,
        *,
        client_id: int | None = None,
        session_id: int | None = None,
        object_id: int | None = None,
        count: int | None = None,
    ) -> None:
        if action not in AUDIT_ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        conn = self._require()
        last = conn.execute("SELECT id, row_hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        # The id AUTOINCREMENT would choose, fixed here because the hash covers it.
        row = (
            max(last[0] if last else 0, sequence[0] if sequence else 0) + 1,
            now(),
            action,
            client_id,
            session_id,
            object_id,
            count,
        )
        conn.execute(
            f"INSERT INTO audit({AUDIT_FIELDS}, row_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, audit_row_hash(last[1] if last else CHAIN_START, row)),
        )

    def _one(self, sql: str, params: tuple, what: str) -> Sequence:
        row = self._require().execute(sql, params).fetchone()
        if row is None:
            raise NotFound(f"no {what} with id {params[0]}")
        return row

    # ---- profile -------------------------------------------------------------------

    def profile(self) -> Profile:
        with self.atomic():
            return Profile(*self._one("SELECT display_name, created_at FROM profile WHERE id = ?", (1,), "profile"))

    def set_profile_name(self, display_name: str | None) -> None:
        display_name = _text(display_name, "the display name", optional=True)
        with self.atomic():
            self._require().execute("UPDATE profile SET display_name = ? WHERE id = 1", (display_name,))

    # ---- clients -------------------------------------------------------------------

    def add_client(self, code: str, display_name: str | None = None) -> Client:
        """Add a client under a pseudonymous code (unique); the display name is optional."""
        code = _text(code, "the client code").strip()
        display_name = _text(display_name, "the client's display name", optional=True)
        if not code:
            raise InvalidInput("a client needs a non-empty code")
        with self.atomic():
            created = now()
            cursor = self._require().execute(
                "INSERT INTO clients(code, display_name, created_at) VALUES (?, ?, ?)", (code, display_name, created)
            )
            return Client(cursor.lastrowid, code, display_name, created)

    def list_clients(self) -> list[Client]:
        """Codes and display names for the client picker (not a record view: no audit)."""
        with self.atomic():
            rows = self._require().execute("SELECT id, code, display_name, created_at FROM clients ORDER BY code")
            return [Client(*row) for row in rows]

    def search_clients(self, query: str) -> list[Client]:
        """Clients whose code or display name contains `query` (case-insensitive)."""
        query = _text(query, "the search text")
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.atomic():
            rows = self._require().execute(
                "SELECT id, code, display_name, created_at FROM clients "
                "WHERE code LIKE ?1 ESCAPE '\\' OR display_name LIKE ?1 ESCAPE '\\' ORDER BY code",
                (pattern,),
            )
            return [Client(*row) for row in rows]

    def get_client(self, client_id: int) -> Client:
        """One client's record; writes a `view_client` audit row."""
        with self.atomic():
            client = Client(
                *self._one(
                    "SELECT id, code, display_name, created_at FROM clients WHERE id = ?", (client_id,), "client"
                )
            )
            self._audit("view_client", client_id=client_id)
            return client

    def erase_client(self, client_id: int) -> Erasure:
        """Delete a client and everything recorded about them, then checkpoint and VACUUM
        so no trace of their text survives in the database, -wal or -shm files.

        The deletion, its audit row (ids only) and a pending-compaction record commit
        together; the compaction then runs. When it cannot finish (a full disk, a
        crash), the erasure still stands and the next open completes the compaction:
        the returned `Erasure` says which happened, and names copies of the store that
        an earlier restore set aside, which still hold the client's records.
        """
        with self.atomic():
            self._one("SELECT id FROM clients WHERE id = ?", (client_id,), "client")
            sessions = (
                self._require().execute("SELECT count(*) FROM sessions WHERE client_id = ?", (client_id,)).fetchone()[0]
            )
            self._require().execute("DELETE FROM clients WHERE id = ?", (client_id,))
            self._audit("erase_client", client_id=client_id, count=sessions)
            self._require().execute(
                "INSERT OR REPLACE INTO maintenance(task, detail, since) VALUES ('compaction', '', ?)", (now(),)
            )
        compacted = self._finish_compaction()
        log.info("erased client %d (%d sessions, compacted: %s)", client_id, sessions, compacted)
        return Erasure(
            sessions,
            compacted,
            tuple(
                sorted(
                    p.name
                    for p in self.path.parent.glob(f"{self.path.name}.replaced-*")
                    if not p.name.endswith(("-wal", "-shm", ".keys"))
                )
            ),
        )

    # ---- sessions and utterances ----------------------------------------------------

    def start_session(self, client_id: int) -> Session:
        with self.atomic():
            self._one("SELECT id FROM clients WHERE id = ?", (client_id,), "client")
            started, conversation_id = now(), secrets.token_hex(8)
            cursor = self._require().execute(
                "INSERT INTO sessions(client_id, conversation_id, started_at) VALUES (?, ?, ?)",
                (client_id, conversation_id, started),
            )
            return Session(cursor.lastrowid, client_id, conversation_id, started, None)

    def end_session(self, session_id: int) -> None:
        with self.atomic():
            self._one("SELECT id FROM sessions WHERE id = ?", (session_id,), "session")
            self._require().execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (now(), session_id))

    def sessions(self, client_id: int) -> list[Session]:
        with self.atomic():
            rows = self._require().execute(
                "SELECT id, client_id, conversation_id, started_at, ended_at FROM sessions "
                "WHERE client_id = ? ORDER BY id",
                (client_id,),
            )
            return [Session(*row) for row in rows]

    def append_utterance(
        self,
        session_id: int,
        speaker: str,
        text: str,
        *,
        emotion: str | None = None,
        confidence: float | None = None,
        risk_flags: Iterable[str] = (),
        origin: str | None = None,
    ) -> Utterance:
        """Record what the client or therapist said, with the detected emotion (a
        taxonomy id) and any risk flags the detector raised."""
        _id(session_id, "the session id")
        text = _text(text, "the utterance")
        if speaker not in SPEAKERS:
            raise ValueError(f"speaker must be one of {SPEAKERS}")
        if origin is not None and (speaker != "therapist" or origin not in ORIGINS):
            raise InvalidInput(f"origin is one of {ORIGINS}, for therapist turns only")
        if emotion is not None:
            check_emotion(emotion)
        flags = tuple(risk_flags)
        with self.atomic():
            self._one("SELECT id FROM sessions WHERE id = ?", (session_id,), "session")
            created = now()
            cursor = self._require().execute(
                "INSERT INTO utterances(session_id, speaker, text, created_at, emotion_detected,"
                " emotion_confidence, risk_flags, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, speaker, text, created, emotion, confidence, json.dumps(flags), origin),
            )
            return Utterance(
                cursor.lastrowid, session_id, speaker, text, created, emotion, confidence, None, flags, origin
            )

    def correct_emotion(self, utterance_id: int, emotion: str | None) -> None:
        """The therapist's correction of the detected emotion (None clears it)."""
        if emotion is not None:
            check_emotion(emotion)
        with self.atomic():
            self._one("SELECT id FROM utterances WHERE id = ?", (utterance_id,), "utterance")
            self._require().execute("UPDATE utterances SET emotion_corrected = ? WHERE id = ?", (emotion, utterance_id))

    def session_transcript(self, session_id: int) -> Transcript:
        """A session with its utterances, suggestions and decisions; writes a
        `view_session` audit row."""
        with self.atomic():
            conn = self._require()
            session = Session(
                *self._one(
                    "SELECT id, client_id, conversation_id, started_at, ended_at FROM sessions WHERE id = ?",
                    (session_id,),
                    "session",
                )
            )
            utterances = tuple(
                _utterance(row)
                for row in conn.execute(
                    f"SELECT {_UTTERANCE_COLUMNS} FROM utterances WHERE session_id = ? ORDER BY id", (session_id,)
                )
            )
            suggestions = tuple(
                Suggestion(*row)
                for row in conn.execute(
                    "SELECT s.id, s.utterance_id, s.model_id, s.strategy, s.text, s.latency_ms, "
                    "s.created_at FROM suggestions s JOIN utterances u ON u.id = s.utterance_id "
                    "WHERE u.session_id = ? ORDER BY s.id",
                    (session_id,),
                )
            )
            decisions = tuple(
                DecisionRecord(*row)
                for row in conn.execute(
                    "SELECT d.id, d.suggestion_id, d.decision, d.final_text, d.created_at "
                    "FROM decisions d JOIN suggestions s ON s.id = d.suggestion_id "
                    "JOIN utterances u ON u.id = s.utterance_id WHERE u.session_id = ? "
                    "ORDER BY d.id",
                    (session_id,),
                )
            )
            acknowledgements = tuple(
                _acknowledgement(row)
                for row in conn.execute(
                    f"SELECT {_ACKNOWLEDGEMENT_COLUMNS} FROM risk_acknowledgements a "
                    "JOIN utterances u ON u.id = a.utterance_id WHERE u.session_id = ? ORDER BY a.id",
                    (session_id,),
                )
            )
            self._audit("view_session", client_id=session.client_id, session_id=session_id)
            return Transcript(session, utterances, suggestions, decisions, acknowledgements)

    # ---- crisis warnings -------------------------------------------------------------

    def acknowledge_risk(self, utterance_id: int, by: str) -> RiskAcknowledgement:
        """Record that the therapist (`by`) saw the crisis warning on a flagged client
        utterance, with the categories it was flagged for. Audited; acknowledging the
        same utterance again returns the first record."""
        by = _text(by, "who acknowledged")
        if not by.strip():
            raise ValueError("an acknowledgement needs the name of who acknowledged")
        with self.atomic():
            conn = self._require()
            session_id, flags = self._one(
                "SELECT session_id, risk_flags FROM utterances WHERE id = ?", (utterance_id,), "utterance"
            )
            if not json.loads(flags):
                raise ValueError(f"utterance {utterance_id} carries no risk flag to acknowledge")
            existing = conn.execute(
                f"SELECT {_ACKNOWLEDGEMENT_COLUMNS} FROM risk_acknowledgements a WHERE a.utterance_id = ?",
                (utterance_id,),
            ).fetchone()
            if existing is not None:
                return _acknowledgement(existing)
            created = now()
            cursor = conn.execute(
                "INSERT INTO risk_acknowledgements(utterance_id, categories, acknowledged_by, acknowledged_at) "
                "VALUES (?, ?, ?, ?)",
                (utterance_id, flags, by.strip(), created),
            )
            self._audit(
                "crisis_acknowledged", session_id=session_id, object_id=utterance_id, count=len(json.loads(flags))
            )
            return RiskAcknowledgement(cursor.lastrowid, utterance_id, tuple(json.loads(flags)), by.strip(), created)

    def unacknowledged_risk_sessions(self) -> list[tuple[int, int]]:
        """(client id, session id) of every session holding a crisis warning nobody
        acknowledged: ids only, so reading them views no record."""
        with self.atomic():
            rows = self._require().execute(
                "SELECT DISTINCT s.client_id, s.id FROM utterances u JOIN sessions s ON s.id = u.session_id "
                "WHERE u.risk_flags != '[]' AND NOT EXISTS "
                "(SELECT 1 FROM risk_acknowledgements a WHERE a.utterance_id = u.id) ORDER BY s.id"
            )
            return [tuple(row) for row in rows]

    def _require_acknowledged(self, utterance_id: int) -> None:
        """Refuse while a flagged client utterance of the session, up to this one, has
        no acknowledgement: no path uses a suggestion past an unseen crisis warning."""
        pending = (
            self._require()
            .execute(
                "SELECT count(*) FROM utterances u JOIN utterances t ON t.id = ? "
                "WHERE u.session_id = t.session_id AND u.id <= t.id AND u.risk_flags != '[]' "
                "AND NOT EXISTS (SELECT 1 FROM risk_acknowledgements a WHERE a.utterance_id = u.id)",
                (utterance_id,),
            )
            .fetchone()[0]
        )
        if pending:
            raise CrisisNotAcknowledged("acknowledge the crisis warning before using a suggestion in this session")

    # ---- suggestions and decisions ---------------------------------------------------

    def add_suggestion(
        self, utterance_id: int, model_id: str, strategy: str | None, text: str, latency_ms: float
    ) -> Suggestion:
        """A model's suggested reply to a client utterance (not yet accepted)."""
        model_id, text = _text(model_id, "the model id"), _text(text, "the suggestion")
        _check_strategy(strategy)
        with self.atomic():
            self._one("SELECT id FROM utterances WHERE id = ?", (utterance_id,), "utterance")
            created = now()
            cursor = self._require().execute(
                "INSERT INTO suggestions(utterance_id, model_id, strategy, text, latency_ms, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (utterance_id, model_id, strategy, text, latency_ms, created),
            )
            return Suggestion(cursor.lastrowid, utterance_id, model_id, strategy, text, latency_ms, created)

    def decide(self, suggestion_id: int, decision: Decision, final_text: str | None = None) -> DecisionRecord:
        """The therapist's decision on a suggestion. `accepted` keeps the suggestion's
        text, `edited` needs `final_text`, `rejected` stores none. Audited. Using a
        suggestion (accepted or edited) past an unacknowledged crisis warning raises
        `CrisisNotAcknowledged`; rejecting one is always allowed, and so is marking it
        `not_chosen` (see `close_round`)."""
        final_text = _text(final_text, "the edited reply", optional=True)
        with self.atomic():
            suggestion_text, session_id, utterance_id = self._suggestion(suggestion_id)
            if decision not in UNUSED:
                self._require_acknowledged(utterance_id)
            if decision == "accepted":
                final_text = suggestion_text if final_text is None else final_text
            elif decision == "edited":
                if not final_text:
                    raise ValueError("an edited decision needs the edited text")
            elif decision in UNUSED:
                final_text = None
            else:
                raise ValueError(f"unknown decision {decision!r}")
            created = now()
            cursor = self._require().execute(
                "INSERT INTO decisions(suggestion_id, decision, final_text, created_at) VALUES (?, ?, ?, ?)",
                (suggestion_id, decision, final_text, created),
            )
            self._audit("decision", session_id=session_id, object_id=cursor.lastrowid)
            return DecisionRecord(cursor.lastrowid, suggestion_id, decision, final_text, created)

    def _suggestion(self, suggestion_id: int) -> tuple[str, int, int]:
        """A suggestion's text, and the session and client utterance it answers."""
        return self._one(
            "SELECT s.text, u.session_id, u.id FROM suggestions s JOIN utterances u ON u.id = s.utterance_id "
            "WHERE s.id = ?",
            (suggestion_id,),
            "suggestion",
        )

    def close_round(self, utterance_id: int) -> int:
        """Mark every draft for this client utterance that has no decision yet as
        `not_chosen` (audited like any decision): another draft, or the therapist's own
        words, answered the client. Returns how many were marked."""
        with self.atomic():
            open_drafts = (
                self._require()
                .execute(
                    "SELECT s.id FROM suggestions s LEFT JOIN decisions d ON d.suggestion_id = s.id "
                    "WHERE s.utterance_id = ? AND d.id IS NULL ORDER BY s.id",
                    (utterance_id,),
                )
                .fetchall()
            )
            for (suggestion_id,) in open_drafts:
                self.decide(suggestion_id, "not_chosen")
            return len(open_drafts)

    def use_suggestion(self, suggestion_id: int, decision: Decision, final_text: str | None = None) -> Utterance:
        """A draft used as the therapist's turn, `accepted` as it is or `edited` into
        `final_text`: the decision, the turn and the round's other open drafts as
        `not_chosen`, in one transaction (as `own_reply` does for the therapist's own
        words). Past an unacknowledged crisis warning it raises `CrisisNotAcknowledged`."""
        if decision not in ("accepted", "edited"):
            raise ValueError(f"a used draft is accepted or edited, not {decision!r}")
        with self.atomic():
            record = self.decide(suggestion_id, decision, final_text)
            _, session_id, utterance_id = self._suggestion(suggestion_id)
            assert record.final_text is not None  # accepted or edited always keeps a text
            turn = self.append_utterance(session_id, "therapist", record.final_text, origin="suggestion")
            self.close_round(utterance_id)
            return turn

    def own_reply(self, session_id: int, text: str) -> Utterance:
        """The therapist's own words as their turn, typed instead of using a draft: the
        drafts for the last client utterance that are still open become `not_chosen`.
        Needs no crisis acknowledgement: no model text is used."""
        text = _text(text, "the reply")
        if not text.strip():
            raise InvalidInput("the reply is empty")
        with self.atomic():
            last_client = (
                self._require()
                .execute(
                    "SELECT id FROM utterances WHERE session_id = ? AND speaker = 'client' ORDER BY id DESC LIMIT 1",
                    (session_id,),
                )
                .fetchone()
            )
            turn = self.append_utterance(session_id, "therapist", text, origin="own")
            if last_client is not None:
                self.close_round(last_client[0])
            return turn

    # ---- notes ---------------------------------------------------------------------

    def note(self, session_id: int) -> Note | None:
        with self.atomic():
            row = (
                self._require()
                .execute("SELECT session_id, text, updated_at FROM notes WHERE session_id = ?", (session_id,))
                .fetchone()
            )
            return None if row is None else Note(*row)

    def set_note(self, session_id: int, text: str) -> Note:
        text = _text(text, "the note")
        with self.atomic():
            self._one("SELECT id FROM sessions WHERE id = ?", (session_id,), "session")
            updated = now()
            self._require().execute(
                "INSERT INTO notes(session_id, text, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT(session_id) DO UPDATE SET text = excluded.text, "
                "updated_at = excluded.updated_at",
                (session_id, text, updated),
            )
            return Note(session_id, text, updated)

    # ---- audit log -----------------------------------------------------------------

    def _audit_chain_problems(self) -> list[str]:
        """Rows that break the audit hash chain: edited, inserted out of order, or
        missing (ids run 1, 2, 3... with no gap; none deleted after the last)."""
        conn = self._require()
        problems, previous, expected_id = [], CHAIN_START, 1
        for *row, row_hash in conn.execute(f"SELECT {AUDIT_FIELDS}, row_hash FROM audit ORDER BY id"):
            if row[0] != expected_id:
                problems.append(f"audit {_rows(expected_id, row[0] - 1)} missing")
            if row_hash != audit_row_hash(previous, row):
                problems.append(f"audit row {row[0]} was altered (its hash does not match the chain)")
            previous, expected_id = row_hash, row[0] + 1
        sequence = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        if sequence and sequence[0] >= expected_id:
            problems.append(f"audit {_rows(expected_id, sequence[0])} missing (deleted)")
        return problems

    def audit_log(self, limit: int | None = None) -> list[AuditEntry]:
        """Audit rows, newest first."""
        with self.atomic():
            rows = self._require().execute(
                "SELECT id, at, action, client_id, session_id, object_id, count FROM audit ORDER BY id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            )
            return [AuditEntry(*row) for row in rows]

    # ---- model registry ------------------------------------------------------------

    def register_model(self, path: str, sha256: str, approved: bool = False) -> ModelRecord:
        """Record a model file by its SHA-256 (re-registering a hash updates its path)."""
        path, sha256 = _text(path, "the model path"), _text(sha256, "the SHA-256").lower()
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("sha256 must be 64 hex digits")
        with self.atomic():
            conn = self._require()
            conn.execute(
                "INSERT INTO models(path, sha256, approved, added_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(sha256) DO UPDATE SET path = excluded.path",
                (path, sha256, int(approved), now()),
            )
            record = self._model(sha256)
            self._audit("model_added", object_id=record.id, count=int(record.approved))
            return record

    def set_model_approval(self, sha256: str, approved: bool) -> ModelRecord:
        with self.atomic():
            record = self._model(sha256.lower())
            self._require().execute("UPDATE models SET approved = ? WHERE id = ?", (int(approved), record.id))
            self._audit("model_approval", object_id=record.id, count=int(approved))
            return self._model(record.sha256)

    def _model(self, sha256: str) -> ModelRecord:
        row = (
            self._require()
            .execute("SELECT id, path, sha256, approved, added_at FROM models WHERE sha256 = ?", (sha256,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no registered model with sha256 {sha256}")
        return ModelRecord(row[0], row[1], row[2], bool(row[3]), row[4])

    def models(self) -> list[ModelRecord]:
        with self.atomic():
            rows = self._require().execute("SELECT id, path, sha256, approved, added_at FROM models ORDER BY id")
            return [ModelRecord(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]
